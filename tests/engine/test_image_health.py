"""An image that ships its own HEALTHCHECK, on a real engine: `check --images` does not ask
for a `health:` (DY501/DY502), and `up` waits for the engine's verdict before the dependent
starts (issue 10 C)."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.conftest import dockyard

pytestmark = pytest.mark.engine

FLEET = """\
fleet: imghealth
machines: {{local: {{}}}}
services:
  search:
    image: {image}
    command: [python3, -c, "import time; time.sleep(2); open('/tmp/ready', 'w'); time.sleep(600)"]
  api:
    image: {image}
    command: [python3, -c, "import time; time.sleep(600)"]
    depends_on: [search]
    health: {{cmd: [python3, -c, "pass"], interval: 1s}}
"""


@pytest.fixture
def image(example_built: Path) -> Iterator[str]:
    ref = f"dyt-imghealth:{uuid.uuid4().hex[:8]}"
    dockerfile = ("FROM quickstart/family-base-python:current\n"
                  "HEALTHCHECK --interval=1s --timeout=2s --retries=30 "
                  "CMD [\"python3\", \"-c\", \"open('/tmp/ready')\"]\n")
    subprocess.run(["docker", "build", "-q", "-t", ref, "-"], input=dockerfile, text=True,
                   capture_output=True, check=True)
    yield ref
    subprocess.run(["docker", "rmi", "-f", ref], capture_output=True)


def test_the_images_own_health_check_is_waited_for(image: str, project: str,
                                                   tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(FLEET.format(image=image))
    env = {"DOCKYARD_STATE": str(tmp_path / "state")}
    plain = dockyard("check", "--format", "json", cwd=tmp_path, env=env)
    assert {"DY501", "DY502"} <= {f["code"] for f in json.loads(plain.stdout)["findings"]}
    looked = dockyard("check", "--images", "--format", "json", cwd=tmp_path, env=env)
    codes = {f["code"] for f in json.loads(looked.stdout)["findings"]}
    assert not {"DY501", "DY502", "DY505"} & codes, looked.stdout
    up = dockyard("-p", project, "up", cwd=tmp_path, env=env, timeout=300)
    assert up.returncode == 0, up.stdout + up.stderr
    state = json.loads(subprocess.run(
        ["docker", "inspect", f"{project}-search-1"], capture_output=True, text=True,
        check=True).stdout)[0]["State"]
    assert state["Health"]["Status"] == "healthy"
    # `search` counted healthy only once its image's check passed (about 2 s), not at start.
    seconds = [line for line in up.stderr.splitlines() if "healthy: search" in line]
    assert seconds and float(seconds[0].split("(")[1].split("s")[0]) >= 1.5, up.stderr
