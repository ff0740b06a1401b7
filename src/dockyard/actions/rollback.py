"""`dockyard rollback`: an upgrade that did not end taken back (every service of its set
on its old image and config); else each service's `:prev` image back as `:current`, then
`up`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dockyard.actions.target import Choice, choose_target, require_services
from dockyard.engine.build import prev_ref, repo_of, rollback_services
from dockyard.events import RolledBack, Sink

if TYPE_CHECKING:
    from dockyard.engine.deploy import UpReport
    from dockyard.engine.target import Target
    from dockyard.engine.upgrade import UpgradeReport
    from dockyard.manifest.load import Fleet
    from dockyard.plan.model import Plan


@dataclass(frozen=True)
class RollbackResult:
    """The machine brought up again on the previous images."""

    target: Target
    up: UpReport | None  # None: an interrupted upgrade was taken back instead
    upgrade: UpgradeReport | None = None


def prev_refs(plan: Plan, services: list[str] | None = None) -> list[str]:
    """The `:prev` images a rollback of `services` (None: every built one) goes back to."""
    return sorted({prev_ref(plan.services[name].image)
                   for name in rollback_services(plan, services) if plan.services[name].built})


def rollback(fleet: Fleet, plan: Plan, services: list[str] | None, choice: Choice, *,
             emit: Sink) -> RollbackResult:
    """Swap `:prev` and `:current` of the services named (none: every built one that has a
    `:prev`), pulling `:prev` from the fleet's registry where it is not here, then bring the
    machine up on them. Emits a RolledBack per service swapped. An upgrade of the machine
    that did not end is taken back instead (all old), and no tag is swapped."""
    from dockyard.engine.build import rollback as swap
    from dockyard.engine.deploy import up

    services = services or None
    require_services(plan.services, services or [])
    where = choose_target(fleet, plan, choice)  # before any tag moves: a wrong --machine moves none
    from dockyard.engine.upgrade import rollback_pending

    taken_back = rollback_pending(where, emit=emit)
    if taken_back is not None:
        return RollbackResult(where, None, taken_back)
    engine = where.engine
    if fleet.spec.registry.strip():  # a machine that never built them: `:prev` is there
        from dockyard.engine.registry import pull_missing

        pull_missing(engine, fleet,
                     [ref for ref in prev_refs(plan, services) if not engine.image_id(ref)],
                     emit=emit)
    for name, old, new in swap(engine, plan, services):
        emit(RolledBack(name, old, new))
    # The `:prev` images were built from an older manifest entry: run them as they are.
    return RollbackResult(where, up(where, emit=emit, build_missing=False, accept_stale=True))


def rollback_to(fleet: Fleet, plan: Plan, tag: str, services: list[str] | None,
                choice: Choice, *, emit: Sink) -> RollbackResult:
    """`rollback --to TAG`: each service named (none: every built one, as the build that
    made TAG left it) back on its image of that dated tag, the one that was `:current`
    becoming `:prev`, then the machine brought up on them (TAG is pulled from `registry:`
    where it is not here). A tag not kept is refused before
    any tag moves, naming the kept ones. Emits a RolledBack per service moved, a Progress
    per service left as it is."""
    from dockyard.engine.deploy import up
    from dockyard.engine.history import rollback_to_tag
    from dockyard.errors import RegistryUnavailable
    from dockyard.events import Progress

    services = services or None
    require_services(plan.services, services or [])
    where = choose_target(fleet, plan, choice)
    from dockyard.engine.upgrade import refuse_pending

    refuse_pending(where)  # an interrupted upgrade first goes all new or all old
    engine = where.engine
    if fleet.spec.registry.strip():  # a machine that never built it: the registry has it
        from dockyard.engine.registry import pull_missing

        refs = [f"{repo_of(plan.services[n].image)}:{tag}"
                for n in rollback_services(plan, services) if plan.services[n].built]
        try:
            pull_missing(engine, fleet, [r for r in refs if not engine.image_id(r)], emit=emit)
        except RegistryUnavailable as exc:  # what is kept here still decides
            emit(Progress(f"{exc.message}: going by the tags kept here"))
    moved, left = rollback_to_tag(engine, fleet, plan, tag, services)
    for name, old, new in moved:
        emit(RolledBack(name, old, new))
    for name, why in sorted(left.items()):
        emit(Progress(f"{name} stays on :current: {why}, newer than {tag}"))
    return RollbackResult(where, up(where, emit=emit, build_missing=False, accept_stale=True))
