"""A container group's rendered supervisor, run as a process: it forwards SIGTERM to its
agents and gives up on a crash loop. What it is rendered from: tests/unit/test_budgets.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dockyard.plan import plan
from dockyard.render.files import render_all
from tests.unit.test_budgets import fleet_of

pytestmark = pytest.mark.process


def run_supervisor(tmp_path: Path, agents: str) -> subprocess.Popen[bytes]:
    fleet = fleet_of("  g:\n    image: g:1\n    agents:\n" + agents)
    path = tmp_path / "supervisor.py"
    path.write_text(render_all(fleet, plan(fleet), "")["services/g.supervisor.py"])
    env = dict(os.environ, DOCKYARD_SUPERVISOR_BACKOFF="0.05", DOCKYARD_SUPERVISOR_GRACE="2")
    return subprocess.Popen([sys.executable, str(path)], env=env, stderr=subprocess.PIPE)


def wait_for(*paths: Path, timeout: float = 20) -> None:
    """Until every path exists (an agent touched it once it was ready), else fail."""
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        assert time.monotonic() < deadline, [str(p) for p in paths if not p.exists()]
        time.sleep(0.02)


def test_supervisor_forwards_sigterm_and_exits_zero(tmp_path: Path) -> None:
    marker, ready_a, ready_b = tmp_path / "stopped", tmp_path / "a-ready", tmp_path / "b-ready"
    agents = (f"      a:\n        command: \"trap 'touch {marker}; exit 0' TERM; "
              f"touch {ready_a}; while true; do sleep 0.05; done\"\n"
              f"      b:\n        command: [sh, -c, 'touch {ready_b}; exec sleep 30']\n")
    proc = run_supervisor(tmp_path, agents)
    # Both agents ready, not a fixed sleep: the supervisor sets its SIGTERM handler right
    # after it starts b, before b's shell has run `touch`.
    wait_for(ready_a, ready_b)
    assert proc.poll() is None  # both agents running
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert marker.exists()  # agent a saw the SIGTERM


def test_supervisor_restarts_an_agent_then_gives_up_on_a_crash_loop(tmp_path: Path) -> None:
    agents = ("      bad:\n        command: [sh, -c, 'exit 3']\n"
              "      ok:\n        command: [sleep, '30']\n")
    proc = run_supervisor(tmp_path, agents)
    assert proc.wait(timeout=20) == 1
    assert proc.stderr is not None
    log = proc.stderr.read().decode()
    assert log.count("starting bad") == 6  # first start + 5 restarts, then it stops
    assert "giving up" in log
