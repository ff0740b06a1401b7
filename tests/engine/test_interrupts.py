"""Ctrl-C on a real `dockyard` process (SIGINT, as a terminal sends it), at the moment that
matters (issue 10 F):

- during `up`'s health wait it stops within a second and says what it left running (it used
  to wait until the service turned healthy);
- late in `build`, the tags move for every image or for none (`:current`/`:prev` were once
  half moved), and an interrupt never exits 0;
- a build killed (SIGKILL) while moving tags leaves a journal, and the next build finishes the
  moves and removes the run's `dy-build-*` tags.

The build tests stop dockyard at `build.promote`, a point between two images' tag moves, with
the test-only DOCKYARD_PAUSE_AT / DOCKYARD_KILL_AT (engine/interrupts.py)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.errors import ExitCode
from tests.engine.conftest import Lines, dockyard

pytestmark = pytest.mark.engine

WAIT = """\
fleet: waits
machines:
  local: {{cpus: 2, memory: 4GiB}}
services:
  ok:
    image: {image}
    command: [python3, -c, "import time; time.sleep(600)"]
    health: {{cmd: [python3, -c, "pass"], interval: 1s, retries: 3}}
  slow:
    image: {image}
    command: [python3, -c, "import time; time.sleep(600)"]
    depends_on: [ok]
    health: {{cmd: [python3, -c, "raise SystemExit('model not loaded')"], interval: 1s,
             retries: 120}}
  after:
    image: {image}
    command: [python3, -c, "import time; time.sleep(600)"]
    depends_on: [slow]
"""


def test_ctrl_c_during_the_health_wait_stops_at_once_and_says_what_is_left(
        python_image: str, project: str, tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(WAIT.format(image=python_image))
    up = Lines("-p", project, "up", cwd=tmp_path, env={"DOCKYARD_STATE": str(tmp_path / "s")})
    up.wait_for("starting slow")
    # While it waits it says whom for and how long each has left (every 5 s).
    line = up.wait_for("waiting for health: slow (", timeout=30)
    assert " s left)" in line
    sent = time.monotonic()
    up.proc.send_signal(signal.SIGINT)
    code, _, err = up.finish(timeout=30)
    took = time.monotonic() - sent
    assert code == ExitCode.INTERRUPTED == 130, err
    assert took < 1.5, f"{took:.1f} s from Ctrl-C to exit"  # within a second, and the exit
    assert "Traceback" not in err and "Exception ignored" not in err
    assert "interrupted while waiting for slow; left running: ok, slow (not healthy yet); " \
           "created, never started: after" in err, err
    states = subprocess.run(["docker", "ps", "-a", "--filter",
                             f"label=com.docker.compose.project={project}", "--format",
                             '{{.Label "com.docker.compose.service"}} {{.State}}'],
                            capture_output=True, text=True, check=True).stdout.split("\n")
    assert sorted(s for s in states if s) == ["after created", "ok running", "slow running"]


BUILD = """\
fleet: {name}
machines:
  local: {{cpus: 2, memory: 4GiB}}
families:
  base: {{from: 'debian:bookworm-slim', apt: [python3, python3-venv]}}
services:
  api:
    family: base
    command: [python3, -c, "print('api {word}')"]
  worker:
    family: base
    command: [python3, -c, "print('worker {word}')"]
"""


@pytest.fixture
def built(engine: None, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A fleet of two service images on one family, built once; removed afterwards."""
    name = f"dyt{uuid.uuid4().hex[:6]}"
    (tmp_path / "fleet.yaml").write_text(BUILD.format(name=name, word="one"))
    first = _build(tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    yield name, tmp_path
    ids = subprocess.run(["docker", "images", "-q", "--filter", f"reference={name}/*"],
                         capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rmi", "-f", *sorted(set(ids))], capture_output=True)


def _build(folder: Path) -> subprocess.CompletedProcess[str]:
    return dockyard("build", cwd=folder, timeout=900)


def _tags(name: str) -> dict[str, str]:
    """repo:tag -> image ID for every tag of the fleet's images."""
    out = subprocess.run(["docker", "images", "--no-trunc", "--format",
                          "{{.Repository}}:{{.Tag}} {{.ID}}", "--filter",
                          f"reference={name}/*"], capture_output=True, text=True,
                         check=True).stdout
    return dict(line.split() for line in out.splitlines() if ":<none>" not in line)


def _services(tags: dict[str, str], name: str, tag: str) -> dict[str, str]:
    return {svc: tags.get(f"{name}/{svc}:{tag}", "") for svc in ("api", "worker")}


def test_ctrl_c_while_tags_move_moves_them_for_every_image(built: tuple[str, Path]) -> None:
    name, folder = built
    before = _tags(name)
    old = _services(before, name, "current")
    assert all(old.values())
    (folder / "fleet.yaml").write_text(BUILD.format(name=name, word="two"))
    build = Lines("build", cwd=folder, env={"DOCKYARD_PAUSE_AT": "build.promote"})
    build.wait_for("paused at build.promote", timeout=600)  # the first image's tags moved
    build.proc.send_signal(signal.SIGINT)
    code, out, err = build.finish(timeout=60)
    assert code == ExitCode.INTERRUPTED, out + err  # never 0
    assert "interrupted while moving tags: every image built was tagged" in err, err
    after = _tags(name)
    new = _services(after, name, "current")
    assert all(new[s] and new[s] != old[s] for s in new), (old, new)
    assert _services(after, name, "prev") == old
    assert not [t for t in after if ":dy-build-" in t], after
    assert not (folder / ".dockyard" / "build" / "tags.json").exists()
    stamps = [t for t in after if t.startswith(f"{name}/api:2")]
    assert len(stamps) == 2, stamps  # one dated tag per build, even on the same day


def test_a_build_killed_while_tags_move_is_finished_by_the_next(
        built: tuple[str, Path]) -> None:
    name, folder = built
    old = _services(_tags(name), name, "current")
    (folder / "fleet.yaml").write_text(BUILD.format(name=name, word="three"))
    killed = dockyard("build", cwd=folder, timeout=900, env={"DOCKYARD_KILL_AT": "build.promote"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    half = _tags(name)
    moved = [s for s, i in _services(half, name, "current").items() if i != old[s]]
    assert len(moved) == 1, half  # killed between the two images' moves
    journal = folder / ".dockyard" / "build" / "tags.json"
    assert json.loads(journal.read_text())["moves"]
    assert [t for t in half if ":dy-build-" in t]

    again = _build(folder)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "finished the tag moves of a build that was stopped while making them" \
        in again.stderr, again.stderr
    assert "unchanged: 3" in again.stdout, again.stdout  # the moves made them current
    done = _tags(name)
    assert all(i != old[s] for s, i in _services(done, name, "current").items())
    assert _services(done, name, "prev") == old
    assert not [t for t in done if ":dy-build-" in t], done
    assert not journal.exists()
