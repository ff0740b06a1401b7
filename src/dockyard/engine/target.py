"""One machine's share of a fleet as one compose project, on that machine's engine."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from dockyard.engine.connection import Engine
from dockyard.engine.run import Result, run
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

    @cached_property
    def engine(self) -> Engine:
        """The machine's engine (`machines.<m>.engine`), one per Target."""
        return Engine.for_machine(self.fleet, self.machine)

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


def compose(target: Target, *args: str, capture: bool = True, timeout: float = 900) -> Result:
    """`docker compose` on the target's project, file and profiles, on its engine.

    The rendered file names secrets as `${VAR}` and holds no values: compose gets them in its
    environment (the values the manifest was loaded with, from .env or the shell), so they
    reach the containers and compose's config hashes, and no file of dockyard's holds them."""
    argv = target.engine.compose_argv(target.project, [target.compose_file], target.profiles)
    return run([*argv, *args], capture=capture, timeout=timeout,
               env=dict(target.fleet.compose_env))


def containers(engine: Engine, project: str) -> dict[str, Any]:
    """service -> container, for every container of the compose project (stopped ones too)."""
    found = engine.client.containers.list(all=True,
                                          filters={"label": f"{PROJECT_LABEL}={project}"})
    return {c.labels.get(SERVICE_LABEL, c.name): c for c in found}
