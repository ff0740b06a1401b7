"""The bundled example fleet on a real engine: build, up, healthy, search, idempotent up,
down keeping data."""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.engine.conftest import EXAMPLE, dockyard, free_port

pytestmark = pytest.mark.engine

SENTENCES = [
    "The cat sleeps on the warm windowsill.",
    "Postgres keeps the user accounts.",
    "The RTX 3060 ran out of GPU memory.",
    "Fresh bread is baked every morning.",
]


def _post(url: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as reply:
        return json.loads(reply.read())


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as reply:
        return json.loads(reply.read())


def _inspect(ref: str) -> dict[str, Any]:
    out = subprocess.run(["docker", "inspect", ref], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]  # type: ignore[no-any-return]


def _container_ids(project: str) -> dict[str, str]:
    out = subprocess.run(["docker", "ps", "-a", "--filter",
                          f"label=com.docker.compose.project={project}", "--format",
                          '{{.Label "com.docker.compose.service"}} {{.ID}}'],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


def test_build_is_non_root_labelled_and_skips_when_unchanged(example_built: Path) -> None:
    env = {"DOCKYARD_STATE": str(example_built)}
    for image in ("quickstart/store:current", "quickstart/embedder:current",
                  "quickstart/gateway:current", "quickstart/family-web:current"):
        config = _inspect(image)["Config"]
        assert config["User"] == "10001:10001", image
        assert config["Labels"]["dev.dockyard.fleet"] == "quickstart"
        assert len(config["Labels"]["dev.dockyard.inputs"]) == 64
        assert config["Entrypoint"] == ["/usr/bin/tini", "--"]
    again = dockyard("-f", str(EXAMPLE), "build", env=env)
    assert again.returncode == 0, again.stderr
    assert "built: nothing" in again.stdout
    assert "unchanged: 7" in again.stdout


def test_up_search_idempotent_down_keeps_data(example_built: Path, project: str) -> None:
    port = free_port()
    env = {"DOCKYARD_STATE": str(example_built), "GATEWAY_PORT": str(port)}
    base = ["-f", str(EXAMPLE), "-p", project]

    first = dockyard(*base, "up", env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "is up and healthy" in first.stdout
    for service in ("store", "embedder", "gateway"):
        assert service in first.stdout
    # Level by level: the store was healthy before the embedder started, and so on.
    order = [line for line in first.stderr.splitlines() if "starting" in line]
    assert [o.split("starting ")[1].strip() for o in order] == ["store", "embedder", "gateway"]

    ids = _container_ids(project)
    assert sorted(ids) == ["embedder", "gateway", "store"]
    for cid in ids.values():
        assert _inspect(cid)["Config"]["User"] == "10001:10001"

    url = f"http://127.0.0.1:{port}"
    assert _post(f"{url}/ingest", {"texts": SENTENCES})["ingested"] == len(SENTENCES)
    found = _get(f"{url}/search?" + urllib.parse.urlencode({"q": "a sleepy kitten", "k": 1}))
    assert found["results"][0]["text"] == SENTENCES[0]
    assert _get(f"{url}/health")["checks"] == {"store": "ok", "embedder": "ok"}

    second = dockyard(*base, "up", env=env)
    assert second.returncode == 0, second.stderr
    assert "nothing changed" in second.stdout
    assert _container_ids(project) == ids  # nothing recreated

    status = dockyard(*base, "ps", "--format", "json", env=env)
    rows = json.loads(status.stdout)
    assert {r["service"]: (r["state"], r["health"]) for r in rows} == {
        s: ("running", "healthy") for s in ("store", "embedder", "gateway")}

    logs = dockyard(*base, "logs", "store", "--tail", "50", env=env)
    assert logs.returncode == 0
    assert "Ready to accept connections" in logs.stdout

    down = dockyard(*base, "down", env=env)
    assert down.returncode == 0, down.stderr
    assert "volumes kept" in down.stdout
    assert _container_ids(project) == {}

    third = dockyard(*base, "up", env=env)
    assert third.returncode == 0, third.stderr[-3000:]
    found = _get(f"{url}/search?" + urllib.parse.urlencode({"q": "graphics card memory",
                                                               "k": 1}))
    assert found["results"][0]["text"] == SENTENCES[2]  # the data survived down + up

    gone = dockyard(*base, "down", "--volumes", env=env)
    assert gone.returncode == 0 and "volumes deleted" in gone.stdout
    volumes = subprocess.run(["docker", "volume", "ls", "-q"], capture_output=True,
                             text=True).stdout.split()
    assert f"{project}_store-data" not in volumes
