"""`dockyard up`: the fleet's services on one machine, level by level, healthy; or, with
`--dry-run`, what that would do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dockyard.actions.check import preflight
from dockyard.actions.target import Choice, choose_target
from dockyard.events import Sink

if TYPE_CHECKING:
    from dockyard.engine.deploy import UpReport
    from dockyard.engine.target import Target
    from dockyard.manifest.load import Fleet
    from dockyard.ops.reconcile import Step
    from dockyard.plan.model import Plan


@dataclass(frozen=True)
class UpResult:
    """The machine brought up, and how: steps taken, probes, seconds per level."""

    target: Target
    up: UpReport


def prepare(fleet: Fleet, plan: Plan, choice: Choice) -> Target:
    """The chosen machine, once the manifest's checks (with the programs on the images its
    engine has, and what holds the host ports its services publish) found no error."""
    target = choose_target(fleet, plan, choice)
    preflight(fleet, plan, images=target.engine, ports=target)
    return target


def up(fleet: Fleet, plan: Plan, choice: Choice, *, emit: Sink,
       build_missing: bool = True) -> UpResult:
    """Check the manifest, then start the chosen machine's services level by level,
    pulling or building missing images first when asked. An upgrade of the machine that did
    not end is finished first (`upgrade --resume` or `rollback`): up would mix the fleet."""
    from dockyard.engine.deploy import up as deploy_up
    from dockyard.engine.upgrade import refuse_pending

    target = prepare(fleet, plan, choice)
    refuse_pending(target)
    return UpResult(target, deploy_up(target, emit=emit, build_missing=build_missing))


@dataclass(frozen=True)
class DryRun:
    """What `up` would do on the machine, and nothing done."""

    target: Target
    steps: list[Step]  # one per service: create, recreate, start, wait or keep, and why


def dry_run(fleet: Fleet, plan: Plan, choice: Choice, *, emit: Sink) -> DryRun:
    """Check the manifest, then decide what `up` would do on the chosen machine; nothing on
    the engine changes (the rendered files are written to the state folder)."""
    from dockyard.engine.deploy import plan_up

    target = prepare(fleet, plan, choice)
    return DryRun(target, plan_up(target, emit=emit))
