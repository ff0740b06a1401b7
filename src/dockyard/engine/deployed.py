"""The rendered compose files a machine's containers were made from, kept (the last KEEP,
by content) so `upgrade` can go back to the exact configuration a container runs: a file is
trusted for a service only when compose's config hash of it is that container's label."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from dockyard.engine.private import private_folder, write_private
from dockyard.workspace import deployed_dir

KEEP = 5


def record(state: Path, machine: str, text: str) -> Path:
    """Keep `text` as a file containers of `machine` were made from (newest first after)."""
    folder = deployed_dir(state)
    private_folder(folder)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    path = folder / f"compose.{machine}.{digest}.yaml"
    write_private(path, text)
    os.utime(path)  # newest first, whether it was there or not
    for old in records(state, machine)[KEEP:]:
        old.unlink(missing_ok=True)
    return path


def records(state: Path, machine: str) -> list[Path]:
    """The kept files of `machine`, newest first."""
    folder = deployed_dir(state)
    if not folder.is_dir():
        return []
    found = list(folder.glob(f"compose.{machine}.*.yaml"))
    return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)
