"""Every physical parameter of the simulated world, in one versioned place.

Each section is a plain dict (``params.furnace["ambient_c"]``) so simulators,
station options and the JSON written beside synthetic data all read the same
names; units are in the names. Where a number comes from the paper (Chen et
al., Small 2023, DOI 10.1002/smll.202308951) the comment says "paper";
"model" marks a modelling choice, explained in ``docs/physics.md``.

Bump :data:`PARAMS_VERSION` whenever a value changes: synthetic data files
record it, so a result can be traced to the physics that produced it.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

from labctl import paper

#: 1.1: pump lock-in sees ΔE/2, as doubly chopped; 1.2: table noise/drift; 1.3: an
#: optional detector floor common to both lock-ins (``noise_floor_v_per_rthz``); 1.4: that
#: common floor is the default, at a real table's value (the per-channel floors are gone)
PARAMS_VERSION = "1.4"

#: The additive floor of a real table's balanced EO detector, V/√Hz at the lock-in input:
#: 0.10 % of an air scan's THz peak (21.7 mV) per reading at τ = 100 ms, 12 dB/oct (ENBW
#: 1.25 Hz; 0.108 % of the 20 mV peak through the substrate) — the low end of the
#: 0.10–0.28 % measured on air scans (docs/physics.md "Noise floor")
DETECTOR_FLOOR_V_PER_RTHZ = 1.94e-5

#: A table 7800× quieter than a real one (the pump channel's floor of params ≤ 1.3, now in
#: both channels): for tests about the ANALYSIS (does it recover known parameters?) and for
#: the demo, where the signal must be visible in a few sweeps. No real table is this quiet:
#: at the real floor the paper's films need hours to days per spectrum (docs/physics.md
#: "Noise floor"). Whoever uses it says so.
ANALYSIS_FLOOR_V_PER_RTHZ = 2.5e-9

#: TEM distances (Table 2 is reachable one way only: :data:`labctl.paper.TABLE2`).
TEM_DISTANCES_NM = paper.TEM_DISTANCES_NM


def _furnace() -> dict:
    return {
        "ambient_c": 25.0,
        # two-node plant: heating element + insulation face ("element") and the
        # work tube's hot zone where thermocouple and samples sit ("zone") (model)
        "heater_max_w": 2000.0,
        "element_heat_capacity_j_per_k": 800.0,
        "zone_heat_capacity_j_per_k": 2500.0,
        "element_to_zone_w_per_k": 30.0,
        "element_loss_w_per_k": 1.2,  # through the insulation
        "zone_loss_w_per_k": 0.3,  # through the tube ends
        "thermocouple_lag_s": 6.0,  # sheathed type K bead
        "sample_lag_s": 90.0,  # 1 cm² fused-silica slide on the holder, in air
        # thermocouple input range (type K); an open thermocouple drives the
        # input upscale ("upscale burnout"): PV reads range_max_c
        "range_min_c": -200.0,
        "range_max_c": 1372.0,
        # axial temperature profile of the tube: flat hot zone, then a Gaussian
        # roll-off towards the parked slots (model)
        "hot_zone_flat_half_mm": 10.0,
        "hot_zone_rolloff_mm": 15.0,
        # a PID that controls this plant as a factory-tuned Eurotherm would
        # (used by the reference controller in tests; the Eurotherm simulator
        # keeps its own parameters)
    }


def _stages() -> list:
    return [
        {"min_mm": 0.0, "max_mm": 100.0, "velocity_mm_s": 5.0},  # 1: THz sampling delay
        {"min_mm": 0.0, "max_mm": 300.0, "velocity_mm_s": 20.0},  # 2: pump delay
        {"min_mm": -10.0, "max_mm": 330.0, "velocity_mm_s": 10.0},  # 3: sample translation
    ]


def _holder() -> dict:
    return {
        # Slot k sits at the hot-zone centre, in the beams, when stage 3 reads
        # k * pitch_mm. Slot 0 holds the blank fused-silica reference.
        "pitch_mm": 40.0,
        "n_film_slots": 8,
        "blank_slot": 0,
        "beam_tolerance_mm": 2.0,  # a slot is "in the beam" within ± this
    }


def _film() -> dict:
    return {
        "thickness_nm": 100.0,  # model (drop-cast 20 µL, 1.07 µM → ~100–130 nm)
        # distance model d = (1-φ)[d_res·ρ + (d_p - d_res)·θ_b + d_loose·θ_l]
        "gap_bound_nm": 2.5,  # d_p: ligand shell after solvent loss (paper: 2.5 nm at 80 °C)
        "gap_residue_nm": 1.0,  # d_res: decomposed-ligand residue floor (paper: 1.0 nm at 340 °C)
        "gap_loose_nm": 1.3,  # solvent / loosely bound ligand (3.8 - 2.5 nm, paper)
        # loosely bound ligand and trapped solvent (hexane bp 69 °C): first order
        "loose_prefactor_per_s": 1.7e15,
        "loose_activation_j_per_mol": 120e3,
        # bound Cd-myristate: oxidative decomposition, distributed activation
        # energies (DAEM, Gaussian), first order in each channel
        "bound_prefactor_per_s": 1e13,
        "bound_activation_mean_j_per_mol": 179e3,
        "bound_activation_sd_j_per_mol": 4e3,
        "bound_activation_bins": 21,
        # carbonaceous residue (TGA step 2, 355–475 °C): C and CO₂ only
        "residue_prefactor_per_s": 1e13,
        "residue_activation_mean_j_per_mol": 215e3,
        "residue_activation_sd_j_per_mol": 8e3,
        "residue_activation_bins": 11,
        # fusion (necking into bulk-like CdSe + CdO at the surface): JMAK
        # φ = 1 - exp(-Θⁿ), Θ = ∫k_f dt, k_f = A_f exp(-E_f/RT); A_f is fixed by
        # Θ = fusion_extent_350 after the paper's 350 °C anneal (model)
        "fusion_activation_j_per_mol": 624e3,
        "fusion_avrami_n": 4.0,
        "fusion_extent_350": 2.2,
        "cdo_fraction_fused": 0.15,  # CdO share of the fused solid (Raman 290/392/938 cm⁻¹)
        # TGA of Cd(myristate)₂ (paper Fig. 3a): mass fractions of the two steps
        "tga_step1_wt": 0.66,
        "tga_step2_wt": 0.10,
        "tga_rate_c_per_min": 2.0,  # not stated in the paper; see docs/physics.md
        # EDX carbon (paper Table 1): C mass per CdSe mass carried by each population
        "carbon_per_cdse_loose": 1.675,
        "carbon_per_cdse_bound": 1.50,
        "cdse_wt_native": 24.32,
        # the paper's anneal: 10 °C/min ramp, 30 min dwell, 120 min linear cooling
        "nominal_ramp_c_per_min": 10.0,
        "nominal_dwell_min": 30.0,
        "nominal_cool_min": 120.0,
    }


def _optics() -> dict:
    return {
        # excitons (paper: HH 512 nm, LH 480 nm; PL FWHM 32.5 meV)
        "hh_isolated_ev": 2.4217,  # 512.0 nm
        "hh_lh_split_ev": 0.1613,  # LH at 480.0 nm
        "bulk_gap_ev": 1.70,  # paper: Tauc gap after fusion
        "coupling_decay_per_nm": 2.3,  # κ in E(d) = E_bulk + (E_iso - E_bulk)(1 - e^{-κd})
        "hh_fwhm_ev": 0.040,
        "lh_fwhm_ev": 0.075,
        "lorentz_share": 0.3,  # pseudo-Voigt lines (homogeneous tails)
        "fwhm_growth_ev": 0.25,  # extra FWHM per unit coupling (0 as made, ~0.1 at 1 nm)
        "hh_peak_absorbance": 0.30,
        "lh_peak_absorbance": 0.20,
        "continuum_absorbance": 0.28,  # 2D step just above the LH line ...
        "continuum_slope_per_ev": 1.0,  # ... rising towards the UV
        "continuum_width_ev": 0.05,
        "bandgap_shift_ev_per_k": -3.5e-4,  # CdSe dE/dT (spectra measured hot shift red)
        # fused film: direct-gap bulk CdSe, α ∝ sqrt(E - Eg)/E above Eg, Urbach tail below
        "bulk_absorbance_scale": 1.3,  # absorbance at Eg + 1 eV (×sqrt(1 eV)/E)
        "urbach_energy_ev": 0.025,
        # scattering background ∝ (400 nm/λ)⁴; rises when the film fuses into clusters
        "scatter_absorbance_400nm": 0.02,
        "scatter_absorbance_400nm_fused": 0.08,
        "substrate_transmittance": 0.93,  # fused silica, two Fresnel faces
        # lamp (tungsten-halogen) × spectrometer response: counts per second at the
        # peak of the light with nothing in the beam
        "lamp_color_temperature_k": 3000.0,
        "lamp_peak_counts_per_s": 2.5e5,
        "response_center_nm": 600.0,
        "response_width_nm": 260.0,
    }


def _photo() -> dict:
    return {
        "effective_mass": 0.13,  # m*/mₑ, CdSe electron (docs/physics.md)
        # anneal-equivalent temperature anchors (°C) → Drude-Smith τ (fs), c, and
        # the free-carrier density at the reference fluence (m⁻³); 250–335 and the
        # fused state (350) are Table 2; below 250 model, exciton-dominated
        "anchors_c": [25.0, 80.0, 200.0, 250.0, 300.0, 325.0, 335.0, 345.0],
        "anchors_tau_fs": [40.0, 40.0, 42.0, 43.0, 44.0, 47.0, 49.0, 50.0],
        "anchors_c_param": [-0.97, -0.97, -0.96, -0.95, -0.87, -0.89, -0.83, -0.81],
        "anchors_n_m3": [0.15e21, 0.2e21, 1.2e21, 4.17e21, 8.35e21, 8.54e21, 9.08e21, 9.40e21],
        # exciton (Lorentz) oscillator weight per exciton, as a fraction of e²/m*;
        # excitons in coupled platelets (≥ 250 °C) carry no separate response
        "anchors_exciton_weight": [0.15, 0.15, 0.08, 0.0, 0.0, 0.0, 0.0, 0.0],
        "fused_tau_fs": 69.0,
        "fused_c": -0.67,
        "fused_n_m3": 12.10e21,
        "exciton_f0_thz": 36.0,  # 1s→2p of a 2D exciton with E_b = 170 meV
        "exciton_gamma_thz": 12.0,
        # OPTP transient: Gaussian IRF ⊗ bi-exponential (+ small long-lived part)
        "irf_fwhm_ps": 0.30,
        "decay_fast_ps": 0.7,
        "decay_slow_ps": 4.0,
        "decay_long_ps": 200.0,
        "amp_fast": 0.55,
        "amp_slow": 0.35,
        "amp_long": 0.10,
        "tds_delay_after_peak_ps": 0.2,  # paper: THz-TDS 0.2 ps after the OPTP peak
        "pump_photon_ev": 3.10,
        "reference_fluence_uj_cm2": 5.0,  # the fluence at which Table 2's N holds (model)
    }


def _table() -> dict:
    return {
        # Δσ that changes within the THz pulse (physics/intrapulse.py); off: quasi-static
        "intrapulse_response": False,
        "sampling_zero_mm": 50.0,  # stage 1 position of zero sampling delay (THz peak)
        "pump_zero_mm": 20.0,  # stage 2 position of zero pump delay (IRF centre)
        "laser_rep_rate_hz": 1000.0,
        # THz generation beam chopped at 500 Hz, pump at 250 Hz: a square wave has
        # no even harmonics, so neither chopper leaks into the other's lock-in
        "chopper_ref_hz": 500.0,
        "chopper_pump_hz": 250.0,
        # EO sampling (ZnTe 1 mm): peak EO signal, as the lock-in's fundamental (V rms)
        "thz_peak_v": 0.02,
        "thz_center_thz": 0.95,  # spectrum ∝ f² exp(-(f/fc)²) × ZnTe response
        "zno_cutoff_thz": 2.6,  # ZnTe velocity-mismatch roll-off
        "thz_chirp_ps2": 0.02,
        "thz_df_thz": 0.01,  # frequency grid: 100 ps period, well beyond any scan
        "thz_fmax_thz": 5.0,
        "substrate_index": 1.95,  # fused silica at THz (docs/physics.md)
        "substrate_thickness_mm": 1.0,  # echo 2nL/c = 13.0 ps after the main pulse
        # white noise at the lock-in inputs (V/√Hz): an additive floor plus a part ∝ the
        # instantaneous EO signal (laser noise, mostly cancelled in the pump channel).
        # The floor is the balanced EO detector's (shot, laser residual, electronics):
        # one detector feeds both lock-ins, so physically both see the same density
        # (independent draws: they demodulate different frequencies).
        # A real table's (0.10 % of the peak per 100 ms reading, docs/physics.md "Noise
        # floor"); the same density in both channels, whatever it is set to.
        "noise_floor_v_per_rthz": DETECTOR_FLOOR_V_PER_RTHZ,
        "noise_ref_relative_per_rthz": 2e-3,
        "noise_pump_relative_per_rthz": 1.5e-7,
        # pump beam
        "pump_fluence_uj_cm2": 5.0,
        "pump_spot_diameter_mm": 5.0,  # flat-top equivalent
        "pump_wavelength_nm": 400.0,
    }


def _noise() -> dict:
    """Noise and drift of a real amplified OPTP table (``noise: realistic``); sources in
    docs/physics.md. Relative values are fractions; times in virtual seconds."""
    return {
        # probe (THz) intensity, multiplicative, one detector: both lock-ins see it.
        # Per point ~1.6 % (measured on PCA THz-TDS scans, 100 ms time constant)
        "probe_point_rms": 0.016,
        "point_tau_s": [0.1, 0.3, 1.0, 3.0],  # 1/f between ~0.05 and ~1.6 Hz
        # scan-to-scan amplitude drift ~1 % rms (measured between consecutive scans):
        # correlation times up to a third of a sweep (~100 s); drift slower than a run
        # is a calibration matter (fluence, thickness), see docs/physics.md
        "probe_drift_rms": 0.01,
        "drift_tau_s": [10.0, 30.0],
        # amplifier pulse energy 0.3–1 % rms: enters ΔE through the pump
        "pump_point_rms": 0.005,
        "pump_drift_rms": 0.005,
        # timebase: jitter per gate position ~1.8 fs, scan-to-scan drift ~2.5 fs rms (measured)
        "gate_jitter_fs": 1.8,
        "delay_drift_fs": 2.5,
        # pump stage: 1 µm repeatability (6.7 fs double pass) per move; overlap drift (model)
        "stage_repeatability_um": 1.0,
        "overlap_drift_fs": 2.5,
        # pump lock-in relative to the reference lock-in, drawn once per world (model)
        "pump_channel_gain_error_rms": 0.002,
        "pump_channel_phase_error_deg_rms": 1.0,
        # films of one batch (simulation option film_variation: true; model)
        "film_thickness_rel_sd": 0.05,
        "film_yield_rel_sd": 0.05,
    }


@dataclass
class WorldParams:
    """All parameters of the simulated world (see the module docstring)."""

    version: str = PARAMS_VERSION
    furnace: dict = field(default_factory=_furnace)
    stages: list = field(default_factory=_stages)
    holder: dict = field(default_factory=_holder)
    film: dict = field(default_factory=_film)
    optics: dict = field(default_factory=_optics)
    photo: dict = field(default_factory=_photo)
    table: dict = field(default_factory=_table)
    noise: dict = field(default_factory=_noise)

    def to_dict(self) -> dict:
        return asdict(self)

    def copy(self) -> WorldParams:
        return copy.deepcopy(self)


def default_params() -> WorldParams:
    return WorldParams()
