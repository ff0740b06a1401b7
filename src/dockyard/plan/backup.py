"""Which services hold data, of what kind, and which volumes: the facts backups act on.

A service's kind is its `backup.kind` when given, else detected: a command that starts
`redis-server` or `postgres` says so; else a `postgres:*` image or a family whose chain
installs Debian's `postgresql` (or `postgresql-<major>`) is `postgres`; a
`redis:*`/`valkey:*` image or a family with `redis-server` (or `redis`) is `redis`; any
other service with named volumes is `volume`; the rest hold nothing dockyard backs up.
`backup: {enabled: false}` opts a service out. Pure: the engine (engine/backup.py), the
upgrade and the one-way data guard ask the same questions here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from dockyard.errors import BackupError
from dockyard.manifest.models import FleetSpec, ServiceSpec
from dockyard.plan.family import chain

Kind = Literal["postgres", "redis", "volume"]
KINDS: tuple[Kind, ...] = ("postgres", "redis", "volume")

_REGISTRY = r"^(?:[^/]+/)*"
_POSTGRES_IMAGE = re.compile(_REGISTRY + r"(?:postgres|postgis|pgvector)(?::|@|$)")
_REDIS_IMAGE = re.compile(_REGISTRY + r"(?:redis|valkey|redis-stack-server)(?::|@|$)")
_POSTGRES_APT = re.compile(r"^postgresql(?:-\d+)?$")  # not postgresql-client*, -common
_REDIS_APT = frozenset({"redis-server", "redis", "valkey-server"})
# The server a command starts, when it names one (a family may hold both).
_COMMANDS: dict[str, Kind] = {"redis-server": "redis", "valkey-server": "redis",
                              "postgres": "postgres", "pg_ctl": "postgres",
                              "pg_ctlcluster": "postgres"}


def is_bind(volume: str) -> bool:
    """`./dir:/path`, `/abs:/path`, `~/x:/path` or `${VAR}:/path`: a host path, not a volume."""
    return volume.split(":")[0].startswith((".", "/", "~", "$"))


def named_volumes(svc: ServiceSpec) -> list[tuple[str, str]]:
    """(volume, path inside the container) of each named volume the service mounts."""
    out = []
    for volume in svc.volumes:
        parts = volume.split(":")
        if len(parts) >= 2 and not is_bind(volume) and parts[0]:
            out.append((parts[0], parts[1]))
    return out


def detected_kind(fleet: FleetSpec, name: str) -> Kind | None:
    """What the image or family says the service is, whatever `backup:` says."""
    svc = fleet.services[name]
    for word in [*svc.entrypoint, *svc.command]:
        said = _COMMANDS.get(word.rsplit("/", 1)[-1])
        if said:
            return said
    if svc.image:
        if _POSTGRES_IMAGE.match(svc.image):
            return "postgres"
        if _REDIS_IMAGE.match(svc.image):
            return "redis"
    packages = {pkg.split("=")[0].strip() for fam in chain(fleet.families, svc.family)
                for pkg in fleet.families[fam].apt}
    if any(_POSTGRES_APT.match(pkg) for pkg in packages):
        return "postgres"
    if packages & _REDIS_APT:
        return "redis"
    return "volume" if named_volumes(svc) else None


def backup_kind(fleet: FleetSpec, name: str) -> Kind | None:
    """How `dockyard backup` saves service `name`: its `backup.kind`, else detected; None for
    a service with no data to save (or `backup: {enabled: false}`)."""
    spec = fleet.services[name].backup
    if spec is not None and not spec.enabled:
        return None
    if spec is not None and spec.kind:
        return spec.kind
    return detected_kind(fleet, name)


def backup_volumes(fleet: FleetSpec, name: str) -> list[tuple[str, str]]:
    """The named volumes (volume, path) a backup of `name` saves and a restore makes fresh:
    `backup.volumes` when given (in the service's order), else all of them."""
    svc = fleet.services[name]
    mounted = named_volumes(svc)
    chosen = svc.backup.volumes if svc.backup and svc.backup.volumes else None
    return [(v, p) for v, p in mounted if chosen is None or v in chosen]


def stateful(fleet: FleetSpec, names: Iterable[str] | None = None) -> list[str]:
    """The services (of `names`, else all) that a backup saves, in the manifest's order."""
    wanted = None if names is None else set(names)
    return [n for n in fleet.services
            if (wanted is None or n in wanted) and backup_kind(fleet, n) is not None]


def backup_share(fleet: FleetSpec, placed: Mapping[str, Sequence[str]],
                 services: Sequence[str] | None, homes: Mapping[str, str] | None = None
                 ) -> dict[str, list[str]]:
    """What `dockyard backup` saves on each chosen machine: `placed` is machine -> the
    services it runs (in start order); `services` those named (None: every stateful one).
    A named service goes to the machine it is placed on, which must be one of those chosen;
    a machine with nothing to save is left out (`homes`: service -> the machine the plan
    placed it on, for the fix). BackupError for a name that is unknown, that
    holds no data, or whose machine was not chosen."""
    if not services:
        share = {m: stateful(fleet, names) for m, names in placed.items()}
        return {m: names for m, names in share.items() if names}
    where = {n: m for m, names in placed.items() for n in names}
    for name in services:
        if name not in fleet.services:
            raise BackupError(f"unknown service {name!r}",
                              fix="one of: " + ", ".join(sorted(fleet.services)))
        if backup_kind(fleet, name) is None:
            raise BackupError(f"service {name} holds no data dockyard backs up",
                              fix="give it named volumes, or `backup: {kind: volume}` "
                                  "(postgres, redis)")
        if name not in where:
            on = (homes or {}).get(name) or fleet.services[name].machine
            raise BackupError(f"service {name} does not run on machine "
                              f"{', '.join(placed)}" + (f" (it is placed on {on})" if on
                                                        else ""),
                              fix=f"pass -m {on}" if on else "name the machine it runs on "
                                                             "with -m")
    wanted = set(services)
    share = {m: [n for n in names if n in wanted] for m, names in placed.items()}
    return {m: names for m, names in share.items() if names}


def dependencies(services: Mapping[str, ServiceSpec], names: Iterable[str]) -> set[str]:
    """Every service that one of `names` depends on, directly or not (not `names` themselves
    unless one depends on another)."""
    seen: set[str] = set()
    todo = [d for n in names if n in services for d in services[n].depends_on]
    while todo:
        name = todo.pop()
        if name in seen or name not in services:
            continue
        seen.add(name)
        todo.extend(services[name].depends_on)
    return seen


def pre_upgrade(fleet: FleetSpec, upgrade_set: Iterable[str],
                changed: Iterable[str] | None = None) -> list[str]:
    """The services an upgrade backs up first: every stateful service of the set, and every
    stateful service that a changed one (default: the whole set) depends on, directly or
    not, because the new code may migrate its data. In the manifest's order."""
    members = set(upgrade_set)
    moved = members if changed is None else set(changed)
    return stateful(fleet, members | dependencies(fleet.services, moved))


def restore_on_rollback(fleet: FleetSpec, names: Iterable[str]) -> list[str]:
    """Of `names`, those whose pre-upgrade backup a rollback restores before the old
    version starts (`backup: {restore_on_rollback: true}`)."""
    return [n for n in names if (spec := fleet.services[n].backup) is not None
            and spec.restore_on_rollback and backup_kind(fleet, n) is not None]
