"""DY1xx: ports. Host ports per machine, and ports shared by the processes of one container."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from dockyard.checks.rules import Rule, copies, names
from dockyard.findings import Code, Finding, Severity
from dockyard.manifest.load import Fleet
from dockyard.manifest.models import HealthSpec, PortSpec, ServiceSpec
from dockyard.plan.ingress import is_ingress
from dockyard.plan.model import Plan

CODES = {c.code: c for c in (
    Code("DY101", Severity.ERROR, "two services (or agents, or copies) publish the same host "
         "port on one machine", "give one of them another host port (`host:`)"),
    Code("DY102", Severity.ERROR, "two processes of one container (agents, the service itself, "
         "a health check) use the same container port",
         "give each agent its own port; point `health.port` at the process it checks"),
    Code("DY103", Severity.ERROR, "a host port a service publishes is already bound on its "
         "machine, by another container or a process (judged by `up` before it starts "
         "anything, and by `check` on the machine itself: the one `-m` names, or the one "
         "named after this host)",
         "stop what holds it, or give the service another host port (`host:`)"),
)}

WILDCARD = {"0.0.0.0", "*", "", "::", "[::]"}


@dataclass(frozen=True)
class PortHolder:
    """Something on a machine bound to a host port: a container (its name, compose project
    and service) or a process (its name and pid, when this user may see them)."""

    port: int
    protocol: str = "tcp"
    address: str = ""  # where it is bound: 0.0.0.0, 127.0.0.1, :: ...
    container: str = ""
    project: str = ""
    service: str = ""
    process: str = ""  # "nginx (pid 812)"; "" when not known or a container holds it


@dataclass(frozen=True)
class HostPorts:
    """Facts for DY103, gathered on one machine (engine/hostports.py): what already holds
    the host ports its services will publish."""

    machine: str
    project: str  # the fleet's compose project there: its own containers are no rivals
    services: tuple[str, ...] = ()  # the services `up` starts there (profiles applied)
    held: tuple[PortHolder, ...] = ()


def _published(name: str, spec: ServiceSpec) -> Iterator[tuple[str, tuple[str | int, ...],
                                                                PortSpec]]:
    """(who, manifest path, port) for every port the container publishes on its machine."""
    for port_name, port in spec.ports.items():
        if port.publish:
            yield name, ("services", name, "ports", port_name), port
    for agent_name, agent in spec.agents.items():
        for port_name, port in agent.ports.items():
            if port.publish:
                yield (f"{name} (agent {agent_name})",
                       ("services", name, "agents", agent_name, "ports", port_name), port)


def host_port_collisions(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY101: two services publish the same host port on one machine.

    Counted per copy (`machines:` puts one on each machine) and per agent of a container
    group. A port on all interfaces collides with the same port on any address.
    """
    # (machine, host port, protocol) -> {bind address ("*" for all): owners so far}
    seen: dict[tuple[str, int, str], dict[str, list[tuple[str, frozenset[str]]]]] = {}
    for copy in copies(plan):
        profiles = frozenset(copy.spec.profiles)
        for who, path, port in _published(copy.name, copy.spec):
            bind = "*" if port.bind in WILDCARD else port.bind
            owners = seen.setdefault((copy.machine, port.host_port, port.protocol), {})
            rivals = ([o for os in owners.values() for o in os] if bind == "*"
                      else [*owners.get(bind, []), *owners.get("*", [])])
            other = next((name for name, theirs in rivals if together(profiles, theirs)), None)
            owners.setdefault(bind, []).append((who, profiles))
            if other is None:
                continue
            yield Finding(
                "DY101", Severity.ERROR, fleet.where(*path),
                f"service {who} publishes host port {port.host_port} on machine "
                f"{copy.machine}, already published by {other}",
                f"give one of them another host port, e.g. `host: {port.host_port + 1}`",
                service=copy.name)


def host_ports_bound(fleet: Fleet, plan: Plan, facts: HostPorts) -> Iterator[Finding]:
    """DY103: a port the machine's services will publish is already bound there.

    The facts come from the machine (engine/hostports.py). A container of the fleet's own
    compose project is no rival: `up` keeps it, or replaces it before the new one binds."""
    rivals = [h for h in facts.held if not (h.container and h.project == facts.project)]
    for name in facts.services:
        sp = plan.services.get(name)
        if sp is None or facts.machine not in sp.machines or is_ingress(name):
            continue
        for who, path, port in _published(name, sp.spec):
            holder = next((h for h in rivals if h.port == port.host_port
                           and h.protocol == port.protocol and overlaps(h.address, port.bind)),
                          None)
            if holder is None:
                continue
            yield Finding(
                "DY103", Severity.ERROR, fleet.where(*path),
                f"service {who} publishes host port {port.host_port} on machine "
                f"{facts.machine}, but {_holder(holder)} already holds it",
                f"{_stop(holder)}, or give {name} another host port, e.g. "
                f"`host: {port.host_port + 1}`", service=name)


def overlaps(a: str, b: str) -> bool:
    """Two bind addresses of one port collide: either is a wildcard, or they are the same
    (a dual-stack `::` takes IPv4 too)."""
    a, b = a.strip("[]"), b.strip("[]")
    return a in WILDCARD or b in WILDCARD or a == b


def _holder(h: PortHolder) -> str:
    at = f" on {h.address}" if h.address and h.address not in WILDCARD else ""
    if h.container:
        project = f", compose project {h.project}" if h.project else ""
        return f"container {h.container}{project}{at}"
    if h.process:
        return f"process {h.process}{at}"
    return f"a process that is not a container{at}"


def _stop(h: PortHolder) -> str:
    if h.container:
        return f"stop it (`docker stop {h.container}`)"
    if h.process:
        return "stop that process"
    return (f"find it with `ss -{'u' if h.protocol == 'udp' else 't'}lnp 'sport = :{h.port}'` "
            "and stop it")


def together(mine: frozenset[str], theirs: frozenset[str]) -> bool:
    """Whether two services can run at once: one without profiles runs in every run; two
    whose profiles do not meet are alternatives (ollama-cpu or ollama-gpu), never both."""
    return not mine or not theirs or bool(mine & theirs)


def _health_port(health: HealthSpec | None, ports: dict[str, PortSpec]) -> int | None:
    if health is None or not health.http:
        return None
    if isinstance(health.port, int):
        return health.port
    if health.port:
        port = ports.get(health.port)
        return port.port if port else None
    first = next(iter(sorted(ports.items())), None)
    return first[1].port if first else None


def container_port_collisions(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY102: processes in one container share its network; two cannot listen on one port.

    The service's own ports and its health port are one process; each agent is another.
    A health check aimed at a port another process listens on probes the wrong process.
    """
    for name, svc in sorted(fleet.spec.services.items()):
        if not svc.agents:
            continue
        # (port, protocol) -> [(process, where it claims the port)], one entry per process
        users: dict[tuple[int, str], list[tuple[str, tuple[str | int, ...]]]] = {}
        procs: list[tuple[str, tuple[str, ...], dict[str, PortSpec], HealthSpec | None]] = [
            ("", ("services", name), svc.ports, svc.health)]
        procs += [(agent_name, ("services", name, "agents", agent_name), a.ports, a.health)
                  for agent_name, a in sorted(svc.agents.items())]
        for proc, at, ports, health in procs:
            label = f"agent {proc}" if proc else "the service itself"
            claims = [((p.port, p.protocol), (*at, "ports", pn))
                      for pn, p in sorted(ports.items())]
            health_port = _health_port(health, ports)
            if health_port is not None and all(k[0] != health_port for k, _ in claims):
                claims.append(((health_port, "tcp"), (*at, "health", "port")))
            for key, path in claims:
                claimed = users.setdefault(key, [])
                if all(who != label for who, _ in claimed):
                    claimed.append((label, path))
        for (port, _), claimed in users.items():
            if len(claimed) < 2:
                continue
            others = [who for who, _ in claimed[1:]]
            yield Finding(
                "DY102", Severity.ERROR, fleet.where(*claimed[1][1]),
                f"in service {name}, {names(others)} use{'s' if len(others) == 1 else ''} "
                f"container port {port}, which {claimed[0][0]} already uses: the processes of "
                "one container share its network",
                "give each agent its own port, and point `health.port` at the port of the "
                "process it checks", service=name)


RULES: list[Rule] = [host_port_collisions, container_port_collisions]
