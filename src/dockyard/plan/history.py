"""What a service's data is written by, and which image changes that data cannot come back
from: the facts behind the one-way data guard (DY607).

A deployed service is recorded as `Deployed` (its image, and for a built one the apt
packages and root image of its family chain) by `up` in the state folder; the manifest's
side is the same record made from the plan, so both are judged by one function.

Sources: a new Postgres major cannot read an older data directory, nor the older one a
newer (docker-library/postgres#37: pg_upgrade or a dump is the way); Qdrant reads storage
and snapshots of the same or the previous minor only (qdrant#10273)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from dockyard.plan.family import chain, root_image
from dockyard.plan.model import Plan


@dataclass(frozen=True)
class Deployed:
    """One service's image as it was deployed (or as the manifest would deploy it)."""

    image: str  # the reference run: postgres:15.6, or fleet/db:current for a built one
    id: str = ""  # the image ID run ("" for the manifest's side)
    packages: tuple[str, ...] = ()  # apt packages of its family chain (built services)
    base: str = ""  # the external image at the bottom of that chain

    def as_dict(self) -> dict[str, Any]:
        return {"image": self.image, "id": self.id, "packages": list(self.packages),
                "base": self.base}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Deployed:
        """Lenient on what dockyard wrote: unknown keys are ignored, missing ones empty."""
        return cls(str(data.get("image", "")), str(data.get("id", "")),
                   tuple(str(p) for p in data.get("packages", []) or []),
                   str(data.get("base", "")))


def deployed_of(plan: Plan, name: str, image_id: str = "") -> Deployed:
    """What the plan deploys for service `name`, as a record."""
    sp = plan.services[name]
    family = sp.spec.family
    # `postgresql-15=15.5-0+deb12u1`: the package, its pinned version aside.
    packages = tuple(p.split("=")[0].strip() for fam in chain(plan.families, family)
                     for p in plan.families[fam].apt) if family else ()
    return Deployed(sp.image, image_id, packages,
                    root_image(plan.families, family) if family else "")


@dataclass(frozen=True)
class DataVersion:
    """The version of a data store that decides what its files can be read by."""

    kind: Literal["postgres", "qdrant"]
    version: tuple[int, ...]  # Postgres: (major,) or (9, 6); Qdrant: (major, minor)
    source: str  # what it was read from: an image, or an apt package

    @property
    def shown(self) -> str:
        return ".".join(map(str, self.version))


_POSTGRES_REPOS = {"postgres", "postgresql", "postgis"}
_LEADING = re.compile(r"^v?(\d+)(?:\.(\d+))?")
_PG_IN_TAG = re.compile(r"(?:^|[-_.])pg(\d+)(?:$|[-_.])")
_PG_PACKAGE = re.compile(r"^postgresql-(\d+)(?:-|$)")
# Debian's unversioned `postgresql` package, per release (packages.debian.org).
_DEBIAN_POSTGRES = (("buster", 11), ("bullseye", 13), ("bookworm", 15), ("trixie", 17),
                    ("debian:10", 11), ("debian:11", 13), ("debian:12", 15), ("debian:13", 17))


def _repo_tag(image: str) -> tuple[str, str]:
    ref = image.split("@")[0]
    head, _, last = ref.rpartition("/")
    name, _, tag = last.partition(":")
    repo = f"{head}/{name}" if head else name
    parts = repo.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    if len(parts) == 2 and parts[0] == "library":
        parts = parts[1:]
    return "/".join(parts).lower(), tag


def _postgres_major(major: int, minor: str | None) -> tuple[int, ...]:
    # Before 10 the major version had two parts (9.6); from 10 on, one.
    return (major, int(minor)) if major < 10 and minor is not None else (major,)


def image_data_version(image: str) -> DataVersion | None:
    """The store an image runs and its data version, as far as its name tells."""
    repo, tag = _repo_tag(image)
    name = repo.rsplit("/", 1)[-1]
    pg = _PG_IN_TAG.search(tag)
    if pg:  # pgvector/pgvector:pg16, timescale/timescaledb:2.14.2-pg16
        return DataVersion("postgres", (int(pg.group(1)),), image)
    match = _LEADING.match(tag)
    if match is None:
        return None
    if name in _POSTGRES_REPOS:
        return DataVersion("postgres", _postgres_major(int(match.group(1)), match.group(2)),
                           image)
    if repo == "qdrant/qdrant" and match.group(2) is not None:
        return DataVersion("qdrant", (int(match.group(1)), int(match.group(2))), image)
    return None


def data_version(record: Deployed) -> DataVersion | None:
    """The data version of a deployed (or wanted) image: a stock image by its name, a built
    one by its root image, else by the `postgresql-N` its family chain installs (an
    unversioned `postgresql` is the Debian release's)."""
    found = image_data_version(record.base or record.image)
    if found is not None:
        return found
    for package in record.packages:
        match = _PG_PACKAGE.match(package)
        if match:
            return DataVersion("postgres", (int(match.group(1)),), f"apt {package}")
    if "postgresql" in record.packages:
        for needle, major in _DEBIAN_POSTGRES:
            if needle in record.base:
                return DataVersion("postgres", (major,), f"apt postgresql on {record.base}")
    return None


def one_way(before: DataVersion, after: DataVersion) -> str:
    """Why data written by `after` cannot go back to `before` (or `after` cannot read it);
    "" when the change is safe both ways."""
    if before.kind != after.kind or before.version == after.version:
        return ""
    if before.kind == "postgres":
        return (f"Postgres {before.shown} -> {after.shown} is a major version change: "
                f"neither server reads the other's data directory")
    if after.version[0] != before.version[0]:
        return (f"Qdrant {before.shown} -> {after.shown} changes the major version: its "
                "storage is not read across it")
    step = after.version[1] - before.version[1]
    if step > 1:
        return (f"Qdrant {before.shown} -> {after.shown} skips a minor version: Qdrant reads "
                "the storage of the same or the previous minor only")
    if step < 0:
        return (f"Qdrant {before.shown} -> {after.shown} goes back a minor version: the older "
                "one may not read what the newer wrote")
    return ""
