"""Commands that run the fleet on a machine: up, down, ps/status, logs, rollback."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from dockyard.cli import views
from dockyard.cli.options import Format, RunTarget, load

if TYPE_CHECKING:
    from dockyard.engine.target import Target
    from dockyard.manifest.load import Fleet
    from dockyard.plan.model import Plan


def show_status(target: Target, fmt: Format) -> None:
    from dockyard.engine.deploy import status as deploy_status

    rows = deploy_status(target)
    if fmt is Format.json:
        views.out.print_json(json.dumps([r.as_dict() for r in rows]))
        return
    views.status_table(target, rows)


def up(ctx: typer.Context,
       build_missing: bool = typer.Option(True, "--build/--no-build",
                                          help="Build images that are missing."),
       dry_run: bool = typer.Option(False, "--dry-run", help="Print what each service needs "
                                    "(create, recreate, start, wait, keep, and why); change "
                                    "nothing."),
       run_target: RunTarget = typer.Option(
           RunTarget.compose, "--target", help="compose: one compose project per machine; "
           "swarm: one stack on a swarm of the fleet's machines (made if need be), deployed "
           "level by level.")) -> None:
    """Start the fleet level by level and wait until every service is healthy."""
    from dockyard.actions.up import dry_run as up_dry_run
    from dockyard.actions.up import up as fleet_up
    from dockyard.events import Progress

    fleet, plan = load(ctx.obj)
    if run_target is RunTarget.swarm:
        if dry_run:
            raise typer.BadParameter("--dry-run is for --target compose", param_hint="--dry-run")
        swarm_up(fleet, plan, ctx)
        return
    if dry_run:
        steps = up_dry_run(fleet, plan, ctx.obj.choice(), emit=views.say)
        views.steps_table(steps.steps)
        views.say(Progress("dry run: nothing was changed (the rendered files are in "
                           f"{steps.target.state / 'render'})"))
        return
    result = fleet_up(fleet, plan, ctx.obj.choice(), emit=views.say, build_missing=build_missing)
    machine = result.target.machine
    if not result.up.changed:
        views.line(f"fleet {fleet.spec.fleet} on {machine} is up to date: nothing changed")
    else:
        views.line(f"fleet {fleet.spec.fleet} is up and healthy on {machine} "
                   f"in {result.up.seconds:.1f} s")
    show_status(result.target, Format.table)


def swarm_up(fleet: Fleet, plan: Plan, ctx: typer.Context) -> None:
    from dockyard.actions.swarm import up as stack_up

    result = stack_up(fleet, plan, ctx.obj.choice(), emit=views.say)
    views.line(f"fleet {fleet.spec.fleet} is up and converged as swarm stack {result.stack} "
               f"(manager {result.manager}) in {result.seconds:.1f} s")
    for service, machine in sorted(result.placed.items()):
        views.line(f"  {service}: on {machine} (node {result.nodes[machine][:12]})")


def down(ctx: typer.Context,
         volumes: bool = typer.Option(False, "--volumes", help="Also delete named volumes "
                                      "(their data is lost)."),
         run_target: RunTarget = typer.Option(
             RunTarget.compose, "--target", help="compose, or swarm: remove the fleet's "
             "stack (the swarm stays).")) -> None:
    """Stop and remove the fleet's containers; volumes are kept unless --volumes."""
    from dockyard.actions.target import choose_target
    from dockyard.engine.deploy import down as deploy_down

    # Stopping needs no secrets (.env may be gone), and never acts on the bundled example.
    fleet, plan = load(ctx.obj, lenient=True,
                       destructive="down --volumes" if volumes else "down")
    kept = "volumes deleted" if volumes else "volumes kept"
    if run_target is RunTarget.swarm:
        from dockyard.actions.swarm import down as stack_down

        if stack_down(fleet, emit=views.say, volumes=volumes):
            views.line(f"swarm stack {fleet.spec.fleet} is removed ({kept}; the swarm stays)")
        else:
            views.line(f"no machine of fleet {fleet.spec.fleet} manages a swarm: nothing to "
                       "remove")
        return
    where = choose_target(fleet, plan, ctx.obj.choice())
    deploy_down(where, volumes=volumes)
    views.line(f"fleet {fleet.spec.fleet} is down on {where.machine} ({kept})")


def ps(ctx: typer.Context,
       fmt: Format = typer.Option(Format.table, "--format", help="table or json")) -> None:
    """Each service's container state and health, probed now."""
    from dockyard.actions.target import choose_target

    fleet, plan = load(ctx.obj)
    show_status(choose_target(fleet, plan, ctx.obj.choice()), fmt)


def status(ctx: typer.Context,
           fmt: Format = typer.Option(Format.table, "--format", help="table or json")) -> None:
    """Same as `ps`."""
    ps(ctx, fmt)


def logs(ctx: typer.Context, service: str | None = typer.Argument(None),
         follow: bool = typer.Option(False, "--follow", "-f"),
         tail: int | None = typer.Option(None, "--tail", help="Lines from the end.")) -> None:
    """Show (or follow) the logs of one service or all."""
    from dockyard.actions.target import choose_target, require_services
    from dockyard.engine.deploy import logs as deploy_logs

    fleet, plan = load(ctx.obj)
    require_services(fleet.spec.services, [service] if service else [])
    deploy_logs(choose_target(fleet, plan, ctx.obj.choice()), service, follow=follow, tail=tail)


def rollback(ctx: typer.Context,
             services: list[str] = typer.Argument(None, help="Services (default: every "
                                                  "built one).")) -> None:
    """Put each service's `:prev` image back as `:current` and run `up` again (pulling `:prev`
    from the fleet's `registry:` where it is not here)."""
    from dockyard.actions.rollback import rollback as roll_back
    from dockyard.events import Event, RolledBack

    def show(event: Event) -> None:  # what was swapped is the result: on stdout
        if isinstance(event, RolledBack):
            views.line(event.line())
        else:
            views.say(event)

    fleet, plan = load(ctx.obj, destructive="rollback")
    result = roll_back(fleet, plan, services or None, ctx.obj.choice(), emit=show)
    views.line(f"fleet {fleet.spec.fleet} is up on {result.target.machine} with the previous "
               "images")
