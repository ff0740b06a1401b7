"""The dated tags each built image keeps, their GC after a build, `rollback --to TAG`, and
the two records in the state folder that `check` judges by without asking an engine:

- <state>/build/history.json: per repository, the dated tags kept after the last build
  (DY608: a pinned `image_tag:` that is not among them);
- <state>/deployed/images.json: per service, the image `up` last ran healthy (DY607: an image
  change its data cannot come back from).

Which tags go and what a rollback goes back to are decided in ops/history.py."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.engine.connection import Engine
from dockyard.errors import DockyardError, ManifestError
from dockyard.events import Progress, Sink
from dockyard.manifest.load import Fleet
from dockyard.ops.history import (
    CURRENT_TAG,
    PREV_TAG,
    DatedTag,
    is_dated,
    newest_first,
    repo_of,
    tags_to_drop,
)
from dockyard.plan.history import Deployed, deployed_of
from dockyard.plan.model import Plan

HISTORY_FILE = Path("build") / "history.json"
DEPLOYED_FILE = Path("deployed") / "images.json"


def _write_json(path: Path, data: Any) -> None:
    """Whole or not at all: a reader never sees half a record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # none yet, or not ours: judged as no record
    return data if isinstance(data, dict) else {}


def dated_tags(engine: Engine, repo: str) -> list[DatedTag]:
    """The dated tags of `repo` on the engine, newest first (one image list)."""
    found = []
    for image in engine.client.images.list(name=repo):
        for ref in image.tags or []:
            if repo_of(ref) == repo and is_dated(ref.rpartition(":")[2]):
                found.append(DatedTag(ref.rpartition(":")[2], str(image.id)))
    return newest_first(found)


def images_in_use(engine: Engine) -> dict[str, list[str]]:
    """image ID -> the containers (any state, any project) created from it."""
    used: dict[str, list[str]] = {}
    for c in engine.client.api.containers(all=True):
        names = [n.lstrip("/") for n in c.get("Names") or []]
        used.setdefault(str(c.get("ImageID", "")), []).extend(names)
    return used


@dataclass(frozen=True)
class KeptTag:
    """One dated tag an image keeps, and what it is to the fleet."""

    tag: str
    image: str
    marks: tuple[str, ...] = ()  # current, prev, pinned by <service>, in use by <container>

    def as_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "image": self.image, "marks": list(self.marks)}


@dataclass(frozen=True)
class ImageHistory:
    """A built image's repository and its kept dated tags, newest first."""

    kind: str  # family or service
    name: str
    repo: str
    tags: list[KeptTag] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "repo": self.repo,
                "tags": [t.as_dict() for t in self.tags]}


def _pins(plan: Plan) -> dict[str, dict[str, str]]:
    """repo -> pinned tag -> the service that pins it (`image_tag:`)."""
    out: dict[str, dict[str, str]] = {}
    for name, sp in plan.services.items():
        if sp.built and sp.spec.image_tag:
            out.setdefault(repo_of(sp.image), {})[sp.spec.image_tag] = name
    return out


def history(engine: Engine, plan: Plan) -> list[ImageHistory]:
    """Every built image's kept dated tags, newest first, marked: `current`, `prev`,
    `pinned by <service>`, `in use by <container>`."""
    used = images_in_use(engine)
    pins = _pins(plan)
    out = []
    for step in plan.builds:
        repo = repo_of(step.image)
        current = engine.image_id(f"{repo}:{CURRENT_TAG}")
        prev = engine.image_id(f"{repo}:{PREV_TAG}")
        tags = []
        for t in dated_tags(engine, repo):
            marks = [m for m, hit in (("current", t.image == current),
                                      ("prev", t.image == prev)) if hit]
            if t.tag in pins.get(repo, {}):
                marks.append(f"pinned by {pins[repo][t.tag]}")
            marks += [f"in use by {c}" for c in sorted(used.get(t.image, []))]
            tags.append(KeptTag(t.tag, t.image, tuple(marks)))
        out.append(ImageHistory(step.kind, step.name, repo, tags))
    return out


def collect(engine: Engine, plan: Plan, keep: int, state: Path, *, emit: Sink) -> list[str]:
    """GC after a build: per built image, remove the dated tags older than the newest
    `keep` whose image no container uses and that are neither `:current`, `:prev` nor
    pinned (removing an image's last tag removes the image). Records what is kept
    (<state>/build/history.json) and returns the references removed."""
    from docker.errors import APIError

    used = set(images_in_use(engine))
    pins = _pins(plan)
    removed: list[str] = []
    record: dict[str, list[str]] = {}
    for repo in sorted({repo_of(s.image) for s in plan.builds}):
        tags = dated_tags(engine, repo)
        protected = used | {i for i in (engine.image_id(f"{repo}:{CURRENT_TAG}"),
                                        engine.image_id(f"{repo}:{PREV_TAG}")) if i}
        gone = set()
        for t in tags_to_drop(tags, keep, protected=protected,
                              pinned=set(pins.get(repo, {}))):
            ref = f"{repo}:{t.tag}"
            try:
                engine.client.images.remove(ref)
            except APIError as exc:  # a container made since the list: it stays
                emit(Progress(f"kept {ref}: {getattr(exc, 'explanation', exc)}"))
                continue
            removed.append(ref)
            gone.add(t.tag)
        record[repo] = [t.tag for t in tags if t.tag not in gone]
    _write_json(state / HISTORY_FILE, {"keep": keep, "repos": record})
    if removed:
        emit(Progress(f"removed {len(removed)} dated tag(s) older than the newest {keep} "
                      f"per image that no container uses: {', '.join(removed)}"))
    return removed


def recorded_tags(state: Path) -> dict[str, list[str]]:
    """repo -> the dated tags the last build in `state` kept (empty: no build recorded)."""
    repos = _read_json(state / HISTORY_FILE).get("repos", {})
    return {str(r): [str(t) for t in tags] for r, tags in repos.items()
            if isinstance(tags, list)} if isinstance(repos, dict) else {}


def record_deployed(state: Path, plan: Plan, ids: Mapping[str, str]) -> None:
    """After a healthy `up`: the image each of its services (`ids`: service -> image ID) now
    runs, merged into <state>/deployed/images.json (other machines' services stay)."""
    path = state / DEPLOYED_FILE
    services = _read_json(path).get("services", {})
    if not isinstance(services, dict):
        services = {}
    for name, image_id in ids.items():
        services[name] = deployed_of(plan, name, image_id).as_dict()
    _write_json(path, {"services": services})


def recorded_deployed(state: Path) -> dict[str, Deployed]:
    """service -> the image `up` last ran it on, from <state>/deployed/images.json ({}: none)."""
    services = _read_json(state / DEPLOYED_FILE).get("services", {})
    if not isinstance(services, dict):
        return {}
    return {str(n): Deployed.from_dict(d) for n, d in services.items() if isinstance(d, dict)}


@dataclass(frozen=True)
class TagSwap:
    """One service's image retagged: `new` becomes `repo:current`, `current` (the image that
    was `:current`, "" when none) `repo:prev`."""

    service: str
    repo: str
    current: str
    new: str

    def apply(self, engine: Engine) -> None:
        images = engine.client.images
        images.get(self.new).tag(self.repo, CURRENT_TAG)
        if self.current:
            images.get(self.current).tag(self.repo, PREV_TAG)


def kept_by_service(engine: Engine, plan: Plan, services: Iterable[str]) -> dict[str, list[str]]:
    """service -> its image's kept dated tags, newest first."""
    return {name: [t.tag for t in dated_tags(engine, repo_of(plan.services[name].image))]
            for name in services}


def to_tag_names(fleet: Fleet, plan: Plan, tag: str, services: list[str] | None) -> list[str]:
    """The services `rollback --to tag` acts on (those named, else every built one no pin
    holds); a stock or pinned one named refuses."""
    names = list(services) if services is not None else sorted(
        n for n, sp in plan.services.items() if sp.built and not sp.spec.image_tag)
    for name in names:
        sp = plan.services[name]
        if not sp.built:
            raise ManifestError(f"service {name} runs the stock image {sp.image}: nothing to "
                                "roll back", fix="roll back services dockyard builds")
        if sp.spec.image_tag:
            raise ManifestError(
                f"service {name} is pinned to {sp.spec.image_tag} by `image_tag:`: rollback "
                "does not move it", where=fleet.where("services", name, "image_tag"),
                fix=f"set `image_tag: {tag}`, or remove the pin to roll it back")
    return names


def to_tag_swaps(engine: Engine, plan: Plan, tags: Mapping[str, str]) -> list[TagSwap]:
    """The retagging of each service (service -> the dated tag it goes back to) on the
    engine, an image already `:current` left out; nothing moves. A tag removed since it was
    listed refuses."""
    swaps = []
    for name, to in sorted(tags.items()):
        repo = repo_of(plan.services[name].image)
        current, new = engine.image_id(f"{repo}:{CURRENT_TAG}"), engine.image_id(f"{repo}:{to}")
        if not new:
            raise DockyardError(f"service {name}: {repo}:{to} was removed meanwhile: nothing "
                                "was retagged", fix="`dockyard images --history` lists what "
                                "is kept")
        if current != new:
            swaps.append(TagSwap(name, repo, current, new))
    return swaps


def unkept_pin(engine: Engine, fleet: Fleet, plan: Plan, name: str) -> ManifestError:
    """The error for service `name` pinned to a dated tag its image does not keep here."""
    sp = plan.services[name]
    have = [t.tag for t in dated_tags(engine, repo_of(sp.image))]
    return ManifestError(
        f"service {name} is pinned to {sp.spec.image_tag} (`image_tag:`), which "
        f"{repo_of(sp.image)} does not keep here (kept, newest first: "
        f"{', '.join(have[:8]) or 'none'}{' …' if len(have) > 8 else ''})",
        where=fleet.where("services", name, "image_tag"),
        fix="pin one of the kept tags, or remove `image_tag:` to run :current")
