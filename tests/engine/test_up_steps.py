"""`up`'s steps on a real engine: `up --dry-run` says what `up` would do, and changes nothing.

Two services on a local bootstrap base (python3, tini), under an image tag of the test's own.
With DOCKYARD_RECORD_OBSERVED=<folder> the snapshots taken along the way are written there:
that is how tests/fixtures/observed/ was recorded (then renamed to stable names)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.engine.build import write_render
from dockyard.engine.deploy import Target
from dockyard.engine.observe import observe
from dockyard.engine.probe import probe_inside
from dockyard.manifest.load import load
from dockyard.manifest.models import ServiceSpec
from dockyard.ops.observed import ObservedState
from dockyard.plan import plan
from tests.engine.conftest import dockyard, free_port

pytestmark = pytest.mark.engine

FLEET = """\
fleet: steps
machines:
  local: {{cpus: 2, memory: 4GiB, engine: "{engine}"}}
services:
  db:
    image: {image}
    command: [python3, -c, "import time; open('/tmp/ok', 'w'); time.sleep(600)"]
    health: {{cmd: [test, -f, /tmp/ok], interval: 1s, retries: 3}}
  web:
    image: {image}
    command: [python3, -m, http.server, "8000"]
    env: {{GREETING: {greeting}}}
    depends_on: [db]
    health: {{cmd: [python3, -c, "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/')"],
             interval: 1s, retries: 5}}
"""


def _bootstrap_tags() -> list[str]:
    out = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}",
                          "dockyard/bootstrap"], capture_output=True, text=True, check=True)
    return [t for t in out.stdout.split() if ":<none>" not in t]


@pytest.fixture(scope="module")
def image(engine: None) -> Iterator[str]:
    """A tag of the test's own on any local bootstrap base; removed afterwards."""
    if not _bootstrap_tags():
        result = dockyard("bootstrap-base", timeout=900)
        assert result.returncode == 0, result.stderr[-2000:]
    ref = f"dytest-{uuid.uuid4().hex[:8]}/app:current"
    subprocess.run(["docker", "tag", _bootstrap_tags()[0], ref], check=True)
    yield ref
    subprocess.run(["docker", "rmi", "-f", ref], capture_output=True)


def _write(folder: Path, image: str, *, greeting: str = "hello",
           engine: str = "unix:///var/run/docker.sock") -> None:
    (folder / "fleet.yaml").write_text(FLEET.format(image=image, greeting=greeting,
                                                    engine=engine))


def _dry_run(folder: Path, project: str) -> dict[str, tuple[str, str]]:
    """service -> (action, reason) as `up --dry-run` prints them; also: it exits 0."""
    result = dockyard("-p", project, "up", "--dry-run", cwd=folder,
                      env={"DOCKYARD_STATE": str(folder / "state")})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing was changed" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["level", "service", "action", "reason"]
    steps = {}
    for line in lines[1:]:
        level, service, action, reason = line.split(maxsplit=3)
        steps[service] = (action, reason)
        assert level == {"db": "0", "web": "1"}[service]
    return steps


def _up(folder: Path, project: str) -> str:
    result = dockyard("-p", project, "up", cwd=folder,
                      env={"DOCKYARD_STATE": str(folder / "state")})
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _snapshot(folder: Path, project: str, name: str) -> ObservedState:
    """What observe sees now (recorded under DOCKYARD_RECORD_OBSERVED when it is set)."""
    fleet = load(folder / "fleet.yaml", environ={})
    target = Target(fleet, plan(fleet), folder / "state", "local", project)
    write_render(fleet, target.plan, target.state)
    observed = observe(target.engine, target)
    assert ObservedState.from_json(observed.to_json()) == observed
    record = os.environ.get("DOCKYARD_RECORD_OBSERVED")
    if record:
        Path(record).mkdir(parents=True, exist_ok=True)
        (Path(record) / f"{name}.json").write_text(observed.to_json())
    return observed


def _containers(project: str, *extra: str) -> list[str]:
    return subprocess.run(["docker", "ps", "-q", *extra, "--filter",
                           f"label=com.docker.compose.project={project}"],
                          capture_output=True, text=True).stdout.split()


def _cid(project: str, service: str) -> str:
    return _containers(project, "-a", "--filter",
                       f"label=com.docker.compose.service={service}")[0]


def test_dry_run_lists_the_steps_up_takes(image: str, project: str, tmp_path: Path) -> None:
    _write(tmp_path, image)
    fresh = _snapshot(tmp_path, project, "fresh")
    assert fresh.containers == {} and fresh.images[image].startswith("sha256:")
    assert set(fresh.config_hashes) == {"db", "web"}
    assert _dry_run(tmp_path, project) == {"db": ("create", "no container"),
                                           "web": ("create", "no container")}
    assert _containers(project, "-a") == []  # a dry run starts (and creates) nothing

    assert "up and healthy" in _up(tmp_path, project)
    kept = _snapshot(tmp_path, project, "kept")
    assert all(c.probe and c.probe.healthy for cs in kept.containers.values() for c in cs)
    assert _dry_run(tmp_path, project) == {"db": ("keep", "up to date"),
                                           "web": ("keep", "up to date")}
    assert "nothing changed" in _up(tmp_path, project)

    # Running, but its probe fails now: up waits for it (it does not recreate it).
    subprocess.run(["docker", "exec", _cid(project, "db"), "rm", "/tmp/ok"], check=True)
    _snapshot(tmp_path, project, "unhealthy")
    steps = _dry_run(tmp_path, project)
    assert steps["db"][0] == "wait" and steps["db"][1].startswith("unhealthy")
    assert steps["web"] == ("keep", "up to date")
    subprocess.run(["docker", "exec", _cid(project, "db"), "touch", "/tmp/ok"], check=True)

    # Stopped with its config unchanged: started again, not recreated.
    web = _cid(project, "web")
    subprocess.run(["docker", "stop", "-t", "1", web], check=True, capture_output=True)
    _snapshot(tmp_path, project, "stopped")
    steps = _dry_run(tmp_path, project)
    assert steps["web"][0] == "start" and steps["web"][1].startswith("not running: exited")
    assert steps["db"] == ("keep", "up to date")
    _up(tmp_path, project)
    assert _cid(project, "web") == web  # the same container, running again
    assert len(_containers(project)) == 2

    # The manifest changed for web: recreated, with the hashes that differ.
    _write(tmp_path, image, greeting="bonjour")
    _snapshot(tmp_path, project, "config-changed")
    steps = _dry_run(tmp_path, project)
    assert steps["web"][0] == "recreate" and steps["web"][1].startswith("config changed: hash")
    assert steps["db"] == ("keep", "up to date")
    _up(tmp_path, project)
    assert _cid(project, "web") != web
    assert _dry_run(tmp_path, project)["web"] == ("keep", "up to date")

    # The image ref now names another image: both containers are recreated.
    before = kept.images[image]
    rebuilt = subprocess.run(["docker", "build", "-q", "-"], input=f"FROM {image}\n"
                             "LABEL dev.dockyard.test=rebuilt\n", capture_output=True,
                             text=True, check=True).stdout.strip()
    try:
        subprocess.run(["docker", "tag", rebuilt, image], check=True)
        _snapshot(tmp_path, project, "image-changed")
        steps = _dry_run(tmp_path, project)
        assert {s: a for s, (a, _) in steps.items()} == {"db": "recreate", "web": "recreate"}
        assert all(r.startswith(f"image changed: {image} is {rebuilt[7:19]}")
                   for _, r in steps.values()), steps
        _up(tmp_path, project)
        assert _dry_run(tmp_path, project) == {"db": ("keep", "up to date"),
                                               "web": ("keep", "up to date")}
    finally:
        subprocess.run(["docker", "tag", before, image], check=True)
        subprocess.run(["docker", "rmi", rebuilt], capture_output=True)


def test_http_probe_inside_the_container(image: str, project: str, tmp_path: Path) -> None:
    """The probe a remote engine gets (exec in the container), run on the local one."""
    _write(tmp_path, image)
    _up(tmp_path, project)
    import docker

    container = docker.from_env().containers.get(_cid(project, "web"))
    ok = ServiceSpec.model_validate({"image": image, "ports": {"http": 8000},
                                     "health": {"http": "/"}})
    assert probe_inside(container, ok)[0]
    gone = ok.model_copy(update={"health": ok.health.model_copy(update={"http": "/nope"})})
    healthy, said = probe_inside(container, gone)
    assert not healthy and "404" in said


def test_engine_named_in_the_manifest_is_the_one_asked(image: str, tmp_path: Path) -> None:
    """A docker context name works; an endpoint that does not answer is named, with where
    the manifest says it (exit 3, one sentence)."""
    _write(tmp_path, image, engine="default")  # the docker CLI's own context
    project = f"dytest-{uuid.uuid4().hex[:8]}"
    assert _dry_run(tmp_path, project) == {"db": ("create", "no container"),
                                           "web": ("create", "no container")}

    endpoint = f"tcp://127.0.0.1:{free_port()}"
    _write(tmp_path, image, engine=endpoint)
    result = dockyard("ps", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    said = " ".join(result.stderr.split())
    assert "fleet.yaml:3:" in said and f"no Docker engine answers at {endpoint} " \
        "(machines.local.engine)" in said, said
    assert "Traceback" not in result.stderr
