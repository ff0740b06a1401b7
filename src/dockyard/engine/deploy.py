"""up / down / status / logs for the services placed on one machine."""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.engine.build import build, image_id, write_render
from dockyard.engine.client import docker
from dockyard.engine.probe import ProbeResult, probe_once, wait_healthy
from dockyard.engine.run import Result, run
from dockyard.errors import UnhealthyError
from dockyard.events import LevelHealthy, LevelStarted, Progress, Sink
from dockyard.manifest.load import Fleet
from dockyard.plan.model import Plan, ServicePlan

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
HASH_LABEL = "com.docker.compose.config-hash"


@dataclass(frozen=True)
class Target:
    """One machine's share of a fleet, as one compose project."""

    fleet: Fleet
    plan: Plan
    state: Path
    machine: str
    project: str
    profiles: tuple[str, ...] = ()

    @property
    def compose_file(self) -> Path:
        return self.state / "render" / f"compose.{self.machine}.yaml"

    def services(self) -> list[ServicePlan]:
        """Services on this machine, in start order, skipping profiles not asked for."""
        return [sp for sp in self.plan.on(self.machine)
                if not sp.spec.profiles or set(sp.spec.profiles) & set(self.profiles)]

    def levels(self) -> list[list[ServicePlan]]:
        mine = {sp.name: sp for sp in self.services()}
        return [[mine[n] for n in level if n in mine] for level in self.plan.levels
                if any(n in mine for n in level)]


@dataclass
class UpReport:
    changed: bool
    results: list[ProbeResult] = field(default_factory=list)
    level_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0


def compose(target: Target, *args: str, capture: bool = True, timeout: float = 900) -> Result:
    argv = ["docker", "compose", "-p", target.project, "-f", str(target.compose_file)]
    for profile in target.profiles:
        argv += ["--profile", profile]
    return run([*argv, *args], capture=capture, timeout=timeout)


def containers(project: str) -> dict[str, Any]:
    """service -> container, for every container of the compose project (stopped ones too)."""
    found = docker().containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"})
    return {c.labels.get(SERVICE_LABEL, c.name): c for c in found}


def _expected_hashes(target: Target) -> dict[str, str]:
    out = compose(target, "config", "--hash", "*").stdout
    pairs = (line.split() for line in out.splitlines() if line.strip())
    return {p[0]: p[1] for p in pairs if len(p) == 2}


def up_to_date(target: Target) -> bool:
    """Every service runs the current config and image, and answers its health probe."""
    expected = _expected_hashes(target)
    running = containers(target.project)
    for sp in target.services():
        c = running.get(sp.name)
        if c is None or c.status != "running" or c.labels.get(HASH_LABEL) != expected.get(sp.name):
            return False
        if c.image.id != image_id(sp.image) or not probe_once(c, sp.spec)[0]:
            return False
    return True


def up(target: Target, *, emit: Sink, build_missing: bool = True) -> UpReport:
    """Start the machine's services level by level, each level once the previous is healthy."""
    t0 = time.monotonic()
    write_render(target.fleet, target.plan, target.state)
    mine = target.services()
    missing = [sp.name for sp in mine if sp.built and not image_id(sp.image)]
    if missing and target.fleet.spec.registry:
        # Pull-through: what the registry has is pulled; only what it lacks is built here.
        from dockyard.engine.registry import pull_missing

        absent = set(pull_missing(target.fleet, [sp.image for sp in mine if sp.name in missing],
                                  emit=emit))
        missing = [sp.name for sp in mine if sp.name in missing and sp.image in absent]
    if missing and build_missing:
        emit(Progress(f"images missing for {', '.join(missing)}: building them first"))
        build(target.fleet, target.plan, target.state, emit=emit, only_missing=True)
    if up_to_date(target):
        return UpReport(changed=False, seconds=time.monotonic() - t0)
    report = UpReport(changed=True)
    # Create (or recreate) every container first, in one compose call, without starting any:
    # a level then only pays for the engine's `start`, not for compose loading the project
    # and creating containers while its dependencies are already healthy and waiting.
    compose(target, "up", "--no-start", "--no-build", "--remove-orphans",
            *[sp.name for sp in mine])
    for level in target.levels():
        t_level = time.monotonic()
        names = [sp.name for sp in level]
        emit(LevelStarted(tuple(names)))
        _start_level(target, names)
        results = _wait_level(target, level)
        report.results.extend(results)
        report.level_seconds.append(time.monotonic() - t_level)
        failed = [r for r in results if not r.healthy]
        if failed:
            raise UnhealthyError(_failure_message(target, failed),
                                 fix="see the health output and logs above; "
                                     f"`dockyard logs {failed[0].service}` shows more")
        emit(LevelHealthy(tuple((r.service, r.seconds) for r in results)))
    report.seconds = time.monotonic() - t0
    return report


def _start_level(target: Target, names: list[str]) -> None:
    """Start the level's containers (created by `up --no-start`) through the engine API."""
    found = containers(target.project)
    missing = [n for n in names if n not in found]
    if missing:  # not created: let compose say why, in its own words
        compose(target, "up", "--detach", "--no-deps", "--no-build", *missing)
    waiting = [found[n] for n in names if n in found and found[n].status != "running"]
    if waiting:
        with ThreadPoolExecutor(max_workers=len(waiting)) as pool:
            list(pool.map(lambda c: c.start(), waiting))


def _wait_level(target: Target, level: list[ServicePlan]) -> list[ProbeResult]:
    def wait(sp: ServicePlan) -> ProbeResult:
        def get() -> Any:
            return containers(target.project).get(sp.name)

        deadline = sp.spec.health.deadline if sp.spec.health else 10.0
        return wait_healthy(sp.name, sp.spec, get, deadline=deadline)

    with ThreadPoolExecutor(max_workers=max(1, len(level))) as pool:
        return list(pool.map(wait, level))


def _failure_message(target: Target, failed: Iterable[ProbeResult]) -> str:
    parts = []
    running = containers(target.project)
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


def down(target: Target, *, volumes: bool = False) -> None:
    args = ["down", "--remove-orphans"] + (["--volumes"] if volumes else [])
    if target.compose_file.is_file():
        compose(target, *args)
    else:
        run(["docker", "compose", "-p", target.project, *args])


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
    running = containers(target.project)
    rows = []
    for sp in target.services():
        c = running.get(sp.name)
        ports = ", ".join(f"{p.bind}:{p.host_port}->{p.port}" for _, p in sp.published)
        if c is None:
            rows.append(ServiceStatus(sp.name, sp.machine, sp.level, sp.image, "absent", "-",
                                      ports, ""))
            continue
        state = str(c.status)
        healthy, output = probe_once(c, sp.spec) if state == "running" else (False, "")
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
