"""The Plan as data: what `dockyard plan` prints and what render and engine consume."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dockyard.manifest.models import FamilySpec, PortSpec, ServiceSpec


@dataclass(frozen=True)
class BuildStep:
    """One image to build: a family (shared base) or a service (its code on a family)."""

    kind: Literal["family", "service"]
    name: str
    image: str  # the moving tag compose files refer to, e.g. quickstart/web:current
    base: str  # a parent step's image, or an external image such as python:3.11-slim
    parent: str  # the parent family's name; "" when `base` is external
    level: int


@dataclass(frozen=True)
class ServicePlan:
    name: str
    spec: ServiceSpec
    machine: str
    image: str
    level: int
    gpu_device: int | None = None
    gpu_memory: int = 0

    @property
    def built(self) -> bool:
        return bool(self.spec.family)

    @property
    def published(self) -> list[tuple[str, PortSpec]]:
        return [(n, p) for n, p in sorted(self.spec.ports.items()) if p.publish]


@dataclass(frozen=True)
class Plan:
    fleet: str
    services: dict[str, ServicePlan]
    levels: list[list[str]]  # start order: each level only depends on earlier ones
    builds: list[BuildStep]  # in dependency order (by level, then name)
    families: dict[str, FamilySpec] = field(default_factory=dict)

    def on(self, machine: str) -> list[ServicePlan]:
        """Services placed on `machine`, in start order."""
        return [self.services[n] for level in self.levels for n in level
                if self.services[n].machine == machine]

    def build_levels(self) -> list[list[BuildStep]]:
        top = max((s.level for s in self.builds), default=-1)
        return [[s for s in self.builds if s.level == lvl] for lvl in range(top + 1)]

    def step(self, name: str, kind: str) -> BuildStep:
        return next(s for s in self.builds if s.name == name and s.kind == kind)
