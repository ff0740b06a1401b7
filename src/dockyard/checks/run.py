"""check(fleet, plan) -> every finding, sorted by place; suppressions applied.

MODULES is the registry: each module lists its rules in `RULES` and documents its codes
in `CODES`. A new concern is one more module here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, field
from types import ModuleType

from dockyard.checks import cuda, health, images, memory, network, ports, security
from dockyard.checks.ports import HostPorts
from dockyard.checks.rules import Rule
from dockyard.errors import PlacementError
from dockyard.findings import Code, Finding, Severity
from dockyard.gcpause import gc_paused
from dockyard.manifest.load import Fleet
from dockyard.plan.history import Deployed
from dockyard.plan.model import Plan

# DY1xx ports, DY2xx GPU/memory/CPU, DY3xx CUDA/arch/ABI/wheels (checks/cuda.py), DY4xx
# network, DY5xx health, DY6xx images, DY7xx security; DY801 (placement) comes from the planner.
MODULES: tuple[ModuleType, ...] = (ports, memory, cuda, network, health, images, security)

META = {c.code: c for c in (
    Code("DY001", Severity.INFO, "a `suppress:` entry matches no finding (stale suppression)",
         "remove the entry, or correct its code"),
    Code("DY801", Severity.ERROR, "the services cannot be placed: no assignment to machines and "
         "GPUs respects every budget, `machine:`, affinity, anti-affinity and group",
         "lower a budget, relax a placement rule among the services named, or add a machine"),
)}
_CODE = re.compile(r"^DY\d{3}$")


def rules() -> list[Rule]:
    return [rule for module in MODULES for rule in module.RULES]


def codes() -> dict[str, Code]:
    """Every documented code, by code."""
    found = dict(META)
    for module in MODULES:
        found.update(getattr(module, "CODES", {}))
    return dict(sorted(found.items()))


@dataclass(frozen=True)
class Suppressed:
    finding: Finding
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {**self.finding.as_dict(), "reason": self.reason}


@dataclass(frozen=True)
class Report:
    findings: list[Finding]  # what counts, stale suppressions included
    suppressed: list[Suppressed] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(f.severity is Severity.ERROR for f in self.findings)

    def count(self, severity: Severity) -> int:
        return sum(f.severity is severity for f in self.findings)


def _sort_key(f: Finding) -> tuple[int, int, str, str]:
    return f.where.line, f.where.col, f.code, f.message


@gc_paused
def check_report(fleet: Fleet, plan: Plan,
                 programs: Mapping[str, Set[str]] | None = None,
                 secret_files: Mapping[str, Sequence[str]] | None = None,
                 host_ports: HostPorts | None = None,
                 own_health: Set[str] = frozenset(),
                 deployed: Mapping[str, Deployed] | None = None,
                 kept_tags: Mapping[str, Sequence[str]] | None = None) -> Report:
    """Run every rule; set aside the findings a `suppress:` entry accepts, with its reason.

    `programs`: service -> programs found on its built image (engine/programs.py), the facts
    the health-probe rule then judges by instead of what is known about stock images.
    `secret_files`: service -> env files and keys found in its built image (DY707).
    `host_ports`: what holds the host ports of one machine (engine/hostports.py): DY103.
    `own_health`: services whose image ships its own HEALTHCHECK (no DY501/DY502/DY505).
    `deployed`: service -> the image `up` last deployed (engine/history.py): DY607.
    `kept_tags`: repository -> the dated tags the last build kept: DY608."""
    found = [f for rule in rules() for f in (
        health.health_binaries(fleet, plan, programs)
        if programs is not None and rule is health.health_binaries else
        rule(fleet, plan, own_health)
        if rule in (health.missing_health, health.dependency_without_health)
        else rule(fleet, plan))]
    if secret_files is not None:
        found += security.image_secrets(fleet, plan, secret_files)
    if host_ports is not None:
        found += ports.host_ports_bound(fleet, plan, host_ports)
    if deployed:
        found += images.one_way_data(fleet, plan, deployed)
    if kept_tags:
        found += images.unkept_pins(fleet, plan, kept_tags)
    used: set[tuple[str, str]] = set()  # (service or "", code)
    kept: list[Finding] = []
    suppressed: list[Suppressed] = []
    _apply(fleet, found, used, kept, suppressed)
    # Stale entries are judged last; `suppress: {DY001: why}` silences them like any code.
    _apply(fleet, list(_stale(fleet, used)), set(), kept, suppressed)
    return Report(sorted(kept, key=_sort_key),
                  sorted(suppressed, key=lambda s: _sort_key(s.finding)))


def _apply(fleet: Fleet, found: list[Finding], used: set[tuple[str, str]],
           kept: list[Finding], suppressed: list[Suppressed]) -> None:
    spec = fleet.spec
    for f in found:
        svc = spec.services.get(f.service) if f.service else None
        if svc is not None and f.code in svc.suppress:
            used.add((f.service, f.code))
            suppressed.append(Suppressed(f, svc.suppress[f.code]))
        elif f.code in spec.suppress:
            used.add(("", f.code))
            suppressed.append(Suppressed(f, spec.suppress[f.code]))
        else:
            kept.append(f)


def _stale(fleet: Fleet, used: set[tuple[str, str]]) -> Iterator[Finding]:
    """DY001: a suppression that accepts nothing hides the next real finding of that code."""
    known = codes()
    entries: list[tuple[str, tuple[str, ...], str]] = [
        ("", ("suppress", code), code) for code in fleet.spec.suppress]
    entries += [(name, ("services", name, "suppress", code), code)
                for name, svc in sorted(fleet.spec.services.items()) for code in svc.suppress]
    for service, path, code in entries:
        if (service, code) in used or code == "DY001":
            continue
        if _CODE.match(code) and (code in known or code[2] == "3"):
            why = "no finding of that code" + (f" on service {service}" if service else "")
        else:
            why = "no such code (codes look like DY101; see docs/checks.md)"
        owner = f"service {service}" if service else "the fleet"
        yield Finding("DY001", Severity.INFO, fleet.where(*path),
                      f"{owner} suppresses {code}, but there is {why}",
                      "remove the entry, or correct its code", service=service)


def check_host_ports(fleet: Fleet, plan: Plan, facts: HostPorts) -> list[Finding]:
    """DY103 alone (suppressions applied): `up` judges host ports once the manifest's own
    checks passed, so a broken manifest stops before the machine is asked anything."""
    kept: list[Finding] = []
    _apply(fleet, list(ports.host_ports_bound(fleet, plan, facts)), set(), kept, [])
    return sorted(kept, key=_sort_key)


def infeasible(fleet: Fleet, error: PlacementError) -> Report:
    """When the planner finds no placement, the other rules have no plan to judge: the report
    is the one finding DY801, naming the smallest set of services that cannot be placed."""
    return Report([Finding("DY801", Severity.ERROR, error.where or fleet.where("services"),
                           error.message, error.fix)])


def check(fleet: Fleet, plan: Plan,
          programs: Mapping[str, Set[str]] | None = None,
          host_ports: HostPorts | None = None,
          own_health: Set[str] = frozenset(),
          deployed: Mapping[str, Deployed] | None = None,
          kept_tags: Mapping[str, Sequence[str]] | None = None) -> list[Finding]:
    """The findings that count, sorted by place in the manifest."""
    return check_report(fleet, plan, programs, host_ports=host_ports,
                        own_health=own_health, deployed=deployed,
                        kept_tags=kept_tags).findings
