"""Which programs a built image has: the facts DY503/DY504 judge health probes by.

A container is created from the image and never started; for each program, each folder of the
image's PATH is asked with `HEAD /containers/{id}/archive?path=…` (a stat, no file content:
about 3 ms each over the socket). Images that are not present locally are left out, and the
checks fall back to what is known about stock images."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping

from dockyard.engine.connection import Engine

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


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
