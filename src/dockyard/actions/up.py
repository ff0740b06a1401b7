"""`dockyard up`: the fleet's services on its machines, level by level across them,
healthy; or, with `--dry-run`, what that would do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dockyard.actions.check import preflight
from dockyard.actions.target import Choice, choose_target, choose_targets
from dockyard.events import Sink

if TYPE_CHECKING:
    from dockyard.engine.deploy import UpReport
    from dockyard.engine.fleet import FleetUpReport
    from dockyard.engine.target import Target
    from dockyard.manifest.load import Fleet
    from dockyard.ops.reconcile import Step
    from dockyard.plan.model import Plan


@dataclass(frozen=True)
class UpResult:
    """The machines brought up, and how: steps taken, probes, seconds per level."""

    targets: list[Target]
    up: UpReport | FleetUpReport

    @property
    def target(self) -> Target:
        return self.targets[0]


def prepare(fleet: Fleet, plan: Plan, choice: Choice) -> Target:
    """The chosen machine, once the manifest's checks (with the programs on the images its
    engine has, and what holds the host ports its services publish) found no error."""
    target = choose_target(fleet, plan, choice)
    preflight(fleet, plan, images=target.engine, ports=target)
    return target


def prepare_all(fleet: Fleet, plan: Plan, choice: Choice) -> list[Target]:
    """The chosen machines, once the manifest's checks (with the programs on the images each
    engine has, and what holds the host ports its services publish) found no error. A
    machine that cannot be reached is left to `up` to report (the others go on)."""
    targets = choose_targets(fleet, plan, choice)
    if len(targets) == 1:
        preflight(fleet, plan, images=targets[0].engine, ports=targets[0])
        return targets
    from dockyard.engine.fleet import each, reach
    from dockyard.errors import FindingsError

    preflight(fleet, plan)
    live = [t for t in targets if t.services()]
    down = reach(live)
    checked = each([t for t in live if t.machine not in down],
                   lambda t: preflight(fleet, plan, images=t.engine, ports=t))
    found = [r for r in checked.values() if isinstance(r, FindingsError)]
    if found:
        raise found[0]
    return targets


def up(fleet: Fleet, plan: Plan, choice: Choice, *, emit: Sink,
       build_missing: bool = True) -> UpResult:
    """Check the manifest, then start the chosen machines' services level by level (across
    machines: a service starts once its dependencies are healthy wherever they run),
    pulling or building missing images first when asked. An upgrade of a machine that did
    not end is finished first (`upgrade --resume` or `rollback`): up would mix the fleet."""
    from dockyard.engine.deploy import up as deploy_up
    from dockyard.engine.fleet import up_fleet
    from dockyard.engine.upgrade import refuse_pending

    targets = prepare_all(fleet, plan, choice)
    for target in targets:
        if target.services():
            refuse_pending(target)
    if len(targets) == 1:
        return UpResult(targets, deploy_up(targets[0], emit=emit, build_missing=build_missing))
    return UpResult(targets, up_fleet(targets, emit=emit, build_missing=build_missing))


@dataclass(frozen=True)
class DryRun:
    """What `up` would do on the machines, and nothing done."""

    targets: list[Target]
    steps: list[Step]  # one per service: create, recreate, start, wait or keep, and why

    @property
    def target(self) -> Target:
        return self.targets[0]


def dry_run(fleet: Fleet, plan: Plan, choice: Choice, *, emit: Sink) -> DryRun:
    """Check the manifest, then decide what `up` would do on the chosen machines; nothing on
    the engines changes (the rendered files are written to the state folder)."""
    from dockyard.engine.deploy import plan_up

    targets = prepare_all(fleet, plan, choice)
    steps = [s for t in targets if t.services() for s in plan_up(t, emit=emit)]
    return DryRun(targets, sorted(steps, key=lambda s: (s.level, s.service))
                  if len(targets) > 1 else steps)
