"""`dockyard upgrade` on a real engine: a good upgrade, a failed one rolled back with the data
kept byte for byte, kill -9 at every injected step followed by --resume (never mixed), and
a second upgrade with nothing changed.

The fleet: Redis (Debian's, from a local bootstrap base: `dockyard bootstrap-base
redis-server`) with a named volume, and a tiny Python HTTP service that restarts with it
(`restart: true`). A "new version" is the same image committed again with one more ENV: a
new image ID in a second; BROKEN=1 makes the HTTP service listen on the wrong port, so it
never turns healthy (BROKEN=exit: it exits at once, where the test is not about the deadline)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.conftest import dockyard

pytestmark = pytest.mark.engine

ROLLED_BACK, ROLLBACK_FAILED, PENDING = 6, 7, 8

# BROKEN=1: listens on the wrong port, never healthy; BROKEN=exit: exits at once (exit 3).
SERVE = ("import os, sys, http.server as h; b = os.environ.get('BROKEN'); b == 'exit' and "
         "sys.exit(3); h.HTTPServer(('', 8001 if b == '1' else 8000), "
         "h.SimpleHTTPRequestHandler).serve_forever()")
PROBE = "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/')"
FLEET = """\
fleet: hup
machines:
  local: {{cpus: 2, memory: 4GiB}}
services:
  store:
    image: {repo}/store:current
    init: true
    command: [redis-server, --save, "", --appendonly, "yes", --dir, /data]
    volumes: ["store-data:/data"]
    health: {{cmd: [redis-cli, ping], interval: 0.5s, retries: 20}}
  web:
    image: {repo}/web:current
    init: true
    command: [python3, -c, "{serve}"]
    depends_on: {{store: {{condition: healthy, restart: true}}}}
    health: {{cmd: [python3, -c, "{probe}"], interval: 1s, retries: 8}}
"""


@pytest.fixture(scope="module")
def base(engine: None) -> str:
    """A local Debian base with redis-server and python3 (made once, then reused)."""
    result = dockyard("bootstrap-base", "redis-server", timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split("base image ready: ")[1].split()[0]


@pytest.fixture
def fleet(base: str, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(folder with fleet.yaml, compose project); its containers, volumes and images are
    removed afterwards."""
    repo = f"hup-{uuid.uuid4().hex[:8]}"
    for name in ("store", "web"):
        subprocess.run(["docker", "tag", base, f"{repo}/{name}:current"], check=True)
    (tmp_path / "fleet.yaml").write_text(FLEET.format(repo=repo, serve=SERVE, probe=PROBE))
    yield tmp_path, repo
    label = f"label=com.docker.compose.project={repo}"
    ids = _out("docker", "ps", "-aq", "--filter", label).split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
    vols = _out("docker", "volume", "ls", "-q", "--filter", label).split()
    if vols:
        subprocess.run(["docker", "volume", "rm", "-f", *vols], capture_output=True)
    subprocess.run(["docker", "network", "rm", f"{repo}_default"], capture_output=True)
    refs = _out("docker", "images", "--format", "{{.Repository}}:{{.Tag}}",
                "--filter", f"reference={repo}/*").split()
    made = [i for i in MADE.pop(repo, []) if i not in refs]  # untagged on the way
    if refs or made:
        subprocess.run(["docker", "rmi", "-f", *refs, *reversed(made)], capture_output=True)


def _out(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def run(folder: Path, project: str, *args: str,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return dockyard("-p", project, *args, cwd=folder, timeout=300,
                    env={"DOCKYARD_STATE": str(folder / "state"), **(env or {})})


def up(folder: Path, project: str) -> None:
    result = run(folder, project, "up")
    assert result.returncode == 0, result.stdout + result.stderr


MADE: dict[str, list[str]] = {}  # repo -> the image IDs bump made (removed afterwards)


def bump(ref: str, env: str = "HUP=1", source: str = "") -> str:
    """`ref` again as a new image (`source`, default `ref`, with one more ENV): its ID."""
    cid = _out("docker", "create", source or ref).strip()
    try:
        _out("docker", "commit", "--change", f"ENV {env} HUP_N={uuid.uuid4().hex[:6]}",
             cid, ref)
    finally:
        subprocess.run(["docker", "rm", cid], capture_output=True)
    made = image_id(ref)
    MADE.setdefault(ref.split("/")[0], []).append(made)
    return made


def image_id(ref: str) -> str:
    return _out("docker", "image", "inspect", "-f", "{{.Id}}", ref).strip()


def running(project: str) -> dict[str, str]:
    """service -> image ID of its container (healthy or not)."""
    out = _out("docker", "ps", "-a", "--filter", f"label=com.docker.compose.project={project}",
               "--format", '{{.Label "com.docker.compose.service"}} {{.ID}}')
    found = {}
    for line in out.splitlines():
        service, cid = line.split()
        found[service] = _out("docker", "inspect", "-f", "{{.Image}}", cid).strip()
    return found


def redis(project: str, *args: str) -> str:
    return _out("docker", "exec", f"{project}-store-1", "redis-cli", *args).strip()


def volume_sha(project: str, base: str) -> str:
    tar = subprocess.run(["docker", "run", "--rm", "-v", f"{project}_store-data:/data", base,
                          "tar", "--sort=name", "-cf", "-", "-C", "/data", "."],
                         capture_output=True, check=True).stdout
    return hashlib.sha256(tar).hexdigest()


def test_good_upgrade_in_json_then_nothing_changed(fleet: tuple[Path, str]) -> None:
    folder, project = fleet
    up(folder, project)
    old = running(project)
    new_web = bump(f"{project}/web:current")

    result = run(folder, project, "upgrade", "--no-build", "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    steps = [(e["step"], e["service"], e["status"]) for e in events
             if e["event"] == "UpgradeStep"]
    assert steps == [("recreate", "web", "started"), ("recreate", "web", "done"),
                     ("upgrade", "", "done")]
    assert events[0]["event"] == "UpgradePlanned" and events[0]["services"][0][0] == "web"
    assert all(e["at"].endswith("Z") for e in events if e["event"].startswith("Upgrade"))
    # only web changed: store (which web depends on) is the same container
    assert running(project) == {"store": old["store"], "web": new_web}

    again = run(folder, project, "upgrade", "--no-build")
    assert again.returncode == 0, again.stderr
    assert "nothing changed" in again.stdout
    assert running(project) == {"store": old["store"], "web": new_web}
    # what upgrade made is what `up` makes from the manifest: up has nothing to do
    assert "is up to date: nothing changed" in run(folder, project, "up").stdout

    # a service without a health check is refused before anything changes
    lines = (folder / "fleet.yaml").read_text().splitlines()
    (folder / "fleet.yaml").write_text("".join(
        line + "\n" for line in lines if PROBE not in line))
    refused = run(folder, project, "upgrade", "--no-build")
    assert refused.returncode == 2, refused.stderr
    assert "fleet.yaml:" in refused.stderr and "service web has no health check" in \
        refused.stderr and "--no-health-gate" in refused.stderr
    assert running(project) == {"store": old["store"], "web": new_web}


def test_failed_upgrade_rolls_the_whole_set_back_with_its_data(
        fleet: tuple[Path, str], base: str) -> None:
    folder, project = fleet
    up(folder, project)
    assert redis(project, "set", "greeting", "kept") == "OK"
    old = running(project)
    before = volume_sha(project, base)
    new = {"store": bump(f"{project}/store:current"),
           "web": bump(f"{project}/web:current", "BROKEN=1")}

    result = run(folder, project, "upgrade", "--no-build")
    assert result.returncode == ROLLED_BACK, result.stdout + result.stderr
    said = result.stderr
    assert "upgrade rolled back: service web did not become healthy within" in said
    assert "last health output:" in said and "--- last 20 log lines of web ---" in said
    assert running(project) == old  # both back, store too, though it was healthy
    assert old["store"] != new["store"] and old["web"] != new["web"]
    assert volume_sha(project, base) == before
    assert redis(project, "get", "greeting") == "kept"
    # `:current` names the previous images again; the failed one is `:prev`
    assert image_id(f"{project}/web:current") == old["web"]
    assert image_id(f"{project}/web:prev") == new["web"]
    # nothing pending; and `up` keeps the previous version (`:current` names it again)
    again = run(folder, project, "up")
    assert again.returncode == 0 and "upgrade" not in again.stderr, again.stderr
    assert "is up to date: nothing changed" in again.stdout


def killed_at(folder: Path, project: str, point: str, *args: str) -> None:
    """Run `dockyard ARGS` (an upgrade by default) and let it be killed at `point`."""
    result = run(folder, project, *(args or ("upgrade", "--no-build")),
                 env={"DOCKYARD_KILL_AT": point})
    assert result.returncode == -9, f"{point}: {result.stdout}{result.stderr}"
    assert f"killed at {point.split(':')[0]}" in result.stderr


def test_kill_at_every_forward_step_then_resume_is_all_new(fleet: tuple[Path, str]) -> None:
    """Each kill is followed by a --resume, itself killed at the next point, until the last
    resume runs to its end: every point is resumed from, and the set ends all new."""
    folder, project = fleet
    up(folder, project)
    old = running(project)
    new = {"store": bump(f"{project}/store:current"), "web": bump(f"{project}/web:current")}

    killed_at(folder, project, "upgrade.begin")
    status = run(folder, project, "status")
    assert status.returncode == 0, status.stderr
    assert "was interrupted: store old" in status.stderr and "--resume" in status.stderr
    for args in (("upgrade", "--no-build"), ("up",)):  # would mix: refused
        again = run(folder, project, *args)
        assert again.returncode == PENDING and "upgrade --resume" in again.stderr, args
    assert running(project) == old
    # store: its step, its gate; web: the same (the first of each in that process); the end
    for point in ["upgrade.recreate:1", "upgrade.gate:1", "upgrade.recreate:1",
                  "upgrade.gate:1", "upgrade.end"]:
        killed_at(folder, project, point, "upgrade", "--resume")
    resumed = run(folder, project, "upgrade", "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert running(project) == new
    assert "interrupted" not in run(folder, project, "status").stderr


def test_kill_at_every_rollback_step_then_resume_is_all_old(fleet: tuple[Path, str]) -> None:
    """A failed upgrade killed where it turns back, and at each revert (by `rollback` and by
    `upgrade --resume`): it ends all old, with the rolled-back exit code."""
    folder, project = fleet
    up(folder, project)
    old = running(project)
    bump(f"{project}/store:current")
    bump(f"{project}/web:current", "BROKEN=exit")
    killed_at(folder, project, "upgrade.rollback")
    killed_at(folder, project, "upgrade.revert:1", "rollback")
    killed_at(folder, project, "upgrade.revert:2", "upgrade", "--resume")
    resumed = run(folder, project, "upgrade", "--resume")
    assert resumed.returncode == ROLLED_BACK, resumed.stdout + resumed.stderr
    # it exits at once; its restart policy (unless-stopped) may have started it again
    assert ("upgrade rolled back: service web exited before it became healthy" in resumed.stderr
            or "upgrade rolled back: service web is crash-looping" in resumed.stderr)
    assert running(project) == old


def test_rollback_takes_an_interrupted_upgrade_back(fleet: tuple[Path, str]) -> None:
    folder, project = fleet
    up(folder, project)
    old = running(project)
    bump(f"{project}/store:current")
    bump(f"{project}/web:current")
    killed_at(folder, project, "upgrade.gate:2")  # web's new container up, not yet healthy
    back = run(folder, project, "rollback")
    assert back.returncode == 0, back.stderr
    assert "interrupted upgrade is rolled back" in back.stdout
    assert running(project) == old


def test_a_rollback_that_fails_says_what_runs_where(fleet: tuple[Path, str],
                                                    base: str) -> None:
    """The previous web image is removed while the upgrade is turning back: going back fails,
    exits 7, says which service runs which image and how to finish; the journal stays."""
    folder, project = fleet
    old_web = bump(f"{project}/web:current")  # an image of its own, so it can be removed
    up(folder, project)
    bump(f"{project}/web:current", "BROKEN=exit", source=base)  # not a child of old_web
    killed_at(folder, project, "upgrade.rollback")
    subprocess.run(["docker", "rmi", "-f", old_web], check=True, capture_output=True)
    failed = run(folder, project, "upgrade", "--resume")
    assert failed.returncode == ROLLBACK_FAILED, failed.stdout + failed.stderr
    said = failed.stderr
    assert "the rollback failed: service web could not be made" in said
    assert f"web on {running(project)['web'][7:19]} (new)" in said
    assert "by hand: `docker compose -p " in said and "up -d --no-deps web" in said
    status = run(folder, project, "status")
    assert "could not be rolled back" in status.stderr
