"""Which machine (one compose project) a command acts on."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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

    machine: str | None = None  # the one machine named (a command acting on one)
    project: str | None = None
    profiles: tuple[str, ...] = ()
    machines: tuple[str, ...] = ()  # every machine named with -m; none: the whole fleet


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


def require_machines(fleet: Fleet, names: Iterable[str]) -> None:
    """Raise for the first of `names` that is not a machine of the fleet."""
    unknown = [n for n in names if n not in fleet.spec.machines]
    if unknown:
        raise ManifestError(f"unknown machine {unknown[0]!r} "
                            f"(known: {', '.join(sorted(fleet.spec.machines))})",
                            where=fleet.where("machines"))


def choose_machines(fleet: Fleet, names: Sequence[str]) -> list[str]:
    """The machines named (none: every machine of the fleet). In a fleet of several
    machines each must say where its engine answers: `local` is only the default of a
    fleet's only machine, so two machines never land on one engine by accident."""
    require_machines(fleet, names)
    known = sorted(fleet.spec.machines)
    chosen = list(dict.fromkeys(names)) or known
    if len(known) > 1:
        for m in chosen:
            if ("machines", m, "engine") not in fleet.positions:
                raise ManifestError(
                    f"machine {m} has no `engine:`, and the fleet has {len(known)} machines: "
                    "dockyard cannot tell where its Docker engine answers",
                    where=fleet.where("machines", m),
                    fix=f"add `engine: ssh://user@host` to machines.{m} (or `engine: local` "
                        "for the machine dockyard runs on)")
    return chosen


def choose_targets(fleet: Fleet, plan: Plan, choice: Choice) -> list[Target]:
    """Each chosen machine's share of the fleet (see choose_machines), one compose project
    each, in the order of the manifest's machine names."""
    from dockyard.engine.target import Target

    names = choice.machines or ((choice.machine,) if choice.machine else ())
    return [Target(fleet, plan, state_of(fleet), m, choice.project or fleet.spec.fleet,
                   choice.profiles) for m in choose_machines(fleet, names)]


def choose_engine(fleet: Fleet, machine: str | None) -> Engine:
    """The engine of the machine named (or the fleet's only one); with none named, the one
    engine all the fleet's machines share, else this host's: where the images of the
    machines built here (`build: local`) are built and kept (`images`, `push`)."""
    from dockyard.engine.connection import Engine

    engines = {m.engine for m in fleet.spec.machines.values()}
    if machine or len(fleet.spec.machines) == 1:
        return Engine.for_machine(fleet, choose_machine(fleet, machine))
    if len(engines) != 1:
        return Engine.local()
    return Engine.for_machine(fleet, sorted(fleet.spec.machines)[0])
