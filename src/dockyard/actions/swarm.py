"""`dockyard up --target swarm` / `down --target swarm`: the fleet as one Docker Swarm stack
on a swarm made of its machines (engine/swarm.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dockyard.actions.target import Choice, state_of
from dockyard.errors import FindingsError
from dockyard.events import Sink

if TYPE_CHECKING:
    from dockyard.engine.swarm import SwarmUp
    from dockyard.manifest.load import Fleet
    from dockyard.plan.model import Plan


# What compose on each machine needs and a swarm does not: the stack's overlay network
# reaches a service on another node by its name, with no port published.
NOT_FOR_SWARM = frozenset({"DY404", "DY407"})


def preflight(fleet: Fleet, plan: Plan) -> None:
    """The manifest's error findings stop the deploy, those a swarm makes moot aside."""
    from dockyard.checks import Severity
    from dockyard.checks import check as run_checks

    errors = [f for f in run_checks(fleet, plan)
              if f.severity is Severity.ERROR and f.code not in NOT_FOR_SWARM]
    if errors:
        raise FindingsError(errors)


def up(fleet: Fleet, plan: Plan, choice: Choice, *, emit: Sink,
       build_missing: bool = True) -> SwarmUp:
    """Check the manifest, then form the swarm, get the images to its nodes and deploy the
    stack level by level (UnhealthyError naming a service that did not converge)."""
    from dockyard.engine.swarm import up as swarm_up

    preflight(fleet, plan)
    return swarm_up(fleet, plan, state_of(fleet), emit=emit, profiles=choice.profiles,
                    build_missing=build_missing)


def down(fleet: Fleet, *, emit: Sink, volumes: bool = False) -> bool:
    """Remove the fleet's stack (the swarm stays); False when no machine manages a swarm."""
    from dockyard.engine.swarm import down as swarm_down

    return swarm_down(fleet, emit=emit, volumes=volumes)
