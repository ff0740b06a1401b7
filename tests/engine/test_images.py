"""`dockyard images` on real images: sizes match the engine's, sharing follows the family
chain, and a budget that is exceeded is a located DY604 warning."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.conftest import dockyard

pytestmark = pytest.mark.engine
PAYLOAD = 300_000  # bytes of random data each service copies in


def _inspect_size(ref: str) -> int:
    return int(subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", ref],
                              capture_output=True, text=True, check=True).stdout)


@pytest.fixture
def built_fleet(engine: None, tmp_path: Path) -> Iterator[tuple[Path, str, dict[str, str]]]:
    name = f"dyt{uuid.uuid4().hex[:6]}"
    root = tmp_path / "fleet"
    for svc in ("a", "b"):
        (root / svc).mkdir(parents=True)
        (root / svc / "blob.bin").write_bytes(os.urandom(PAYLOAD))
    manifest = root / "fleet.yaml"
    # apt: [redis-server] reuses the example fleet's bootstrapped base (no mmdebstrap run).
    manifest.write_text(f"""fleet: {name}
machines:
  local: {{}}
families:
  tiny:
    from: python:3.11-slim
    apt: [redis-server]
    max_size: 10GiB
services:
  a:
    family: tiny
    build: a
    command: [sleep, infinity]
  b:
    family: tiny
    build: b
    command: [sleep, infinity]
    max_size: 1MiB
""")
    env = {"DOCKYARD_STATE": str(tmp_path / "state")}
    built = dockyard("-f", str(manifest), "build", env=env)
    assert built.returncode == 0, built.stderr[-3000:]
    yield manifest, name, env
    refs = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
                          capture_output=True, text=True).stdout.split()
    mine = [r for r in refs if r.startswith(f"{name}/")]
    if mine:
        subprocess.run(["docker", "rmi", "-f", *mine], capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


def test_images_sizes_sharing_and_budget(built_fleet: tuple[Path, str, dict[str, str]]) -> None:
    manifest, name, env = built_fleet
    result = dockyard("-f", str(manifest), "images", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    by = {i["image"]: i for i in report["images"]}
    family, a, b = (f"{name}/family-tiny:current", f"{name}/a:current", f"{name}/b:current")
    assert set(by) == {family, a, b} and report["absent"] == []
    for ref, row in by.items():
        assert row["exact"], ref
        assert row["size"] == _inspect_size(ref)  # the layers add up to what the engine says
        assert row["shared"] + row["unique"] == row["size"]
    # The family's layers are in both services: all of it is shared.
    assert by[family]["unique"] == 0 and by[family]["shared"] == by[family]["size"]
    for ref in (a, b):
        assert by[ref]["shared"] == by[family]["size"]
        # What is unique is the service's own COPY: its files plus a little metadata.
        assert PAYLOAD <= by[ref]["unique"] < PAYLOAD + 64 * 1024, by[ref]
    assert report["disk"] == by[family]["size"] + by[a]["unique"] + by[b]["unique"]
    assert report["sum_of_sizes"] == sum(r["size"] for r in by.values())
    # b's budget (1MiB) is exceeded; the family's (10GiB) is not.
    assert [(f["code"], f["severity"], f["line"]) for f in report["findings"]] == \
        [("DY604", "warning", 18)]
    assert f"service b: image {b} is" in report["findings"][0]["message"]

    table = dockyard("-f", str(manifest), "images", env={**env, "COLUMNS": "200"})
    assert table.returncode == 0, table.stderr
    assert "on disk:" in table.stdout and "fleet.yaml:18:5: warning DY604" in table.stdout


def test_images_lists_absent_images(engine: None, tmp_path: Path) -> None:
    manifest = tmp_path / "fleet.yaml"
    name = f"dyt{uuid.uuid4().hex[:6]}"
    manifest.write_text(f"fleet: {name}\nmachines: {{local: {{}}}}\nfamilies:\n"
                        "  f: {from: python:3.11-slim}\n"
                        "services:\n  s: {family: f, build: s}\n")
    result = dockyard("-f", str(manifest), "images", "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["images"] == [] and report["disk"] == 0
    assert report["absent"] == [f"{name}/family-f:current", f"{name}/s:current"]
