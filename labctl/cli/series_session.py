"""A series from the command line: station, log file, live display, signals, report at the end.

Ctrl-C and SIGTERM take the one stop path of :mod:`labctl.cli.stopping`: the
running step stops within a second, the furnace is put in its safe state and
read back, the catalog, data and report are kept; exit 130 (SIGINT) or 143
(SIGTERM). The last line says whether the safe state was confirmed.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from labctl.errors import brief
from labctl.series.plan import Plan

LOG_NAME = "series.log"


def run_series(
    plan: Plan,
    out_dir: str | Path,
    *,
    station: str | None = None,
    time_scale: str | None = None,
    resume: bool = False,
    allow_changed_plan: bool = False,
    allow_other_station: bool = False,
    quiet: bool = False,
) -> int:
    """Run ``plan`` into ``out_dir``; exit 0 done, 1 stopped by a fault, 130/143 stopped by
    SIGINT/SIGTERM (130 also for a stop by other means)."""
    from labctl.cli.stopping import StopOnSignals
    from labctl.series.report import write_report
    from labctl.series.runner import SeriesRunner, claim_series, recorded_station
    from labctl.series.station_fit import plan_station_spec
    from labctl.station import Station

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    handler = _log_to(out_dir / LOG_NAME)
    stop = threading.Event()
    kwargs = {} if time_scale is None else {"time_scale": time_scale}
    if resume and station is None:  # the station the series started on
        station = recorded_station(out_dir)
    owner = object()  # this runner, before its SeriesRunner exists
    claims: list = []
    try:
        spec = plan_station_spec(plan, station)
        claims = claim_series(out_dir, spec, owner)  # refused here, no instrument is touched
        with Station(spec, **kwargs) as st:
            _say_pace(plan, st)
            display = SeriesDisplay(plan, st.clock, quiet=quiet)
            runner = SeriesRunner(
                plan,
                out_dir,
                st,
                resume=resume,
                allow_changed_plan=allow_changed_plan,
                allow_other_station=allow_other_station,
                stop=stop,
                on_event=display.on_event,
                owner=owner,
            )
            display.catalog = runner.catalog
            try:
                with StopOnSignals(stop, "labctl series run") as signals, display:
                    outcome = runner.run()
            finally:
                runner.close()
        paths = write_report(out_dir)
    finally:
        for claim in claims:
            claim.release()
        logging.getLogger().removeHandler(handler)
        handler.close()
    display.print_end(outcome, paths)
    from labctl.series.states import SERIES_EXIT_CODES, SeriesState

    state = SeriesState(outcome.state)
    if state == SeriesState.ABORTED:
        return signals.exit_code(SERIES_EXIT_CODES[state])  # 143 after SIGTERM
    return SERIES_EXIT_CODES.get(state, 1)


def _say_pace(plan: Plan, station) -> None:
    """On a simulated station at real pace, say how long the series takes (stderr)."""
    import sys

    from labctl.pace import pace_notice
    from labctl.series.estimate import step_duration_s

    total_s = sum(step_duration_s(s) for s in plan.steps)
    notice = pace_notice(station, total_s, f"this series of {len(plan.steps)} steps")
    if notice:
        print(notice, file=sys.stderr, flush=True)


def _log_to(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    for console in root.handlers:  # the terminal keeps its level; the file gets INFO
        if console.level == logging.NOTSET:
            console.setLevel(root.level or logging.WARNING)
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    for noisy in ("pymeasure",):  # parameter and connection chatter stays out of the log
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler


def _wall(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


class SeriesDisplay:
    """Rich progress of a series: step, virtual and wall time, ETA; also logs each step."""

    def __init__(self, plan: Plan, clock, quiet: bool = False) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.plan = plan
        self.clock = clock
        self.catalog = None
        self.console = Console(stderr=True)
        self.log = logging.getLogger("labctl.series")
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=quiet,
        )
        self.series_task = self.progress.add_task(
            f"series {plan.name}", total=len(plan.steps), info=""
        )
        self.step_task = None
        self.t0_virtual = clock.now()
        self.t0_wall = time.monotonic()
        self._last_info, self._info = 0.0, ""

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def _times(self) -> str:
        """Virtual and wall time so far, and the ETA from the steps' estimated durations."""
        from labctl.series.estimate import step_duration_s

        virtual_s = self.clock.now() - self.t0_virtual
        wall_s = time.monotonic() - self.t0_wall
        text = f"virtual {virtual_s / 3600:5.2f} h, wall {wall_s:5.0f} s"
        if self.catalog is None:
            return text
        left = [s for s in self.catalog.steps() if s["state"] not in ("done", "skipped")]
        by_index = {s.index: s for s in self.plan.steps}
        eta_virtual = sum(step_duration_s(by_index[s["idx"]]) for s in left if s["idx"] in by_index)
        if virtual_s > 0 and wall_s > 0:
            eta_wall = eta_virtual * wall_s / virtual_s
            text += f", ETA ≈ {eta_virtual / 3600:.1f} h virtual ({_wall(eta_wall)})"
        return text

    def on_event(self, what: str, info: dict) -> None:
        step = info.get("step")
        if what == "step-start":
            self.log.info("start %s (attempt %d) → %s", step.label, info["attempt"], info["file"])
            if self.step_task is not None:
                self.progress.remove_task(self.step_task)
            self.step_task = self.progress.add_task(f"  {step.label}", total=100, info="")
        elif what == "progress" and self.step_task is not None:
            now = time.monotonic()
            if now - self._last_info >= 0.5:  # the catalog is read at most twice a second
                self._last_info, self._info = now, self._times()
            self.progress.update(self.step_task, completed=float(info["record"]), info=self._info)
        elif what == "step-end":
            outcome = info["outcome"]
            self.log.info("%s: %s %s", step.label, outcome.status, outcome.message)
            self._advance_series()
            if not outcome.ok:
                line = brief(f"{step.label}: {outcome.status}: {outcome.message}")
                self.console.print(line, style="red", markup=False)

    def _advance_series(self) -> None:
        if self.catalog is None:
            return
        done = sum(1 for s in self.catalog.steps() if s["state"] in ("done", "skipped"))
        self.progress.update(self.series_task, completed=done, info=self._times())

    def print_end(self, outcome, paths: dict) -> None:
        """The summary table and where the report is, on stdout."""
        from rich.console import Console

        from labctl.series.report import print_summary

        wall = time.monotonic() - self.t0_wall
        out = Console()
        print_summary(paths["dir"], console=out)
        out.print(
            f"series {outcome.state}: {outcome.done} done, {outcome.failed} failed, "
            f"{outcome.skipped} skipped in {wall:.0f} s wall time"
            + (f" — {outcome.message}" if outcome.message else "")
        )
        out.print(f"report: {paths['html']}", soft_wrap=True)
        if outcome.safe_state:
            out.print(outcome.safe_state, soft_wrap=True, markup=False)
