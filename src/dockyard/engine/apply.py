"""Carry out `up`'s steps (ops/reconcile.py decided them): no decision is made here.

Every container to create or recreate is made by one `docker compose up --no-start`, so a
level later pays only for the engine's `start`, not for compose loading the project and
creating containers while the level's dependencies are healthy and waiting. Then each level
is started through the engine API and probed; the next starts once it is healthy."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dockyard.engine.probe import ProbeResult, wait_healthy
from dockyard.engine.target import Target, compose, containers
from dockyard.errors import UnhealthyError
from dockyard.events import LevelHealthy, LevelStarted, Sink
from dockyard.ops.reconcile import Step, to_create, to_start
from dockyard.plan.model import ServicePlan


@dataclass
class UpReport:
    changed: bool
    results: list[ProbeResult] = field(default_factory=list)
    level_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0
    steps: list[Step] = field(default_factory=list)


def apply(target: Target, steps: Sequence[Step], *, emit: Sink) -> UpReport:
    """Create/recreate in one compose call, then start and probe level by level; raise
    UnhealthyError (naming each failed service, its health output and logs) at the first
    level that does not become healthy."""
    report = UpReport(changed=True, steps=list(steps))
    made = to_create(steps)
    if made:
        compose(target, "up", "--no-start", "--no-build", "--remove-orphans", *made)
    starting = to_start(steps)
    stepped = {s.service for s in steps}
    for whole in target.levels():
        level = [sp for sp in whole if sp.name in stepped]
        if not level:
            continue
        t_level = time.monotonic()
        names = [sp.name for sp in level]
        emit(LevelStarted(tuple(names)))
        _start_level(target, [n for n in names if n in starting])
        results = _wait_level(target, level)
        report.results.extend(results)
        report.level_seconds.append(time.monotonic() - t_level)
        failed = [r for r in results if not r.healthy]
        if failed:
            raise UnhealthyError(_failure_message(target, failed),
                                 fix="see the health output and logs above; "
                                     f"`dockyard logs {failed[0].service}` shows more")
        emit(LevelHealthy(tuple((r.service, r.seconds) for r in results)))
    return report


def _start_level(target: Target, names: list[str]) -> None:
    """Start the level's containers (created by `up --no-start`) through the engine API."""
    if not names:
        return
    found = containers(target.engine, target.project)
    missing = [n for n in names if n not in found]
    if missing:  # not created: let compose say why, in its own words
        compose(target, "up", "--detach", "--no-deps", "--no-build", *missing)
    waiting = [found[n] for n in names if n in found and found[n].status != "running"]
    if waiting:
        with ThreadPoolExecutor(max_workers=len(waiting)) as pool:
            list(pool.map(lambda c: c.start(), waiting))


def _wait_level(target: Target, level: list[ServicePlan]) -> list[ProbeResult]:
    engine = target.engine

    def wait(sp: ServicePlan) -> ProbeResult:
        def get() -> Any:
            return containers(engine, target.project).get(sp.name)

        deadline = sp.spec.health.deadline if sp.spec.health else 10.0
        return wait_healthy(sp.name, sp.spec, get, deadline=deadline, probe=engine.probe)

    with ThreadPoolExecutor(max_workers=max(1, len(level))) as pool:
        return list(pool.map(wait, level))


def _failure_message(target: Target, failed: Iterable[ProbeResult]) -> str:
    parts = []
    running = containers(target.engine, target.project)
    for r in failed:
        c = running.get(r.service)
        logs = c.logs(tail=20).decode(errors="replace").rstrip() if c is not None else ""
        parts.append(f"service {r.service} did not become healthy within {r.seconds:.0f} s "
                     f"(state: {r.state}); last health output: {r.output}\n"
                     f"--- last 20 log lines of {r.service} ---\n{logs or '(no output)'}")
    up_names = sorted(n for n, c in running.items() if c.status == "running"
                      and n not in {r.service for r in failed})
    parts.append("left running: " + (", ".join(up_names) or "nothing"))
    return "\n".join(parts)
