"""The machine's ingress at run time, and the start-first replace that it makes possible.

haproxy's runtime API is reached through `docker exec` of socat on its admin socket (a unix
socket inside the container: nothing on the fleet's network can reconfigure it). Each
route's backend has two slots (render/ingress.py): `a` serves, `b` waits in maintenance.

`replace_start_first` puts a service's new container beside the old one:
1. slot `a` of each of its routes is pointed at the old container (it is already, unless
   something recreated it behind the ingress's back);
2. compose makes one more container of the service from `compose_file` (`--scale N+1
   --no-recreate`: the old one is kept as it is), with the new image and configuration;
3. dockyard probes the new container until its health deadline. If it never becomes
   healthy, exits or restarts, it is removed and nothing else changes: traffic never left
   the old one;
4. slot `b` gets the new container's address and goes ready, slot `a` is drained: no new
   request goes to the old container, the ones in flight finish (bounded by `drain`);
5. slot `a` takes the new address too and goes ready, `b` drains and goes back to
   maintenance, so `a` serves again;
6. the old container is stopped (SIGTERM, its stop grace) and removed.
Going back (a rollback) is the same function with the old compose file: the old version
starts beside the new one and takes the traffic only once it is healthy.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.engine.probe import ProbeResult, wait_healthy
from dockyard.engine.run import run
from dockyard.engine.target import HASH_LABEL, PROJECT_LABEL, SERVICE_LABEL, Target
from dockyard.errors import EngineError
from dockyard.events import Progress, Sink
from dockyard.plan.ingress import ADMIN_SOCKET, INGRESS, SLOTS, Route, ingress_routes
from dockyard.render.ingress import proxy_name

DRAIN = 30.0  # seconds the old container's requests in flight may take to finish
POLL = 0.05


def _quiet(_: object) -> None:
    return None


def service_containers(target: Target, service: str) -> list[Any]:
    """Every container of `service` in the target's project (two during a replace), oldest
    first."""
    found = target.engine.client.containers.list(all=True, filters={"label": [
        f"{PROJECT_LABEL}={target.project}", f"{SERVICE_LABEL}={service}"]})
    return sorted(found, key=lambda c: str(c.attrs.get("Created", "")))


class Ingress:
    """The ingress container of one machine and its runtime API."""

    def __init__(self, target: Target) -> None:
        self.target = target
        running = [c for c in service_containers(target, INGRESS) if c.status == "running"]
        if not running:
            raise EngineError(
                f"the ingress of machine {target.machine} is not running, so traffic cannot "
                "move between two containers", fix="`dockyard up` starts it")
        self.container = running[-1]

    def command(self, *lines: str) -> str:
        """Send runtime API commands (one line, `;`-separated) and return haproxy's answer."""
        text = "; ".join(lines)
        script = (f"printf '%s\\n' {shlex.quote(text)} | "
                  f"socat -t 5 - UNIX-CONNECT:{ADMIN_SOCKET}")
        code, out = self.container.exec_run(["/bin/sh", "-c", script])
        said = (out or b"").decode(errors="replace").strip()
        if code != 0:
            raise EngineError(f"the ingress's runtime API did not answer `{text}`: {said}")
        # haproxy answers an accepted `set server` with nothing, a refused one with a reason.
        bad = [line for line in said.splitlines() if line and not line.startswith("#") and
               any(w in line.lower() for w in ("unknown", "no such", "invalid", "require",
                                               "failed", "not found"))]
        if bad and not text.startswith("show"):
            raise EngineError(f"the ingress refused `{text}`: {bad[0]}")
        return said

    def sessions(self) -> dict[tuple[str, str], int]:
        """(backend, slot) -> requests in flight there (`show stat`: scur)."""
        out = self.command("show stat")
        header: list[str] = []
        found: dict[tuple[str, str], int] = {}
        for line in out.splitlines():
            if line.startswith("# "):
                header = line[2:].split(",")
                continue
            fields = line.split(",")
            if not header or len(fields) < len(header):
                continue
            row = dict(zip(header, fields, strict=False))
            if row.get("svname") in ("FRONTEND", "BACKEND"):
                continue
            found[(row["pxname"], row["svname"])] = int(row.get("scur") or 0)
        return found

    def slots(self, backend: str) -> dict[str, tuple[str, int]]:
        """slot -> (address, admin state) (`show servers state`; 0 ready, bit 0 maintenance,
        bit 3 drain)."""
        out = self.command(f"show servers state {backend}")
        found: dict[str, tuple[str, int]] = {}
        for line in out.splitlines():
            fields = line.split()
            if len(fields) > 6 and not line.startswith("#") and fields[1] == backend:
                found[fields[3]] = (fields[4], int(fields[6]))
        return found

    def serving(self, backend: str, candidates: list[Any]) -> Any:
        """Of `candidates` (containers), the one the backend's ready slot sends requests to
        (slot `a` first); the oldest when none is."""
        slots = self.slots(backend)
        for slot in SLOTS:
            addr, admin = slots.get(slot, ("", 1))
            for c in candidates:
                if admin == 0 and addr in _addresses(c):
                    return c
        return candidates[0]

    def drain(self, slots: list[tuple[str, str]], timeout: float,
              clock: Callable[[], float] = time.monotonic) -> float:
        """Put `slots` in drain and wait until none has a request in flight (at most
        `timeout` seconds); the seconds it took."""
        start = clock()
        if not slots:
            return 0.0
        self.command(*(f"set server {b}/{s} state drain" for b, s in slots))
        while clock() - start < timeout:
            now = self.sessions()
            if all(now.get(slot, 0) == 0 for slot in slots):
                break
            time.sleep(POLL)
        return clock() - start


def _addresses(container: Any) -> set[str]:
    nets = ((container.attrs.get("NetworkSettings") or {}).get("Networks") or {})
    return {str(n.get("IPAddress")) for n in nets.values() if n.get("IPAddress")}


def address(container: Any, ingress: Any) -> str:
    """The container's address on a network the ingress shares with it."""
    theirs = ((ingress.attrs.get("NetworkSettings") or {}).get("Networks") or {})
    mine = ((container.attrs.get("NetworkSettings") or {}).get("Networks") or {})
    for name in sorted(mine):
        if name in theirs and mine[name].get("IPAddress"):
            return str(mine[name]["IPAddress"])
    raise EngineError(f"container {container.name} shares no network with the ingress",
                      fix="let the service join the `default` network (or one the ingress "
                          "is on)")


def _mine(target: Target, service: str) -> list[Route]:
    return [r for r in ingress_routes(target.plan, target.machine) if r.service == service]


def sync(target: Target, ingress: Ingress | None = None) -> None:
    """Point slot `a` of every route at its service's running container and keep `b` in
    maintenance (after `up` recreated a service the ingress fronts, its address changed)."""
    mine = ingress_routes(target.plan, target.machine)
    if not mine:
        return
    ingress = ingress or Ingress(target)
    ingress.container.reload()
    lines = []
    for route in mine:
        running = [c for c in service_containers(target, route.service)
                   if c.status == "running"]
        if not running:
            continue
        name = proxy_name(route)
        ip = address(running[-1], ingress.container)
        lines += [f"set server {name}/a addr {ip} port {route.port.port}",
                  f"set server {name}/a state ready", f"set server {name}/b state maint"]
    if lines:
        ingress.command(*lines)


@dataclass
class Replaced:
    """How a start-first replace went. `healthy` false: the new container was removed and
    the old one kept every request; `result` and `logs` say why."""

    service: str
    healthy: bool
    result: ProbeResult
    old: list[str] = field(default_factory=list)  # the containers replaced (names)
    new: str = ""
    logs: str = ""  # the new container's last 20 log lines when it failed
    seconds: float = 0.0  # from start to the old container removed (or the new one)
    drained: float = 0.0  # seconds waiting for the old one's requests in flight


def _settle(target: Target, service: str, ingress: Ingress | None,
            mine: list[Route]) -> list[Any]:
    """The service's one serving container (none, or the one the ingress sends requests
    to): what a replace cut short (kill -9) left beside it is stopped and removed."""
    everything = service_containers(target, service)
    running = [c for c in everything if c.status == "running"]
    keep = running[:1]
    if len(running) > 1:
        keep = [ingress.serving(proxy_name(mine[0]), running)] if ingress and mine \
            else running[:1]
    for c in everything:
        if c not in keep:
            if c.status == "running":
                c.stop()
            c.remove(force=True)
    if keep and ingress is not None:
        sync(target, ingress)
    return keep


def replace_start_first(target: Target, service: str, *, compose_file: Path | None = None,
                        deadline: float | None = None, drain: float = DRAIN,
                        emit: Sink = _quiet, unless: tuple[str, str] = ("", ""),
                        started: Callable[[], None] = lambda: None) -> Replaced:
    """Replace `service`'s container start-first (see the module): the new one, made from
    `compose_file` (default: the rendered file), takes the traffic only once healthy.

    `unless` (config hash, image ID): when the one serving container already has both,
    nothing is replaced (a step run again after a kill, a rollback of the service that
    failed). `started` is called once the new container runs, before it is probed (the
    upgrade's kill point)."""
    t0 = time.monotonic()
    sp = target.plan.services[service]
    file = compose_file or target.compose_file
    mine = _mine(target, service)
    ingress = Ingress(target) if mine else None
    olds = _settle(target, service, ingress, mine)
    if olds and unless[0] and olds[0].labels.get(HASH_LABEL) == unless[0] \
            and str(olds[0].attrs.get("Image")) == unless[1]:
        ok = ProbeResult(service, True, 0.0, "already running this version", "running")
        return Replaced(service, True, ok, [], olds[0].name, "", time.monotonic() - t0)
    before = {c.id for c in olds}
    argv = target.engine.compose_argv(target.project, [file], target.profiles)
    argv += ["--project-directory", str(target.compose_file.parent), "up", "--detach",
             "--no-deps", "--no-build", "--no-recreate", "--scale",
             f"{service}={len(before) + 1}", service]
    emit(Progress(f"{service}: starting its new container beside the old one"))
    run(argv, env=dict(target.fleet.compose_env), timeout=900)
    made = [c for c in service_containers(target, service) if c.id not in before]
    if not made:
        raise EngineError(f"compose made no new container for service {service}")
    new = made[-1]
    started()
    health = sp.spec.health
    limit = deadline if deadline is not None else health.deadline if health else 10.0

    def get() -> Any:
        return new

    result = wait_healthy(service, sp.spec, get, deadline=limit, probe=target.engine.probe)
    if not result.healthy:
        logs = new.logs(tail=20).decode(errors="replace").rstrip()
        new.remove(force=True)
        emit(Progress(f"{service}: its new container did not become healthy; removed it, "
                      "the old one kept serving"))
        return Replaced(service, False, result, [c.name for c in olds], new.name, logs,
                        time.monotonic() - t0)
    new.reload()
    drained = 0.0
    if ingress is not None:
        ingress.container.reload()
        ip = address(new, ingress.container)
        names = [proxy_name(r) for r in mine]
        emit(Progress(f"{service}: new container healthy; traffic moves to it, the old one "
                      "drains"))
        # One line: haproxy runs it as one, so no new request reaches the old container
        # once the new one takes them.
        ingress.command(*(line for r, n in zip(mine, names, strict=True) for line in (
            f"set server {n}/b addr {ip} port {r.port.port}", f"set server {n}/b state ready",
            f"set server {n}/a state drain")))
        drained = ingress.drain([(n, "a") for n in names], drain)
        ingress.command(*(line for r, n in zip(mine, names, strict=True) for line in (
            f"set server {n}/a addr {ip} port {r.port.port}", f"set server {n}/a state ready",
            f"set server {n}/b state drain")))
        ingress.drain([(n, "b") for n in names], drain)
        ingress.command(*(f"set server {n}/b state maint" for n in names))
    for old in olds:
        old.stop()
        old.remove(force=True)
    for c in service_containers(target, service):  # one that never ran (a crashed replace)
        if c.id != new.id and c.status != "running":
            c.remove(force=True)
    emit(Progress(f"{service}: old container stopped and removed"))
    return Replaced(service, True, result, [c.name for c in olds], new.name, "",
                    time.monotonic() - t0, drained)
