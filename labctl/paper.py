"""The paper's numbers: Chen et al., Small 2023, DOI 10.1002/smll.202308951.

One place for the measured values that the simulator is built to reproduce and
that tests, the demo and reports compare against.
"""

from __future__ import annotations

#: Table 2: Drude-Smith parameters 0.2 ps after the OPTP peak, by anneal temperature (°C),
#: with the paper's 1σ errors.
TABLE2: dict[int, dict[str, float]] = {
    250: {
        "tau_fs": 43,
        "tau_fs_err": 3,
        "c": -0.95,
        "c_err": 0.01,
        "N_m3": 4.17e21,
        "N_m3_err": 1e19,
    },
    300: {
        "tau_fs": 44,
        "tau_fs_err": 2,
        "c": -0.87,
        "c_err": 0.01,
        "N_m3": 8.35e21,
        "N_m3_err": 2e19,
    },
    325: {
        "tau_fs": 47,
        "tau_fs_err": 5,
        "c": -0.89,
        "c_err": 0.03,
        "N_m3": 8.54e21,
        "N_m3_err": 5e19,
    },
    335: {
        "tau_fs": 49,
        "tau_fs_err": 4,
        "c": -0.83,
        "c_err": 0.01,
        "N_m3": 9.08e21,
        "N_m3_err": 3e19,
    },
    350: {
        "tau_fs": 69,
        "tau_fs_err": 5,
        "c": -0.67,
        "c_err": 0.02,
        "N_m3": 12.10e21,
        "N_m3_err": 2e19,
    },
}

#: TEM face-to-face inter-NPL distances (Fig. 2): anneal °C (25 = as made) → (nm, ± nm).
TEM_DISTANCES_NM: dict[float, tuple[float, float]] = {
    25.0: (3.8, 0.5),
    80.0: (2.5, 0.4),
    250.0: (2.5, 0.5),
    300.0: (1.5, 0.4),
    340.0: (1.0, 0.2),
}

#: Absorption of the as-made film: heavy-hole and light-hole excitons (nm).
HH_EXCITON_NM = 512.0
LH_EXCITON_NM = 480.0
#: Tauc gap after the 350 °C anneal (bulk-like, eV).
TAUC_GAP_350C_EV = 1.70
