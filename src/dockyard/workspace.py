"""Where dockyard keeps what it makes for a fleet: rendered files, build contexts, wheels.

The state folder is `$DOCKYARD_STATE` when set; `.dockyard/` beside a manifest whose folder
dockyard may write; otherwise (the bundled example, a read-only checkout) a folder per fleet
in the user's cache."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

EXAMPLE = Path(__file__).parent / "examples" / "quickstart" / "fleet.yaml"


def state_dir(manifest: Path, fleet: str, environ: Mapping[str, str] | None = None) -> Path:
    """The state folder of fleet `fleet`, whose manifest is `manifest`: always absolute, since
    build contexts and compose files inside it are handed to programs run elsewhere
    (`-f fleet.yaml` made a relative one that compose resolved against its own folder)."""
    env = os.environ if environ is None else environ
    if env.get("DOCKYARD_STATE"):
        return Path(env["DOCKYARD_STATE"]).absolute()
    if manifest.resolve() != EXAMPLE.resolve() and os.access(manifest.parent, os.W_OK):
        return manifest.parent.absolute() / ".dockyard"
    cache = Path(env.get("XDG_CACHE_HOME", str(Path.home() / ".cache")))
    return cache / "dockyard" / fleet


def upgrade_dir(state: Path, machine: str) -> Path:
    """An upgrade's journal and the compose files it goes forward and back with, per machine:
    `<state>/upgrade/<machine>/` (journal.json while one runs or was interrupted; last.json
    once it ended)."""
    return state / "upgrade" / machine


def deployed_dir(state: Path) -> Path:
    """The rendered compose files containers were last made from (`up`, `upgrade`), kept so
    an upgrade can go back to the exact configuration a container runs."""
    return state / "deployed"
