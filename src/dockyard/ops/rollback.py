"""Where a rollback across machines moves tags: which engines hold each chosen machine's
`:prev` and dated tags, and so which engine swaps which services' tags. Pure: the facts
come from the targets (engine/rollback.py); tests feed plain ones.

- A machine whose images are built on this host and shipped (`build: local`, no
  `registry:`, another engine than this host's): its tags live on this host's engine, as
  shipping carries `:current` refs only. The swap happens here, once; `up` then ships the
  now-`:current` (older) images.
- A machine that builds its own images (`build: remote`): its tags are on its own engine.
- With `registry:`: each machine's own engine (`:prev` or TAG is pulled where it lacks it).
- A machine on this host's engine: here. Machines sharing one engine swap there once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dockyard.ops.history import as_of, rollback_to

HOST = ""  # this host's engine


@dataclass(frozen=True)
class MachineTags:
    """One chosen machine, as far as where its image tags live."""

    machine: str
    engine: str  # its engine's identity: two machines with the same one share an engine
    on_host: bool  # its engine is this host's
    builds_remote: bool  # `build: remote`
    services: tuple[str, ...]  # the built services placed on it that the rollback moves


@dataclass(frozen=True)
class TagHome:
    """One engine whose tags the rollback moves, and for which machines and services."""

    engine: str  # HOST, else the first machine (by name) whose engine it is
    machines: tuple[str, ...]  # the chosen machines whose images are tagged there
    services: tuple[str, ...]  # the services whose tags move there
    pull: bool  # pull `:prev` / TAG from `registry:` where this engine lacks it


def tag_homes(machines: Sequence[MachineTags], *, registry: bool) -> list[TagHome]:
    """The engines a rollback swaps tags on, this host's first, each once however many
    machines share it, with the services whose tags move there (a machine without services
    to move adds none)."""
    homes: dict[str, tuple[str, list[str], list[str]]] = {}  # engine id -> home, machines, services
    for m in sorted(machines, key=lambda m: m.machine):
        if not m.services:
            continue
        here = m.on_host or not (registry or m.builds_remote)
        key = HOST if here else m.engine
        _, held, services = homes.setdefault(key, (HOST if here else m.machine, [], []))
        held.append(m.machine)
        services.extend(s for s in m.services if s not in services)
    ordered = sorted(homes.values(), key=lambda h: (h[0] != HOST, h[0]))
    return [TagHome(name, tuple(held), tuple(sorted(services)), registry)
            for name, held, services in ordered]


@dataclass(frozen=True)
class ToTag:
    """What `rollback --to TAG` moves on each home: home -> service -> the dated tag its
    image goes back to there; the services left as they are, and why."""

    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    left: dict[str, str] = field(default_factory=dict)


def to_tag(kept: Mapping[str, Mapping[str, Sequence[str]]], tag: str,
           named: Sequence[str] | None = None) -> ToTag:
    """`rollback --to TAG` across homes (home -> service -> its image's kept dated tags
    there; see ops/history.py rollback_to for one). Named services must each keep TAG on
    every home they are tagged on. With none named, TAG must be kept somewhere in the fleet,
    and on each home each service goes to its newest tag not newer than TAG (dated tags sort
    by time, so tags of builds made on other engines in the same `up` are matched by time).
    Raises before anything is decided to move when a check fails."""
    if named is not None:
        return ToTag({home: rollback_to(k, tag, [n for n in named if n in k]).tags
                      for home, k in kept.items()})
    every = {t for k in kept.values() for tags in k.values() for t in tags}
    rollback_to({"": sorted(every)}, tag)  # TAG kept nowhere: refused, naming those kept
    out = ToTag()
    for home, k in sorted(kept.items()):
        got = as_of(k, tag)
        out.tags[home] = got.tags
        for name, why in got.left.items():
            out.left.setdefault(name, why)
    return out
