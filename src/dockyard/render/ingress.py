"""The ingress's haproxy configuration for one machine (see plan/ingress.py): pure text.

Every route is a frontend on the host port (inside the container too, so the compose file
publishes `bind:port:port`) and a backend with two server slots. Slot `a` names the service
by its fleet-network name, so plain `docker compose up` of the rendered files works too;
slot `b` is kept in maintenance for the new container of a start-first replace. The engine
sets addresses and states through the admin socket (`set server`, `state drain`, no reload).

HTTP mode with `http-server-close`: each request is balanced on its own, so a drained server
gets no new request even from a kept-alive client, and its sessions end with the requests in
flight. A connection that fails before the request reached a server is retried on another
(`retries`, `redispatch`): a server that went away between two requests costs no request."""

from __future__ import annotations

import re

from dockyard.plan.ingress import ADMIN_SOCKET, Route, ingress_routes
from dockyard.plan.model import Plan

_NOT_NAME = re.compile(r"[^A-Za-z0-9_.:-]")


def config_path(machine: str) -> str:
    """Where the configuration is rendered, beside the compose files."""
    return f"ingress/{machine}.haproxy.cfg"


def proxy_name(route: Route) -> str:
    """The route's frontend and backend name in haproxy (its own name rules)."""
    return _NOT_NAME.sub("_", route.backend)


def render_haproxy(plan: Plan, machine: str) -> str:
    lines = [
        f"# haproxy configuration of the dockyard ingress on machine {machine} of fleet "
        f"{plan.fleet}:",
        "# rendered by dockyard; edit fleet.yaml, not this file. dockyard moves traffic "
        "through the",
        "# admin socket at run time; this file is only read when the ingress starts.",
        "global",
        f"    stats socket {ADMIN_SOCKET} mode 600 level admin",
        "    stats timeout 30s",
        "",
        "defaults",
        "    mode http",
        "    option http-server-close",
        "    option redispatch 1",
        "    retries 3",
        "    timeout connect 5s",
        "    timeout client 10m",
        "    timeout server 10m",
        "    timeout http-request 30s",
        "    timeout http-keep-alive 10s",
        "    timeout tunnel 1h",
    ]
    for route in ingress_routes(plan, machine):
        name = proxy_name(route)
        port = route.port
        lines += [
            "",
            f"frontend {name}",
            f"    bind :{port.host_port}",
            f"    default_backend {name}",
            "",
            f"backend {name}",
            "    balance roundrobin",
            f"    server a {route.service}:{port.port} init-addr libc,none",
            f"    server b 127.0.0.1:{port.port} disabled",
        ]
    return "\n".join(lines) + "\n"
