"""The per-machine ingress: what it is made of and which host ports it owns (pure).

A service with `upgrade: start-first` and published TCP ports gets a second container beside
the first during an upgrade, and two containers cannot publish one host port. So on each
machine with such a service, dockyard adds one more service to the plan, `dockyard-ingress`:
Debian's haproxy in a family image dockyard builds (`dockyard-ingress`, from
debian:bookworm-slim). It publishes those host ports, on the manifest's bind addresses, and
forwards each to the service over the fleet's network; the service itself no longer publishes
them. The engine moves traffic between the two containers with haproxy's runtime API on its
admin socket (engine/ingress.py), without a reload. Services without start-first are not
touched and keep publishing their ports themselves.

It is an implicit service rather than a hidden sidecar so that `plan`, `ps`, `up` and
`build` show and treat it like any other: it has an image, a level (after the services it
fronts), a health check and a container of the fleet's compose project. Swarm and
Kubernetes have start-first replacement of their own, so their renderers leave it out
(`without_ingress`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from dockyard.manifest.models import (
    DependencySpec,
    FamilySpec,
    HealthSpec,
    PortSpec,
    ServiceSpec,
)
from dockyard.plan.model import BuildStep, Plan, ServicePlan

INGRESS = "dockyard-ingress"  # the implicit service's name, and its family's
BASE = "debian:bookworm-slim"
PACKAGES = ("haproxy", "socat")  # socat: the engine talks to the admin socket through exec
ADMIN_SOCKET = "/tmp/dockyard-ingress.sock"
CONFIG = "/etc/dockyard/haproxy.cfg"
SLOTS = ("a", "b")  # a serves; b takes the new container during a start-first replace


@dataclass(frozen=True)
class Route:
    """One host port the ingress owns: where it listens, and the service port behind it."""

    service: str
    port_name: str
    port: PortSpec  # as the manifest wrote it: bind address, host port, container port

    @property
    def backend(self) -> str:
        """haproxy's name for the route's backend (and frontend)."""
        return f"{self.service}.{self.port_name}"


def start_first(svc: ServiceSpec) -> bool:
    return svc.upgrade == "start-first"


def fronted_ports(svc: ServiceSpec) -> list[tuple[str, PortSpec]]:
    """The ports the ingress publishes for a service: a start-first service's published TCP
    ports (UDP and agents' ports stay the service's own: DY952 refuses them)."""
    if not start_first(svc):
        return []
    return [(n, p) for n, p in sorted(svc.ports.items()) if p.publish and p.protocol == "tcp"]


def ingress_routes(plan: Plan, machine: str) -> list[Route]:
    """Every host port the ingress on `machine` owns, by service then port name."""
    return [Route(sp.name, n, p) for sp in sorted(plan.on(machine), key=lambda s: s.name)
            if sp.name != INGRESS for n, p in fronted_ports(sp.spec)]


def ingress_family() -> FamilySpec:
    return FamilySpec.model_validate({"from": BASE, "apt": list(PACKAGES)})


def ingress_spec(fronted: list[ServicePlan]) -> ServiceSpec:
    """The ingress as a service: haproxy in the foreground (master-worker, so the runtime API
    answers while it runs), healthy once its admin socket accepts a connection."""
    ports = {f"{sp.name}.{n}": PortSpec(port=p.host_port, host=p.host_port, bind=p.bind)
             for sp in fronted for n, p in fronted_ports(sp.spec)}
    return ServiceSpec(
        family=INGRESS,
        command=["haproxy", "-W", "-db", "-f", CONFIG],
        ports=ports,
        health=HealthSpec(cmd=["socat", "-u", "OPEN:/dev/null", f"UNIX-CONNECT:{ADMIN_SOCKET}"],
                          interval=2.0, retries=5),
        depends_on={sp.name: DependencySpec() if sp.spec.health
                    else DependencySpec(condition="started") for sp in fronted},
        memory=128 * 1024 * 1024,
    )


def with_ingress(plan: Plan, image_name: str) -> Plan:
    """The plan with the ingress added on every machine that has a start-first service with
    published TCP ports (`image_name`: the family's image, e.g. quickstart/family-dockyard-
    ingress:current); the plan itself when there is none."""
    fronted = [sp for _, sp in sorted(plan.services.items()) if fronted_ports(sp.spec)]
    if not fronted or INGRESS in plan.services:
        return plan
    spec = ingress_spec(fronted)
    machines = tuple(dict.fromkeys(m for sp in fronted for m in sp.machines))
    level = max(sp.level for sp in fronted) + 1
    sp = ServicePlan(name=INGRESS, spec=spec, machine=machines[0], image=image_name,
                     level=level, placements=())
    if len(machines) > 1:
        from dockyard.plan.model import Placement

        sp = replace(sp, placements=tuple(Placement(m) for m in machines))
    levels = [list(names) for names in plan.levels]
    if level == len(levels):
        levels.append([])
    levels[level] = sorted([*levels[level], INGRESS])
    family_level = 0
    builds = sorted([*plan.builds, BuildStep("family", INGRESS, image_name, BASE, "",
                                             family_level)],
                    key=lambda s: (s.level, s.kind != "family", s.name))
    return replace(plan, services={**plan.services, INGRESS: sp}, levels=levels,
                   builds=builds, families={**plan.families, INGRESS: ingress_family()})


def without_ingress(plan: Plan) -> Plan:
    """The plan as the manifest wrote it: for renderers whose platform replaces start-first
    by itself (Swarm's `order: start-first`, Kubernetes' rolling update)."""
    if INGRESS not in plan.services:
        return plan
    services = {n: sp for n, sp in plan.services.items() if n != INGRESS}
    levels = [[n for n in names if n != INGRESS] for names in plan.levels]
    families = {n: f for n, f in plan.families.items() if n != INGRESS}
    return replace(plan, services=services, levels=[lv for lv in levels if lv],
                   builds=[s for s in plan.builds if s.name != INGRESS], families=families)


def is_ingress(name: str) -> bool:
    return name == INGRESS
