"""`dockyard import`: a compose project as a fleet manifest."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from dockyard.cli import views


def import_(
    files: list[Path] = typer.Argument(None, help="Compose files; later ones override earlier "
                                       "ones (default: the compose.yaml here)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Manifest to write "
                                       "(default: fleet.yaml beside the first compose file; "
                                       "- for stdout)."),
    fleet_name: str | None = typer.Option(None, "--fleet", help="Fleet name (default: the "
                                          "compose project's name)."),
    machine: str = typer.Option("local", "--machine", help="Name of the fleet's one machine."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing manifest."),
) -> None:
    """Turn a compose project (and the Dockerfiles it builds) into a fleet manifest, and list
    what could not be mapped."""
    from dockyard.actions.importer import check_reload, import_project

    result = import_project(list(files or []), cwd=Path.cwd(), output=output, fleet=fleet_name,
                            machine=machine, force=force)
    report = views.out if result.path else views.err  # stdout may hold the manifest itself
    if result.path is None:
        sys.stdout.write(result.text)
    for item in result.unmapped:
        report.print(f"not mapped: {item}", highlight=False, markup=False, emoji=False)
    check_reload(result.text, result.path, result.environ)
    report.print(f"wrote {result.path or 'stdout'}: {result.services} service(s), "
                 f"{len(result.unmapped)} thing(s) not mapped", highlight=False, markup=False,
                 emoji=False)
