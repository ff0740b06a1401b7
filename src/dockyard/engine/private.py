"""Files in the state folder that may hold something sensitive: the owner's alone.

A file is made 0600 before its first byte is written (no moment where the umask's 0644
shows it), and left alone when its bytes are already those wanted."""

from __future__ import annotations

import os
from pathlib import Path


def private_folder(path: Path) -> None:
    """`path` exists and only its owner may list or enter it (0700)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600 (also when it was there before with another)."""
    data = text.encode("utf-8")
    if path.is_file() and path.read_bytes() == data:
        path.chmod(0o600)
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def fsync_dir(folder: Path) -> None:
    """Make `folder`'s entries (a rename, a new file) durable: fsync the folder itself."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
