"""plan(fleet) -> Plan: a pure function of the manifest (no Docker, no clock)."""

from __future__ import annotations

import graphlib

from dockyard.errors import ManifestError
from dockyard.gcpause import gc_paused
from dockyard.manifest.load import Fleet
from dockyard.plan.model import BuildStep, Plan, ServicePlan
from dockyard.plan.place import place

MOVING_TAG = "current"


def image_name(fleet: Fleet, name: str, kind: str) -> str:
    """quickstart/web for a service, quickstart/family-web for a family; registry-prefixed."""
    repo = f"{fleet.spec.fleet}/{'family-' if kind == 'family' else ''}{name}"
    registry = fleet.spec.registry.rstrip("/")
    return f"{registry}/{repo}" if registry else repo


@gc_paused
def plan(fleet: Fleet) -> Plan:
    spec = fleet.spec
    levels = order(fleet)
    level_of = {name: i for i, names in enumerate(levels) for name in names}
    builds = build_graph(fleet)
    images = {s.name: s.image for s in builds if s.kind == "service"}
    copies, report = place(fleet)
    services = {}
    for name, svc in spec.services.items():
        first = copies[name][0]
        gpu = svc.gpu
        services[name] = ServicePlan(
            name=name,
            spec=svc,
            machine=first.machine,
            # A pinned service runs its dated tag; the build still moves `:current`.
            image=(f"{image_name(fleet, name, 'service')}:{svc.image_tag}"
                   if svc.image_tag and name in images else images.get(name, svc.image)),
            level=level_of[name],
            gpu_device=first.gpus[0] if first.gpus else None,
            gpu_memory=gpu.memory if gpu and first.gpus else 0,
            placements=copies[name],
        )
    return Plan(fleet=spec.fleet, services=services, levels=levels, builds=builds,
                families=dict(spec.families), placement=report)


def order(fleet: Fleet) -> list[list[str]]:
    """Start levels of the dependency DAG: level n depends only on levels < n."""
    graph = {name: set(svc.depends_on) for name, svc in fleet.spec.services.items()}
    return _levels(graph, fleet, "services", "depends_on")


def build_graph(fleet: Fleet) -> list[BuildStep]:
    """Families in `from` order, then each built service on top of its family."""
    spec = fleet.spec
    graph = {name: ({fam.from_} & set(spec.families)) for name, fam in spec.families.items()}
    steps: list[BuildStep] = []
    fam_level: dict[str, int] = {}
    for level, names in enumerate(_levels(graph, fleet, "families", "from")):
        for name in names:
            fam = spec.families[name]
            parent = fam.from_ if fam.from_ in spec.families else ""
            base = f"{image_name(fleet, parent, 'family')}:{MOVING_TAG}" if parent else fam.from_
            fam_level[name] = level
            steps.append(BuildStep("family", name, f"{image_name(fleet, name, 'family')}:"
                                   f"{MOVING_TAG}", base, parent, level))
    for name, svc in sorted(spec.services.items()):
        if not svc.family:
            continue
        steps.append(BuildStep(
            "service", name, f"{image_name(fleet, name, 'service')}:{MOVING_TAG}",
            f"{image_name(fleet, svc.family, 'family')}:{MOVING_TAG}", svc.family,
            fam_level[svc.family] + 1,
        ))
    steps.sort(key=lambda s: (s.level, s.kind != "family", s.name))
    return steps


def _levels(graph: dict[str, set[str]], fleet: Fleet, section: str, key: str) -> list[list[str]]:
    sorter = graphlib.TopologicalSorter(graph)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        # graphlib lists each node before the one that needs it; `x -> y` here reads "x's
        # `depends_on` (or `from`) names y", the way the manifest is written.
        cycle: list[str] = list(reversed(exc.args[1]))
        first = cycle[0]
        raise ManifestError(
            f"{fleet.where(section, first, key, cycle[1])}: {section} form a cycle of "
            f"`{key}`: " + " -> ".join(cycle),
            fix=f"remove one `{key}` link in that loop",
        ) from None
    levels: list[list[str]] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        levels.append(ready)
        sorter.done(*ready)
    return levels
