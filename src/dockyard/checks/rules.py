"""What every rule module shares: the Rule type, service copies per machine, image names.

A rule is `(Fleet, Plan) -> Iterable[Finding]`. Rules live one module per concern
(ports, memory, network, health, images, security; cuda for DY3xx) and each module lists
its rules in `RULES` and documents its codes in `CODES`; `run.MODULES` collects them.
Every rule is one pass over the services (plus sorting): fleets of 10,000 services are
checked in well under a second, so no rule compares services pairwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from dockyard.findings import Finding
from dockyard.manifest.load import Fleet
from dockyard.manifest.models import ServiceSpec
from dockyard.plan.ingress import is_ingress
from dockyard.plan.model import Plan, ServicePlan

Rule = Callable[[Fleet, Plan], Iterable[Finding]]


@dataclass(frozen=True)
class Copy:
    """One running copy of a service: `machines: [a, b]` gives one copy on each."""

    name: str
    spec: ServiceSpec
    machine: str
    gpus: tuple[int, ...]


_last: list[tuple[Plan, list[Copy]]] = []  # the last plan's copies: every rule asks


def copies(plan: Plan) -> list[Copy]:
    """Every copy of every service, by service name then machine."""
    if not _last or _last[0][0] is not plan:
        # The ingress publishes start-first services' ports for them: findings are theirs.
        found = [c for _, sp in sorted(plan.services.items()) if not is_ingress(sp.name)
                 for c in service_copies(sp)]
        _last[:] = [(plan, found)]
    return _last[0][1]


def service_copies(sp: ServicePlan) -> Iterator[Copy]:
    spec = sp.spec
    machines = sp.machines
    if len(machines) == 1 and spec.machines and not sp.placements:
        machines = tuple(dict.fromkeys(spec.machines))  # a plan that did not spread copies
    count = spec.gpu.number if spec.gpu else 0
    for machine in machines:
        gpus: tuple[int, ...] = sp.gpus_on(machine) if count else ()
        if count and not gpus and not sp.placements and sp.gpu_device is not None:
            gpus = (sp.gpu_device,)
        if count and gpus and len(gpus) < count and not sp.placements:
            # `gpu: {device: d, count: n}` written by hand: the n GPUs from d on.
            gpus = tuple(range(gpus[0], gpus[0] + count))
        yield Copy(sp.name, spec, machine, gpus)


def names(items: list[str], limit: int = 5) -> str:
    """`a, b, c` or `a, b, c, d, e and 12 more`: messages stay one line at any scale."""
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f" and {len(items) - limit} more"


def _has_registry(parts: list[str]) -> bool:
    """Docker's rule: the first part of a reference is a registry host when it has a dot or
    a port, or is localhost."""
    return len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost")


def image_registry(image: str) -> str:
    """`ghcr.io/x/redis:7` -> `ghcr.io`; `python:3.11-slim` -> `docker.io` (Docker Hub)."""
    parts = image.split("@")[0].split("/")
    return parts[0] if _has_registry(parts) else "docker.io"


def image_repo(image: str) -> str:
    """`ghcr.io/x/redis:7@sha256:..` -> `x/redis`; `docker.io/library/redis` -> `redis`."""
    ref = image.split("@")[0]
    parts = ref.split("/")
    if _has_registry(parts):
        parts = parts[1:]  # a registry host
    if parts and ":" in parts[-1]:
        parts[-1] = parts[-1].split(":")[0]
    if len(parts) == 2 and parts[0] == "library":
        parts = parts[1:]
    return "/".join(parts).lower()


def image_tag(image: str) -> str:
    """The tag of an image reference ("" when none is written; digests count as a tag)."""
    if "@" in image:
        return image.split("@", 1)[1]
    last = image.split("/")[-1]
    return last.split(":", 1)[1] if ":" in last else ""
