"""What makes a finished run or series "finished with warnings" rather than plain success.

The rule, one table for every front end (the GUI's run line and series view; the same
facts the run summary and the catalog hold): a run finished with warnings when its
results record lock-in overloads (points measured while an input or output clipped),
warnings of its analysis (absorption peaks or gap not found, the live fit's own, such
as "ΔE is not significant against the noise"), or a fit that did not converge; a series
finished with warnings when it is ``done-with-failures``, skipped a film, or any of its
done steps finished with warnings. Success is only what has none of these.
"""

from __future__ import annotations

from typing import Any

from labctl.series.states import SeriesState, StepState

#: results key → how to say what it holds (each a list in the run summary)
RESULT_WARNINGS = {
    "overloads": lambda items: f"lock-in overloads in {len(items)} sweep(s)",
    "warnings": lambda items: "; ".join(str(w) for w in items),
}


def run_warnings(results: dict[str, Any] | None) -> list[str]:
    """The warnings of one finished run, from its ``run_results`` (summary ``results``)."""
    results = results if isinstance(results, dict) else {}
    out: list[str] = []
    for key, say in RESULT_WARNINGS.items():
        items = results.get(key)
        if items:
            out.append(say(items if isinstance(items, list) else [items]))
    fit = results.get("fit")
    if isinstance(fit, dict):
        out.extend(str(w) for w in fit.get("warnings") or [])
        if fit.get("converged") is False:
            out.append("the fit did not converge")
    return out


def series_warnings(series: dict[str, Any] | None, steps: list[dict[str, Any]]) -> list[str]:
    """The warnings of a finished series (its catalog's series row and steps)."""
    state = (series or {}).get("state")
    out: list[str] = []
    failed = [s for s in steps if s.get("state") == StepState.FAILED]
    skipped = [s for s in steps if s.get("state") == StepState.SKIPPED]
    if state == SeriesState.DONE_WITH_FAILURES or failed:
        out.append(f"{len(failed)} failed step(s)")
    if skipped:
        films = sorted({str(s.get("sample_id")) for s in skipped})
        out.append(f"{len(skipped)} skipped step(s) ({', '.join(films)})")
    flagged = [
        s for s in steps if s.get("state") == StepState.DONE and run_warnings(s.get("results"))
    ]
    if flagged:
        out.append("warnings in step(s) " + ", ".join(str(s.get("idx")) for s in flagged))
    return out


def finished_text(warnings: list[str]) -> str:
    """'finished' or 'finished with warnings: …' (the words every front end shows)."""
    return "finished with warnings: " + "; ".join(warnings) if warnings else "finished"
