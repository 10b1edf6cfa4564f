"""``anneal_film``: the :class:`~labctl.procedures.anneal.Anneal` recipe on bare drivers.

Kept for ``labctl sim measure`` until it runs the procedure itself: the recipe,
its interlocks and its safe state live in ``procedures/anneal.py`` only. Rows
go to ``on_poll`` instead of a run file; the furnace is left as the program
leaves it (complete, holding ambient), as before.
"""

from __future__ import annotations

from collections.abc import Callable

from labctl.clock import Clock

from .anneal import COOL_MINUTES, READY_BELOW_C, Anneal

__all__ = ["COOL_MINUTES", "READY_BELOW_C", "anneal_film"]


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
    """Anneal the film in ``slot`` (see :class:`Anneal`); returns its ``run_results``.

    ``max_thermocouple_c`` repeats ``max_pv_c`` under its old name.
    """
    proc = Anneal(
        slot=slot,
        anneal_c=anneal_c,
        dwell_min=dwell_min,
        ramp_c_per_min=ramp_c_per_min,
        cool_min=cool_min,
        ambient_c=ambient_c,
        ready_below_c=ready_below_c,
        record_interval_s=poll_s,
    )

    def emit(topic: str, record) -> None:
        if topic == "results" and on_poll is not None:
            on_poll(record)

    proc.emit = emit
    proc.should_stop = lambda: False
    proc.anneal(furnace, sample_stage, clock)
    results = dict(proc.run_results)
    if "max_pv_c" in results:
        results["max_thermocouple_c"] = results["max_pv_c"]
    return results
