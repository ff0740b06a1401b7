"""The rules. Each is (Fleet, Plan) -> Iterable[Finding] with a stable code."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator

from dockyard.checks.finding import Finding, Severity
from dockyard.manifest.load import Fleet
from dockyard.plan.model import Plan

Rule = Callable[[Fleet, Plan], Iterable[Finding]]


def host_port_collisions(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY101: two services publish the same host port on one machine."""
    seen: dict[tuple[str, str, int, str], str] = {}
    for name, sp in sorted(plan.services.items()):
        for port_name, port in sp.published:
            key = (sp.machine, port.bind if port.bind != "0.0.0.0" else "*", port.host_port,
                   port.protocol)
            wildcard = (sp.machine, "*", port.host_port, port.protocol)
            other = seen.get(key) or seen.get(wildcard)
            if port.bind in ("0.0.0.0", "*"):
                other = other or next((s for k, s in seen.items() if k[0] == sp.machine
                                       and k[2] == port.host_port and k[3] == port.protocol),
                                      None)
            if other:
                yield Finding(
                    "DY101", Severity.ERROR, fleet.where("services", name, "ports", port_name),
                    f"service {name} publishes host port {port.host_port} on machine "
                    f"{sp.machine}, already published by {other}",
                    f"give one of them another host port, e.g. `host: {port.host_port + 1}`")
            else:
                seen[key] = name


def dependency_without_health(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY501: waiting for `healthy` on a service that has no health check."""
    for name, svc in sorted(fleet.spec.services.items()):
        for dep, how in sorted(svc.depends_on.items()):
            if how.condition == "healthy" and fleet.spec.services[dep].health is None:
                yield Finding(
                    "DY501", Severity.ERROR, fleet.where("services", name, "depends_on"),
                    f"service {name} waits for {dep} to be healthy, but {dep} has no health "
                    "check (compose fails only at `up` time)",
                    f"add `health:` to {dep}, or write `depends_on: {{{dep}: "
                    "{condition: started}}`")


def missing_health(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY502: a service with no health check is called healthy as soon as it runs."""
    for name, svc in sorted(fleet.spec.services.items()):
        if svc.health is None:
            yield Finding(
                "DY502", Severity.WARNING, fleet.where("services", name),
                f"service {name} has no health check: dependents start as soon as it runs",
                "add `health: {http: /health}` or `health: {cmd: [...]}`")


def latest_tag(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY601: a stock image with no tag or `latest` changes under you."""
    for name, svc in sorted(fleet.spec.services.items()):
        if not svc.image:
            continue
        last = svc.image.split("/")[-1]
        if "@" in last:
            continue
        if ":" not in last or last.endswith(":latest"):
            yield Finding(
                "DY601", Severity.WARNING, fleet.where("services", name, "image"),
                f"service {name} uses {svc.image}, which moves whenever upstream pushes",
                "pin a version tag or a digest, e.g. redis:7.4.1")


def gpu_budget(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY201: GPU memory budgets on one GPU add up to more than it has."""
    used: dict[tuple[str, int], list[str]] = defaultdict(list)
    total: dict[tuple[str, int], int] = defaultdict(int)
    for name, sp in sorted(plan.services.items()):
        if sp.gpu_device is not None and sp.gpu_memory:
            used[(sp.machine, sp.gpu_device)].append(name)
            total[(sp.machine, sp.gpu_device)] += sp.gpu_memory
    for (machine, device), names in sorted(used.items()):
        gpus = fleet.spec.machines[machine].gpus
        if device >= len(gpus):
            yield Finding(
                "DY202", Severity.ERROR, fleet.where("services", names[0], "gpu"),
                f"services {', '.join(names)} ask for GPU {device} of machine {machine}, "
                f"which lists {len(gpus)} GPU(s)",
                f"add the GPU to machines.{machine}.gpus or choose another device")
            continue
        capacity = gpus[device].memory
        if capacity and total[(machine, device)] > capacity:
            gib = 1024**3
            yield Finding(
                "DY201", Severity.ERROR, fleet.where("services", names[-1], "gpu", "memory"),
                f"GPU {device} of {machine} has {capacity / gib:.1f} GiB but "
                f"{', '.join(names)} ask for {total[(machine, device)] / gib:.1f} GiB together",
                "lower the budgets or move a service to another GPU or machine")


RULES: list[Rule] = [host_port_collisions, gpu_budget, dependency_without_health,
                     missing_health, latest_tag]
