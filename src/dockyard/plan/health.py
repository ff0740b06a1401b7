"""What a service's health check runs inside its container."""

from __future__ import annotations

from dockyard.manifest.models import HealthSpec, ServiceSpec


def health_port(svc: ServiceSpec) -> int:
    """The container port an HTTP probe uses: `health.port` (number or name) or the first port."""
    health = svc.health
    if health and isinstance(health.port, int):
        return health.port
    if health and isinstance(health.port, str) and health.port:
        return svc.ports[health.port].port
    return next(iter(sorted(svc.ports.items())))[1].port


def health_url(svc: ServiceSpec, host: str = "127.0.0.1", port: int | None = None) -> str:
    assert svc.health is not None
    return f"http://{host}:{port or health_port(svc)}{svc.health.http}"


def health_test(svc: ServiceSpec, *, has_python: bool) -> list[str]:
    """The HEALTHCHECK / compose `test:` for a service, exec-form where possible."""
    health: HealthSpec | None = svc.health
    if health is None:
        return ["NONE"]
    if health.cmd:
        return ["CMD", *health.cmd]
    url = health_url(svc)
    if has_python:
        # Images built by dockyard carry python3 but not curl: no extra package for a probe.
        code = f"import urllib.request; urllib.request.urlopen({url!r}, timeout={health.timeout:g})"
        return ["CMD", "python3", "-c", code]
    return ["CMD-SHELL", f"curl -fsS {url} >/dev/null || wget -qO- {url} >/dev/null || exit 1"]
