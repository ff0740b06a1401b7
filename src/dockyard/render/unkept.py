"""What the Kubernetes and Swarm renderers both look for that their target cannot keep."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator

from dockyard.manifest.interpolate import variables
from dockyard.manifest.load import Fleet
from dockyard.manifest.models import ServiceSpec
from dockyard.plan.model import Plan

Place = tuple[str | int, ...]


def unread_secret(fleet: Fleet, plan: Plan, rendered: Collection[str],
                  handled: Collection[Place], secrets: Collection[str]) -> Place | None:
    """The first place of a rendered field that reads a secret (`${S:+alt}` does not) and
    that the renderer neither wrote as a reference nor refused: it would leak the value."""
    for at, raw in sorted(fleet.raw.items(), key=lambda kv: str(kv[0])):
        if (len(at) > 2 and at[0] == "services" and at[2] in rendered and at not in handled
                and str(at[1]) in plan.services
                and any(n in secrets for n, op in variables(raw) if not op.endswith("+"))):
            return at
    return None


def refuse_unread(fleet: Fleet, plan: Plan, rendered: Collection[str],
                  handled: Collection[Place], secrets: Collection[str],
                  refuse: Callable[[Place, str, str], Exception]) -> None:
    """Raise `refuse(place, service, field)` for the first unread_secret, if any."""
    at = unread_secret(fleet, plan, rendered, handled, secrets)
    if at is not None:
        raise refuse(at, str(at[1]), f"`{'.'.join(map(str, at[2:]))}`")


def bind_mounts(name: str, svc: ServiceSpec) -> Iterator[tuple[Place, str]]:
    """(manifest place, host path) of each bind mount of a service."""
    from dockyard.render.dockerfile import _is_bind

    for i, volume in enumerate(svc.volumes):
        if ":" in volume and _is_bind(volume):
            yield ("services", name, "volumes", i), volume.split(":")[0]


# Container settings the compose renderer writes; a target that leaves one out says so (a
# `lost` line each), so none disappears silently.
CONTAINER_SETTINGS = ("env_file", "networks", "hostname", "working_dir", "extra_hosts", "init",
                      "tty", "stdin_open", "ulimits", "shm_size", "tmpfs", "devices", "cap_add",
                      "cap_drop", "security_opt", "privileged")


def unrendered(name: str, svc: ServiceSpec, kept: Collection[str]) -> Iterator[tuple[Place, str]]:
    """(manifest place, key) of each container setting `svc` sets that is not in `kept`."""
    for key in CONTAINER_SETTINGS:
        if key not in kept and getattr(svc, key) not in (None, False, "", 0, [], {}):
            yield ("services", name, key), key
