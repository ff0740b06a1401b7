"""The dated tags of built images: which a build's GC removes, and what `rollback --to TAG`
goes back to. Pure: the tags and the image IDs in use come from the engine
(engine/history.py); tests feed recorded ones.

Each build tags the images it made `:<YYYYMMDD>-<HHMMSS>-<gitsha>` (engine/build.py
dated_tag): sorting the tags by name sorts them by time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field

from dockyard.errors import DockyardError
from dockyard.manifest.models import DATED_TAG

PREV_TAG = "prev"
CURRENT_TAG = "current"


def repo_of(ref: str) -> str:
    """quickstart/web:current -> quickstart/web (a registry's port is not a tag)."""
    head, _, tag = ref.rpartition(":")
    return head if head and "/" not in tag else ref


@dataclass(frozen=True)
class DatedTag:
    """One dated tag of a repository, and the image it names."""

    tag: str
    image: str  # image ID


def is_dated(tag: str) -> bool:
    return bool(DATED_TAG.match(tag))


def newest_first(tags: Sequence[DatedTag]) -> list[DatedTag]:
    return sorted((t for t in tags if is_dated(t.tag)), key=lambda t: t.tag, reverse=True)


def tags_to_drop(tags: Sequence[DatedTag], keep: int, *, protected: Set[str] = frozenset(),
                 pinned: Set[str] = frozenset()) -> list[DatedTag]:
    """The dated tags of one repository that GC removes: all but the newest `keep`, except
    those whose image is `protected` (a container uses it, or it is `:current` or `:prev`)
    and those a service pins (`image_tag:`). Oldest first."""
    older = newest_first(tags)[max(keep, 0):]
    return sorted((t for t in older if t.image not in protected and t.tag not in pinned),
                  key=lambda t: t.tag)


@dataclass(frozen=True)
class RollbackTo:
    """What `rollback --to TAG` does: service -> the dated tag it goes back to; the
    services left as they are (no image that old was kept) and why."""

    tags: dict[str, str] = field(default_factory=dict)
    left: dict[str, str] = field(default_factory=dict)


def _listed(tags: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(tags[:limit])
    return shown + (f" and {len(tags) - limit} more" if len(tags) > limit else "") \
        if tags else "none"


def rollback_to(kept: Mapping[str, Sequence[str]], tag: str,
                named: Sequence[str] | None = None) -> RollbackTo:
    """Per service (service -> its image's kept dated tags), the tag `rollback --to tag`
    runs. Named services must each have kept `tag` itself. With none named, the fleet goes
    back to how that build left it: each service to its newest tag not newer than `tag`
    (a build tags only the images it rebuilt); `tag` must be one some service kept, and a
    service with nothing that old is left as it is."""
    if named is not None:
        out = {}
        for name in named:
            have = sorted(kept.get(name, ()), reverse=True)
            if tag not in have:
                raise DockyardError(
                    f"service {name} has no image tagged {tag} kept: nothing was retagged "
                    f"(its kept tags, newest first: {_listed(have)})",
                    fix="pick one of them (`dockyard images --history` lists them)")
            out[name] = tag
        return RollbackTo(out)
    every = sorted({t for tags in kept.values() for t in tags}, reverse=True)
    if tag not in every:
        raise DockyardError(
            f"no image of the fleet is tagged {tag}: nothing was retagged (kept tags, newest "
            f"first: {_listed(every)})",
            fix="pick one of them (`dockyard images --history` lists them per image)")
    return as_of(kept, tag)


def as_of(kept: Mapping[str, Sequence[str]], tag: str) -> RollbackTo:
    """Each service (service -> its image's kept dated tags) to its newest tag not newer
    than `tag`; one with nothing that old is left as it is, with why."""
    result = RollbackTo()
    for name, tags in sorted(kept.items()):
        older = sorted((t for t in tags if t <= tag), reverse=True)
        if older:
            result.tags[name] = older[0]
        else:
            result.left[name] = (f"its oldest kept image is {min(tags)}" if tags
                                 else "it has no dated tag kept")
    return result
