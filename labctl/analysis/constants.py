"""Physical constants (CODATA 2018, SI) and analysis defaults."""

from __future__ import annotations

import math

E_CHARGE = 1.602176634e-19  #: elementary charge, C
M_ELECTRON = 9.1093837015e-31  #: electron mass, kg
EPSILON_0 = 8.8541878128e-12  #: vacuum permittivity, F/m
H_PLANCK = 6.62607015e-34  #: Planck constant, J s
C_LIGHT = 299792458.0  #: speed of light, m/s
Z0_OHM = 376.730313668  #: impedance of free space, Ω
EV_J = E_CHARGE  #: one electronvolt in joules
HC_EV_NM = H_PLANCK * C_LIGHT / EV_J * 1e9  #: hc in eV·nm (≈ 1239.84)

DEFAULT_EFFECTIVE_MASS = 0.13  #: m*/mₑ, CdSe electron
DEFAULT_SUBSTRATE_INDEX = 1.95  #: fused silica at THz frequencies
PUMP_PHOTON_ENERGY_EV = 3.10  #: 400 nm pump
DEFAULT_FMIN_THZ = 0.3
DEFAULT_FMAX_THZ = 2.2

TWO_PI = 2.0 * math.pi


def ev_to_nm(energy_ev):
    """Photon energy (eV) → vacuum wavelength (nm); works on arrays."""
    return HC_EV_NM / energy_ev


def nm_to_ev(wavelength_nm):
    """Vacuum wavelength (nm) → photon energy (eV); works on arrays."""
    return HC_EV_NM / wavelength_nm
