"""Names that work across machines: which service reaches which one on another machine, and
the route that makes its name work there (one pure function, used by render and check).

**A caller reaches a callee** when a copy of the caller runs on a machine where no copy of the
callee runs, and the manifest says so in one of two ways:

- `depends_on: [callee]` (condition healthy or started: the caller waits for something it will
  talk to; `completed` is a one-shot that only has to have run, no route), reaching every port
  the callee publishes;
- a value in the caller's `env:` or an argument of its `command:`/`entrypoint:` (its agents'
  too) that names the callee as a host: `http://embedder:8001`, `embedder:8001`,
  `redis://:pw@store/0` (the scheme's port: http 80, https 443), or the bare name under a key
  such as `EMBEDDER_HOST`; reaching that port.

A `localhost`/`127.0.0.1` URL whose port no service on the caller's machine has, but a service on
another machine has, is a reach too, and never a route: inside a container it is the container.

**The route** for `http://embedder:8001` from machine A to embedder on machine B: the caller's
compose file gets `extra_hosts: embedder=<B's address>`, and embedder's compose file on B
publishes `<B's address>:8001:8001` beside its own ports, so the name and the port the caller
already uses keep working unchanged. B's address is `machines.B.host` when it is an IP address,
else the address the engine layer resolved that name to (`addresses`, IPv4 preferred: `.local`
names answer IPv6 first and hang), else the name as written (check accepts it; render needs an
address and refuses). A port the callee already publishes on all addresses (0.0.0.0) or on B's
address with the same host port needs nothing more. Kubernetes and Swarm need no route: their
cluster DNS and overlay network resolve a service's name on every node.

No route (`Routes.missing`, reported by check as DY404/DY407/DY408): B has no `host:`; the port
is not one the callee declares, is `publish: false`, or its host port is taken on B; a loopback
URL.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from dockyard.manifest.load import Fleet, Path_
from dockyard.manifest.models import PortSpec, ServiceSpec
from dockyard.plan.model import Plan

LOOPBACK = frozenset({"localhost", "127.0.0.1", "ip6-localhost", "[::1]"})
SCHEME_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
# scheme://[user[:pw]@]host[:port] or host:port, host a one-word name or 127.0.0.1 / [::1]
_HOSTLIKE = re.compile(
    r"(?<![\w.@/:$-])(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?:[^@/\s]*@)?)?"
    r"(?P<host>\[::1\]|127\.0\.0\.1|[A-Za-z0-9][A-Za-z0-9_-]*)"
    r"(?::(?P<port>\d{1,5}))?(?![\w.\[-])")
# A key whose bare value (no scheme, no port) is a host to connect to.
HOST_KEY = re.compile(r"_(HOST|HOSTNAME|ADDR|ADDRESS|SERVER|URL|URI|ENDPOINT|DSN)$", re.I)
# Keys for browsers and outside clients (as DY401 reads them): a public URL, a callback.
_PUBLIC_KEY = re.compile(r"(^|_)(SITE|PUBLIC|EXTERNAL|BROWSER|REDIRECT|CALLBACK|ORIGINS?|CORS|"
                         r"FRONTEND|CONSOLE|NEXTAUTH)(_|$)", re.I)
_LISTEN_FLAG = re.compile(r"-[\w-]*(listen|bind)[\w-]*[= ]?\S*$", re.I)


@dataclass(frozen=True)
class Reach:
    """One copy of `caller` on `machine` reaches `callee`, which runs on `callee_machine`."""

    caller: str
    machine: str
    callee: str
    callee_machine: str
    at: Path_  # where the manifest says so: depends_on.<callee>, env.<KEY>, command.<i>
    ports: tuple[int, ...] = ()  # the container ports dialled; (): every port it publishes
    written: str = ""  # the host as written (`embedder`, `localhost`)
    loopback: bool = False  # written as localhost / 127.0.0.1: the caller's own container
    value: str = ""  # the env value or argument that names it ("" for depends_on)

    @property
    def label(self) -> str:
        """How messages name the place: `EMBED_URL`, `its depends_on`, `a command argument`."""
        if self.at[-2] == "depends_on":
            return "its depends_on"
        if isinstance(self.at[-1], int):
            return f"an argument of its {self.at[-2]}"
        return str(self.at[-1])


@dataclass(frozen=True)
class Publish:
    """A port the callee's compose file publishes so that another machine reaches it."""

    address: str
    host_port: int
    port: int
    protocol: str = "tcp"

    def compose(self) -> str:
        bind = f"[{self.address}]" if ":" in self.address else self.address
        return f"{bind}:{self.host_port}:{self.port}" + ("/udp" if self.protocol == "udp" else "")


@dataclass(frozen=True)
class NoRoute:
    """A reach no route can serve: the check's finding, with its code and fix."""

    reach: Reach
    code: str  # DY404: no host; DY407: no publishable port; DY408: a loopback URL
    why: str
    fix: str


@dataclass(frozen=True)
class Routes:
    reaches: tuple[Reach, ...] = ()
    # (caller, machine) -> {callee's name: address}: the caller's extra_hosts there
    hosts: Mapping[tuple[str, str], Mapping[str, str]] = field(default_factory=dict)
    # (callee, machine) -> ports its compose file publishes there, beside its own
    publish: Mapping[tuple[str, str], tuple[Publish, ...]] = field(default_factory=dict)
    missing: tuple[NoRoute, ...] = ()

    def extra_hosts(self, caller: str, machine: str) -> Mapping[str, str]:
        return self.hosts.get((caller, machine), {})

    def published(self, callee: str, machine: str) -> tuple[Publish, ...]:
        return self.publish.get((callee, machine), ())

    def lines(self) -> list[str]:
        """One line per routed name, for people: `api on a -> embedder at 10.0.0.2 (b)`,
        with the ports the callee publishes there for it."""
        out = []
        for (caller, machine), hosts in sorted(self.hosts.items()):
            for callee, address in sorted(hosts.items()):
                there = next(r.callee_machine for r in self.reaches
                             if (r.caller, r.machine, r.callee) == (caller, machine, callee))
                ports = ", ".join(p.compose() for p in self.published(callee, there))
                out.append(f"{caller} on {machine} -> {callee} at {address} (machine {there}"
                           + (f"; publishes {ports})" if ports else ")"))
        return out


def is_address(host: str) -> bool:
    """An IP address (v4 or v6) as opposed to a name that must be resolved."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def prefer_ipv4(answers: list[str]) -> str:
    """The address to use among a name's answers, in resolver order: the first IPv4 one, else
    the first (an IPv6-only machine). `.local` names often answer IPv6 first, and a client
    that tries that first hangs (spark-control's notes)."""
    for answer in answers:
        if is_address(answer) and ipaddress.ip_address(answer).version == 4:
            return answer
    return next((a for a in answers if is_address(a)), "")


def machine_address(fleet: Fleet, machine: str, addresses: Mapping[str, str]) -> str:
    """The address other machines reach `machine` at ("" without `host:`)."""
    spec = fleet.spec.machines.get(machine)
    host = spec.host if spec else ""
    if not host or is_address(host):
        return host.strip("[]")
    return addresses.get(machine, host)


def _ports(svc: ServiceSpec) -> list[PortSpec]:
    return [*svc.ports.values(), *(p for a in svc.agents.values() for p in a.ports.values())]


def env_values(name: str, svc: ServiceSpec) -> Iterator[tuple[Path_, str, str]]:
    """(place, key, value) of env values and command arguments ("command" as their key)."""
    for key, value in svc.env.items():
        yield ("services", name, "env", key), key, value
    for part in ("command", "entrypoint"):
        for i, arg in enumerate(getattr(svc, part)):
            yield ("services", name, part, i), part, arg
    for agent_name, agent in svc.agents.items():
        for key, value in agent.env.items():
            yield ("services", name, "agents", agent_name, "env", key), key, value
        for i, arg in enumerate(agent.command):
            yield ("services", name, "agents", agent_name, "command", i), "command", arg


def named_hosts(key: str, value: str) -> Iterator[tuple[str, int | None, bool]]:
    """(host, port or None, written as a URL or host:port) of each host a value names."""
    if _PUBLIC_KEY.search(key):
        return
    for match in _HOSTLIKE.finditer(value):
        scheme, port = match["scheme"], match["port"]
        if key in ("command", "entrypoint") and _LISTEN_FLAG.search(value[:match.start()]):
            continue
        if port:
            yield match["host"], int(port), True
        elif scheme:
            yield match["host"], SCHEME_PORTS.get(scheme.lower()), True
        elif HOST_KEY.search(key) and match.start() == 0 and match.end() == len(value):
            yield match["host"], None, False


def reaches(fleet: Fleet, plan: Plan) -> list[Reach]:
    """Every reach from a copy of a service to a service with no copy on that machine."""
    runs = {name: sp.machines for name, sp in plan.services.items()}
    if len(set().union(*runs.values())) < 2:
        return []  # one machine: every name resolves on the fleet's network
    ports: list[tuple[dict[int, list[str]], set[tuple[int, str]]]] = []  # built on first use
    found: list[Reach] = []
    for name, sp in sorted(plan.services.items()):
        svc = sp.spec
        if not (svc.depends_on or svc.env or svc.command or svc.entrypoint or svc.agents):
            continue
        for machine in runs[name]:
            for dep, d in sorted(svc.depends_on.items()):
                if d.condition == "completed" or dep not in runs or machine in runs[dep]:
                    continue
                found.append(Reach(name, machine, dep, runs[dep][0],
                                   ("services", name, "depends_on", dep), written=dep))
            for at, key, value in env_values(name, svc):
                for host, port, _url in named_hosts(key, value):
                    if host in LOOPBACK:
                        if port is None or port in {p.port for p in _ports(svc)}:
                            continue
                        if not ports:
                            ports.append(_listeners(plan))
                        by_port, near = ports[0]
                        if (port, machine) in near:
                            continue
                        far = next((s for s in by_port.get(port, []) if s != name), "")
                        if far:
                            found.append(Reach(name, machine, far, runs[far][0], at,
                                               (port,), host, True, value))
                    elif host in runs and host != name and machine not in runs[host]:
                        found.append(Reach(name, machine, host, runs[host][0], at,
                                           (port,) if port else (), host, False, value))
    return found


def _listeners(plan: Plan) -> tuple[dict[int, list[str]], set[tuple[int, str]]]:
    """container port -> the services listening on it, and (port, machine) of each."""
    by_port: dict[int, list[str]] = {}
    near: set[tuple[int, str]] = set()
    for name, sp in sorted(plan.services.items()):
        for p in _ports(sp.spec):
            by_port.setdefault(p.port, []).append(name)
            near.update((p.port, m) for m in sp.machines)
    return by_port, near


# The last answer: check's rule and render's machines all ask for the same plan.
_last: list[tuple[Fleet, Plan, tuple[tuple[str, str], ...], Routes]] = []


def routes(fleet: Fleet, plan: Plan, addresses: Mapping[str, str] | None = None) -> Routes:
    """The routes of every reach, and the reaches none can serve. `addresses`: machine ->
    the address its `host:` name resolved to (the engine layer's; IPv4 preferred)."""
    addresses = addresses or {}
    key = tuple(sorted(addresses.items()))
    if _last and _last[0][0] is fleet and _last[0][1] is plan and _last[0][2] == key:
        return _last[0][3]
    result = _routes(fleet, plan, addresses)
    _last[:] = [(fleet, plan, key, result)]
    return result


def _routes(fleet: Fleet, plan: Plan, addresses: Mapping[str, str]) -> Routes:
    found = reaches(fleet, plan)
    # (machine, host port, protocol) -> (service, bind, container port) of what is published
    taken: dict[tuple[str, int, str], list[tuple[str, str, int]]] = {}
    wanted = {r.callee_machine for r in found}
    for name, sp in plan.services.items() if found else ():
        for machine in sp.machines:
            if machine in wanted:
                for p in _ports(sp.spec):
                    if p.publish:
                        taken.setdefault((machine, p.host_port, p.protocol), []).append(
                            (name, p.bind, p.port))
    hosts: dict[tuple[str, str], dict[str, str]] = {}
    publish: dict[tuple[str, str], dict[Publish, None]] = {}
    missing: dict[tuple[Path_, str], NoRoute] = {}  # one per place (copies say it once)
    for reach in found:
        problem, ports = _serve(fleet, plan, reach, addresses, taken)
        if problem:
            missing.setdefault((reach.at, problem.code), problem)
            continue
        address = machine_address(fleet, reach.callee_machine, addresses)
        hosts.setdefault((reach.caller, reach.machine), {})[reach.callee] = address
        for pub in ports:
            publish.setdefault((reach.callee, reach.callee_machine), {})[pub] = None
            taken.setdefault((reach.callee_machine, pub.host_port, pub.protocol), []).append(
                (reach.callee, pub.address, pub.port))
    return Routes(tuple(found), hosts, {k: tuple(v) for k, v in publish.items()},
                  tuple(missing.values()))


def _serve(fleet: Fleet, plan: Plan, reach: Reach, addresses: Mapping[str, str],
           taken: Mapping[tuple[str, int, str], list[tuple[str, str, int]]],
           ) -> tuple[NoRoute | None, list[Publish]]:
    """What the callee must publish for `reach`, or why it cannot be reached."""
    callee, there = reach.callee, reach.callee_machine
    written = reach.label
    if reach.loopback:
        port = reach.ports[0]
        fixed = re.sub(rf"(?<![\w.-]){re.escape(reach.written)}(?=:{port}(?!\d))", callee,
                       reach.value, count=1)
        where = f"`{fixed}`" + ("" if isinstance(reach.at[-1], int) else f" in {written}")
        return NoRoute(
            reach, "DY408",
            f"{written} points at {reach.written}:{port}, which inside a container is the "
            f"container itself; {callee} answers on port {port}, on machine {there}",
            f"write {where}: render points the name {callee} at machine {there}"), []
    svc = plan.services[callee].spec
    ports = _ports(svc)
    if reach.ports:
        wanted = [p for p in ports if p.port == reach.ports[0]]
        if not wanted:
            return NoRoute(
                reach, "DY407",
                f"{written} reaches {callee}:{reach.ports[0]}, on machine {there}, and "
                f"{callee} declares no port {reach.ports[0]} to publish there",
                f"declare port {reach.ports[0]} in {callee}'s `ports:` (render publishes it on "
                f"machine {there}'s address only), or run {reach.caller} on {there}"), []
    else:
        wanted = [p for p in ports if p.publish]
        if not wanted:
            why = ("publishes none of its ports (publish: false)" if ports
                   else "declares no port")
            return NoRoute(
                reach, "DY407",
                f"{written} reaches {callee}, on machine {there}, which {why}: nothing on "
                "another machine can reach it",
                f"declare the port {reach.caller} uses in {callee}'s `ports:` (render "
                f"publishes it on machine {there}'s address only), or run {reach.caller} on "
                f"{there}"), []
    for p in wanted:
        if not p.publish:
            return NoRoute(
                reach, "DY407",
                f"{written} reaches {callee}:{p.port}, on machine {there}, and that port is "
                "`publish: false`: nothing on another machine can reach it",
                f"remove `publish: false` from {callee}'s port {p.port} (render publishes "
                f"it on machine {there}'s address only), or run {reach.caller} on {there}"), []
    address = machine_address(fleet, there, addresses)
    if not address:
        return NoRoute(
            reach, "DY404",
            f"{written} reaches {callee}, which runs on machine {there}, and machine {there} "
            "has no `host:` address for the route",
            f"set machines.{there}.host to the address other machines reach it at, or run "
            f"{reach.caller} on {there}"), []
    out: list[Publish] = []
    for p in wanted:
        if p.host_port == p.port and p.bind in ("0.0.0.0", address):
            continue  # already reachable there under the same port
        others = [t for t in taken.get((there, p.port, p.protocol), [])
                  if (t[0], t[2]) != (callee, p.port) and t[1] in ("0.0.0.0", address)]
        if others:
            holder = others[0][0]
            return NoRoute(
                reach, "DY407",
                f"{written} reaches {callee}:{p.port}, on machine {there}, whose host port "
                f"{p.port} {holder} already publishes",
                f"give {holder} another host port, or run {reach.caller} on {there}"), []
        out.append(Publish(address, p.port, p.port, p.protocol))
    return None, out
