"""Commands for a fleet's data: backup, backups, restore."""

from __future__ import annotations

import json

import typer

from dockyard.cli import views
from dockyard.cli.options import Format, load


def backup(ctx: typer.Context,
           services: list[str] = typer.Argument(None, help="Services (default: every "
                                                "stateful one on the machine)."),
           fmt: Format = typer.Option(Format.table, "--format", help="table or json")) -> None:
    """Back up stateful services while they keep serving: pg_dump per database, a Redis
    BGSAVE, a tar per named volume; one folder per run (see `dockyard backups`)."""
    from dockyard.actions.backup import backup as take

    fleet, plan = load(ctx.obj)
    result = take(fleet, plan, services or None, ctx.obj.choice(), emit=views.say)
    run = result.run
    if fmt is Format.json:
        views.out.print_json(run.to_json())
        return
    views.line(f"backup run {run.id}: {len(run.services)} service(s), "
               f"{views.size(run.bytes)} in {result.root / run.id}")


def backups(ctx: typer.Context,
            fmt: Format = typer.Option(Format.table, "--format", help="table or json")) -> None:
    """List the backup runs (oldest first), with the id `dockyard restore` takes."""
    from rich.table import Table

    from dockyard.actions.backup import backups as runs_of

    fleet, _ = load(ctx.obj, lenient=True)
    root, runs = runs_of(fleet)
    if fmt is Format.json:
        views.out.print_json(json.dumps([r.summary() for r in runs]))
        return
    if not runs:
        views.line(f"no backup runs in {root} yet (`dockyard backup` makes one)")
        return
    table = Table(title=f"backup runs of fleet {fleet.spec.fleet} in {root}")
    for col in ("id", "reason", "machine", "started", "services", "size"):
        table.add_column(col)
    for r in runs:
        table.add_row(r.id, r.reason, r.machine, r.started[:19].replace("T", " "),
                      ", ".join(f"{s.service} ({s.kind})" for s in r.services),
                      views.size(r.bytes))
    views.out.print(table)


def restore(ctx: typer.Context,
            run: str = typer.Argument(..., help="The run's id (`dockyard backups`), or "
                                      "latest."),
            services: list[str] = typer.Argument(None, help="Services (default: all the run "
                                                 "holds)."),
            replace: bool = typer.Option(False, "--replace", help="Delete the services' "
                                         "existing volumes first (their data is lost).")
            ) -> None:
    """Restore a backup run into fresh volumes and start each service healthy; every file's
    sha256 is checked before anything is touched."""
    from dockyard.actions.backup import restore as put_back

    fleet, plan = load(ctx.obj, destructive="restore")
    result = put_back(fleet, plan, run, services or None, ctx.obj.choice(), emit=views.say,
                      replace=replace)
    views.line(f"restored {', '.join(result.report.services)} from backup run "
               f"{result.report.run} on {result.target.machine}")
