"""`dockyard check`, and the same checks stopping engine commands before they touch anything."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from dockyard.actions.target import Choice
from dockyard.errors import EngineUnavailable, FindingsError

if TYPE_CHECKING:
    from dockyard.checks.ports import HostPorts
    from dockyard.checks.run import Report
    from dockyard.engine.connection import Engine
    from dockyard.engine.target import Target
    from dockyard.manifest.load import Fleet
    from dockyard.plan.history import Deployed
    from dockyard.plan.model import Plan


def image_programs(engine: Engine, fleet: Fleet, plan: Plan) -> dict[str, set[str]]:
    """service -> programs its health probes run that its image (when present on `engine`)
    has."""
    from dockyard.checks.health import programs_to_look_for
    from dockyard.engine.programs import programs_on_images

    images = {name: sp.image for name, sp in plan.services.items()}
    return programs_on_images(engine, images, programs_to_look_for(fleet, plan))


def image_secrets(engine: Engine, plan: Plan) -> dict[str, list[str]]:
    """service -> env files and keys in its built image (when present on `engine`)."""
    from dockyard.engine.programs import secrets_in_images

    return secrets_in_images(engine, {n: sp.image for n, sp in plan.services.items() if sp.built})


def preflight(fleet: Fleet, plan: Plan, *, images: Engine | None = None,
              ports: Target | None = None) -> None:
    """Raise when the manifest has errors: they stop engine commands before any container is
    touched. `images`: also judge health probes by the programs found on that engine's
    images; `ports`: then (the manifest being clean) the host ports that target's services
    publish, by what already holds them on its machine (DY103)."""
    from dockyard.checks import Severity
    from dockyard.checks import check as run_checks
    from dockyard.engine.programs import own_healthchecks

    programs = image_programs(images, fleet, plan) if images is not None else None
    deployed, kept = records(fleet)
    errors = [f for f in run_checks(fleet, plan, programs, deployed=deployed, kept_tags=kept)
              if f.severity is Severity.ERROR]
    if images is not None and any(f.code == "DY501" for f in errors):
        # Waiting for `healthy` on a service without `health:` is fine when its image has a
        # HEALTHCHECK of its own: only then is the engine asked (no facts: judged without).
        with contextlib.suppress(EngineUnavailable):
            own = own_healthchecks(images, {n: sp.image for n, sp in plan.services.items()
                                            if sp.spec.health is None})
            errors = [f for f in run_checks(fleet, plan, programs, own_health=own,
                                            deployed=deployed, kept_tags=kept)
                      if f.severity is Severity.ERROR]
    if not errors and ports is not None:
        from dockyard.checks.run import check_host_ports
        from dockyard.engine.hostports import host_ports

        held = host_ports(ports.engine, ports.machine, ports.project, ports.services(),
                          local=ports.engine.is_local)
        errors = [f for f in check_host_ports(fleet, plan, held)
                  if f.severity is Severity.ERROR]
    if errors:
        raise FindingsError(errors)


def records(fleet: Fleet) -> tuple[dict[str, Deployed], dict[str, list[str]]]:
    """What the fleet's state folder recorded: the images `up` last deployed per service
    (DY607 judges image changes against them) and the dated tags the last build kept per
    repository (DY608). Empty when nothing was deployed or built from this folder."""
    from dockyard.actions.target import state_of
    from dockyard.engine.history import recorded_deployed, recorded_tags

    state = state_of(fleet)
    return recorded_deployed(state), recorded_tags(state)


def host_ports_here(fleet: Fleet, plan: Plan, choice: Choice) -> HostPorts | None:
    """DY103's facts when `check` runs on the machine it checks: the one `-m` names, or the
    fleet's only machine when it is named after this host (as `dockyard machine detect`
    names it); its engine must be local (a socket, or TCP on loopback). Else None: `check`
    does not judge another machine's ports from here, nor depend on this host's."""
    import socket

    from dockyard.engine.connection import Engine, is_local_url
    from dockyard.engine.hostports import host_ports
    from dockyard.engine.machine import machine_name

    names = sorted(fleet.spec.machines)
    machine = choice.machine or (names[0] if len(names) == 1 else "")
    if machine not in fleet.spec.machines or (
            not choice.machine and machine != machine_name(socket.gethostname())):
        return None
    engine = Engine.for_machine(fleet, machine)
    if engine.endpoint.context or not is_local_url(engine.endpoint.url):
        return None
    services = [sp for sp in plan.on(machine)
                if not sp.spec.profiles or set(sp.spec.profiles) & set(choice.profiles)]
    return host_ports(engine if engine.answers() else None, machine,
                      choice.project or fleet.spec.fleet, services, local=True)


def check_fleet(fleet: Fleet, *, images: bool = False, choice: Choice | None = None
                ) -> Report:
    """Every finding on the manifest (`images`: and on the built images present on the
    engine of the chosen machine, see choose_engine: their health probes' programs, env
    files and keys; on the machine itself, DY103: see host_ports_here). When no placement
    fits, the other rules lack a plan: the one finding DY801 says why."""
    from dockyard.actions.target import choose_engine
    from dockyard.checks import check_report
    from dockyard.checks.run import infeasible
    from dockyard.engine.programs import own_healthchecks
    from dockyard.errors import PlacementError
    from dockyard.plan import plan as make_plan

    try:
        choice = choice or Choice()
        fleet.check_profiles(choice.profiles)
        the_plan = make_plan(fleet)
        engine = choose_engine(fleet, choice.machine) if images else None
        held = host_ports_here(fleet, the_plan, choice)
        deployed, kept = records(fleet)
        if engine is None:
            return check_report(fleet, the_plan, host_ports=held, deployed=deployed,
                                kept_tags=kept)
        refs = {n: sp.image for n, sp in the_plan.services.items()}
        return check_report(fleet, the_plan, image_programs(engine, fleet, the_plan),
                            image_secrets(engine, the_plan), held,
                            own_healthchecks(engine, refs), deployed, kept)
    except PlacementError as exc:
        return infeasible(fleet, exc)
