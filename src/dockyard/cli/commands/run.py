"""Commands that run the fleet on a machine: up, upgrade, down, ps/status, logs, rollback."""

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


def show_status(targets: list[Target], fmt: Format) -> None:
    """Each service's state and health on every target, probed now (all machines at once);
    a machine that cannot be reached shows `unreachable` rows, then the command fails
    naming it."""
    from dockyard.actions.upgrade import pending
    from dockyard.engine.deploy import status as deploy_status
    from dockyard.engine.fleet import status_fleet
    from dockyard.errors import MachineUnreachable

    unreachable: dict[str, str] = {}
    targets = [t for t in targets if t.services()] or targets[:1]
    if len(targets) == 1:
        rows = deploy_status(targets[0])
    else:
        rows, unreachable = status_fleet(targets)
    for t in targets:
        waiting = pending(t)
        if waiting:
            views.warn(waiting)
    if fmt is Format.json:
        views.out.print_json(json.dumps([r.as_dict() for r in rows]))
    else:
        views.status_table(targets[0], rows, [t.machine for t in targets])
    if unreachable:
        first = sorted(unreachable)[0]
        raise MachineUnreachable("; ".join(unreachable[m] for m in sorted(unreachable)),
                                 machine=first, fix=f"bring {first} back, or leave it out "
                                 "with -m naming the others")


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
    machine = ", ".join(t.machine for t in result.targets)
    if not result.up.changed:
        views.line(f"fleet {fleet.spec.fleet} on {machine} is up to date: nothing changed")
    else:
        views.line(f"fleet {fleet.spec.fleet} is up and healthy on {machine} "
                   f"in {result.up.seconds:.1f} s")
    show_status(result.targets, Format.table)


def swarm_up(fleet: Fleet, plan: Plan, ctx: typer.Context) -> None:
    from dockyard.actions.swarm import up as stack_up

    result = stack_up(fleet, plan, ctx.obj.choice(), emit=views.say)
    views.line(f"fleet {fleet.spec.fleet} is up and converged as swarm stack {result.stack} "
               f"(manager {result.manager}) in {result.seconds:.1f} s")
    for service, machine in sorted(result.placed.items()):
        views.line(f"  {service}: on {machine} (node {result.nodes[machine][:12]})")


def upgrade(ctx: typer.Context,
            services: list[str] = typer.Argument(None, help="Services to upgrade (default: "
                                                 "every one whose image or configuration "
                                                 "changed)."),
            build_images: bool = typer.Option(True, "--build/--no-build",
                                              help="Build the images first."),
            gate: bool = typer.Option(True, "--health-gate/--no-health-gate",
                                      help="Refuse services without a health check (off: "
                                           "running counts as healthy)."),
            resume: bool = typer.Option(False, "--resume", help="Finish the interrupted "
                                        "upgrade (see `dockyard status`)."),
            fmt: Format = typer.Option(Format.table, "--format",
                                       help="table, or json: one JSON event per line on "
                                            "stdout")) -> None:
    """Recreate what changed one service at a time in dependency order, each gated on its
    health; when one fails, put the whole set back on its previous images (exit 6)."""
    from dockyard.actions.upgrade import upgrade as fleet_upgrade

    fleet, plan = load(ctx.obj)
    emit = views.json_event if fmt is Format.json else views.say
    result = fleet_upgrade(fleet, plan, ctx.obj.choice(), emit=emit, services=services or None,
                           build=build_images, gate=gate, resume=resume)
    if fmt is Format.json:
        return
    report = result.upgrade
    machine = ", ".join(sorted(report.journals) or [t.machine for t in result.targets])
    if not report.changed:
        views.line(f"fleet {fleet.spec.fleet} on {machine}: nothing changed, nothing to "
                   "upgrade")
        return
    names = ", ".join(c.service + (f" ({m})" if len(report.journals) > 1 else "")
                      for m, j in sorted(report.journals.items()) for c in j.services)
    views.line(f"fleet {fleet.spec.fleet} upgraded on {machine} in {result.seconds:.1f} s: "
               f"{names} new and healthy" if report.outcome == "done" else
               f"fleet {fleet.spec.fleet} on {machine}: {report.outcome}")


def down(ctx: typer.Context,
         volumes: bool = typer.Option(False, "--volumes", help="Also delete named volumes "
                                      "(their data is lost)."),
         run_target: RunTarget = typer.Option(
             RunTarget.compose, "--target", help="compose, or swarm: remove the fleet's "
             "stack (the swarm stays).")) -> None:
    """Stop and remove the fleet's containers; volumes are kept unless --volumes."""
    from dockyard.actions.target import choose_targets
    from dockyard.engine.deploy import down as deploy_down
    from dockyard.engine.fleet import machines_failed, on_each

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
    targets = choose_targets(fleet, plan, ctx.obj.choice())
    if len(targets) == 1:
        deploy_down(targets[0], volumes=volumes)
        views.line(f"fleet {fleet.spec.fleet} is down on {targets[0].machine} ({kept})")
        return
    failed = on_each(targets, lambda t: deploy_down(t, volumes=volumes))
    done = [t.machine for t in targets if t.machine not in failed]
    if done:
        views.line(f"fleet {fleet.spec.fleet} is down on {', '.join(done)} ({kept})")
    if failed:
        raise machines_failed(failed, "down")


def ps(ctx: typer.Context,
       fmt: Format = typer.Option(Format.table, "--format", help="table or json")) -> None:
    """Each service's container state and health, probed now (on another machine: the engine's
    own health check's last verdict)."""
    from dockyard.actions.target import choose_targets

    fleet, plan = load(ctx.obj)
    show_status(choose_targets(fleet, plan, ctx.obj.choice()), fmt)


def status(ctx: typer.Context,
           fmt: Format = typer.Option(Format.table, "--format", help="table or json")) -> None:
    """Same as `ps`."""
    ps(ctx, fmt)


def logs(ctx: typer.Context, service: str | None = typer.Argument(None),
         follow: bool = typer.Option(False, "--follow", "-f"),
         tail: int | None = typer.Option(None, "--tail", help="Lines from the end.")) -> None:
    """Show (or follow) the logs of one service or all."""
    from dockyard.actions.target import choose_targets, require_services
    from dockyard.engine.deploy import logs as deploy_logs
    from dockyard.engine.fleet import machines_failed, on_each
    from dockyard.errors import DockyardError

    fleet, plan = load(ctx.obj)
    require_services(fleet.spec.services, [service] if service else [])
    targets = [t for t in choose_targets(fleet, plan, ctx.obj.choice())
               if any(sp.name == service or not service for sp in t.services())]
    if len(targets) <= 1:
        for t in targets:
            deploy_logs(t, service, follow=follow, tail=tail)
        return
    if follow:  # every machine's stream at once, as they come
        failed = on_each(targets, lambda t: deploy_logs(t, service, follow=True, tail=tail))
    else:  # one machine after the other, so each one's lines stay together
        failed = {}
        for t in targets:
            try:
                deploy_logs(t, service, follow=False, tail=tail)
            except DockyardError as exc:
                failed[t.machine] = exc
    if failed:
        raise machines_failed(failed, "logs")


def rollback(ctx: typer.Context,
             services: list[str] = typer.Argument(None, help="Services (default: every "
                                                  "built one)."),
             to: str = typer.Option("", "--to", metavar="TAG",
                                    help="Go back to this dated tag (`dockyard images "
                                         "--history` lists the kept ones) instead of "
                                         "`:prev`; with no service named, every built one "
                                         "goes back to how that build left it.")) -> None:
    """Put each service's `:prev` image (or its dated tag TAG) back as `:current` and run `up`
    again (pulling `:prev` from the fleet's `registry:` where it is not here); with an
    interrupted upgrade, take every service of it back to its previous image instead."""
    from dockyard.actions.rollback import rollback as roll_back
    from dockyard.actions.rollback import rollback_to
    from dockyard.events import Event, RolledBack

    def show(event: Event) -> None:  # what was swapped is the result: on stdout
        if isinstance(event, RolledBack):
            views.line(event.line())
        else:
            views.say(event)

    fleet, plan = load(ctx.obj, destructive="rollback")
    if to:
        result = rollback_to(fleet, plan, to, services or None, ctx.obj.choice(), emit=show)
        views.line(f"fleet {fleet.spec.fleet} is up on {result.target.machine} with the "
                   f"images of {to}")
        return
    result = roll_back(fleet, plan, services or None, ctx.obj.choice(), emit=show)
    if result.upgrade is not None:
        views.line(f"fleet {fleet.spec.fleet} on {result.target.machine}: the interrupted "
                   "upgrade is rolled back, every service of it on its previous image")
        return
    views.line(f"fleet {fleet.spec.fleet} is up on {result.target.machine} with the previous "
               "images")
