"""The harness itself: three engines, each reached over SSH only, with its own data root."""

from __future__ import annotations

import subprocess

import pytest

from tests.machines.harness import Harness

pytestmark = pytest.mark.engine


def test_hma_three_engines_over_ssh(machines: Harness) -> None:
    roots = set()
    for m in machines.machines:
        said = subprocess.run([*machines.ssh_command(), m.ssh_target,
                               "docker info --format '{{.DockerRootDir}}'"],
                              capture_output=True, text=True, timeout=30)
        assert said.returncode == 0, said.stderr
        roots.add(said.stdout.strip())
        assert said.stdout.strip() == str(m.root / "data")
    assert len(roots) == 3
