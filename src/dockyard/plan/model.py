"""The Plan as data: what `dockyard plan` prints and what render and engine consume."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
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
class Placement:
    """One copy of a service: the machine it runs on and the GPUs (indexes there) it gets."""

    machine: str
    gpus: tuple[int, ...] = ()


@dataclass(frozen=True)
class PlacementReport:
    """How placement went: FIXED (no choice to make, no solver), OPTIMAL (proven), FEASIBLE.

    The objective, in order: the fullest GPU the solver could choose, in per mille of its memory
    (`peak_permille`), then `cross_links`, the `depends_on` links between services on different
    machines; `bound_*` are the solver's proven lower bounds, `gap` the larger relative distance
    of the two from their bounds (0 when proven optimal).
    """

    status: str
    placed: tuple[str, ...] = ()  # services whose machine or GPU the solver chose
    peak_permille: int = 0
    cross_links: int = 0
    bound_permille: int = 0
    bound_links: int = 0
    gap: float = 0.0
    seconds: float = field(default=0.0, compare=False)  # wall time: not part of the plan
    work: float = field(default=0.0, compare=False)  # the solver's deterministic time

    def line(self) -> str:
        """One line for people: what was solved and how well."""
        if self.status == "FIXED":
            return "placement: every service has its machine and GPU written; no solver needed"
        text = (f"placement: {self.status} for {len(self.placed)} service(s) in "
                f"{self.seconds:.2f} s; fullest GPU it could choose at "
                f"{self.peak_permille / 10:.0f}%, {self.cross_links} depends_on link(s) across "
                "machines")
        if self.status != "OPTIMAL":
            text += (f"; gap {self.gap:.1%} (bounds: {self.bound_permille / 10:.0f}%, "
                     f"{self.bound_links} link(s))")
        return text


@dataclass(frozen=True)
class ServicePlan:
    name: str
    spec: ServiceSpec
    machine: str
    image: str
    level: int
    gpu_device: int | None = None
    gpu_memory: int = 0  # per GPU
    placements: tuple[Placement, ...] = ()  # every copy; empty: one copy on `machine`

    @property
    def machines(self) -> tuple[str, ...]:
        """Every machine a copy runs on (`machines:` gives several)."""
        return tuple(p.machine for p in self.placements) or (self.machine,)

    def gpus_on(self, machine: str) -> tuple[int, ...]:
        """The GPU indexes the copy on `machine` reserves."""
        for p in self.placements:
            if p.machine == machine:
                return p.gpus
        if machine == self.machine and self.gpu_device is not None:
            return (self.gpu_device,)
        return ()

    @property
    def built(self) -> bool:
        return bool(self.spec.family)

    @property
    def published(self) -> list[tuple[str, PortSpec]]:
        return [(n, p) for n, p in sorted(self.spec.ports.items()) if p.publish]

    @property
    def ports(self) -> list[PortSpec]:
        """Every port of the container in the manifest's order: the service's own, then each
        agent's (a container group's agents publish theirs through it too)."""
        return [*self.spec.ports.values(),
                *(p for agent in self.spec.agents.values() for p in agent.ports.values())]


@dataclass(frozen=True)
class Plan:
    fleet: str
    services: dict[str, ServicePlan]
    levels: list[list[str]]  # start order: each level only depends on earlier ones
    builds: list[BuildStep]  # in dependency order (by level, then name)
    families: dict[str, FamilySpec] = field(default_factory=dict)
    placement: PlacementReport = field(default_factory=lambda: PlacementReport("FIXED"))

    def on(self, machine: str) -> list[ServicePlan]:
        """Services with a copy on `machine`, in start order."""
        return list(self._by_machine.get(machine, ()))

    @cached_property
    def _by_machine(self) -> dict[str, list[ServicePlan]]:
        # One pass instead of one per machine: render asks for every machine of the fleet.
        index: dict[str, list[ServicePlan]] = {}
        for level in self.levels:
            for name in level:
                sp = self.services[name]
                for machine in sp.machines:
                    index.setdefault(machine, []).append(sp)
        return index

    def build_levels(self) -> list[list[BuildStep]]:
        top = max((s.level for s in self.builds), default=-1)
        return [[s for s in self.builds if s.level == lvl] for lvl in range(top + 1)]

    def step(self, name: str, kind: str) -> BuildStep:
        return next(s for s in self.builds if s.name == name and s.kind == kind)
