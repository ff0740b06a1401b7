"""What Docker would send of a build context: dockyard's rules for it, read from the folder.

Pure apart from reading the user's folder (as the loader reads `.env`): used by `build`, which
stages exactly these files (engine/context.py), and by `check`, which reports a key file that
would land in an image (DY705). Secrets and dockyard's state are never sent, whatever the
user's `.dockerignore` says (`NEVER_SENT` comes last, so no `!pattern` takes it back)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

# Sent unless the user's .dockerignore takes them back with `!pattern`: caches, not sources.
SKIPPED = ("**/__pycache__", "**/.mypy_cache", "**/.pytest_cache", "**/.ruff_cache", ".venv")
# Never sent, whatever .dockerignore says: secrets and dockyard's own files.
NEVER_SENT = ("**/.env", "**/.env.*", "**/*.env", ".dockyard", ".dockyard/**", "**/.git",
              "**/.git/**")


def context_patterns(context: Path, *, manifest: Path) -> list[str]:
    """The .dockerignore patterns dockyard applies to `context`: its defaults, the user's
    .dockerignore, then what is never sent (last, so no `!` can take it back)."""
    patterns = list(SKIPPED)
    ignore = context / ".dockerignore"
    if ignore.is_file():
        for line in ignore.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                patterns.append(line)
    never = list(NEVER_SENT)
    for own in (manifest, manifest.parent / "locks"):  # when the context holds the manifest
        with contextlib.suppress(ValueError):
            rel = own.resolve().relative_to(context.resolve()).as_posix()
            never += [rel, f"{rel}/**"]
    return patterns + never


def sent_files(context: Path, patterns: list[str]) -> list[str]:
    """Paths (relative, '/'-separated, sorted) of the files and links Docker would send."""
    from docker.utils.build import PatternMatcher  # docker-py's .dockerignore matcher

    matcher = PatternMatcher(patterns)
    out = []
    for rel in matcher.walk(str(context)):
        path = context / rel
        if rel == ".dockerignore":  # read by dockyard, not needed by the image
            continue
        if path.is_symlink() or path.is_file():
            out.append(rel.replace(os.sep, "/"))
    return sorted(out)
