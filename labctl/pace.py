"""Say at start when a simulated station will run at (near) real pace.

The bundled simulated station (``stations/sim.yaml``) keeps real time, as the GUI and
a rehearsal of a real night want; a newcomer who types ``labctl run anneal`` or
``labctl series run`` on it would otherwise wait hours with nothing said. So the CLI
keeps the station's clock and says, before anything moves, how long the work takes at
that pace and how to run it at virtual time. Real hardware (no simulated instrument)
is never told: its pace is the only one there is.
"""

from __future__ import annotations

import math

#: below this wall time nothing is said (a short run at real pace is no trap)
QUIET_BELOW_S = 120.0


def wall_duration(seconds: float) -> str:
    """'2 h 05 min', '7 min', '40 s'."""
    if seconds >= 3600:
        h, rest = divmod(int(round(seconds / 60)), 60)
        return f"{h} h {rest:02d} min"
    if seconds >= 60:
        return f"{int(round(seconds / 60))} min"
    return f"{int(round(seconds))} s"


def pace_notice(station, real_time_s: float, what: str) -> str | None:
    """One line for stderr when ``station`` simulates and ``what`` (e.g. "this anneal")
    takes ≥ 2 min of wall time at its clock's pace; None otherwise."""
    if station.world is None:  # real hardware (or served simulators in another process)
        return None
    scale = float(getattr(station.clock, "scale", 1.0))
    if math.isinf(scale):
        return None
    wall_s = real_time_s / scale
    if wall_s < QUIET_BELOW_S:
        return None
    pace = "real time" if scale == 1 else f"{scale:g}× real time"
    return (
        f"note: the simulated station {station.spec.name!r} runs at {pace}: {what} takes "
        f"about {wall_duration(wall_s)}. Add --time-scale virtual to run it in seconds "
        "(or a speed-up factor, e.g. --time-scale 600)."
    )
