"""`dockyard rollback`: an upgrade that did not end taken back (every service of its set
on its old image and config); else each service's `:prev` image back as `:current` where its
tags live, then `up`; on every machine of the fleet, or those -m names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dockyard.actions.target import Choice, choose_targets, require_services
from dockyard.engine.build import prev_ref, rollback_services
from dockyard.errors import ManifestError
from dockyard.events import RolledBack, Sink

if TYPE_CHECKING:
    from dockyard.engine.deploy import UpReport
    from dockyard.engine.fleet import FleetUpReport
    from dockyard.engine.rollback import Moved
    from dockyard.engine.target import Target
    from dockyard.engine.upgrade import UpgradeReport
    from dockyard.manifest.load import Fleet
    from dockyard.plan.model import Plan


@dataclass(frozen=True)
class RollbackResult:
    """The machines brought up again on the previous images."""

    targets: list[Target]
    up: UpReport | FleetUpReport | None  # None: an interrupted upgrade was taken back instead
    upgrade: UpgradeReport | None = None

    @property
    def target(self) -> Target:
        return self.targets[0]


def prev_refs(plan: Plan, services: list[str] | None = None) -> list[str]:
    """The `:prev` images a rollback of `services` (None: every built one) goes back to."""
    return sorted({prev_ref(plan.services[name].image)
                   for name in rollback_services(plan, services) if plan.services[name].built})


def _chosen(fleet: Fleet, plan: Plan, services: list[str] | None, choice: Choice
            ) -> list[Target]:
    """The machines a rollback acts on (every one of the fleet, or those -m names), each
    answering: one that does not is refused before any tag moves (a fleet half on old images
    is what a rollback must not leave), and so is a service named that none of them runs."""
    from dockyard.engine.fleet import reach
    from dockyard.errors import MachineUnreachable

    require_services(plan.services, services or [])
    targets = choose_targets(fleet, plan, choice)
    chosen = {t.machine for t in targets}
    for name in services or []:
        on = [m for m in sorted(fleet.spec.machines) if any(sp.name == name for sp in plan.on(m))]
        if on and not chosen & set(on):
            raise ManifestError(f"service {name} runs on {', '.join(on)}, which -m leaves out",
                                fix=f"add -m {on[0]}, or leave {name} out")
    if len(targets) > 1:
        down = reach([t for t in targets if plan.on(t.machine)])
        if down:
            first = sorted(down)[0]
            others = " ".join(f"-m {t.machine}" for t in targets if t.machine not in down)
            raise MachineUnreachable(
                "rollback needs every machine it acts on, and "
                + "; ".join(f"machine {m} cannot be reached ({down[m].message})"
                            for m in sorted(down)) + ": no tag was moved",
                machine=first, fix=f"bring {first} back, or leave it out with -m naming the "
                                   f"others ({others})")
    return targets


def _pending_back(targets: list[Target], emit: Sink) -> UpgradeReport | None:
    """An upgrade of the machines that did not end, taken back (all old) on every machine it
    spans; None when there is none."""
    from dockyard.engine.upgrade import rollback_pending_fleet

    return rollback_pending_fleet(targets, emit=emit)


def _pending_refused(targets: list[Target]) -> None:
    """An upgrade of a machine that did not end first goes all new or all old."""
    from dockyard.engine.upgrade import refuse_pending

    for target in targets:
        refuse_pending(target)


def _up(targets: list[Target], *, emit: Sink) -> UpReport | FleetUpReport:
    """The machines brought up on the images now `:current` (older than their manifest
    entries: run as they are), level by level across them."""
    from dockyard.engine.deploy import up
    from dockyard.engine.fleet import up_fleet

    if len(targets) == 1:
        return up(targets[0], emit=emit, build_missing=False, accept_stale=True)
    return up_fleet(targets, emit=emit, build_missing=False, accept_stale=True)


def _said(moved: list[Moved], targets: list[Target], emit: Sink) -> None:
    for swap, machines in moved:
        emit(RolledBack(swap.service, swap.current, swap.new,
                        ", ".join(machines) if len(targets) > 1 else ""))


def rollback(fleet: Fleet, plan: Plan, services: list[str] | None, choice: Choice, *,
             emit: Sink) -> RollbackResult:
    """Swap `:prev` and `:current` of the services named (none: every built one that has a
    `:prev`) where their tags live (engine/rollback.py), pulling `:prev` from the fleet's
    registry where it is not there, then bring the machines (all, or those -m names) up on
    them. Emits a RolledBack per service swapped. An upgrade of a machine that did not end
    is taken back instead (all old), and no tag is swapped."""
    from dockyard.engine.rollback import swap_prev

    services = services or None
    targets = _chosen(fleet, plan, services, choice)  # before any tag moves
    taken_back = _pending_back(targets, emit)
    if taken_back is not None:
        return RollbackResult(targets, None, taken_back)
    _said(swap_prev(targets, services, emit=emit), targets, emit)
    return RollbackResult(targets, _up(targets, emit=emit))


def rollback_to(fleet: Fleet, plan: Plan, tag: str, services: list[str] | None,
                choice: Choice, *, emit: Sink) -> RollbackResult:
    """`rollback --to TAG`: each service named (none: every built one, as the build that
    made TAG left it) back on its image of that dated tag, the one that was `:current`
    becoming `:prev`, then the machines brought up on them (TAG is pulled from `registry:`
    where it is not there). A tag not kept is refused before any tag moves on any machine,
    naming the kept ones. Emits a RolledBack per service moved, a Progress per service left
    as it is."""
    from dockyard.engine.rollback import swap_to_tag
    from dockyard.events import Progress

    services = services or None
    targets = _chosen(fleet, plan, services, choice)
    _pending_refused(targets)
    moved, left = swap_to_tag(targets, tag, services, emit=emit)
    _said(moved, targets, emit)
    for name, why in sorted(left.items()):
        emit(Progress(f"{name} stays on :current: {why}, newer than {tag}"))
    return RollbackResult(targets, _up(targets, emit=emit))
