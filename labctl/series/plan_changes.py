"""What changed between the plan a series started with and the plan file now, step by
step — what an operator reads before resuming with ``--allow-changed-plan``.

The rule is the runner's (:meth:`SeriesRunner._adopt_changed_plan`): parameters of
steps not yet done may change and steps may be added at the end; a recorded step's
kind, temperature, slot or film may not (annealing is irreversible, so the record must
keep meaning what it says). :func:`plan_changes` lists every difference and, when one
breaks that rule, the reason the resume would be refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PlanChanges:
    lines: list[str] = field(default_factory=list)
    refused: str | None = None  # why --allow-changed-plan would be refused, or None


def _label(kind: str, temperature_c, sample_id) -> str:
    t = "as made" if temperature_c is None else f"{temperature_c:g} °C"
    return f"{kind}, {t}, {sample_id}"


def plan_changes(recorded: list[dict[str, Any]], plan) -> PlanChanges:
    """Differences between the catalog's ``recorded`` steps and ``plan``'s, in step order."""
    out = PlanChanges()
    for row in recorded:
        idx = row["idx"]
        step = plan.steps[idx] if idx < len(plan.steps) else None
        where = f"step {idx} ({_label(row['kind'], row.get('temperature_c'), row['sample_id'])})"
        if step is None:
            out.lines.append(f"{where}: removed from the plan")
            out.refused = out.refused or f"{where} was removed"
            continue
        now = (step.kind, step.temperature_c, step.slot, step.sample_id)
        before = (row["kind"], row.get("temperature_c"), row.get("slot"), row["sample_id"])
        if now != before:
            out.lines.append(
                f"{where}: now {_label(step.kind, step.temperature_c, step.sample_id)}"
                f" in slot {step.slot}"
            )
            out.refused = out.refused or f"{where} changed kind, temperature, slot or film"
            continue
        old, new = row.get("params") or {}, step.params or {}
        diffs = [
            f"{key} {old.get(key, '—')} → {new.get(key, '—')}"
            for key in sorted(set(old) | set(new))
            if old.get(key) != new.get(key)
        ]
        if diffs:
            note = " (done: kept as recorded, not re-run)" if row.get("state") == "done" else ""
            out.lines.append(f"{where}: {', '.join(diffs)}{note}")
    for step in plan.steps[len(recorded) :]:
        out.lines.append(
            f"step {step.index} ({_label(step.kind, step.temperature_c, step.sample_id)}): added"
        )
    return out
