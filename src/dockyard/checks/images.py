"""DY6xx: images, tags and packages — what changes under you without a word.

KNOWN holds what is known about a few stock images, with sources; the checks use it for
health-check programs (DY503/DY504) and users (DY701). An image not listed is unknown:
no finding is made from a guess.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dockyard.checks.rules import Rule, image_repo, image_tag, names
from dockyard.errors import Location
from dockyard.findings import Code, Finding, Severity
from dockyard.manifest.load import Fleet
from dockyard.plan.family import chain, lock_path, service_layer
from dockyard.plan.history import DataVersion, Deployed, data_version, deployed_of, one_way
from dockyard.plan.model import Plan

CODES = {c.code: c for c in (
    Code("DY601", Severity.WARNING, "a stock image has no tag or uses `latest`",
         "pin a version tag or a digest: `<image>:<version>` or `@sha256:<digest>`"),
    Code("DY602", Severity.WARNING, "a family is built `from` an image with no tag or `latest`",
         "pin the base image's tag or digest"),
    Code("DY603", Severity.WARNING, "a requirement is not pinned with `==`",
         "pin it (`name==1.2.3`), or let `dockyard lock` pin the family"),
    Code("DY605", Severity.ERROR, "a service's `build:` context is missing from a folder that "
         "exists (a typo: services/apii beside services/api), or its `dockerfile:` is missing",
         "correct the path (relative to the manifest's folder), or create it"),
    Code("DY606", Severity.WARNING, "a service's `build:` context is not beside the manifest "
         "(its code lives elsewhere): `build` will fail until it is",
         "put the service's code there, or point `build:` at it"),
    Code("DY607", Severity.ERROR, "a stateful service's image changes, relative to what `up` "
         "last deployed, in a way its data cannot come back from: a Postgres major version "
         "(image or apt postgresql-N), or Qdrant past the next minor",
         "keep the deployed version, or declare `migration: {from: <deployed version>, how: "
         "...}` and set `backup: {restore_on_rollback: true}` for the service"),
    Code("DY608", Severity.ERROR, "a service pins `image_tag:` to a dated tag its image no "
         "longer keeps (as the last build recorded it): `up` cannot run it",
         "pin a kept tag (`dockyard images --history`), or remove `image_tag:`"),
)}


@dataclass(frozen=True)
class ImageFacts:
    present: frozenset[str] = frozenset()  # programs known to be on the image
    absent: frozenset[str] = frozenset()  # programs known to be missing
    root: bool = False  # its main process runs as root unless `user:` says otherwise
    hint: str = ""  # a health check that works on it


_NO_FETCH = frozenset({"curl", "wget"})
KNOWN: dict[str, ImageFacts] = {
    # qdrant#3491, qdrant#4250 (curl refused in the image), nemori-ai/nemori#15 (no wget).
    "qdrant/qdrant": ImageFacts(absent=_NO_FETCH, root=True,
                                hint="probe with bash: `health: {cmd: \"bash -c ':> "
                                     "/dev/tcp/127.0.0.1/6333'\"}`"),
    # ollama#9781, google/langextract#361: no curl; models live under /root/.ollama.
    "ollama/ollama": ImageFacts(present=frozenset({"ollama"}), absent=_NO_FETCH, root=True,
                                hint="use the server's CLI: `health: {cmd: [ollama, list]}`"),
    # docker-library images: Debian base without curl or wget; they drop to their own user.
    "postgres": ImageFacts(present=frozenset({"pg_isready", "psql"}), absent=_NO_FETCH,
                           hint="`health: {cmd: [pg_isready, -U, postgres]}`"),
    "redis": ImageFacts(present=frozenset({"redis-cli"}), absent=_NO_FETCH,
                        hint="`health: {cmd: [redis-cli, ping]}`"),
    "debian": ImageFacts(absent=_NO_FETCH, root=True),
    "ubuntu": ImageFacts(absent=_NO_FETCH, root=True),
    "python": ImageFacts(present=frozenset({"python3", "python"}), root=True),
    "nvidia/cuda": ImageFacts(root=True),
    "pytorch/pytorch": ImageFacts(present=frozenset({"python3", "python"}), root=True),
    "nvidia/pytorch": ImageFacts(present=frozenset({"python3", "python"}), root=True),
    "vllm/vllm-openai": ImageFacts(present=frozenset({"python3", "python"}), root=True),
    "nginx": ImageFacts(root=True),
}


@functools.lru_cache(maxsize=4096)
def known(image: str) -> ImageFacts:
    """What is known about `image` (an empty ImageFacts when nothing is)."""
    repo = image_repo(image)
    tag = image_tag(image)
    if repo.startswith("distroless/"):
        return ImageFacts(absent=frozenset({"sh", "bash", "curl", "wget"}))
    facts = KNOWN.get(repo, ImageFacts())
    if "alpine" in tag:  # busybox: wget and sh, no curl
        return ImageFacts(present=facts.present | {"wget", "sh"}, absent=facts.absent - {"wget"},
                          root=facts.root, hint=facts.hint)
    if repo == "python" and "slim" in tag:  # python:*-slim has neither curl nor wget
        return ImageFacts(present=facts.present, absent=_NO_FETCH, root=True)
    return facts


def _moving(image: str) -> bool:
    tag = image_tag(image)
    return not tag or tag == "latest"


def latest_tag(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY601: a stock image with no tag or `latest` changes under you."""
    for name, svc in sorted(fleet.spec.services.items()):
        if svc.image and _moving(svc.image):
            yield Finding(
                "DY601", Severity.WARNING, fleet.where("services", name, "image"),
                f"service {name} uses {svc.image}, which moves whenever upstream pushes",
                f"pin a version tag or a digest: `{_untagged(svc.image)}:<version>` (a "
                "release of that image) or `@sha256:<digest>`", service=name)


def _untagged(image: str) -> str:
    """ghcr.io/remsky/kokoro-fastapi-gpu:latest -> ghcr.io/remsky/kokoro-fastapi-gpu."""
    head, _, tail = image.split("@")[0].rpartition("/")
    return f"{head}/{tail.split(':')[0]}" if head else tail.split(":")[0]


def family_base_tag(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY602: a family's external base with no tag or `latest`."""
    for name, fam in sorted(fleet.spec.families.items()):
        if fam.from_ not in fleet.spec.families and _moving(fam.from_):
            yield Finding(
                "DY602", Severity.WARNING, fleet.where("families", name, "from"),
                f"family {name} is built from {fam.from_}, which moves whenever upstream "
                "pushes: two builds of one lock get different bases",
                "pin the base's tag or digest, e.g. python:3.11.10-slim-bookworm")


_PINNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?\s*===?\s*[^\s,;*]+\s*(;.*)?$")


def _unpinned(requirement: str) -> bool:
    text = requirement.split("#")[0].strip()
    if not text or text.startswith("-"):
        return False  # options such as --index-url, -r, -c
    if " @ " in text or "://" in text:
        return False  # a direct reference names one exact artifact
    return not _PINNED.match(text)


def unpinned_requirements(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY603: `fastapi` or `torch>=2` resolve to something new on the next build."""
    owners = [("families", n, f.requirements, "") for n, f in sorted(fleet.spec.families.items())]
    owners += [("services", n, s.requirements, n)
               for n, s in sorted(fleet.spec.services.items())]
    for section, name, requirements, service in owners:
        loose = [(i, r) for i, r in enumerate(requirements) if _unpinned(r)]
        family = name if section == "families" else service_layer(name)
        if not loose or _locked(fleet, family):
            continue  # `dockyard lock` pinned them (with hashes): builds get the same
        package = re.split(r"[\s<>=!~;\[]", loose[0][1].strip(), maxsplit=1)[0]
        what = "service" if section == "services" else "family"
        listed = names([f"`{r}`" for _, r in loose])
        yield Finding(
            "DY603", Severity.WARNING, fleet.where(section, name, "requirements", loose[0][0]),
            f"{what} {name} requires {listed} without a `==` pin: the next build may get "
            f"other versions",
            f"pin each, e.g. `{package}==<version>`, or run `dockyard lock`", service=service)


def _locked(fleet: Fleet, family: str) -> bool:
    """A lock for the family on every architecture its machines have."""
    if not fleet.path.is_file():
        return False
    arches = {m.arch for m in fleet.spec.machines.values()}
    return all(lock_path(fleet.root, family, arch).is_file() for arch in arches)


def missing_contexts(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY605 / DY606: `build: services/apii` builds nothing until `build` fails, or `up` finds
    an old image. A context whose folder is there too is a typo (error); one whose whole path is
    absent is code that lives elsewhere (warning)."""
    if not fleet.path.is_file():
        return  # a manifest given as text (tests, import's check): no folder to look in
    for name, svc in sorted(fleet.spec.services.items()):
        if not svc.build:
            continue
        context = fleet.root / svc.build
        if not context.is_dir() and not context.parent.is_dir():
            yield Finding(
                "DY606", Severity.WARNING, fleet.where("services", name, "build"),
                f"service {name}: build context {svc.build} is not beside the manifest "
                "(nor is its folder): `build` fails until it is",
                "put the service's code there, or point `build:` at it", service=name)
        elif not context.is_dir():
            close = _near(context)
            yield Finding(
                "DY605", Severity.ERROR, fleet.where("services", name, "build"),
                f"service {name}: build context {svc.build} is not a folder",
                (f"did you mean {close}? " if close else "")
                + "correct `build:` (relative to the manifest's folder), or create it",
                service=name)
        elif svc.dockerfile and not (context / svc.dockerfile).is_file():
            yield Finding(
                "DY605", Severity.ERROR, fleet.where("services", name, "dockerfile"),
                f"service {name}: {svc.build}/{svc.dockerfile} does not exist",
                "correct `dockerfile:` (relative to the build context), or drop it to use the "
                "Dockerfile dockyard renders", service=name)


def _near(path: Path) -> str:
    """A sibling folder with a close name (services/apii -> services/api)."""
    import difflib

    parent = path.parent
    if not parent.is_dir():
        return ""
    names = [p.name for p in parent.iterdir() if p.is_dir()]
    close = difflib.get_close_matches(path.name, names, n=1)
    return (parent / close[0]).relative_to(path.parent.parent).as_posix() if close else ""


RULES: list[Rule] = [latest_tag, family_base_tag, unpinned_requirements, missing_contexts]


def one_way_data(fleet: Fleet, plan: Plan, deployed: Mapping[str, Deployed]
                 ) -> Iterator[Finding]:
    """DY607: against the images `up` last deployed (<state>/deployed/images.json, passed in), a
    stateful service (one with volumes) whose new image its data cannot survive going back
    from: the old image cannot read what the new one wrote, so a rollback loses it. Allowed
    when the service declares the `migration:` from the deployed version and
    `backup: {restore_on_rollback: true}` (the pre-upgrade backup comes back with the old
    image)."""
    for name, sp in sorted(plan.services.items()):
        before = deployed.get(name)
        svc = sp.spec
        if before is None or not svc.volumes:
            continue
        old, new = data_version(before), data_version(deployed_of(plan, name))
        if old is None or new is None:
            continue
        why = one_way(old, new)
        if not why:
            continue
        restores = svc.backup is not None and svc.backup.restore_on_rollback
        migration = svc.migration
        if migration is not None and migration.from_ == old.shown and restores:
            continue
        missing = []
        if migration is None:
            missing.append(f"`migration: {{from: \"{old.shown}\", how: ...}}` (how its data "
                           f"moves to {new.shown})")
        elif migration.from_ != old.shown:
            missing.append(f"`migration.from: \"{old.shown}\"` (it says "
                           f"{migration.from_!r}; the deployed data is {old.shown})")
        if not restores:
            missing.append("`backup: {restore_on_rollback: true}`")
        yield Finding(
            "DY607", Severity.ERROR, _version_where(fleet, plan, name, new),
            f"service {name}: {why}; {old.source} is deployed, the manifest now runs "
            f"{new.source}, and a rollback would start the old one on data it cannot read",
            f"keep {old.source}, or declare " + " and ".join(missing), service=name)


def _version_where(fleet: Fleet, plan: Plan, name: str, new: DataVersion) -> Location:
    """Where the new version is written: the image, the family's apt entry, or `family:`."""
    svc = fleet.spec.services[name]
    if svc.image:
        return fleet.where("services", name, "image")
    package = new.source.removeprefix("apt ").split(" ")[0]
    for fam in chain(plan.families, svc.family):
        for i, entry in enumerate(plan.families[fam].apt):
            if entry.split("=")[0].strip() == package:
                return fleet.where("families", fam, "apt", i)
    return fleet.where("services", name, "family")


def unkept_pins(fleet: Fleet, plan: Plan, kept: Mapping[str, Sequence[str]]
                ) -> Iterator[Finding]:
    """DY608: `image_tag:` names a dated tag the last build's GC did not keep (kept:
    repository -> its dated tags, from <state>/build/history.json). A repository the record
    does not know (never built here) is not judged."""
    for name, sp in sorted(plan.services.items()):
        tag = sp.spec.image_tag
        repo = sp.image.rpartition(":")[0]
        if not tag or repo not in kept or tag in kept[repo]:
            continue
        have = list(kept[repo])
        yield Finding(
            "DY608", Severity.ERROR, fleet.where("services", name, "image_tag"),
            f"service {name} is pinned to {tag}, which {repo} no longer keeps (kept, newest "
            f"first: {names(have, 6) or 'none'})",
            "pin one of the kept tags, or remove `image_tag:` to run :current", service=name)
