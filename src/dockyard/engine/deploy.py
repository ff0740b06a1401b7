"""up / down / status / logs for the services placed on one machine.

`up` is observe -> decide -> apply: engine/observe.py takes a snapshot, ops/reconcile.py
turns it and the plan into typed steps, engine/apply.py carries them out. `up --dry-run`
(plan_up) stops after the decision."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from dockyard.engine.apply import UpReport, apply
from dockyard.engine.build import build, write_render
from dockyard.engine.observe import observe
from dockyard.engine.run import run
from dockyard.engine.target import Target, compose, containers
from dockyard.events import Progress, Sink
from dockyard.ops.reconcile import Step, decide, unchanged

__all__ = ["ServiceStatus", "Target", "UpReport", "compose", "containers", "down", "logs",
           "plan_up", "status", "up", "up_steps"]

def _missing_images(target: Target, *, emit: Sink, build_missing: bool) -> None:
    """Pull (from `registry:`) or build the images of this machine's services not here."""
    engine = target.engine
    mine = target.services()
    missing = [sp.name for sp in mine if sp.built and not engine.image_id(sp.image)]
    if missing and target.fleet.spec.registry:
        # Pull-through: what the registry has is pulled; only what it lacks is built here.
        from dockyard.engine.registry import pull_missing

        absent = set(pull_missing(engine, target.fleet,
                                  [sp.image for sp in mine if sp.name in missing], emit=emit))
        missing = [sp.name for sp in mine if sp.name in missing and sp.image in absent]
    if missing and build_missing:
        emit(Progress(f"images missing for {', '.join(missing)}: building them first"))
        build(engine, target.fleet, target.plan, target.state, emit=emit, only_missing=True)


def up_steps(target: Target) -> list[Step]:
    """What `up` would do now, service by service (the rendered files must be written)."""
    return decide(target.services(), observe(target.engine, target))


def plan_up(target: Target, *, emit: Sink) -> list[Step]:
    """`up --dry-run`: the steps, and nothing changed on the engine. The rendered compose
    file is written into the state folder (its config hashes are what containers are
    compared with); missing images are named, neither pulled nor built."""
    write_render(target.fleet, target.plan, target.state)
    engine = target.engine
    missing = [sp.name for sp in target.services() if sp.built and not engine.image_id(sp.image)]
    if missing:
        emit(Progress(f"images missing for {', '.join(missing)}: up would "
                      f"{'pull or build' if target.fleet.spec.registry else 'build'} them first"))
    return up_steps(target)


def up(target: Target, *, emit: Sink, build_missing: bool = True) -> UpReport:
    """Start the machine's services level by level, each level once the previous is healthy."""
    t0 = time.monotonic()
    write_render(target.fleet, target.plan, target.state)
    _missing_images(target, emit=emit, build_missing=build_missing)
    todo = up_steps(target)
    if unchanged(todo):
        return UpReport(changed=False, seconds=time.monotonic() - t0, steps=todo)
    report = apply(target, todo, emit=emit)
    report.seconds = time.monotonic() - t0
    return report


def down(target: Target, *, volumes: bool = False) -> None:
    """Stop and remove the project's containers (and networks; named volumes too when asked).

    By project name alone, without the rendered file: compose then finds what to remove by its
    labels, and needs neither the file nor the secrets it names (`.env` may be gone); a
    compose.yaml it finds near the working directory is not read for that (compose 2.40)."""
    args = ["down", "--remove-orphans"] + (["--volumes"] if volumes else [])
    run([*target.engine.compose_argv(target.project), *args],
        cwd=target.state if target.state.is_dir() else None)


@dataclass(frozen=True)
class ServiceStatus:
    service: str
    machine: str
    level: int
    image: str
    state: str
    health: str
    ports: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def status(target: Target) -> list[ServiceStatus]:
    engine = target.engine
    running = containers(engine, target.project)
    rows = []
    for sp in target.services():
        c = running.get(sp.name)
        ports = ", ".join(f"{p.bind}:{p.host_port}->{p.port}" for _, p in sp.published)
        if c is None:
            rows.append(ServiceStatus(sp.name, sp.machine, sp.level, sp.image, "absent", "-",
                                      ports, ""))
            continue
        state = str(c.status)
        healthy, output = engine.probe(c, sp.spec) if state == "running" else (False, "")
        health = ("healthy" if healthy else "unhealthy") if state == "running" else "-"
        rows.append(ServiceStatus(sp.name, sp.machine, sp.level, sp.image, state, health,
                                  ports, output.splitlines()[0][:80] if output else ""))
    return rows


def logs(target: Target, service: str | None, *, follow: bool, tail: int | None) -> None:
    args = ["logs", "--no-color"]
    if follow:
        args.append("--follow")
    if tail is not None:
        args += ["--tail", str(tail)]
    if service:
        args.append(service)
    compose(target, *args, capture=False, timeout=10**9)
