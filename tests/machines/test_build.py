"""`dockyard build` on several machines, reached over SSH only (the harness's `ssh://`
engines): machine a's image is built here and shipped to it; machine c (`build: remote`)
builds its own on its engine, and only its own; a machine that cannot be reached is named
at the end (exit 3) without stopping the others."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from tests.machines.harness import Harness

pytestmark = pytest.mark.engine

TAG = f"hbd{uuid.uuid4().hex[:6]}"
GONE = "ssh://root@127.0.0.1:18299"  # nothing listens there (this helper's port range)


def _dockyard(h: Harness, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dockyard", "-f", str(folder / "fleet.yaml"),
                           *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **h.env(), "COLUMNS": "200",
                               "DOCKYARD_STATE": str(folder / "state")})


def _host_image(ref: str) -> str:
    found = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref],
                           capture_output=True, text=True, timeout=60)
    return found.stdout.strip() if found.returncode == 0 else ""


def _line(out: str, machine: str) -> str:
    return next((line for line in out.splitlines() if line.startswith(f"{machine}: ")), "")


def test_hbd_build_ships_to_a_builds_on_c_and_names_the_unreachable_one(
        machines: Harness, machine_image: str, tmp_path: Path) -> None:
    a, c = machines["a"], machines["c"]
    for name in ("web", "api", "lost"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "app.py").write_text(f"print('{name}')\n")
    (tmp_path / "fleet.yaml").write_text(textwrap.dedent(f"""\
        fleet: {TAG}
        machines:
          a: {{engine: "{a.engine_url}", host: {a.address}}}
          b: {{engine: "{GONE}", host: 127.0.0.1, build: remote}}
          c: {{engine: "{c.engine_url}", host: {c.address}, build: remote}}
        families:
          plain: {{from: {machine_image}}}
        services:
          web: {{family: plain, build: web, command: [python3, /app/app.py], machine: a}}
          lost: {{family: plain, build: lost, command: [python3, /app/app.py], machine: b}}
          api: {{family: plain, build: api, command: [python3, /app/app.py], machine: c}}
        """))
    web, api = f"{TAG}/web:current", f"{TAG}/api:current"
    try:
        t0 = time.monotonic()
        first = _dockyard(machines, tmp_path, "build")
        out = first.stdout + first.stderr
        # b cannot be reached: named at the end, exit 3, and a and c were done all the same
        assert first.returncode == 3, out
        assert "machine b" in first.stderr and "-m b" in first.stderr, out
        assert _line(first.stdout, "b").startswith("b: not built:"), out
        # a: built here once, then shipped over a's SSH connection (with its size)
        assert _host_image(web) and a.has_image(web) == _host_image(web), out
        said_a = _line(first.stdout, "a")
        assert said_a.startswith("a: built here: ") and "service web" in said_a, out
        assert re.search(r"shipped [\d.]+[KM]iB \(1 image\(s\)\)", said_a), out
        # c: built on its own engine, only its own image; none of it here
        assert c.has_image(api), out
        assert "service api on c: built" in out, out
        assert _line(first.stdout, "c").startswith("c: built on c: "), out
        assert not _host_image(api), "c's image was built here"
        assert not c.has_image(web), "c built a's image"
        assert not _host_image(f"{TAG}/lost:current"), "b's image was built here"
        # a second build, on the machines that answer: nothing to build, nothing to ship
        again = _dockyard(machines, tmp_path, "-m", "a", "-m", "c", "build")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "shipped 0B (it had them all)" in _line(again.stdout, "a"), again.stdout
        assert _line(again.stdout, "c").startswith("c: unchanged"), again.stdout
        assert "built: nothing" in again.stdout, again.stdout
        assert "shipping" not in again.stderr, again.stderr
        assert time.monotonic() - t0 < 120
    finally:
        for m in (a, c):
            ids = m.docker("images", "-q", "--filter", f"reference={TAG}/*").stdout.split()
            if ids:
                m.docker("rmi", "-f", *set(ids), check=False)
        ids = subprocess.run(["docker", "images", "-q", "--filter", f"reference={TAG}/*"],
                             capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "rmi", "-f", *set(ids)], capture_output=True)
