"""Lock-in readings that are never silently overloaded.

Rule: every point of a THz procedure is read from both lock-ins and then their
overload latches (``LIAS?``) are read. An overload latched since the previous
point (its move, settling and reading) sends the overloaded lock-in one range
less sensitive (``SENS`` up a step), and the point is settled and read again, at
most :data:`MAX_RERANGES` times. Each point records the sensitivity it was read
at (``sens_ref_V``, ``sens_pump_V``) and ``overloaded`` = 1 if it was still
overloaded at its last reading (the least sensitive range, or a signal that kept
overloading); :func:`overload_summary` turns those into the run's
``overloaded_points`` and a ``warnings`` line that the summary line, ``labctl
analyze``, the series row and the GUI show.

Why: a clipped lock-in output is a wrong number that looks like a right one.
Before this, an unannealed film overloaded the pump lock-in on every sweep and
the run printed a normal-looking τ/c/N; the overloads sat only in the run JSON.
Ranging is per point, not per sweep, because the signal's size changes along a
scan (ΔE peaks elsewhere than E): a range chosen at one delay can clip at another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Range steps a single point may take before it is recorded as overloaded.
MAX_RERANGES = 3
#: Data columns every THz procedure appends to its rows (see the module docstring).
RANGING_COLUMNS = ["sens_ref_V", "sens_pump_V", "overloaded"]


@dataclass
class PairReading:
    """X of both lock-ins at one point, the ranges they were read at, and overloads."""

    x_ref_v: float
    x_pump_v: float
    sens_ref_v: float
    sens_pump_v: float
    #: overloads latched at the last reading, "ROLE: what" (empty: a clean point)
    overloads: list[str] = field(default_factory=list)
    #: range changes made for this point, "ROLE → S V"
    reranged: list[str] = field(default_factory=list)

    @property
    def overloaded(self) -> bool:
        return bool(self.overloads)

    def columns(self) -> dict:
        return {
            "sens_ref_V": self.sens_ref_v,
            "sens_pump_V": self.sens_pump_v,
            "overloaded": int(self.overloaded),
        }


class RangedPair:
    """Reads (X_ref, X_pump) after settling, re-ranging and repeating on an overload.

    Keeps each lock-in's sensitivity (read once, then tracked through its own
    changes) so a point costs no extra ``SENS?`` query.
    """

    def __init__(self, lockin_ref, lockin_pump, settle_tau: float, *, max_reranges=None):
        self.lockins = {"lockin_ref": lockin_ref, "lockin_pump": lockin_pump}
        self.settle_tau = float(settle_tau)
        self.max_reranges = MAX_RERANGES if max_reranges is None else int(max_reranges)
        self.sensitivity_v = {role: float(li.sensitivity) for role, li in self.lockins.items()}

    def forget(self) -> None:
        """Clear what the lock-ins latched before the scan (ranging, moves)."""
        for lockin in self.lockins.values():
            lockin.read_overload()

    def read(self) -> PairReading:
        reranged: list[str] = []
        while True:
            self.lockins["lockin_pump"].settle(self.settle_tau)
            x_ref = self.lockins["lockin_ref"].read_xy()[0]
            x_pump = self.lockins["lockin_pump"].read_xy()[0]
            over = {role: what for role, li in self.lockins.items() if (what := li.read_overload())}
            if over and len(reranged) < self.max_reranges:
                stepped = [role for role in over if self._less_sensitive(role)]
                if stepped:
                    reranged += [f"{r} → {self.sensitivity_v[r]:g} V" for r in stepped]
                    continue
            return PairReading(
                x_ref,
                x_pump,
                self.sensitivity_v["lockin_ref"],
                self.sensitivity_v["lockin_pump"],
                [f"{role}: {', '.join(what)}" for role, what in over.items()],
                reranged,
            )

    def _less_sensitive(self, role: str) -> bool:
        """One range less sensitive; False at the least sensitive range."""
        lockin = self.lockins[role]
        full_scales = list(lockin.SENSITIVITIES)
        index = min(
            range(len(full_scales)),
            key=lambda i: abs(full_scales[i] - self.sensitivity_v[role]),
        )
        if index == len(full_scales) - 1:
            return False
        lockin.sensitivity = full_scales[index + 1]
        lockin.read_overload()  # what the old range latched up to the change
        self.sensitivity_v[role] = float(full_scales[index + 1])
        return True


def record_point(run_results: dict, reading: PairReading, sweep: int, where: str) -> None:
    """Keep a point's re-ranging and any overload left in ``run_results``:
    ``reranges`` and ``overloaded_points`` (counts), ``overloads`` (the first few, said)."""
    if reading.reranged:
        run_results["reranges"] = run_results.get("reranges", 0) + len(reading.reranged)
        run_results["sensitivity_V"] = {
            "lockin_ref": reading.sens_ref_v,
            "lockin_pump": reading.sens_pump_v,
        }
    if reading.reranged or reading.overloaded:
        events = run_results.setdefault("overloads", [])
        if len(events) < 50:
            events.append(
                {
                    "sweep": sweep,
                    "at": where,
                    "reranged": reading.reranged,
                    "still_overloaded": reading.overloads,
                }
            )
    if reading.overloaded:
        run_results["overloaded_points"] = run_results.get("overloaded_points", 0) + 1


def overload_summary(run_results: dict) -> None:
    """Set ``overloaded_points`` (0 if none) and add a ``warnings`` line when any point
    stayed overloaded: a fit of such data is flagged wherever it is shown."""
    count = int(run_results.get("overloaded_points", 0))
    run_results["overloaded_points"] = count
    if count:
        warning = (
            f"{count} point{'s' if count != 1 else ''} stayed overloaded after re-ranging "
            "(column 'overloaded'): their values are clipped and the fit is suspect"
        )
        warnings = run_results.setdefault("warnings", [])
        if warning not in warnings:
            warnings.append(warning)


def overload_note(run_results: dict) -> str:
    """`` — N points overloaded!`` for a summary line ('' when none)."""
    count = int(run_results.get("overloaded_points") or 0)
    return f" — {count} point{'s' if count != 1 else ''} overloaded!" if count else ""
