"""Output to a pipe or a log (issue 10 G): one message per line, never wrapped at 80
columns, and tables printed whole (`kvdemo/api:curre…` was cut). The real CLI, its stdout
and stderr pipes, no COLUMNS."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.process

IMAGE = "registry.example.internal:5000/some-team/a-very-long-image-name-for-the-api:1.2.3"
FLEET = f"""\
fleet: piped
machines:
  local: {{cpus: 2, memory: 4GiB}}
services:
  a-service-with-a-rather-long-name:
    image: {IMAGE}
    ports: {{http: 18080, metrics: "19090:9090"}}
    health: {{http: /health, port: http}}
    profiles: [web]
"""


def piped(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return subprocess.run([sys.executable, "-m", "dockyard", *args], cwd=cwd, text=True,
                          capture_output=True, env=env, timeout=120)


def test_a_table_to_a_pipe_is_printed_whole(tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(FLEET)
    result = piped("plan", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout
    row = next(line for line in result.stdout.splitlines() if IMAGE in line)
    assert "a-service-with-a-rather-long-name" in row
    assert "127.0.0.1:18080->18080, 127.0.0.1:19090->9090" in row and len(row) > 80


def test_a_message_to_a_pipe_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(FLEET)
    result = piped("--profile", "nope", "plan", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and len(lines[0]) > 80, result.stderr
