"""Which machine (one compose project) a command acts on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.errors import ManifestError
from dockyard.workspace import state_dir

if TYPE_CHECKING:
    from dockyard.engine.connection import Engine
    from dockyard.engine.target import Target
    from dockyard.manifest.load import Fleet
    from dockyard.plan.model import Plan


@dataclass(frozen=True)
class Choice:
    """What the user asked for: a machine, a compose project name, extra profiles."""

    machine: str | None = None
    project: str | None = None
    profiles: tuple[str, ...] = ()


def state_of(fleet: Fleet) -> Path:
    """The fleet's state folder: rendered files, build contexts, the wheelhouse."""
    return state_dir(fleet.path, fleet.spec.fleet)


def choose_machine(fleet: Fleet, machine: str | None) -> str:
    """The machine named, or the fleet's only one; else say which there are."""
    machines = sorted(fleet.spec.machines)
    chosen = machine or (machines[0] if len(machines) == 1 else "")
    if chosen not in fleet.spec.machines:
        raise ManifestError(
            f"choose the machine to act on with --machine ({', '.join(machines)})"
            if not chosen else f"unknown machine {chosen!r} (known: {', '.join(machines)})",
            where=fleet.where("machines"))
    return chosen


def require_services(known: Iterable[str], names: Iterable[str]) -> None:
    """Raise for the first of `names` that is not a service of the fleet."""
    services = sorted(known)
    unknown = [n for n in names if n not in services]
    if unknown:
        raise ManifestError(f"unknown service {unknown[0]!r}",
                            fix="one of: " + ", ".join(services))


def choose_target(fleet: Fleet, plan: Plan, choice: Choice) -> Target:
    """The chosen machine's share of the fleet, as one compose project."""
    from dockyard.engine.target import Target

    return Target(fleet, plan, state_of(fleet), choose_machine(fleet, choice.machine),
                  choice.project or fleet.spec.fleet, choice.profiles)


def choose_engine(fleet: Fleet, machine: str | None) -> Engine:
    """The engine of the machine named (or the fleet's only one); with none named, the one
    engine all the fleet's machines share (else say which machine to choose)."""
    from dockyard.engine.connection import Engine

    engines = {m.engine for m in fleet.spec.machines.values()}
    if machine or len(engines) != 1:
        return Engine.for_machine(fleet, choose_machine(fleet, machine))
    return Engine.for_machine(fleet, sorted(fleet.spec.machines)[0])
