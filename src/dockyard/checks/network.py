"""DY4xx: how services find each other — names, not loopback or hard-coded addresses."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from dockyard.checks.ports import together
from dockyard.checks.rules import Rule, copies
from dockyard.findings import Code, Finding, Severity
from dockyard.manifest.load import Fleet
from dockyard.manifest.models import ServiceSpec
from dockyard.plan.model import Plan
from dockyard.plan.routes import HOST_KEY, env_values, is_address, routes

CODES = {c.code: c for c in (
    Code("DY401", Severity.ERROR, "an env value or command argument points at localhost, "
         "127.0.0.1 or 0.0.0.0: "
         "inside a container that is the container itself",
         "use the other service's name, e.g. `redis://store:6379`"),
    Code("DY402", Severity.WARNING, "an env value hard-codes the IP address of a machine or "
         "a published port, or a machine's `host:` name",
         "use the service's name (on another machine too: render points it there) or a "
         "variable"),
    Code("DY403", Severity.WARNING, "a data volume uses a relative host path",
         "use an absolute host path or a named volume"),
    Code("DY405", Severity.WARNING, "an env URL names a host that is no service or machine of "
         "the fleet", "correct the name to the service that answers, or add the service"),
    Code("DY406", Severity.WARNING, "an env value or argument hard-codes a container address "
         "(Docker's 172.16.0.0/12 pool): it changes whenever the container is recreated",
         "use the service's name, which the fleet's network resolves"),
    Code("DY404", Severity.ERROR, "a service reaches one on another machine (`depends_on`, or "
         "a URL or host:port in its env or command naming it) whose machine has no `host:` "
         "address: render has nothing to point the name at",
         "set `machines.<m>.host` to the address other machines reach it at, or co-locate "
         "them"),
    Code("DY407", Severity.ERROR, "a service reaches one on another machine on a port that "
         "cannot be published there: the callee declares no such port, it is "
         "`publish: false`, or another service holds that host port on its machine",
         "declare the port in the callee's `ports:` (render publishes it on its machine's "
         "address only), free the host port, or co-locate them"),
    Code("DY408", Severity.ERROR, "an env value or argument points at localhost or 127.0.0.1 "
         "on a port that only a service on another machine listens on",
         "write the service's name (`http://embedder:8001`): render points it at that "
         "machine"),
)}

LOOPBACK = {"localhost", "127.0.0.1", "0.0.0.0", "::1", "[::1]", "ip6-localhost"}
_IP = r"\d{1,3}(?:\.\d{1,3}){3}"
# scheme://[user@]host[:port] or host:port (host: a loopback name or an IPv4 address)
_TARGET = re.compile(
    r"(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?:[^@/\s]*@)?)?"
    rf"(?<![\w.-])(?P<host>localhost|ip6-localhost|\[::1\]|{_IP})"
    r"(?::(?P<port>\d{1,5}))?(?![\w.-])")
# ... unless the key configures what the service itself listens on.
_LISTEN_KEY = re.compile(r"BIND|LISTEN|^(HOST|HOSTNAME|SERVER_HOST|UVICORN_HOST|GUNICORN_HOST|"
                         r"APP_HOST|HTTP_HOST|WEB_HOST|API_HOST)$", re.I)
# Keys whose value browsers or outside clients use, not this container: the public URL of a
# site, an OAuth callback, an endpoint "external" to the fleet (Supabase's API_EXTERNAL_URL,
# NextAuth's NEXTAUTH_URL, Langfuse's *_EXTERNAL_ENDPOINT).
_PUBLIC_KEY = re.compile(r"(^|_)(SITE|PUBLIC|EXTERNAL|BROWSER|REDIRECT|CALLBACK|ORIGINS?|CORS|"
                         r"FRONTEND|CONSOLE|NEXTAUTH)(_|$)", re.I)
# A command-line flag that takes what the program listens on (`-listen-client-urls URL`).
_LISTEN_FLAG = re.compile(r"-[\w-]*(listen|bind)[\w-]*[= ]?\S*$", re.I)
_CONTAINER_IP = re.compile(r"(?<![\d.])172\.(1[6-9]|2\d|3[01])\.\d{1,3}\.\d{1,3}(?![\d.])")
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*")
_SCHEMES = {"http": 80, "https": 443, "ws": 80, "wss": 443}


@dataclass(frozen=True)
class _Index:
    """Who answers on which port: built once, so each env value is checked in O(1)."""

    by_port: dict[int, list[str]]  # container port -> services
    by_host_port: dict[tuple[str, int], tuple[str, int]]  # (machine, published) -> svc, port
    machine_of_ip: dict[str, str]  # machines.<m>.host or a published bind address -> m
    machines: dict[str, tuple[str, ...]]  # service -> its machines


def _index(fleet: Fleet, plan: Plan) -> _Index:
    by_port: dict[int, list[str]] = {}
    by_host_port: dict[tuple[str, int], tuple[str, int]] = {}
    ip: dict[str, str] = {m.host: n for n, m in sorted(fleet.spec.machines.items()) if m.host}
    machines: dict[str, list[str]] = {}
    for copy in copies(plan):
        machines.setdefault(copy.name, []).append(copy.machine)
        ports = [*copy.spec.ports.values(),
                 *(p for a in copy.spec.agents.values() for p in a.ports.values())]
        for port in ports:
            if copy.machine == machines[copy.name][0]:
                by_port.setdefault(port.port, []).append(copy.name)
            if port.publish:
                by_host_port.setdefault((copy.machine, port.host_port), (copy.name, port.port))
                if re.fullmatch(_IP, port.bind) and port.bind not in LOOPBACK:
                    ip.setdefault(port.bind, copy.machine)
    return _Index(by_port, by_host_port, ip, {k: tuple(v) for k, v in machines.items()})


def _own_words(name: str, svc: ServiceSpec) -> set[str]:
    """What a service's own settings start with: its name, its image's (SEARXNG_BASE_URL in
    searxng/searxng, LOGFLARE_NODE_HOST in supabase/logflare)."""
    words = {name.lower(), name.replace("-", "_").lower()}
    if svc.image:
        repo = svc.image.split("@")[0].rsplit("/", 1)[-1].split(":")[0].lower()
        words |= {repo, repo.replace("-", "_")}
    return words


def _own_ports(svc: ServiceSpec) -> set[int]:
    return {p.port for p in svc.ports.values()} | {
        p.port for a in svc.agents.values() for p in a.ports.values()}


def loopback_targets(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY401 (loopback) and DY402 (hard-coded address) in env values and URLs."""
    built: list[_Index] = []  # built on the first suspicious value: most fleets have none
    elsewhere: set[tuple[str | int, ...]] = set()  # DY408's: a port only another machine has
    for name, svc in fleet.spec.services.items():
        if not svc.env and not svc.agents and not svc.command and not svc.entrypoint:
            continue
        for path, key, value in env_values(name, svc):
            if "localhost" not in value and "." not in value and "::1" not in value:
                continue
            matches = list(_TARGET.finditer(value))
            if not matches:
                continue
            if not built:
                built.append(_index(fleet, plan))
                elsewhere.update(m.reach.at for m in routes(fleet, plan).missing
                                 if m.code == "DY408")
            if path in elsewhere:
                continue
            index = built[0]
            own = _own_ports(svc)
            here = index.machines.get(name, ("",))[0]
            if _PUBLIC_KEY.search(key) or key.split("_")[0].lower() in _own_words(name, svc):
                continue  # for browsers and outside clients, or the service's own address
            for match in matches:
                if key in ("command", "entrypoint") and _listens(svc, path, value, match):
                    continue
                finding = _judge(fleet, index, name, here, own, path, key, value, match)
                if finding:
                    yield finding
                    break


def _listens(svc: ServiceSpec, path: tuple[str | int, ...], value: str,
             match: re.Match[str]) -> bool:
    """An address a command listens on: after a listen/bind flag, or 0.0.0.0 (all interfaces:
    nothing dials it)."""
    if match["host"] == "0.0.0.0":
        return True
    before = value[:match.start()].rstrip()
    index = path[-1]
    if not before and len(path) == 4 and isinstance(index, int) and index > 0:
        before = getattr(svc, str(path[2]))[index - 1]  # `[-listen-client-urls, URL]`
    return bool(_LISTEN_FLAG.search(before))


def machine_names(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY402 for a machine's `host:` written as a name (`http://spark1.local:8888`): inside a
    container such a name may resolve IPv6 first and hang (`.local` names do), and it goes
    around the route render makes for the service's own name, which points at the IPv4
    address."""
    named = {m.host.lower(): n for n, m in sorted(fleet.spec.machines.items())
             if m.host and "." in m.host and not is_address(m.host)}
    if not named:
        return
    pattern = re.compile(r"(?<![\w.-])(?P<host>" + "|".join(
        re.escape(h) for h in sorted(named, key=len, reverse=True))
        + r")(?::(?P<port>\d{1,5}))?(?![\w-]|\.\w)", re.I)
    index = _index(fleet, plan)
    for name, svc in sorted(fleet.spec.services.items()):
        for path, key, value in env_values(name, svc):
            match = pattern.search(value)
            if match is None or match["host"].lower() not in _VARIABLE.sub(
                    "", fleet.raw.get(path, value)).lower():
                continue  # none, or it came from a variable (`http://${SPARK1_HOST}:8888`)
            machine = named[match["host"].lower()]
            port = int(match["port"]) if match["port"] else None
            target = next((s for s in index.by_port.get(port, []) if machine in
                           index.machines.get(s, ())), "") if port else ""
            fix = (f"write `{value.replace(match.group(0), f'{target}:{port}', 1)}`: render "
                   f"points {target} at machine {machine}'s IPv4 address" if target else
                   "use the name of the service that answers there: render points it at the "
                   "machine's IPv4 address")
            yield Finding(
                "DY402", Severity.WARNING, fleet.where(*path),
                f"service {name}: {key} hard-codes {match['host']}, the host name of machine "
                f"{machine}" + (f" where {target} answers" if target else "")
                + ": inside a container it may resolve IPv6 first and hang (`.local` names do)",
                fix, service=name)


def container_addresses(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY406: `REDIS_HOST: 172.17.0.3` works until the container is recreated."""
    machine_ips = {m.host for m in fleet.spec.machines.values() if m.host}
    for name, svc in sorted(fleet.spec.services.items()):
        for path, key, value in env_values(name, svc):
            if "172." not in value:
                continue
            match = _CONTAINER_IP.search(value)
            if match is None or match.group(0) in machine_ips:
                continue
            if match.group(0) not in _VARIABLE.sub("", fleet.raw.get(path, value)):
                continue  # it came from a variable
            yield Finding(
                "DY406", Severity.WARNING, fleet.where(*path),
                f"service {name}: {key} hard-codes {match.group(0)}, a container address from "
                "Docker's pool: it changes whenever that container is recreated",
                "use the name of the service that answers there, which the fleet's network "
                "resolves", service=name)


def _judge(fleet: Fleet, index: _Index, name: str, here: str, own: set[int],
           path: tuple[str | int, ...], key: str, value: str,
           match: re.Match[str]) -> Finding | None:
    host, scheme, port_text = match["host"], match["scheme"], match["port"]
    if not scheme and not port_text:
        # A bare address is a target only under a key such as REDIS_HOST (not HOST, BIND...).
        if not HOST_KEY.search(key) or _LISTEN_KEY.search(key) or host == "0.0.0.0":
            return None
        prefix = key.rsplit("_", 1)[0].lower()
        if prefix in (name, name.replace("-", "_")):
            return None
    port = int(port_text) if port_text else _SCHEMES.get((scheme or "").lower())
    if port is not None and port in own:
        return None  # the service talking to itself: loopback is right
    loopback = host in LOOPBACK
    if not loopback and host not in index.machine_of_ip:
        return None
    if not loopback and host not in _VARIABLE.sub("", fleet.raw.get(path, host)):
        return None  # the address came from a variable (`http://${B_HOST}:80`): not hard-coded
    target = _target(index, here, host, port)
    if loopback and port is not None and _host_side(index, here, port):
        return None  # a published host port that differs from the container's: host-side URL
    if target and not together(frozenset(fleet.spec.services[name].profiles),
                               frozenset(fleet.spec.services[target[0]].profiles)):
        return None  # a placeholder for a backend of another profile, never run beside it
    shown = f"{scheme}://" if scheme else ""
    where = fleet.where(*path)
    if target:
        svc_name, svc_port = target
        suggestion = f"{shown}{svc_name}" + (f":{svc_port}" if svc_port else "")
        replaced = value.replace(match.group(0), suggestion, 1)
        fix = (f"write `{replaced}` in the {key}" if key in ("command", "entrypoint")
               else f"write `{key}: {replaced}`")
    elif loopback:
        fix = ("use the name of the service that answers there; for a program on the host "
               "itself, `host.docker.internal` (with `extra_hosts: host-gateway`)")
    else:
        fix = ("use the service's name (on another machine too: render points it there) or "
               "pass the address in as ${VAR}")
    if loopback:
        return Finding(
            "DY401", Severity.ERROR, where,
            f"service {name}: {'an argument of its ' if key in ('command', 'entrypoint') else ''}"
            f"{key} points at {host}" + (f":{port}" if port else "")
            + ", which inside a container is the container itself"
            + (f", not {target[0]}" if target else ""), fix, service=name)
    owner = index.machine_of_ip[host]
    return Finding(
        "DY402", Severity.WARNING, where,
        f"service {name}: {key} hard-codes {host}, the address of machine {owner}"
        + (f" where {target[0]} answers" if target else ""), fix, service=name)


def _host_side(index: _Index, here: str, port: int) -> bool:
    """`localhost:9090` where minio publishes 9090 -> 9000: an address on the host (for a
    browser), which no container of the fleet would dial for minio."""
    owner = index.by_host_port.get((here, port))
    return owner is not None and owner[1] != port


def _target(index: _Index, here: str, host: str, port: int | None) -> tuple[str, int] | None:
    """The service a (host, port) most likely means, and the container port to use."""
    if port is None:
        return None
    machine = index.machine_of_ip.get(host, here)
    owner = index.by_host_port.get((machine, port))
    if owner:
        return owner
    candidates = index.by_port.get(port, [])
    # One that runs on this machine: a name only resolves among containers of one machine.
    near = next((c for c in candidates if machine in index.machines.get(c, ())), None)
    if near or candidates:
        return near or candidates[0], port
    return None


def relative_volumes(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY403: `./data:/data` depends on the folder `up` runs from, and on one machine."""
    for name, svc in sorted(fleet.spec.services.items()):
        for i, volume in enumerate(svc.volumes):
            source = volume.split(":")[0]
            if not (source in (".", "..") or source.startswith(("./", "../"))
                    or ("/" in source and not source.startswith(("/", "~", "$")))):
                continue
            target = volume.split(":")[1] if ":" in volume else source
            named = target.strip("/").split("/")[-1] or "data"
            absolute = f"/srv/{fleet.spec.fleet}/{source.lstrip('./')}:{target}"
            # A file (init.sql, a config) as a named volume would be an empty folder.
            single = (fleet.root / source).is_file() if fleet.path.is_file() else (
                "." in source.rsplit("/", 1)[-1].lstrip("."))
            yield Finding(
                "DY403", Severity.WARNING, fleet.where("services", name, "volumes", i),
                f"service {name} mounts the relative host path {source}: it resolves against "
                "the manifest's folder on whichever machine runs it",
                f"use an absolute path (`{absolute}`); a named volume would mount an empty "
                "folder where the file should be" if single else
                f"use an absolute path (`/srv/{fleet.spec.fleet}/{named}:{target}`) or a "
                f"named volume (`{named}:{target}`)", service=name)


def cross_machine_routes(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY404, DY407, DY408: a service reaches one on another machine (depends_on, or a URL
    naming it) and no route can serve it (plan/routes.py decides, as render does)."""
    for missing in routes(fleet, plan).missing:
        reach = missing.reach
        yield Finding(missing.code, CODES[missing.code].severity, fleet.where(*reach.at),
                      f"service {reach.caller} on {reach.machine}: {missing.why}", missing.fix,
                      service=reach.caller)


_URL_HOST = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/\s]*@)?"
                       r"(?P<host>[A-Za-z0-9][A-Za-z0-9_-]*)(?=[:/]|$)")
_OUTSIDE = {"host.docker.internal", "host-gateway", "gateway.docker.internal"}


def unknown_hosts(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY405: `http://pc2-observability:9100`, and no service of that name. Only one-word
    hosts are judged (a dotted name is outside the fleet); a host from a variable is not."""
    known = {*fleet.spec.services, *fleet.spec.machines, *LOOPBACK, *_OUTSIDE,
             *(m.host for m in fleet.spec.machines.values() if m.host)}
    for name, svc in sorted(fleet.spec.services.items()):
        for path, _key, value in env_values(name, svc):
            if "://" not in value or path[-2] in ("command", "entrypoint"):
                continue
            written = fleet.raw.get(path, "")
            for match in _URL_HOST.finditer(value):
                host = match["host"]
                if host in known or host.isdigit():
                    continue
                if written and host not in written:
                    continue  # the host came from a variable: ${PC2_HOST}
                close = sorted(s for s in fleet.spec.services if host in s or s in host)
                yield Finding(
                    "DY405", Severity.WARNING, fleet.where(*path),
                    f"service {name}: {path[-1]} points at host {host}, which is no service or "
                    "machine of this fleet", (f"did you mean {close[0]}? " if close else "")
                    + "use the name of the service that answers", service=name)
                break


RULES: list[Rule] = [loopback_targets, machine_names, container_addresses, relative_volumes,
                     cross_machine_routes, unknown_hosts]
