"""Where dockyard finds the manifest and keeps what it makes for a fleet.

The state folder holds rendered files, build contexts and the wheelhouse. It is
`$DOCKYARD_STATE` when set; `.dockyard/` beside a manifest whose folder dockyard may write;
otherwise (the bundled example, a read-only checkout) a folder per fleet in the user's cache."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockyard.manifest.load import Fleet

EXAMPLE = Path(__file__).parent / "examples" / "quickstart" / "fleet.yaml"


def manifest_path(given: Path | None, cwd: Path) -> tuple[Path, bool]:
    """The manifest to act on: the one given, else the nearest `fleet.yaml` from `cwd` up,
    else the bundled example fleet. The flag says the example stands in for a missing one."""
    if given is not None:
        return given, False
    from dockyard.manifest.load import find_manifest

    found = find_manifest(cwd)
    return (EXAMPLE, True) if found is None else (found, False)


def state_dir(fleet: Fleet, environ: Mapping[str, str] | None = None) -> Path:
    """The folder for this fleet's rendered files, build contexts and wheelhouses."""
    env = os.environ if environ is None else environ
    if env.get("DOCKYARD_STATE"):
        return Path(env["DOCKYARD_STATE"])
    if fleet.path.resolve() != EXAMPLE.resolve() and os.access(fleet.root, os.W_OK):
        return fleet.root / ".dockyard"
    cache = Path(env.get("XDG_CACHE_HOME", str(Path.home() / ".cache")))
    return cache / "dockyard" / fleet.spec.fleet
