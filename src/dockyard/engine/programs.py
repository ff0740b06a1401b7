"""What a built image holds, looked at without running it: the facts `check --images` judges.

A container is created from the image and never started.
- Programs (DY503/DY504 judge health probes by them): for each program, each folder of the
  image's PATH is asked with `HEAD /containers/{id}/archive?path=…` (a stat, no file content:
  about 3 ms each over the socket). Images that are not present locally are left out, and the
  checks fall back to what is known about stock images.
- Secret files (DY707): the image's WORKDIR and /app, where an application's files are
  copied, are read as the tar stream `GET …/archive` sends (the folders only, never the whole
  image, and at most MAX_ENTRIES entries or MAX_BYTES), and the names that say env file or key
  (checks/security.py decides, reading the first bytes of a .pem or .key) are kept."""

from __future__ import annotations

import io
import posixpath
import tarfile
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from dockyard.checks.security import is_secret_file, needs_a_look
from dockyard.engine.connection import Engine

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
APP_FOLDERS = ("/app",)  # beside the image's WORKDIR
MAX_ENTRIES = 50_000
MAX_BYTES = 256 * 1024 * 1024


def _path_dirs(env: Iterable[str]) -> list[str]:
    path = next((e.split("=", 1)[1] for e in env if e.startswith("PATH=")), DEFAULT_PATH)
    return [d for d in path.split(":") if d.startswith("/")]


def programs_present(engine: Engine, image: str, programs: Iterable[str]) -> set[str] | None:
    """The subset of `programs` found on the image's PATH (or as absolute paths); None when
    the image is not present locally."""
    from docker.errors import ImageNotFound

    client = engine.client
    try:
        config = client.images.get(image).attrs.get("Config") or {}
    except ImageNotFound:
        return None
    dirs = _path_dirs(config.get("Env") or [])
    api = client.api
    created = api.create_container(image, command=["true"], entrypoint=[], network_disabled=True)
    found: set[str] = set()
    try:
        url = api._url("/containers/{0}/archive", created["Id"])
        for program in sorted(set(programs)):
            candidates = [program] if program.startswith("/") else \
                [posixpath.join(d, program) for d in dirs]
            if any(api.head(url, params={"path": c}).status_code == 200 for c in candidates):
                found.add(program)
    finally:
        api.remove_container(created["Id"], force=True)
    return found


def programs_on_images(engine: Engine, images: Mapping[str, str],
                       wanted: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """service -> programs found on its image, for the services whose image is present."""
    facts: dict[str, set[str]] = {}
    by_image: dict[tuple[str, frozenset[str]], set[str] | None] = {}
    for service, programs in sorted(wanted.items()):
        image = images.get(service)
        if not image or not programs:
            continue
        key = (image, frozenset(programs))
        if key not in by_image:
            by_image[key] = programs_present(engine, image, programs)
        found = by_image[key]
        if found is not None:
            facts[service] = found
    return facts


class _Chunks(io.RawIOBase):
    """The archive's byte chunks as a file tarfile can stream from, stopping at `limit`."""

    def __init__(self, chunks: Iterator[bytes], limit: int) -> None:
        self.chunks, self.left, self.pending = chunks, limit, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.pending and self.left > 0:
            chunk = next(self.chunks, b"")
            if not chunk:
                return 0
            self.pending = chunk[:self.left]
            self.left -= len(self.pending)
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


def _folder_secrets(api: Any, container: str, folder: str) -> list[str]:
    from docker.errors import NotFound

    try:
        chunks, _ = api.get_archive(container, folder)
    except NotFound:
        return []
    found: list[str] = []
    parent = posixpath.dirname(folder.rstrip("/")) or "/"
    stream = io.BufferedReader(_Chunks(iter(chunks), MAX_BYTES))
    try:
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            for count, member in enumerate(archive):
                if count >= MAX_ENTRIES:
                    break
                name = posixpath.basename(member.name)
                look = needs_a_look(name)
                if not member.isfile() or not (look or is_secret_file(name, b"")):
                    continue
                head = b""
                if look:
                    handle = archive.extractfile(member)
                    head = handle.read(65536) if handle else b""
                if is_secret_file(name, head):
                    found.append(posixpath.join(parent, member.name))
    except (tarfile.TarError, OSError):
        pass  # cut short at the limit: what was found so far stands
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # the rest of a folder cut short is not read
    return found


def secret_files(engine: Engine, image: str) -> list[str] | None:
    """The env files and keys under the image's WORKDIR and /app (absolute paths, sorted);
    None when the image is not present locally."""
    from docker.errors import ImageNotFound

    client = engine.client
    try:
        config = client.images.get(image).attrs.get("Config") or {}
    except ImageNotFound:
        return None
    workdir = str(config.get("WorkingDir") or "")
    folders = sorted({f for f in (workdir, *APP_FOLDERS) if f.strip("/")})
    api = client.api
    created = api.create_container(image, command=["true"], entrypoint=[], network_disabled=True)
    try:
        found = {path for folder in folders for path in _folder_secrets(api, created["Id"], folder)}
    finally:
        api.remove_container(created["Id"], force=True)
    return sorted(found)


def secrets_in_images(engine: Engine, images: Mapping[str, str]) -> dict[str, list[str]]:
    """service -> the env files and keys found in its image, for the images present (each
    image looked at once)."""
    by_image: dict[str, list[str] | None] = {}
    facts: dict[str, list[str]] = {}
    for service, image in sorted(images.items()):
        if image not in by_image:
            by_image[image] = secret_files(engine, image)
        found = by_image[image]
        if found is not None:
            facts[service] = found
    return facts


def own_healthchecks(engine: Engine, images: Mapping[str, str]) -> set[str]:
    """The services whose image (present on `engine`) ships its own HEALTHCHECK."""
    from docker.errors import ImageNotFound

    out = set()
    for service, ref in images.items():
        try:
            config = engine.client.images.get(ref).attrs.get("Config") or {}
        except ImageNotFound:
            continue
        test = (config.get("Healthcheck") or {}).get("Test") or []
        if test and test[0] != "NONE":
            out.add(service)
    return out
