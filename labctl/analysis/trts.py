"""2D time-resolved THz spectroscopy: a Δσ(ω) fit per pump delay, and when that is honest.

Input: a matrix with gate time down the first column and pump delays across the first
row (the layout of several public TRTS data sets; any separator of
:mod:`labctl.analysis.formats`), cells the pumped field E*(t_gate, t_pump) or ΔE, and one
reference waveform E(t_gate). Each pump-delay column is analysed as a TDS scan (the
same :func:`~labctl.analysis.tds.photoconductivity`, significance test and model fit as
``labctl analyze tds``), giving τ(t), N(t), μ(t) with errors.

Quasi-static rule: a column measured at one pump delay is one spectrum only if Δσ does
not change while the THz pulse crosses the sample. Within the first picoseconds after
excitation it does; the photoinduced signal at the pulse peak, −ΔE/E versus pump delay,
measures how much it changes over the pulse duration. Where it changes by more than
:data:`QUASI_STATIC_CHANGE` the result says the fit assumes a quasi-static response —
unless the data were first moved to a constant pump-probe-delay frame
(:func:`constant_pump_probe_frame`; t_pp = t_pump + t_gate, Kindt & Schmuttenmaer,
J. Chem. Phys. 110, 8589 (1999); Němec, Kadlec & Kužel, J. Chem. Phys. 117, 8454
(2002)), where every gate point of a column probes the same pump-probe delay.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from labctl.errors import AnalysisError, DataFileError

from . import formats
from .strict_numbers import quote, strict_number

#: relative change of −ΔE/E over one THz pulse duration above which a delay is not
#: quasi-static
QUASI_STATIC_CHANGE = 0.1
#: pump delays from the signal's onset within which the warning always applies (ps)
EARLY_PS = 2.0
MIN_PUMP_DELAYS = 1


@dataclass
class TRTSData:
    gate_ps: np.ndarray  # (n_gate,)
    pump_delay_ps: np.ndarray  # (n_pump,)
    e_ref: np.ndarray  # (n_gate,)
    delta_e: np.ndarray  # (n_gate, n_pump)
    detected: dict = field(default_factory=dict)


def read_matrix(path, time_unit: str | None, pump_unit: str) -> tuple[np.ndarray, ...]:
    """(gate_ps, pump_delay_ps, values (n_gate, n_pump), detected) of a TRTS matrix."""
    table = formats.read_text_table(path)
    values = table.values
    if table.header_line is not None:
        corner, cells = table.names[0], table.names[1:]
        try:
            pumps = np.array([strict_number(c.encode(), table.dialect.decimal) for c in cells])
        except ValueError:
            raise DataFileError(
                path,
                f"line {table.header_line}: the first row must hold the pump delays "
                f"(numbers), got {quote(', '.join(cells))}",
            ) from None
        rows, lines = values, table.line_numbers
    else:
        corner, pumps = "", values[0, 1:]
        rows, lines = values[1:], table.line_numbers[1:]
    if values.shape[1] < 1 + MIN_PUMP_DELAYS or rows.shape[0] < 4:
        raise DataFileError(path, "needs gate times down the first column and ≥ 1 pump delay")
    stated = formats.unit_from_name(corner) if corner else None
    unit = time_unit or (stated if stated in ("ps", "fs") else None)
    if unit is None:
        raise DataFileError(
            path,
            "the gate-time unit is not stated (corner cell "
            f"{quote(corner) if corner else 'empty'}): give --time-unit fs|ps|mm-single|mm-double",
        )
    gate = rows[:, 0] * formats.TIME_UNITS[unit]
    pump_ps = pumps * formats.TIME_UNITS[pump_unit]
    if np.any(np.diff(pump_ps) <= 0):
        i = int(np.flatnonzero(np.diff(pump_ps) <= 0)[0])
        raise DataFileError(
            path,
            f"pump delays (first row) must increase: column {i + 2} {pumps[i]:g} → "
            f"column {i + 3} {pumps[i + 1]:g}",
        )
    field_rows = rows[:, 1:]
    if np.all(np.diff(gate) < 0):
        gate, field_rows, lines = gate[::-1], field_rows[::-1], lines[::-1]
    steps = np.diff(gate)
    if np.any(steps <= 0) or np.max(np.abs(steps - np.median(steps))) > 0.01 * np.median(steps):
        i = int(np.argmax(np.abs(steps - np.median(steps))))
        raise DataFileError(
            path, f"gate times are not increasing and equally spaced (line {lines[i + 1]})"
        )
    detected = table.describe() | {
        "gate_time_unit": f"{unit} ({'from --time-unit' if time_unit else 'from the corner cell'})",
        "pump_delay_unit": f"{pump_unit} (--pump-delay-unit)",
        "n_pump_delays": int(pump_ps.size),
    }
    detected.pop("rows", None)
    return gate, pump_ps, field_rows, detected


def load_trts(
    pumped_path, reference_path, *, field: str = "pumped", time_unit: str | None = None,
    pump_unit: str = "ps", columns: dict[str, str] | None = None,
) -> TRTSData:  # fmt: skip
    """The matrix and the reference on one gate grid; ΔE per pump delay."""
    if field not in ("pumped", "dE"):
        raise AnalysisError("--field must be pumped or dE")
    gate, pump_ps, cells, detected = read_matrix(pumped_path, time_unit, pump_unit)
    ref = formats.read_waveforms(reference_path, dict(columns or {}), time_unit, ("field",))
    step = float(np.median(np.diff(gate)))
    if ref.time_ps.size != gate.size or np.max(np.abs(ref.time_ps - gate)) > 0.01 * step:
        raise DataFileError(
            reference_path,
            f"not on the matrix's gate grid ({gate.size} points, {gate[0]:g}–{gate[-1]:g} ps; "
            f"reference: {ref.time_ps.size} points, {ref.time_ps[0]:g}–{ref.time_ps[-1]:g} ps)",
        )
    e_ref = ref.fields["field"]
    delta_e = cells - e_ref[:, None] if field == "pumped" else cells
    detected["fields"] = (
        "matrix holds E_pumped (ΔE = E_pumped − E_ref)" if field == "pumped"
        else "matrix holds ΔE = E_pumped − E_ref"
    )  # fmt: skip
    detected["reference"] = {k: ref.detected.get(k) for k in ("layout", "time_unit", "header")}
    return TRTSData(gate, pump_ps, e_ref, delta_e, detected)


def peak_signal(data: TRTSData) -> np.ndarray:
    """−ΔE/E at the reference's peak, per pump delay (the OPTP trace inside the matrix)."""
    i = int(np.argmax(np.abs(data.e_ref)))
    return -data.delta_e[i] / data.e_ref[i]


def pulse_duration_ps(gate_ps, e_ref) -> float:
    """Full width at half maximum of the field's envelope |E| (ps)."""
    a = np.abs(np.asarray(e_ref, float))
    above = np.flatnonzero(a >= 0.5 * a.max())
    step = float(np.median(np.diff(gate_ps)))
    return float(gate_ps[above[-1]] - gate_ps[above[0]]) + step


def change_over_pulse(data: TRTSData) -> np.ndarray:
    """|s(t + w/2) − s(t − w/2)| / |s(t)| per pump delay, s = −ΔE/E at the peak, w the
    pulse duration (interpolated along the pump axis; NaN where w reaches past the scan)."""
    s = peak_signal(data)
    w = pulse_duration_ps(data.gate_ps, data.e_ref)
    t = data.pump_delay_ps
    if t.size < 2:
        return np.full(t.shape, np.nan)
    lo, hi = t - w / 2, t + w / 2
    inside = (lo >= t[0]) & (hi <= t[-1])
    change = np.abs(np.interp(hi, t, s) - np.interp(lo, t, s))
    scale = np.maximum(np.abs(s), 1e-3 * np.max(np.abs(s)) + np.finfo(float).tiny)
    return np.where(inside, change / scale, np.nan)


def onset_ps(data: TRTSData) -> float:
    """First pump delay where −ΔE/E at the peak reaches half its maximum."""
    s = peak_signal(data)
    return float(data.pump_delay_ps[np.flatnonzero(s >= 0.5 * s.max())[0]])


def constant_pump_probe_frame(gate_ps, pump_delay_ps, delta_e) -> tuple[np.ndarray, np.ndarray]:
    """ΔE on a constant pump-probe-delay grid: column j holds, at every gate time t, the
    field measured at pump delay t_pp,j − (t − t₀) (t₀ = 0: gate times relative to the
    reference's peak, as the caller passes them), interpolated along the pump axis.
    Returns (t_pp grid, ΔE (n_gate, n_pp)); the t_pp columns are those whose pump delays
    stay inside the measured range at every gate time."""
    g = np.asarray(gate_ps, float)
    p = np.asarray(pump_delay_ps, float)
    lo = p[0] + g.max()
    hi = p[-1] + g.min()
    t_pp = p[(p >= lo) & (p <= hi)]
    if t_pp.size == 0:
        raise AnalysisError(
            f"the pump delays ({p[0]:g}–{p[-1]:g} ps) do not span the gate window "
            f"({g.min():g}–{g.max():g} ps): no constant pump-probe delay is covered at every "
            "gate time; measure more pump delays or use --frame as-measured"
        )
    out = np.empty((g.size, t_pp.size))
    for i, gi in enumerate(g):
        out[i] = np.interp(t_pp - gi, p, delta_e[i])
    return t_pp, out
