"""The addresses of machines whose `host:` is a name: what render's cross-machine routes
(plan/routes.py) write into extra_hosts and published ports, which take addresses only.

Each name is resolved once, by the system resolver (so /etc/hosts and mDNS's `.local` apply),
all names at once and each within `timeout` seconds: a name that does not answer in time is
left out, and render says which machine's `host:` it needs. Of the answers, the first IPv4 one
is used (plan.routes.prefer_ipv4): `.local` names often answer IPv6 first, and clients that try
that first hang.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor, wait

from dockyard.manifest.load import Fleet
from dockyard.plan.model import Plan
from dockyard.plan.routes import is_address, prefer_ipv4, reaches

TIMEOUT = 3.0


def _answers(name: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def resolve(names: list[str], timeout: float = TIMEOUT) -> dict[str, str]:
    """name -> its address (IPv4 preferred) for each name that resolved within `timeout`."""
    if not names:
        return {}
    pool = ThreadPoolExecutor(max_workers=min(8, len(names)))
    futures = {name: pool.submit(_answers, name) for name in names}
    wait(futures.values(), timeout=timeout)
    pool.shutdown(wait=False, cancel_futures=True)  # a hung lookup is left behind, not waited
    out: dict[str, str] = {}
    for name, future in futures.items():
        if future.done() and not future.cancelled():
            address = prefer_ipv4(future.result())
            if address:
                out[name] = address
    return out


def machine_addresses(fleet: Fleet, plan: Plan, timeout: float = TIMEOUT) -> dict[str, str]:
    """machine -> address, for the machines a cross-machine route goes to whose `host:` is a
    name (an address as written needs no lookup; a fleet without routes none at all)."""
    wanted = sorted({r.callee_machine for r in reaches(fleet, plan) if not r.loopback})
    named = {m: fleet.spec.machines[m].host for m in wanted
             if fleet.spec.machines[m].host and not is_address(fleet.spec.machines[m].host)}
    found = resolve(sorted(set(named.values())), timeout)
    return {m: found[host] for m, host in named.items() if host in found}
