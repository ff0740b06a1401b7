"""Commands for a fleet's data: backup, backups, restore.

On a fleet of several machines they act on every machine (or those named with -m) at once:
one run per machine, one result line per machine; a machine that cannot be reached is said,
the others are done, and the command then fails naming it (exit 3)."""

from __future__ import annotations

import json

import typer

from dockyard.cli import views
from dockyard.cli.options import Format, load


def backup(ctx: typer.Context,
           services: list[str] = typer.Argument(None, help="Services (default: every "
                                                "stateful one on each machine)."),
           fmt: Format = typer.Option(Format.table, "--format", help="table or json")) -> None:
    """Back up stateful services while they keep serving: pg_dump per database, a Redis
    BGSAVE, a tar per named volume; one folder per run and machine, the machines at once
    (see `dockyard backups`)."""
    from dockyard.actions.backup import backup as take
    from dockyard.actions.backup import backup_fleet
    from dockyard.engine.fleet import machines_failed

    fleet, plan = load(ctx.obj)
    if len(fleet.spec.machines) == 1:
        result = take(fleet, plan, services or None, ctx.obj.choice(), emit=views.say)
        run = result.run
        if fmt is Format.json:
            views.out.print_json(run.to_json())
            return
        views.line(f"backup run {run.id}: {len(run.services)} service(s), "
                   f"{views.size(run.bytes)} in {result.root / run.id}")
        return
    done = backup_fleet(fleet, plan, services or None, ctx.obj.choice(), emit=views.say)
    if fmt is Format.json:  # a list: one run per machine
        views.out.print_json(json.dumps([json.loads(r.to_json()) for r in done.runs.values()]))
    else:
        for machine, run in done.runs.items():
            views.line(f"backup run {run.id} on {machine}: {len(run.services)} service(s), "
                       f"{views.size(run.bytes)} in {done.root / run.id}")
        if done.runs:
            views.line(f"batch {done.batch} (`dockyard restore {done.batch}` puts these "
                       "runs back together)")
    if done.failed:
        raise machines_failed(done.failed, "backup")


def backups(ctx: typer.Context,
            fmt: Format = typer.Option(Format.table, "--format", help="table or json")) -> None:
    """List the backup runs of every machine (or those -m names), oldest first, with the id
    `dockyard restore` takes (a batch: the runs one command made on several machines)."""
    from rich.table import Table

    from dockyard.actions.backup import backups as runs_of

    fleet, _ = load(ctx.obj, lenient=True)
    root, runs = runs_of(fleet, tuple(ctx.obj.machines))
    if fmt is Format.json:
        views.out.print_json(json.dumps([r.summary() for r in runs]))
        return
    if not runs:
        views.line(f"no backup runs in {root} yet (`dockyard backup` makes one)")
        return
    batches = any(r.batch for r in runs)
    table = Table(title=f"backup runs of fleet {fleet.spec.fleet} in {root}")
    for col in ("id", "reason", "machine", *(["batch"] if batches else []), "started",
                "services", "size"):
        table.add_column(col)
    for r in runs:
        table.add_row(r.id, r.reason, r.machine, *([r.batch or "-"] if batches else []),
                      r.started[:19].replace("T", " "),
                      ", ".join(f"{s.service} ({s.kind})" for s in r.services),
                      views.size(r.bytes))
    views.out.print(table)


def restore(ctx: typer.Context,
            run: str = typer.Argument(..., help="The run's id (`dockyard backups`), latest "
                                      "(each machine its newest run), or a batch id (each "
                                      "machine its run of that backup)."),
            services: list[str] = typer.Argument(None, help="Services (default: all the run "
                                                 "holds)."),
            replace: bool = typer.Option(False, "--replace", help="Delete the services' "
                                         "existing volumes first (their data is lost).")
            ) -> None:
    """Restore backup runs into fresh volumes and start each service healthy, the machines
    at once; every file's sha256 is checked, on every machine, before anything is
    touched."""
    from dockyard.actions.backup import restore as put_back
    from dockyard.actions.backup import restore_fleet
    from dockyard.engine.fleet import machines_failed

    fleet, plan = load(ctx.obj, destructive="restore")
    if len(fleet.spec.machines) == 1:
        result = put_back(fleet, plan, run, services or None, ctx.obj.choice(),
                          emit=views.say, replace=replace)
        views.line(f"restored {', '.join(result.report.services)} from backup run "
                   f"{result.report.run} on {result.target.machine}")
        return
    done = restore_fleet(fleet, plan, run, services or None, ctx.obj.choice(), emit=views.say,
                         replace=replace)
    for machine, report in done.restored.items():
        views.line(f"restored {', '.join(report.services)} from backup run {report.run} on "
                   f"{machine}")
    if done.failed:
        raise machines_failed(done.failed, "restore")
