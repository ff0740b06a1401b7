"""Gather a target's ObservedState: what its engine runs, and what the plan's refs are now.

The engine is asked as little as `up` can afford: one container list (the project's, by
label), one image lookup per distinct image ref, one `docker compose config --hash '*'`
(run beside the API calls, not after them), and one probe per running container (in
parallel)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dockyard.engine.connection import REMOTE_PROBES, Engine
from dockyard.engine.target import (
    HASH_LABEL,
    PROJECT_LABEL,
    SERVICE_LABEL,
    Target,
    compose,
)
from dockyard.ops.observed import ContainerState, ImageState, ObservedState, ProbeState
from dockyard.render.fingerprint import SPEC_LABEL


def config_hashes(target: Target) -> dict[str, str]:
    """service -> the config hash compose gives a container made from the rendered file."""
    out = compose(target, "config", "--hash", "*").stdout
    pairs = (line.split() for line in out.splitlines() if line.strip())
    return {p[0]: p[1] for p in pairs if len(p) == 2}


def image_states(engine: Engine, refs: list[str]) -> dict[str, ImageState | None]:
    """ref -> its ID and manifest hash label (None: not here); one lookup per ref."""
    from docker.errors import ImageNotFound

    found: dict[str, ImageState | None] = {}
    for ref in dict.fromkeys(refs):
        try:
            image = engine.client.images.get(ref)
        except ImageNotFound:
            found[ref] = None
            continue
        found[ref] = ImageState(id=str(image.id),
                                spec=str((image.labels or {}).get(SPEC_LABEL, "")))
    return found


def observe(engine: Engine, target: Target) -> ObservedState:
    """The snapshot `decide` judges. The rendered compose file must already be written."""
    services = target.services()
    with ThreadPoolExecutor(max_workers=1) as background:
        hashes = background.submit(config_hashes, target)
        found = engine.client.containers.list(
            all=True, filters={"label": f"{PROJECT_LABEL}={target.project}"})
        images = {ref: engine.image_id(ref) for ref in sorted({sp.image for sp in services})}
        specs = {sp.name: sp.spec for sp in services}
        probed = [c for c in found
                  if c.status == "running" and c.labels.get(SERVICE_LABEL) in specs]
        probes: dict[str, ProbeState] = {}
        if probed:
            with ThreadPoolExecutor(max_workers=len(probed) if engine.is_local
                                    else min(len(probed), REMOTE_PROBES)) as pool:
                answers = pool.map(
                    lambda c: engine.probe(c, specs[c.labels[SERVICE_LABEL]]), probed)
                probes = {c.id: ProbeState(healthy=ok, output=said)
                          for c, (ok, said) in zip(probed, answers, strict=True)}
        by_service: dict[str, list[ContainerState]] = {}
        for c in found:
            state = container_state(c, probes.get(c.id))
            by_service.setdefault(state.service, []).append(state)
        return ObservedState(
            project=target.project, machine=target.machine,
            containers={s: tuple(sorted(cs, key=lambda c: c.name))
                        for s, cs in sorted(by_service.items())},
            images=images, config_hashes=hashes.result())


def container_state(c: Any, probe: ProbeState | None = None) -> ContainerState:
    """A docker SDK container as the snapshot keeps it (no extra engine call)."""
    attrs = c.attrs or {}
    labels = c.labels or {}
    return ContainerState(
        name=str(c.name), id=str(c.id), service=str(labels.get(SERVICE_LABEL, c.name)),
        state=str(c.status), image_id=str(attrs.get("Image") or ""),
        config_hash=str(labels.get(HASH_LABEL, "")),
        restart_count=int(attrs.get("RestartCount") or 0),
        exit_code=int((attrs.get("State") or {}).get("ExitCode") or 0), probe=probe)
