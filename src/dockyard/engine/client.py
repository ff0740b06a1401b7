"""The Docker SDK client, and the one sentence said when no engine answers."""

from __future__ import annotations

import functools
import os
from typing import Any

from dockyard.engine.run import INSTALL_HINT
from dockyard.errors import EngineUnavailable


def socket_name() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


@functools.cache
def docker() -> Any:
    """A connected docker.DockerClient; EngineUnavailable (one sentence) when none answers."""
    import docker as sdk  # heavy: imported only by commands that talk to the engine
    from docker.errors import DockerException

    try:
        client = sdk.from_env(timeout=120)
        client.ping()
    except DockerException:
        raise EngineUnavailable(
            f"no Docker engine answers at {socket_name()}", fix=INSTALL_HINT) from None
    return client


def engine_answers() -> bool:
    try:
        docker()
    except EngineUnavailable:
        docker.cache_clear()
        return False
    return True
