"""`dockyard import`: a compose project becomes a fleet manifest, checked by loading it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.errors import DockyardError, ManifestError


@dataclass(frozen=True)
class Imported:
    """The manifest written (`path` None: it goes to stdout), and what it could not carry."""

    text: str
    path: Path | None
    services: int
    unmapped: list[str]
    environ: Mapping[str, str] = field(default_factory=dict)  # the project's .env + process


def import_project(files: list[Path], *, cwd: Path, output: Path | None = None,
                   fleet: str | None = None, machine: str = "local",
                   force: bool = False) -> Imported:
    """Read the compose files (none: the compose.yaml in `cwd`) and write the manifest to
    `output` (None: fleet.yaml beside the first file; "-": not written, for stdout)."""
    from dockyard.manifest.importer import find_compose, import_compose, read_project

    paths = list(files)
    if not paths:
        found = find_compose(cwd)
        if found is None:
            raise ManifestError("no compose.yaml in this folder",
                                fix="name the compose files: dockyard import compose.yaml")
        paths = [found]
    project = read_project(paths)
    target = output if output is not None else project.directory / "fleet.yaml"
    to_stdout = str(target) == "-"
    if not to_stdout and target.exists() and not force:
        raise ManifestError(f"{target} already exists",
                            fix="pass --force to overwrite it, or -o another file")
    result = import_compose(project, out_dir=cwd if to_stdout else target.parent,
                            fleet=fleet, machine=machine)
    text = result.text()
    if not to_stdout:
        target.write_text(text, encoding="utf-8")
    return Imported(text, None if to_stdout else target, len(result.manifest["services"]),
                    [str(item) for item in result.unmapped], dict(project.environ))


def check_reload(text: str, path: Path | None, environ: Mapping[str, str]) -> None:
    """Load the imported manifest as `up` would, and raise when it does not: that is a
    dockyard bug, not the user's. Variables the environment lacks are not the import's
    fault: any value will do for them here."""
    from dockyard.manifest.load import loads

    lenient = {name: environ.get(name, "1")
               for name in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text)}
    try:
        loads(text, name=path.name if path else "-", path=path, environ=lenient)
    except ManifestError as exc:
        raise DockyardError(f"the imported manifest does not load: {exc}",
                            fix="if `docker compose config` accepts the compose files, this is a "
                                "dockyard bug: please report it with them") from None
