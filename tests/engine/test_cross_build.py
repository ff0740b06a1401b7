"""`dockyard build --platform` for the other architecture, on a real engine, under QEMU: the
DGX Spark is arm64, and its owner's workstation is often amd64. A locked family and a service
on it are built as arm64 images (a bootstrapped arm64 base, arm64 wheels), and they run.

Skipped, with the reason, where no QEMU can be registered with the kernel (a host or container
that may not write binfmt_misc): QEMU is not the engine, and native builds need none."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.engine.bootstrap import emulation_problem
from tests.engine.conftest import dockyard

pytestmark = pytest.mark.engine

LOCAL = Path("/opt/pypi/files")
OFFLINE = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(LOCAL)}
NATIVE = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, "")
FOREIGN = {"amd64": "arm64", "arm64": "amd64"}.get(NATIVE, "")
FLEET = """\
fleet: {name}
machines: {{spark: {{arch: {arch}}}}}
families:
  base: {{from: 'debian:bookworm-slim', apt: [python3, python3-venv]}}
  py: {{from: base, requirements: [six]}}
services:
  hello:
    family: py
    build: svc/hello
    command: [python3, app.py]
"""


@pytest.fixture
def foreign(engine: None) -> str:
    problem = emulation_problem(FOREIGN, NATIVE) if FOREIGN else "no other architecture"
    if problem:  # `make test` runs scripts/install-engine.sh --qemu, which says why not
        pytest.skip(f"{problem}: this host cannot run {FOREIGN} programs")
    if not LOCAL.is_dir():
        pytest.skip("no local wheel folder to resolve offline")
    return FOREIGN


@pytest.fixture
def fleet(foreign: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    name = f"dyt{uuid.uuid4().hex[:6]}"
    (tmp_path / "fleet.yaml").write_text(FLEET.format(name=name, arch=foreign))
    (tmp_path / "svc" / "hello").mkdir(parents=True)
    (tmp_path / "svc" / "hello" / "app.py").write_text(
        "import platform, six\nprint(platform.machine(), six.__version__)\n")
    yield name, tmp_path
    ids = subprocess.run(["docker", "images", "-q", "--filter", f"reference={name}/*"],
                         capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rmi", "-f", *sorted(set(ids))], capture_output=True)


def test_build_for_the_other_architecture_runs_under_qemu(foreign: str,
                                                          fleet: tuple[str, Path]) -> None:
    name, root = fleet
    result = dockyard("-f", str(root / "fleet.yaml"), "build", "--platform", foreign,
                      env=OFFLINE, cwd=root, timeout=3600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert (root / "locks" / f"py.{foreign}.txt").is_file()  # locked for that platform
    for repo in ("family-base", "family-py", "hello"):
        info = json.loads(subprocess.run(
            ["docker", "image", "inspect", f"{name}/{repo}:current"], capture_output=True,
            text=True, check=True).stdout)[0]
        assert info["Architecture"] == foreign, (repo, info["Architecture"])
        assert info["Config"]["User"] == "10001:10001"
    ran = subprocess.run(["docker", "run", "--rm", "--platform", f"linux/{foreign}",
                          f"{name}/hello:current", "python3", "app.py"],
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    machine = {"arm64": "aarch64", "amd64": "x86_64"}[foreign]
    assert ran.stdout.split() == [machine, "1.17.0"]
    # A second build for that platform finds nothing changed.
    again = dockyard("-f", str(root / "fleet.yaml"), "build", "--platform", foreign,
                     env=OFFLINE, cwd=root, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "built: nothing; unchanged: 3" in again.stdout


def test_unknown_platform_is_one_sentence(engine: None, tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text(FLEET.format(name="dytx", arch="arm64"))
    result = dockyard("-f", str(tmp_path / "fleet.yaml"), "build", "--platform", "riscv64")
    assert result.returncode == 2
    assert "--platform riscv64: dockyard builds amd64 and arm64 images" in result.stderr
    assert "Traceback" not in result.stderr
