"""The fleet's registry: `dockyard push`, and pull-through when `up` misses an image.

Images are already named `<registry>/<fleet>/...` when `registry:` is set (plan.image_name),
so pushing is `docker push` of each built image's tags: the moving `:current` and every other
tag of the same repository on the same image (the dated `YYYYMMDD-<sha>` one). Before any push
or pull the registry's `/v2/` endpoint is asked once, so an unreachable registry is one
sentence, not a wall of retries from the engine."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field

from dockyard.engine.build import PREV_TAG, repo_of
from dockyard.engine.connection import Engine
from dockyard.engine.run import run
from dockyard.errors import EngineError, ManifestError, RegistryUnavailable
from dockyard.events import Pulling, Pushing, Sink
from dockyard.manifest.load import Fleet
from dockyard.plan.model import Plan

# Docker's own default: registries on loopback may speak plain HTTP (insecure-registries).
_LOOPBACK = ("127.", "localhost", "[::1]")
_NOT_THERE = ("manifest unknown", "not found", "does not exist", "name unknown")


@dataclass
class PushReport:
    pushed: list[str] = field(default_factory=list)  # every ref pushed, tags included


def registry_host(registry: str) -> str:
    """`host[:port]` of a registry written as `host[:port][/namespace]`."""
    return registry.strip().rstrip("/").split("/")[0]


def _ping_urls(host: str) -> list[str]:
    https, http = f"https://{host}/v2/", f"http://{host}/v2/"
    return [http, https] if host.startswith(_LOOPBACK) else [https, http]


def ping(registry: str, *, timeout: float = 5.0) -> str:
    """"" when the registry answers its `/v2/` endpoint (any HTTP status), else why not."""
    reason = "no answer"
    host = registry_host(registry)
    # A loopback registry is never behind the environment's proxy.
    opener = urllib.request.build_opener(
        *([urllib.request.ProxyHandler({})] if host.startswith(_LOOPBACK) else []))
    for url in _ping_urls(host):
        try:
            with opener.open(url, timeout=timeout):
                return ""
        except urllib.error.HTTPError:
            return ""  # 401 from a registry that wants a login still answers
        except (urllib.error.URLError, OSError, ValueError) as exc:
            cause = getattr(exc, "reason", exc)
            reason = str(getattr(cause, "strerror", None) or cause)
    return reason


def require_registry(fleet: Fleet) -> str:
    """The fleet's registry, checked to answer; one located sentence when it does not."""
    registry = fleet.spec.registry.strip()
    if not registry:
        raise ManifestError(
            f"fleet {fleet.spec.fleet} has no `registry:`, so there is nowhere to push to",
            where=fleet.where("fleet"),
            fix="add `registry: host:port` (e.g. 127.0.0.1:5000) to the manifest and rebuild")
    reason = ping(registry)
    if reason:
        raise RegistryUnavailable(
            f"{fleet.where('registry')}: registry {registry_host(registry)} does not answer "
            f"({reason})",
            fix="start the registry, or correct `registry:` in the manifest")
    return registry


def image_tags(engine: Engine, ref: str) -> list[str]:
    """Every tag of `ref`'s repository that names the same image as `ref` (sorted); [] when
    `ref` is not here."""
    from docker.errors import ImageNotFound

    try:
        image = engine.client.images.get(ref)
    except ImageNotFound:
        return []
    repo = ref.rsplit(":", 1)[0] if ":" in ref.split("/")[-1] else ref
    same = [t for t in (image.tags or []) if t.rsplit(":", 1)[0] == repo]
    return sorted(set(same) | {ref})


def push(engine: Engine, fleet: Fleet, plan: Plan, *, emit: Sink) -> PushReport:
    """Push every image the plan builds, each with all its tags, to the fleet's registry;
    and the image before it (`:prev`, with its dated tag) where there is one, so that the
    registry holds what a rollback goes back to."""
    registry = require_registry(fleet)
    refs = {step.image: image_tags(engine, step.image) for step in plan.builds}
    missing = sorted(ref for ref, tags in refs.items() if not tags)
    for step in plan.builds:
        refs[step.image] += [t for t in image_tags(engine, f"{repo_of(step.image)}:{PREV_TAG}")
                             if t not in refs[step.image]]
    if missing:
        raise EngineError(f"{len(missing)} image(s) of fleet {fleet.spec.fleet} are not built: "
                          + ", ".join(missing), fix="run `dockyard build` first")
    report = PushReport()
    for step in plan.builds:  # parents first: their layers are then already in the registry
        for tag in refs[step.image]:
            emit(Pushing(tag))
            try:
                run(engine.docker_argv("push", tag), timeout=3600)
            except EngineError as exc:
                raise EngineError(f"pushing {tag} to {registry_host(registry)} failed: "
                                  f"{_last(exc.stderr) or exc.message}",
                                  fix="check that the registry accepts pushes (disk, auth)",
                                  command=exc.command, returncode=exc.returncode,
                                  stderr=exc.stderr) from None
            report.pushed.append(tag)
    return report


def pull_missing(engine: Engine, fleet: Fleet, refs: Iterable[str], *, emit: Sink) -> list[str]:
    """Pull each of `refs` from the fleet's registry; return those it does not have."""
    wanted = list(refs)
    if not wanted:
        return []
    registry = fleet.spec.registry.strip()
    reason = ping(registry)
    if reason:
        raise RegistryUnavailable(
            f"{fleet.where('registry')}: cannot pull {len(wanted)} missing image(s): registry "
            f"{registry_host(registry)} does not answer ({reason})",
            fix="start the registry, or build the images here with `dockyard build`")
    absent = []
    for ref in wanted:
        emit(Pulling(ref, registry_host(registry)))
        result = run(engine.docker_argv("pull", "--quiet", ref), check=False, timeout=3600)
        if result.returncode == 0:
            continue
        text = (result.stderr or result.stdout).lower()
        if any(marker in text for marker in _NOT_THERE):
            absent.append(ref)
            continue
        raise EngineError(f"pulling {ref} failed: {_last(result.stderr or result.stdout)}",
                          fix="check the registry's log; `dockyard build` makes it here instead",
                          command=result.argv, returncode=result.returncode,
                          stderr=result.stderr)
    return absent


def _last(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""
