"""The anneal recipe of the paper, on the furnace controller's own programmer.

Plain functions over drivers (no pymeasure Procedure yet): the ``Anneal``
procedure and the overnight series will call :func:`anneal_film`; ``labctl sim
measure`` and the physics tests already do.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from labctl.clock import Clock
from labctl.errors import LabctlError

COOL_MINUTES = 120.0  # the paper: cooled to room temperature in 120 min
READY_BELOW_C = 30.0


def anneal_film(
    furnace,
    sample_stage,
    clock: Clock,
    slot: int,
    anneal_c: float,
    *,
    dwell_min: float = 30.0,
    ramp_c_per_min: float = 10.0,
    cool_min: float = COOL_MINUTES,
    ambient_c: float = 25.0,
    ready_below_c: float = READY_BELOW_C,
    poll_s: float = 600.0,
    on_poll: Callable[[dict], None] | None = None,
) -> dict:
    """Bring ``slot`` into the hot zone and anneal it: ramp, dwell, controlled cooling.

    The program runs on the controller (a dead PC leaves a furnace that finishes
    its cooling ramp); this waits for it through ``clock``, with interlocks checked
    at every poll, then for natural cooling below ``ready_below_c``. Returns what
    happened, for run files. At or below ``ready_below_c`` nothing is annealed.
    """
    from labctl.drivers.eurotherm import anneal_program

    sample_stage.move_to_slot(slot)
    if anneal_c <= ready_below_c:
        return {"anneal_c": None, "note": "as made (not annealed)"}
    if not ramp_c_per_min > 0 or not dwell_min >= 0 or not cool_min > 0:
        raise LabctlError(
            f"anneal: ramp ({ramp_c_per_min}) and cooling time ({cool_min}) must be "
            f"positive and the dwell ({dwell_min}) ≥ 0"
        )
    cool_rate = (anneal_c - ambient_c) / cool_min
    t0 = clock.now()
    max_pv = -math.inf

    def poll(reading: dict) -> None:
        nonlocal max_pv
        max_pv = max(max_pv, float(reading["temperature_c"]))
        if on_poll is not None:
            on_poll(reading)

    furnace.load_program(anneal_program(anneal_c, dwell_min, ramp_c_per_min, cool_rate, ambient_c))
    furnace.run_program()
    furnace.wait_for_program(poll_s=poll_s, on_poll=poll)
    deadline = clock.now() + 24 * 3600.0  # natural cooling: the furnace cannot cool faster
    while furnace.temperature_c > ready_below_c:
        if clock.now() > deadline:
            raise LabctlError(f"furnace did not cool below {ready_below_c:g} °C within 24 h")
        clock.sleep(poll_s)
    return {
        "anneal_c": anneal_c,
        "dwell_min": dwell_min,
        "ramp_c_per_min": ramp_c_per_min,
        "cool_min": cool_min,
        "max_thermocouple_c": max_pv,
        "anneal_hours": (clock.now() - t0) / 3600.0,
    }
