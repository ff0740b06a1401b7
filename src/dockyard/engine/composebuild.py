"""`docker compose build`: how dockyard builds every image (compose drives the engine's
BuildKit itself, with no buildx plugin), one compose file per call under `work/compose`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dockyard.engine.connection import Engine
from dockyard.engine.private import private_folder, write_private
from dockyard.engine.run import run
from dockyard.errors import BuildError
from dockyard.render.compose import dump_yaml


def compose_build(engine: Engine, work: Path, project: str, name: str,
                  services: dict[str, Any]) -> None:
    """The compose file (its build args) and the build's log are the owner's alone (0600):
    a build step may print what it was given."""
    folder = work / "compose"
    private_folder(folder)
    compose_file = folder / f"{name}.yaml"
    write_private(compose_file, dump_yaml({"name": project, "services": services}))
    log = work / f"{name}.log"
    argv = [*engine.compose_argv(None, [compose_file]), "build", *services]
    result = run(argv, check=False, timeout=3600, env={"BUILDKIT_PROGRESS": "plain"})
    # BuildKit's step output goes to stdout, compose's verdict to stderr: keep both.
    text = result.stdout + result.stderr
    write_private(log, text)
    if result.returncode != 0:
        lines = [ln for ln in text.strip().splitlines() if "level=warning" not in ln]
        tail = "\n".join(lines[-20:])
        raise BuildError(
            f"building {name} failed; last lines:\n{tail}",
            fix=f"fix the step shown above; the whole log is in {log}",
            command=argv, returncode=result.returncode, stderr=text)
