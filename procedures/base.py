"""The base of every labctl measurement: a pymeasure ``Procedure`` on a :class:`Station`.

A procedure takes its instruments by role from a station it is handed (shared
with a GUI's monitors: the per-instrument locks serialize I/O) or opens one
itself from its ``station_file`` Parameter, waits only on the station's clock,
and puts its instruments in their safe state in ``shutdown()``, which pymeasure's
``Worker`` and labctl's :func:`labctl.runs.run_procedure` always call.

Subclasses set ``ROLES`` (required instruments), ``OPTIONAL_ROLES``,
``DATA_COLUMNS`` and implement ``execute()`` and ``make_safe()``; they put what
a run concluded (fit results, peak positions, why it stopped) in
``self.run_results``, which the run engine writes beside the data file.
"""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar

from pymeasure.experiment import IntegerParameter, Metadata, Parameter, Procedure

from labctl.errors import Aborted, StationError

#: What a run reports when its safe state was set but nothing read it back.
SAFE_NOT_READ_BACK = "safe state set (not read back)"


class StationProcedure(Procedure):
    """A pymeasure Procedure whose instruments come from a labctl Station."""

    #: Short name used by ``labctl run KIND`` and in run-file names.
    KIND: ClassVar[str] = ""
    ROLES: ClassVar[tuple[str, ...]] = ()
    OPTIONAL_ROLES: ClassVar[tuple[str, ...]] = ()

    station_file = Parameter("Station file", default="sim")
    sample_id = Parameter("Sample id", default="")
    slot = IntegerParameter("Sample slot", minimum=0, maximum=64, default=1)

    software_version = Metadata("Software version", fget="_software_version")
    start_time = Metadata("Start time", fget="_start_time")
    clock_info = Metadata("Clock", fget="_clock_info")
    instrument_settings = Metadata("Instrument settings", fget="_instrument_settings_json")

    def __init__(self, station=None, **kwargs) -> None:
        #: The Station this run uses: handed in, or opened in ``startup()``.
        self.station = station
        self._owns_station = False
        self._claim = None  # the instruments this run owns (labctl.ownership)
        self._refused = False  # another run owns them: this run touched nothing
        #: What the run concluded; written beside the data file by the run engine.
        self.run_results: dict[str, Any] = {}
        #: What ``make_safe`` confirmed: "safe state confirmed (read back): …" or
        #: :data:`SAFE_NOT_READ_BACK`; the run engine puts it in the outcome and RUN.json.
        self.safe_state_report = ""
        super().__init__(**kwargs)

    # ------------------------------------------------------------------ station
    def startup(self) -> None:
        if self.station is None:
            from labctl.station import Station

            self.station = Station.from_file(self.station_file)
            self._owns_station = True
        missing = [r for r in self.ROLES if r not in self.station]
        if missing:
            raise StationError(
                f"{self.KIND or type(self).__name__}: station {self.station.spec.name!r} "
                f"lacks instruments {missing} (it has: {', '.join(self.station.instruments)})"
            )
        self.claim_instruments()

    @classmethod
    def roles_to_claim(cls, present) -> list[str]:
        """The roles a run of this procedure owns among those ``present`` (a Station, or a
        spec's ``instruments``): its required ones and the optional ones there are."""
        return [r for r in (*cls.ROLES, *cls.OPTIONAL_ROLES) if r in present]

    def claim_instruments(self) -> None:
        """Own this run's instruments (all of them, before touching any), or be refused
        at once naming the holder (:class:`labctl.ownership.Busy`): then ``shutdown()``
        undoes nothing, since nothing was done."""
        from labctl.ownership import Busy, claim_station

        try:
            self._claim = claim_station(self.station, self.roles_to_claim(self.station))
        except Busy as exc:
            self._refused = True
            raise Busy(f"{self.KIND or type(self).__name__} refused: {exc}") from None

    @property
    def clock(self):
        return self.station.clock

    def instrument(self, role: str):
        """The instrument of ``role``; ``None`` for a missing optional role."""
        if role in self.OPTIONAL_ROLES and role not in self.station:
            return None
        return self.station[role]

    def sleep(self, seconds: float) -> None:
        """Wait on the station's clock (virtual for simulators, real for hardware)."""
        self.clock.sleep(seconds)

    def shutdown(self) -> None:
        """Safe state always, then close a station this procedure opened itself."""
        try:
            if self.station is not None and not self._refused:
                self.make_safe()
        finally:
            if self._claim is not None:
                self._claim.release()
                self._claim = None
            if self._owns_station and self.station is not None:
                self.station.close()
                self.station = None
                self._owns_station = False

    def make_safe(self) -> None:
        """Put this procedure's instruments in their safe state (override)."""

    # ------------------------------------------------------------------ helpers
    def check_stop(self) -> None:
        """Raise :class:`Aborted` when the user asked to stop (between points)."""
        if self.should_stop():
            raise Aborted(f"{self.KIND or type(self).__name__}: stopped by the user")

    def progress(self, fraction: float) -> None:
        self.emit("progress", max(0.0, min(100.0, 100.0 * fraction)))

    def phase(self, text: str) -> None:
        """Say what a long phase is doing (``labctl run``'s status line, a GUI's status bar)."""
        self.emit("phase", text)

    def get_estimates(self):
        """pymeasure's estimator hook: the run's duration at real time
        (:func:`labctl.procedures.estimate`, which ``series check`` and the ETA use too)."""
        from labctl.procedures import estimate

        values = {name: getattr(self, name, None) for name in self._parameters}
        seconds = estimate(type(self), {k: v for k, v in values.items() if v is not None})
        return [("Duration at real time", f"{seconds / 60:.0f} min")]

    @classmethod
    def summary_line(cls, run_results: dict) -> str:
        """One line of what a run concluded, for ``labctl run`` (override for a better one)."""
        scalars = [
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in run_results.items()
            if isinstance(v, int | float | str) and not isinstance(v, bool)
        ]
        return f"{cls.KIND or cls.__name__}: " + (", ".join(scalars[:6]) or "done")

    # ------------------------------------------------------------------ metadata
    def _software_version(self) -> str:
        from labctl import __version__

        return f"labctl {__version__}"

    def _start_time(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S%z")

    def _clock_info(self) -> str:
        return repr(self.station.clock) if self.station is not None else ""

    def _instrument_settings_json(self) -> str:
        """Every instrument's state (IDN, sensitivity, time constant, stage zero…), one JSON line."""
        if self.station is None:
            return "{}"
        return json.dumps(self.station.settings(), default=str, separators=(",", ":"))


__all__ = ["Aborted", "StationProcedure"]  # Aborted lives in labctl.errors; re-exported here
