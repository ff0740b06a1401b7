"""One-shots on a real engine: a service others wait for with `condition: completed` (a
migration, Dify's init_permissions, n8n's n8n-import) is waited for until it exits 0, and an
`up` after it completed leaves it alone (issue 10 F).

With DOCKYARD_RECORD_OBSERVED=<folder> the snapshots are written there: that is how
tests/fixtures/observed/one-shot-*.json were recorded (names made stable by hand)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from dockyard.engine.build import write_render
from dockyard.engine.deploy import Target
from dockyard.engine.observe import observe
from dockyard.manifest.load import load
from dockyard.ops.observed import ObservedState
from dockyard.plan import plan
from tests.engine.conftest import dockyard

pytestmark = pytest.mark.engine

FLEET = """\
fleet: oneshot
machines:
  local: {{cpus: 2, memory: 4GiB}}
services:
  migrate:
    image: {image}
    command: [python3, -c, "import time; time.sleep(1.5); print('migrated', flush=True);
              raise SystemExit({code})"]
    restart: "no"
  app:
    image: {image}
    command: [python3, -c, "import time; open('/tmp/ok', 'w'); time.sleep(600)"]
    depends_on: {{migrate: {{condition: completed}}}}
    health: {{cmd: [test, -f, /tmp/ok], interval: 1s, retries: 5}}
"""


def _write(folder: Path, image: str, code: int = 0) -> None:
    (folder / "fleet.yaml").write_text(FLEET.format(image=image, code=code))


def _dockyard(folder: Path, project: str, *args: str) -> subprocess.CompletedProcess[str]:
    return dockyard("-p", project, *args, cwd=folder,
                    env={"DOCKYARD_STATE": str(folder / "state")}, timeout=300)


def _snapshot(folder: Path, project: str, name: str) -> ObservedState:
    fleet = load(folder / "fleet.yaml", environ={})
    target = Target(fleet, plan(fleet), folder / "state", "local", project)
    write_render(fleet, target.plan, target.state)
    observed = observe(target.engine, target)
    record = os.environ.get("DOCKYARD_RECORD_OBSERVED")
    if record:
        Path(record).mkdir(parents=True, exist_ok=True)
        (Path(record) / f"{name}.json").write_text(observed.to_json())
    return observed


def _inspect(project: str, service: str) -> dict[str, object]:
    ids = subprocess.run(["docker", "ps", "-aq", "--filter",
                          f"label=com.docker.compose.project={project}", "--filter",
                          f"label=com.docker.compose.service={service}"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert len(ids) == 1, ids
    out = subprocess.run(["docker", "inspect", ids[0]], capture_output=True, text=True,
                         check=True).stdout
    info: dict[str, object] = json.loads(out)[0]
    return info


def test_a_one_shot_is_waited_for_until_it_exits_0_and_then_left_alone(
        python_image: str, project: str, tmp_path: Path) -> None:
    _write(tmp_path, python_image)
    result = _dockyard(tmp_path, project, "up")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "healthy: migrate" in result.stderr and "up and healthy" in result.stdout
    migrate, app = _inspect(project, "migrate"), _inspect(project, "app")
    assert migrate["State"]["Status"] == "exited" and migrate["State"]["ExitCode"] == 0  # type: ignore[index]
    assert app["State"]["Status"] == "running"  # type: ignore[index]
    # The app started only once the migration had ended.
    assert app["State"]["StartedAt"] > migrate["State"]["FinishedAt"]  # type: ignore[index,operator]

    snapshot = _snapshot(tmp_path, project, "one-shot-completed")
    assert snapshot.container("migrate") is not None
    dry = _dockyard(tmp_path, project, "up", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert any(line.split()[1:4] == ["migrate", "keep", "completed:"]
               for line in dry.stdout.splitlines()), dry.stdout
    again = _dockyard(tmp_path, project, "up")
    assert again.returncode == 0 and "nothing changed" in again.stdout, again.stderr
    assert _inspect(project, "migrate")["State"] == migrate["State"]  # not run again


def test_a_one_shot_that_fails_stops_up_and_its_dependents_wait(
        python_image: str, project: str, tmp_path: Path) -> None:
    _write(tmp_path, python_image, code=3)
    result = _dockyard(tmp_path, project, "up")
    assert result.returncode == 4, result.stdout + result.stderr
    err = result.stderr
    assert ("service migrate, a one-shot others wait for, failed: container exited (exit "
            "code 3)") in err, err
    assert "migrated" in err  # its last log lines
    assert "exited: migrate (exit code 3)" in err and "created, never started: app" in err
    _snapshot(tmp_path, project, "one-shot-failed")
    assert _inspect(project, "app")["State"]["Status"] == "created"  # type: ignore[index]
