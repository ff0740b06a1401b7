"""The tag moves of `rollback` across machines: on each engine that holds chosen machines'
tags (ops/rollback.py decides which: this host's for images built here and shipped, a
machine's own for `build: remote` or a `registry:`), once per engine. Every engine is
checked (a named service without `:prev`, a tag not kept) before any tag moves anywhere:
all or nothing across the fleet, as on one engine. `up` then runs the now-`:current`
images (shipping them to machines that get their images from here)."""

from __future__ import annotations

from collections.abc import Sequence

from dockyard.engine.build import no_prev, prev_ref, prev_swaps, rollback_services
from dockyard.engine.connection import Engine
from dockyard.engine.history import TagSwap, kept_by_service, to_tag_names, to_tag_swaps
from dockyard.engine.ship import same_engine
from dockyard.engine.target import Target
from dockyard.errors import RegistryUnavailable
from dockyard.events import Progress, Sink
from dockyard.ops.history import repo_of
from dockyard.ops.rollback import HOST, MachineTags, TagHome, tag_homes, to_tag

Moved = tuple[TagSwap, tuple[str, ...]]  # a swap, and the machines that run its service


def homes(targets: Sequence[Target], names: Sequence[str]) -> list[tuple[TagHome, Engine]]:
    """The engines whose tags a rollback of `names` on the targets' machines moves, each
    with the engine to move them on."""
    fleet, plan = targets[0].fleet, targets[0].plan
    source = Engine.local()
    facts = [MachineTags(t.machine, f"{t.engine.endpoint.context}|{t.engine.endpoint.url}",
                         same_engine(t.engine, source),
                         fleet.spec.machines[t.machine].build == "remote",
                         tuple(sp.name for sp in plan.on(t.machine) if sp.name in names))
             for t in targets]
    by_machine = {t.machine: t.engine for t in targets}
    return [(h, source if h.engine == HOST else by_machine[h.engine])
            for h in tag_homes(facts, registry=bool(fleet.spec.registry.strip()))]


def _pull(engine: Engine, targets: Sequence[Target], refs: Sequence[str], *,
          emit: Sink) -> None:
    """The refs the engine lacks, pulled from the fleet's `registry:`."""
    from dockyard.engine.registry import pull_missing

    pull_missing(engine, targets[0].fleet, [r for r in refs if not engine.image_id(r)],
                 emit=emit)


def _machines(home: TagHome, targets: Sequence[Target], service: str) -> tuple[str, ...]:
    on = {t.machine: {sp.name for sp in t.plan.on(t.machine)} for t in targets}
    return tuple(m for m in home.machines if service in on[m])


def swap_prev(targets: Sequence[Target], services: list[str] | None, *,
              emit: Sink) -> list[Moved]:
    """`:prev` back as `:current` (and `:current` as `:prev`) of the services named (none:
    every built one that has a `:prev` where its tags live) on every home; `:prev` is pulled
    from `registry:` where a home lacks it. Nothing moves unless every home's checks pass."""
    plan = targets[0].plan
    names = rollback_services(plan, services)
    found: list[tuple[TagHome, Engine, list[TagSwap]]] = []
    for home, engine in homes(targets, names):
        if home.pull:
            _pull(engine, targets, [prev_ref(plan.services[n].image) for n in home.services
                                    if plan.services[n].built], emit=emit)
        found.append((home, engine, prev_swaps(engine, plan, list(home.services),
                                               named=services is not None)))
    if not any(swaps for _, _, swaps in found):
        raise no_prev()
    return _apply(found, targets)


def swap_to_tag(targets: Sequence[Target], tag: str, services: list[str] | None, *,
                emit: Sink) -> tuple[list[Moved], dict[str, str]]:
    """`rollback --to TAG` on every home (see ops/rollback.py to_tag): each service's image
    of TAG (or, none named, its newest not newer) back as `:current`; TAG is pulled from
    `registry:` where a home lacks it. Returns the swaps made, and the services left as they
    are, with why. Nothing moves unless every home's checks pass."""
    first = targets[0]
    fleet, plan = first.fleet, first.plan
    names = to_tag_names(fleet, plan, tag, services)
    placed = homes(targets, names)
    for home, engine in placed:
        if home.pull:
            try:
                _pull(engine, targets, [f"{repo_of(plan.services[n].image)}:{tag}"
                                        for n in home.services], emit=emit)
            except RegistryUnavailable as exc:  # what is kept on the engines still decides
                emit(Progress(f"{exc.message}: going by the tags kept on the engines"))
    kept = {home.engine: kept_by_service(engine, plan, home.services) for home, engine in placed}
    chosen = to_tag(kept, tag, names if services is not None else None)
    found = [(home, engine, to_tag_swaps(engine, plan, chosen.tags.get(home.engine, {})))
             for home, engine in placed]
    return _apply(found, targets), chosen.left


def _apply(found: list[tuple[TagHome, Engine, list[TagSwap]]], targets: Sequence[Target]
           ) -> list[Moved]:
    """Every checked swap made, home after home."""
    moved: list[Moved] = []
    for home, engine, swaps in found:
        for swap in swaps:
            swap.apply(engine)
            moved.append((swap, _machines(home, targets, swap.service)))
    return moved
