"""Pure decisions for a command on several machines: which of a start level's services may
start, given what is already not up, and the one message for what `up` could not do."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dockyard.plan.model import ServicePlan


def ready_now(level: Sequence[ServicePlan], not_up: Mapping[str, str]
              ) -> tuple[list[ServicePlan], dict[str, str]]:
    """The level's services that may start now, and those that may not (service -> what it
    waits for): one whose dependency is not up (failed, on an unreachable machine, or
    itself waiting) waits, wherever that dependency runs. Ties go to the first name."""
    ready: list[ServicePlan] = []
    waiting: dict[str, str] = {}
    for sp in level:
        blocker = next((d for d in sorted(sp.spec.depends_on) if d in not_up), "")
        if blocker:
            waiting[sp.name] = f"waits for {blocker} ({not_up[blocker]})"
        else:
            ready.append(sp)
    return ready, waiting


def up_outcome(failures: Sequence[str], machine_errors: Mapping[str, str],
               not_up: Mapping[str, str], up_on: Sequence[str]) -> str:
    """What `up` says when it could not do everything: each failed service's health output
    and logs, each machine that could not be reached or died, what was not started and why,
    and the machines left up (nothing running is stopped)."""
    lines = [*failures, *(machine_errors[m] for m in sorted(machine_errors))]
    waiting = {s: why for s, why in not_up.items() if why.startswith("waits for")}
    if waiting:
        lines.append("not started: " + "; ".join(f"{s} {why}"
                                                 for s, why in sorted(waiting.items())))
    if up_on:
        lines.append(f"up and healthy: {', '.join(up_on)}; nothing running was stopped")
    return "\n".join(lines)
