"""Health probes run by dockyard itself, so a dependent starts the moment its dependencies
answer, instead of after the engine's next healthcheck interval."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dockyard.manifest.models import ServiceSpec
from dockyard.plan.health import health_port, health_test

Probe = Callable[[Any, ServiceSpec], tuple[bool, str]]


@dataclass(frozen=True)
class ProbeResult:
    service: str
    healthy: bool
    seconds: float  # from the start of waiting until healthy (or until given up)
    output: str  # the last probe's answer or error
    state: str  # the container's state at the end ("running", "exited", ...)


def container_ip(container: Any) -> str:
    networks = container.attrs.get("NetworkSettings", {}).get("Networks", {}) or {}
    for net in sorted(networks):
        ip = networks[net].get("IPAddress")
        if ip:
            return str(ip)
    return ""


def probe_once(container: Any, svc: ServiceSpec) -> tuple[bool, str]:
    """One probe: the HTTP path on the container's address, or the command inside it."""
    health = svc.health
    if health is None:
        # The image's own HEALTHCHECK, when it has one (and `image_health` keeps it): the
        # engine runs it, dockyard waits for its verdict.
        state = (container.attrs.get("State") or {}).get("Health") or {}
        if svc.image_health and state.get("Status") in ("starting", "unhealthy", "healthy"):
            log = state.get("Log") or [{}]
            said = str(log[-1].get("Output") or "").strip()[:200]
            return (state["Status"] == "healthy",
                    f"the image's own health check: {state['Status']}" + (
                        f" ({said})" if said else ""))
        return True, "no health check: running counts as healthy"
    if health.cmd:
        return _exec(container, health.cmd)[:2]
    ip = container_ip(container)
    if not ip:
        return False, "container has no network address yet"
    url = f"http://{ip}:{health_port(svc)}{health.http}"
    try:
        with urllib.request.urlopen(url, timeout=min(health.timeout, 5.0)) as reply:
            body = reply.read(512).decode(errors="replace")
            return 200 <= reply.status < 400, f"HTTP {reply.status} {body}".strip()
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code} {exc.read(512).decode(errors='replace')}".strip()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"{url}: {reason}"


def probe_inside(container: Any, svc: ServiceSpec) -> tuple[bool, str]:
    """One probe run inside the container, for an engine whose container addresses this host
    cannot reach: the HTTP check as the rendered healthcheck runs it (python3, which images
    dockyard builds have; else curl or wget through the shell)."""
    if svc.health is None or not svc.health.http:
        return probe_once(container, svc)
    ok, text, code = _exec(container, health_test(svc, has_python=True)[1:])
    if code in (126, 127):  # no python3 in the image
        ok, text, code = _exec(container, ["/bin/sh", "-c",
                                           health_test(svc, has_python=False)[1]])
    return ok, text


def _exec(container: Any, argv: list[str]) -> tuple[bool, str, int]:
    from docker.errors import APIError

    try:
        code, out = container.exec_run(argv, demux=False)
    except APIError as exc:  # e.g. 409: the container is restarting
        return False, str(exc.explanation or exc), -1
    text = (out or b"").decode(errors="replace").strip()
    return code == 0, text or f"exit {code}", int(code if code is not None else -1)


def wait_healthy(name: str, svc: ServiceSpec, get_container: Callable[[], Any], *,
                 deadline: float, probe: Probe = probe_once, poll: float = 0.05,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, one_shot: bool = False,
                 stop: threading.Event | None = None) -> ProbeResult:
    """Probe until healthy, until the container stops, or until `deadline` seconds pass.

    An unhealthy answer before the deadline is not a failure: a model server may take
    minutes to load (compose's --wait gives up at the first `unhealthy`, compose#12416).
    A one-shot (a service others wait for with `condition: completed`) is done when its
    container exits 0, and failed when it exits otherwise. `stop` set: give up now (Ctrl-C)."""
    start = clock()
    output, state = "not probed yet", "unknown"
    while True:
        container = get_container()
        if container is not None:
            container.reload()
            state = str(container.status)
            restarts = int(container.attrs.get("RestartCount", 0) or 0)
            code = container.attrs.get("State", {}).get("ExitCode")
            if one_shot and state in ("exited", "dead") and code == 0 and not restarts:
                return ProbeResult(name, True, clock() - start, "completed (exit code 0)", state)
            # A restart policy hides a crash as "restarting": the process did exit.
            if state in ("exited", "dead") or restarts > 0 or state == "restarting":
                # Once the restart policy has started it again, the engine reports the new
                # run's exit code (0): the old one is only in the logs.
                said = (f"container exited (exit code {code})" if state != "running"
                        else f"container exited and its restart policy started it again "
                             f"({restarts} restart(s))")
                if one_shot and restarts:
                    said += "; a one-shot others wait for needs `restart: \"no\"`"
                return ProbeResult(name, False, clock() - start, said, state)
            if state == "running" and one_shot:
                output = "running: waiting for it to exit 0"
            elif state == "running":
                ok, output = probe(container, svc)
                if ok:
                    return ProbeResult(name, True, clock() - start, output, state)
        if clock() - start > deadline:
            return ProbeResult(name, False, clock() - start, output, state)
        if stop is not None and stop.is_set():
            return ProbeResult(name, False, clock() - start, "interrupted", state)
        wait = poll if svc.health is None or svc.health.http else max(poll, 0.25)
        if stop is not None:
            stop.wait(wait)
        else:
            sleep(wait)
