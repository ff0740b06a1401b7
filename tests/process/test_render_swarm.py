"""Swarm stacks judged by Docker's own reader: `docker stack config` on every golden stack.

`docker stack config` (Docker CLI >= 25) loads a stack file as `docker stack deploy` does, schema
and interpolation included, and needs no swarm: what it accepts, a deploy accepts as written. The
rest of what a stack must hold: tests/unit/test_render_swarm.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.unit.test_render_swarm import SWARM, render_case

pytestmark = pytest.mark.process
NAMES = sorted(p.name for p in SWARM.iterdir() if (p / "stack.yaml").is_file())


def _stack_config() -> bool:
    if shutil.which("docker") is None:
        return False
    help_ = subprocess.run(["docker", "stack", "config", "--help"], capture_output=True,
                           text=True, timeout=30)
    return help_.returncode == 0 and "--compose-file" in help_.stdout


needs_stack_config = pytest.mark.skipif(not _stack_config(),
                                        reason="this Docker CLI has no `docker stack config`")


def _config(folder: Path, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Only PATH and HOME: a secret of the test's own environment must not leak into the check.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/"), **environ}
    return subprocess.run(["docker", "stack", "config", "-c", "stack.yaml"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=60)


def test_every_case_has_a_golden_stack() -> None:
    assert len(NAMES) >= 9


@needs_stack_config
@pytest.mark.parametrize("name", NAMES)
def test_docker_stack_config_accepts_every_golden_stack(name: str) -> None:
    result = render_case(name)
    secrets = {k: f"value-of-{k}" for k in _secrets(result.files["stack.yaml"])}
    loaded = _config(SWARM / name, secrets)
    assert loaded.returncode == 0, loaded.stderr
    doc = YAML(typ="safe").load(loaded.stdout)
    assert sorted(doc["services"]) == sorted(k for level in result.levels for k in level)
    text = loaded.stdout
    for key, value in secrets.items():  # interpolated from the environment, where it is read
        assert value in text, f"{name}: {key} was not interpolated"


@needs_stack_config
def test_a_missing_secret_stops_the_deploy_and_names_it() -> None:
    loaded = _config(SWARM / "gpu-fleet", {})
    assert loaded.returncode != 0
    assert "set DB_PASSWORD in the environment of docker stack deploy" in loaded.stderr


@pytest.mark.skipif(shutil.which("sh") is None, reason="no /bin/sh")
@pytest.mark.parametrize("name", NAMES)
def test_nodes_sh_is_valid_shell(name: str) -> None:
    checked = subprocess.run(["sh", "-n", str(SWARM / name / "nodes.sh")], capture_output=True,
                             text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr


def _secrets(stack: str) -> list[str]:
    """The variables the stack's header says to export."""
    for line in stack.splitlines():
        if line.startswith("#   export "):
            return line.removeprefix("#   export ").split("   #")[0].split()
    return []
