"""Which of the host ports a machine's services will publish are already bound there, and
by what: facts for check DY103 (checks/ports.py), gathered before `up` starts anything.

On a local engine the kernel's socket tables (/proc/net/tcp, tcp6, udp, udp6) say what is
bound, without binding anything; one container list (running containers, with their
published ports) says which of those a container of Docker holds; for the rest, the process
is looked up by its socket's inode in /proc/<pid>/fd where this user may read it. On a
remote engine only the container list can be asked. The parsers are pure."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dockyard.checks.ports import HostPorts, PortHolder, overlaps
from dockyard.engine.connection import Engine
from dockyard.engine.target import PROJECT_LABEL, SERVICE_LABEL
from dockyard.plan.model import ServicePlan

PROC = Path("/proc")


@dataclass(frozen=True)
class Listener:
    """A bound socket from /proc/net: protocol, address, port and the socket's inode."""

    protocol: str
    address: str
    port: int
    inode: int


def wanted(services: Iterable[ServicePlan]) -> list[tuple[str, int, str]]:
    """(bind address, host port, protocol) of every port the services (and their agents)
    publish."""
    out = []
    for sp in services:
        ports = [p for _, p in sp.published]
        ports += [p for a in sp.spec.agents.values() for _, p in sorted(a.ports.items())
                  if p.publish]
        out += [(p.bind, p.host_port, p.protocol) for p in ports]
    return sorted(set(out))


def parse_proc_net(text: str, protocol: str) -> list[Listener]:
    """Bound sockets of one /proc/net table (tcp: those listening; udp: every bound one)."""
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        local, state, inode = fields[1], fields[3], fields[9]
        if protocol == "tcp" and state != "0A":  # TCP_LISTEN
            continue
        hex_address, _, hex_port = local.partition(":")
        found.append(Listener(protocol, _address(hex_address), int(hex_port, 16), int(inode)))
    return found


def _address(hex_address: str) -> str:
    """/proc/net's address: 32-bit words in the host's (little-endian) byte order."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def listeners(proc: Path = PROC) -> list[Listener]:
    """Every bound socket in this host's network namespace."""
    found = []
    for table, protocol in (("tcp", "tcp"), ("tcp6", "tcp"), ("udp", "udp"), ("udp6", "udp")):
        try:
            text = (proc / "net" / table).read_text()
        except OSError:
            continue
        found += parse_proc_net(text, protocol)
    return found


def process_of(inodes: set[int], proc: Path = PROC) -> dict[int, str]:
    """inode -> "name (pid N)" for the sockets among `inodes` that a process this user may
    look into holds (others: root's, such as docker-proxy, stay unknown)."""
    found: dict[int, str] = {}
    targets = {f"socket:[{i}]": i for i in inodes}
    for entry in proc.iterdir() if inodes else ():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                inode = targets.get(os.readlink(fd))
                if inode is not None and inode not in found:
                    name = (entry / "comm").read_text().strip()
                    found[inode] = f"{name} (pid {entry.name})"
        except OSError:
            continue
        if len(found) == len(targets):
            break
    return found


def published_by_containers(engine: Engine) -> list[PortHolder]:
    """The host ports running containers publish (one engine call)."""
    held = []
    for c in engine.client.api.containers():
        labels = c.get("Labels") or {}
        name = ((c.get("Names") or ["?"])[0]).lstrip("/")
        for p in c.get("Ports") or []:
            if p.get("PublicPort"):
                held.append(PortHolder(
                    port=int(p["PublicPort"]), protocol=str(p.get("Type", "tcp")),
                    address=str(p.get("IP", "")), container=name,
                    project=str(labels.get(PROJECT_LABEL, "")),
                    service=str(labels.get(SERVICE_LABEL, ""))))
    return held


def held_ports(found: Sequence[Listener], containers: Sequence[PortHolder],
               want: Sequence[tuple[str, int, str]], processes: dict[int, str]
               ) -> list[PortHolder]:
    """The holders of the wanted ports: containers first, then any other bound socket (a
    process; named when `processes` knows its inode). Pure."""
    def is_wanted(address: str, port: int, protocol: str) -> bool:
        return any(port == p and protocol == proto and overlaps(address, bind)
                   for bind, p, proto in want)

    held = [h for h in containers if is_wanted(h.address, h.port, h.protocol)]
    by_container = {(h.port, h.protocol) for h in held}
    for s in found:
        if (s.port, s.protocol) in by_container or not is_wanted(s.address, s.port, s.protocol):
            continue  # docker-proxy's socket for a container's port: the container holds it
        held.append(PortHolder(port=s.port, protocol=s.protocol, address=s.address,
                               process=processes.get(s.inode, "")))
        by_container.add((s.port, s.protocol))
    return held


def host_ports(engine: Engine | None, machine: str, project: str,
               services: Sequence[ServicePlan], *, local: bool) -> HostPorts:
    """What holds the host ports `services` will publish on `machine` (see the module).
    `engine` None: no container list (`check` where no engine answers); `local`: the
    machine is this host, so its socket tables count."""
    want = wanted(services)
    names = tuple(sp.name for sp in services)
    if not want:
        return HostPorts(machine=machine, project=project, services=names)
    found = [s for s in listeners() if any(s.port == p for _, p, _ in want)] if local else []
    boxes = published_by_containers(engine) if engine is not None else []
    held = held_ports(found, boxes, want, {})
    unknown = {s.inode for s in found
               if any(h.port == s.port and not h.container for h in held)}
    if unknown:
        held = held_ports(found, boxes, want, process_of(unknown))
    return HostPorts(machine=machine, project=project, services=names, held=tuple(held))
