"""`dockyard up`: the fleet's services on one machine, level by level, healthy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dockyard.actions.check import preflight
from dockyard.actions.target import Choice, choose_target
from dockyard.events import Sink

if TYPE_CHECKING:
    from dockyard.engine.deploy import Target, UpReport
    from dockyard.manifest.load import Fleet
    from dockyard.plan.model import Plan


@dataclass(frozen=True)
class UpResult:
    target: Target
    up: UpReport


def up(fleet: Fleet, plan: Plan, choice: Choice, *, emit: Sink,
       build_missing: bool = True) -> UpResult:
    """Check the manifest (and the programs on the images present), then start the chosen
    machine's services level by level, building missing images first when asked."""
    from dockyard.engine.deploy import up as deploy_up

    preflight(fleet, plan, images=True)
    where = choose_target(fleet, plan, choice)
    return UpResult(where, deploy_up(where, emit=emit, build_missing=build_missing))
