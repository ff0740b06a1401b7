"""The `dockyard` command: the typer app, its global options, and main()'s one line per error.

The commands live in `cli/commands/` (one module per group), each parsing its options,
calling an action (`dockyard.actions`) or the engine, and rendering the result through
`cli/views.py`."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any

import typer

from dockyard.cli.commands import build, data, importer, inspect, machine, run
from dockyard.cli.options import Options, manifest_first
from dockyard.cli.views import err
from dockyard.errors import DockyardError, ExitCode

app = typer.Typer(
    name="dockyard", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="One manifest for a fleet of AI services: check, plan, render, build and run it.",
)
machine_app = typer.Typer(help="The machines a fleet runs on.", no_args_is_help=True)
app.add_typer(machine_app, name="machine")


@app.callback()
def _options(
    ctx: typer.Context,
    file: Path | None = typer.Option(None, "--file", "-f", help="Manifest (default: fleet.yaml "
                                     "here or above; else the bundled example fleet)."),
    project: str | None = typer.Option(None, "--project", "-p", envvar="DOCKYARD_PROJECT",
                                       help="Compose project name (default: the fleet's name)."),
    machine: list[str] = typer.Option([], "--machine", "-m", help="Machine to act on "
                                      "(repeatable; default: every machine of the fleet)."),
    profile: list[str] = typer.Option([], "--profile", help="Also run services of this "
                                      "profile (repeatable)."),
) -> None:
    ctx.obj = Options(file, project, machine, profile)


# In the order `dockyard --help` lists them.
app.command()(inspect.check)
app.command("plan")(inspect.plan_cmd)
app.command()(inspect.render)
app.command("build")(build.build_cmd)
app.command()(build.lock)
app.command()(build.fetch)
app.command()(run.rollback)
app.command()(build.push)
app.command()(inspect.images)
app.command()(build.adopt)
app.command()(run.up)
app.command()(run.upgrade)
app.command()(run.down)
app.command()(run.ps)
app.command()(run.status)
app.command()(run.logs)
app.command()(data.backup)
app.command()(data.backups)
app.command()(data.restore)
app.command("import")(importer.import_)
app.command("bootstrap-base")(build.bootstrap_base)
app.command()(inspect.schema)
machine_app.command("detect")(machine.detect)


def _argumentless() -> dict[str, set[str]]:
    """Each command that takes no positional argument -> its options that take a value."""
    group: Any = typer.main.get_command(app)
    out: dict[str, set[str]] = {}
    for name, command in group.commands.items():
        kinds = [p.param_type_name for p in command.params]
        if hasattr(command, "commands") or "argument" in kinds:
            continue  # a group (machine), or a command with arguments (import, adopt)
        out[name] = {o for p in command.params
                     if p.param_type_name == "option" and not getattr(p, "is_flag", False)
                     for o in p.opts}
    return out


def main() -> None:
    """Entry point: one clear message per problem and the exit code errors.EXIT_CODES lists
    for it, no traceback."""
    from rich.markup import escape

    try:
        # standalone: typer prints usage errors itself and exits 2
        app(args=manifest_first(sys.argv[1:], _argumentless()))
    except SystemExit as exc:
        if exc.code == ExitCode.INTERRUPTED:  # typer turns Ctrl-C into a silent exit 130
            err.print("interrupted: what already started was left as it is; `dockyard ps` "
                      "shows it", highlight=False)
        raise
    except DockyardError as exc:
        # Escaped, no emoji: a message quotes the user's text (`[/x]` is not markup) and
        # locations (`fleet.yaml:100:3` is not the :100: emoji).
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, emoji=False)
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        err.print("interrupted: what already started was left as it is; `dockyard ps` shows it")
        sys.exit(int(ExitCode.INTERRUPTED))
    except Exception as exc:
        if os.environ.get("DOCKYARD_DEBUG"):
            raise
        err.print(f"[red]internal error:[/red] {escape(f'{type(exc).__name__}: {exc}')} "
                  "(a dockyard bug: rerun with DOCKYARD_DEBUG=1 and report the traceback)",
                  highlight=False, emoji=False)
        sys.exit(int(ExitCode.INTERNAL))
    finally:
        _exit_130_on_a_late_interrupt()


def _exit_130_on_a_late_interrupt() -> None:
    """A Ctrl-C after the command ended, while Python joins worker threads on its way out,
    was "Exception ignored ... KeyboardInterrupt" and exit 0: now it ends the process with
    130 at once, so an interrupt never exits 0."""
    import signal
    import threading

    if not any(t.is_alive() and not t.daemon for t in threading.enumerate()
               if t is not threading.main_thread()):
        return  # nothing to join: Python leaves at once

    def leave(signum: int, frame: object) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(ExitCode.INTERRUPTED))

    with contextlib.suppress(ValueError):  # not the main thread (tests calling main())
        signal.signal(signal.SIGINT, leave)
