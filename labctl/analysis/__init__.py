"""Analysis: pure functions over numpy arrays, SI units inside, physics convention.

Fields are written ∝ exp(−iωt) and σ = σ₁ + iσ₂ (see ``docs/analysis.md``).

Modules
-------
constants   physical constants and defaults (m* = 0.13 mₑ, Z₀, …)
tds         THz-TDS traces → complex photoconductivity Δσ(ω) with noise estimate
models      Drude, Drude-Smith, Lorentz, Drude-Smith+Lorentz; mobility, plasma frequency
fitting     complex least-squares fits (fast analytic-Jacobian path and lmfit path)
optp        OPTP signal, absorbed photon density, decay fits, peak value
uvvis       absorbance, exciton peaks, Tauc gap
peaks       peak positions of alignment scans (parabola, spline vertex, quartic)
io          reading and validating CSV data files

Synthetic data from known parameters (tests, benchmarks) is made by
:mod:`labctl.simulators.synthetic`, beside the simulators.
"""
