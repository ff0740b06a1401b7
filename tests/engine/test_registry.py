"""Registry round trip against a real registry: Debian's `docker-registry` on 127.0.0.1.

build -> push -> remove the local images -> `up` pulls them back and runs them healthy.
Docker lets registries on 127.0.0.0/8 speak plain HTTP, so no TLS or daemon config is needed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.errors import EngineError
from tests.engine.conftest import dockyard, free_port

pytestmark = pytest.mark.engine
REGISTRY_BIN = "/usr/bin/docker-registry"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str) -> dict[str, object]:
    with _NO_PROXY.open(url, timeout=5) as resp:
        return dict(json.loads(resp.read()))


@pytest.fixture(scope="session")
def registry(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real registry on a free loopback port for the session; its storage is a tmp dir."""
    if not Path(REGISTRY_BIN).is_file():
        pytest.skip("docker-registry is not installed (scripts/install-engine.sh installs it)")
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog: {level: warn}\n"
        f"storage:\n  filesystem: {{rootdirectory: {root / 'data'}}}\n  delete: {{enabled: true}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n")
    log = (root / "registry.log").open("w")
    proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log, stderr=log)
    address = f"127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                _get(f"http://{address}/v2/")
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"docker-registry exited: {(root / 'registry.log').read_text()}")
                time.sleep(0.1)
        yield address
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _fleet(folder: Path, name: str, registry: str) -> Path:
    app = folder / "services" / "echo"
    app.mkdir(parents=True)
    (app / "index.html").write_text("ok\n")
    manifest = folder / "fleet.yaml"
    # apt: [redis-server] matches the example fleet's root families, so the bootstrapped base
    # made for it is reused (no second mmdebstrap run); no requirements, so no wheels.
    manifest.write_text(f"""fleet: {name}
registry: {registry}
machines:
  local: {{cpus: 1, memory: 1GiB}}
families:
  tiny:
    from: python:3.11-slim
    apt: [redis-server]
services:
  echo:
    family: tiny
    build: services/echo
    command: [python3, -m, http.server, "8000", --directory, /app]
    ports: {{http: {{port: 8000, publish: false}}}}
    health: {{http: /, interval: 1s, retries: 20}}
""")
    return manifest


def _local_refs(prefix: str) -> list[str]:
    listed = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
                            capture_output=True, text=True, check=True).stdout.split()
    return [ref for ref in listed if ref.startswith(prefix)]


def _remove(refs: list[str]) -> None:
    if refs:
        subprocess.run(["docker", "rmi", "-f", *refs], capture_output=True, check=False)


@pytest.fixture
def tiny_fleet(registry: str, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    name = f"dyt{uuid.uuid4().hex[:6]}"
    manifest = _fleet(tmp_path / "fleet", name, registry)
    yield manifest, name
    _remove(_local_refs(f"{registry}/{name}/"))
    shutil.rmtree(tmp_path / "fleet", ignore_errors=True)


def test_push_remove_then_up_pulls_back_and_runs(registry: str, tiny_fleet: tuple[Path, str],
                                                   project: str, tmp_path: Path) -> None:
    manifest, name = tiny_fleet
    env = {"DOCKYARD_STATE": str(tmp_path / "state")}
    built = dockyard("-f", str(manifest), "build", env=env)
    assert built.returncode == 0, built.stderr[-3000:]
    service = f"{registry}/{name}/echo:current"
    family = f"{registry}/{name}/family-tiny:current"
    ids = {ref: subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", ref],
                               capture_output=True, text=True, check=True).stdout.strip()
           for ref in (service, family)}
    local_tags = _local_refs(f"{registry}/{name}/")

    pushed = dockyard("-f", str(manifest), "push", env=env)
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    catalog = _get(f"http://{registry}/v2/_catalog")["repositories"]
    assert f"{name}/echo" in catalog and f"{name}/family-tiny" in catalog  # type: ignore[operator]
    for repo in ("echo", "family-tiny"):
        tags = set(_get(f"http://{registry}/v2/{name}/{repo}/tags/list")["tags"])  # type: ignore[arg-type]
        mine = {ref.rsplit(":", 1)[1] for ref in local_tags if ref.split(":")[-2].endswith(repo)}
        assert "current" in tags and mine <= tags, (repo, tags, mine)
        assert any(re.fullmatch(r"\d{8}-\w+", t) for t in tags), tags  # the dated tag

    _remove(local_tags)
    assert _local_refs(f"{registry}/{name}/") == []

    up = dockyard("-f", str(manifest), "-p", project, "up", env=env)
    assert up.returncode == 0, up.stderr[-3000:]
    assert f"pulling {service}" in up.stderr
    assert "building" not in up.stderr  # pulled, not rebuilt: the family image stays absent
    assert _local_refs(f"{registry}/{name}/") == [service]
    pulled = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", service],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert pulled == ids[service]  # the very image that was pushed
    ps = dockyard("-f", str(manifest), "-p", project, "ps", "--format", "json", env=env)
    rows = json.loads(ps.stdout)
    assert [(r["service"], r["state"], r["health"]) for r in rows] == \
        [("echo", "running", "healthy")]
    down = dockyard("-f", str(manifest), "-p", project, "down", env=env)
    assert down.returncode == 0, down.stderr[-2000:]

    # A changed service: its old image becomes `:prev`, and push sends it along (with its
    # dated tag), so the registry holds what a rollback goes back to.
    (manifest.parent / "services" / "echo" / "index.html").write_text("ok, again\n")
    rebuilt = dockyard("-f", str(manifest), "build", env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    again = dockyard("-f", str(manifest), "push", env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    prev = f"{registry}/{name}/echo:prev"
    assert f"pushing {prev}" in again.stderr + again.stdout
    tags = set(_get(f"http://{registry}/v2/{name}/echo/tags/list")["tags"])  # type: ignore[arg-type]
    assert {"current", "prev"} <= tags and sum(bool(re.fullmatch(r"\d{8}-\w+", t))
                                               for t in tags) >= 1, tags
    # A machine that has only the new image: `rollback` pulls `:prev` and runs it.
    _remove([prev])
    back = dockyard("-f", str(manifest), "-p", project, "rollback", "echo", env=env)
    assert back.returncode == 0, back.stderr[-3000:]
    assert f"pulling {prev}" in back.stderr
    now = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", service],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert now == ids[service]  # the first build's image is current again, and running
    ps = dockyard("-f", str(manifest), "-p", project, "ps", "--format", "json", env=env)
    assert [(r["service"], r["health"]) for r in json.loads(ps.stdout)] == [("echo", "healthy")]
    down = dockyard("-f", str(manifest), "-p", project, "down", env=env)
    assert down.returncode == 0, down.stderr[-2000:]


def test_unreachable_registry_is_one_sentence(engine: None, tmp_path: Path,
                                              project: str) -> None:
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    name = f"dyt{uuid.uuid4().hex[:6]}"
    manifest = _fleet(tmp_path, name, dead)
    env = {"DOCKYARD_STATE": str(tmp_path / "state")}
    for args in (("push",), ("-p", project, "up", "--no-build")):
        result = dockyard("-f", str(manifest), *args, env=env)
        assert result.returncode == 1, (args, result.stderr)
        lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
        assert len(lines) == 1 and f"registry {dead} does not answer" in lines[0], result.stderr
        assert "fleet.yaml:2:" in lines[0] and "Traceback" not in result.stderr
    assert _local_refs(f"{dead}/{name}/") == []


def test_push_of_images_not_built_is_an_engine_error(registry: str, tmp_path: Path) -> None:
    manifest = _fleet(tmp_path, f"dyt{uuid.uuid4().hex[:6]}", registry)
    result = dockyard("-f", str(manifest), "push")
    assert result.returncode == EngineError.exit_code == 1, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "image(s) of fleet" in lines[0] and "are not built" in lines[0]
    assert "Traceback" not in result.stderr


def test_push_without_registry_says_where(engine: None, tmp_path: Path) -> None:
    manifest = _fleet(tmp_path, f"dyt{uuid.uuid4().hex[:6]}", "x")
    manifest.write_text(manifest.read_text().replace("registry: x\n", ""))
    result = dockyard("-f", str(manifest), "push")
    assert result.returncode == 2
    assert "has no `registry:`" in result.stderr and "fleet.yaml:1:" in result.stderr


def test_up_builds_what_the_registry_does_not_have(registry: str, tiny_fleet: tuple[Path, str],
                                                   project: str, tmp_path: Path) -> None:
    manifest, name = tiny_fleet  # never built, never pushed
    env = {"DOCKYARD_STATE": str(tmp_path / "state")}
    up = dockyard("-f", str(manifest), "-p", project, "up", env=env)
    assert up.returncode == 0, up.stderr[-3000:]
    assert f"pulling {registry}/{name}/echo:current" in up.stderr
    assert "building" in up.stderr  # the registry said "not found": built here instead
    assert f"{registry}/{name}/echo:current" in _local_refs(f"{registry}/{name}/")
    down = dockyard("-f", str(manifest), "-p", project, "down", env=env)
    assert down.returncode == 0, down.stderr[-2000:]
