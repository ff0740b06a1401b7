"""A service's build context as dockyard sends it: only what the image may hold.

Docker sends a context folder whole, minus what its `.dockerignore` names. A service without
`build:` used to get the manifest's folder, `.env` and the rendered compose files included:
they ended up in the image (`cat /app/.env`). Now each service's context is staged under the
state folder as hard links (a copy where the file system refuses them): a service without
`build:` gets an empty one; a `build:` folder is staged minus its `.dockerignore` and minus
what is never sent (`NEVER_SENT`: env files, dockyard's state, git; the manifest and its
locks),
whatever the `.dockerignore` says. The staged tree is what the build sends and what the
skip-by-hash reads, so only a file the image can see rebuilds it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from dockyard.plan.context import context_patterns, sent_files


def stage_context(source: Path | None, target: Path, *, manifest: Path) -> list[str]:
    """Make `target` hold exactly what `source` sends (nothing when `source` is None); return
    the staged paths. Unchanged files keep their inode, so a rerun costs a walk."""
    files = sent_files(source, context_patterns(source, manifest=manifest)) \
        if source is not None else []
    wanted = set(files)
    if target.exists():
        for folder, dirs, names in os.walk(target, topdown=False):
            for name in names:
                path = Path(folder) / name
                rel = path.relative_to(target).as_posix()
                if rel not in wanted or source is None or not _same(source / rel, path):
                    path.unlink()
            for name in dirs:
                path = Path(folder) / name
                if path.is_symlink():
                    path.unlink()
                elif not any(path.iterdir()):
                    path.rmdir()
    target.mkdir(parents=True, exist_ok=True)
    for rel in files:
        assert source is not None
        src, dst = source / rel, target / rel
        if dst.is_symlink() or dst.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
            continue
        try:
            os.link(src, dst)
        except OSError:  # another file system, or links refused: a copy will do
            shutil.copy2(src, dst)
    return files


def _same(src: Path, staged: Path) -> bool:
    """The staged entry still stands for `src` (a link to the same file, or an equal copy)."""
    try:
        if src.is_symlink() or staged.is_symlink():
            return (src.is_symlink() and staged.is_symlink()
                    and os.readlink(src) == os.readlink(staged))
        a, b = src.stat(), staged.stat()
    except OSError:
        return False
    if (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev):
        return True
    return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns and a.st_mode == b.st_mode
