"""`dockyard images`: ask the engine what each image of the fleet is made of; the arithmetic
(sizes, sharing, budgets) is plan/sizes.py's. Per-layer sizes come from the history API, see
there why that and not `docker save`."""

from __future__ import annotations

from dataclasses import dataclass, field

from dockyard.engine.connection import Engine
from dockyard.findings import Finding
from dockyard.manifest.load import Fleet
from dockyard.plan.model import Plan
from dockyard.plan.sizes import (
    HistoryEntry,
    ImageLayers,
    SizeReport,
    budget_findings,
    size_report,
)


@dataclass(frozen=True)
class ImagesReport:
    sizes: SizeReport
    findings: list[Finding] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)  # images of the plan not built/pulled


def fleet_refs(fleet: Fleet, plan: Plan) -> list[tuple[str, str, str]]:
    """(ref, kind, name) of every image of the fleet: families, services, stock images."""
    refs: list[tuple[str, str, str]] = [(s.image, s.kind, s.name) for s in plan.builds]
    stock = sorted({(svc.image, name) for name, svc in fleet.spec.services.items()
                    if svc.image})
    seen: set[str] = set()
    for image, name in stock:
        if image not in seen:
            seen.add(image)
            refs.append((image, "stock", name))
    return refs


def describe(engine: Engine, ref: str, kind: str, name: str) -> ImageLayers | None:
    """What the engine knows of `ref`'s layers, or None when it is not here."""
    from docker.errors import ImageNotFound, NotFound

    api = engine.client.api
    try:
        info = api.inspect_image(ref)
        history = api.history(ref)
    except (ImageNotFound, NotFound):
        return None
    entries = tuple(HistoryEntry(str(h.get("CreatedBy") or ""), int(h.get("Size") or 0))
                    for h in reversed(history))  # the API lists the newest step first
    return ImageLayers(ref, kind, name, int(info.get("Size") or 0),
                       tuple((info.get("RootFS") or {}).get("Layers") or ()), entries)


def images(engine: Engine, fleet: Fleet, plan: Plan) -> ImagesReport:
    found, absent = [], []
    for ref, kind, name in fleet_refs(fleet, plan):
        described = describe(engine, ref, kind, name)
        if described is None:
            absent.append(ref)
        else:
            found.append(described)
    sizes = size_report(found)
    return ImagesReport(sizes, budget_findings(fleet, sizes), absent)
