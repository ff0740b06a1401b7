"""Image families on a real engine: a small fleet of our own (tiny wheels, no torch) built
through locked families; non-root, labelled, offline installs; skip when unchanged; only the
changed service rebuilds; a failed build moves no tag; `rollback` puts `:prev` back."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.errors import BuildError
from tests.engine.conftest import dockyard

pytestmark = pytest.mark.engine

LOCAL = Path("/opt/pypi/files")
# Resolve and download offline from this machine's wheel folder (pip's own env settings).
OFFLINE = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(LOCAL)}
FLEET = """\
fleet: {name}
machines: {{box: {{arch: amd64}}}}
families:
  base:
    from: debian:bookworm-slim
    apt: [python3, python3-venv]
  py:
    from: base
    requirements: [idna]
  more:
    from: py
    requirements: [six]
services:
  hello:
    family: more
    build: svc/hello
    requirements: [tomli-w]
    command: [python3, -c, "import time, app; time.sleep(100000)"]
    health: {{cmd: [python3, -c, "import six, idna, tomli_w"], interval: 1s, retries: 30}}
  other:
    family: py
    build: svc/other
    dockerfile: Dockerfile
    command: [python3, -c, "import time; time.sleep(100000)"]
"""
OTHER_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
WORKDIR /app
COPY --chown=10001:10001 . /app
USER 10001:10001
ENTRYPOINT ["/usr/bin/tini", "--"]
"""
LABELS = ("org.opencontainers.image.source", "org.opencontainers.image.revision",
          "org.opencontainers.image.created", "dev.dockyard.family",
          "dev.dockyard.manifest-hash", "dev.dockyard.inputs")


def inspect(ref: str) -> dict[str, Any]:
    out = subprocess.run(["docker", "image", "inspect", ref], capture_output=True, text=True)
    return json.loads(out.stdout)[0] if out.returncode == 0 else {}  # type: ignore[no-any-return]


def image_id(ref: str) -> str:
    return str(inspect(ref).get("Id", ""))


@pytest.fixture(scope="module")
def fleet(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    if not LOCAL.is_dir():
        pytest.skip("no local wheel folder to resolve offline")
    name = f"dyt{uuid.uuid4().hex[:6]}"
    root = tmp_path_factory.mktemp("families")
    (root / "fleet.yaml").write_text(FLEET.format(name=name))
    for svc in ("hello", "other"):
        (root / "svc" / svc).mkdir(parents=True)
        (root / "svc" / svc / "app.py").write_text("VALUE = 1\n")
    (root / "svc" / "other" / "Dockerfile").write_text(OTHER_DOCKERFILE)
    yield name, root
    ids = subprocess.run(["docker", "images", "-q", "--filter", f"reference={name}/*"],
                         capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rmi", "-f", *sorted(set(ids))], capture_output=True)


def run_dockyard(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return dockyard("-f", str(root / "fleet.yaml"), *args, env=OFFLINE, cwd=root)


@pytest.fixture(scope="module")
def built(fleet: tuple[str, Path]) -> tuple[str, Path]:
    _, root = fleet
    result = run_dockyard(root, "build")
    assert result.returncode == 0, result.stderr[-4000:]
    assert ("built: family-base, family-hello.service, family-more, family-py, service-hello, "
            "service-other") in result.stdout.replace("\n", " ")
    return fleet


def test_build_goes_through_locked_families(built: tuple[str, Path]) -> None:
    name, root = built
    assert (root / "locks" / "py.amd64.txt").is_file()
    more = (root / "locks" / "more.amd64.txt").read_text()
    assert "six==1.17.0" in more and "idna==" in more and "--hash=sha256:" in more
    # hello's own requirements: a thin layer locked on its family's lock.
    layer = (root / "locks" / "hello.service.amd64.txt").read_text()
    assert "tomli-w==" in layer and "six==1.17.0" in layer
    images = [f"{name}/family-base", f"{name}/family-py", f"{name}/family-more",
              f"{name}/family-hello.service", f"{name}/hello", f"{name}/other"]
    for repo in images:
        info = inspect(f"{repo}:current")
        assert info, repo
        config = info["Config"]
        assert config["User"] == "10001:10001", repo
        for label in LABELS:
            assert config["Labels"].get(label), (repo, label)
        assert config["Labels"]["dev.dockyard.fleet"] == name
        dated = [t for t in info["RepoTags"] if t.rsplit(":", 1)[1][:8].isdigit()]
        assert len(dated) == 1 and dated[0].endswith("-nogit"), info["RepoTags"]
    assert inspect(f"{name}/hello:current")["Config"]["Labels"]["dev.dockyard.family"] == "more"
    # The packages work, and nothing of the install stayed behind: no wheels, no pip cache.
    check = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "/bin/sh", f"{name}/hello:current", "-c",
         "python3 -c 'import six, idna, tomli_w; print(six.__version__)' && id -u && "
         "! python3 -c 'import pip' 2>/dev/null && "
         # Mount points stay (empty); Debian's own ensurepip wheels are the base's.
         "[ -z \"$(ls -A /wheels 2>/dev/null)\" ] && [ ! -e /tmp/verified ] && "
         "! find / -xdev \\( -name '*.whl' -o -path '*/.cache/pip' \\) -not -path "
         "'/usr/share/python-wheels/*' 2>/dev/null "
         "| grep -q ."],
        capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.split() == ["1.17.0", "10001"]
    # The child family installs only its delta over its parent's lock: six, not idna again.
    staged = (root / ".dockyard" / "build" / "families" / "more" / "requirements.lock")
    assert [ln.split("==")[0] for ln in staged.read_text().splitlines()
            if ln and not ln.startswith(" ")] == ["six"]
    # ... beside dockyard's pip, which installs from its wheel and is not in the image.
    assert sorted(p.name.split("-")[0] for p in staged.parent.glob("wheels/*.whl")) == [
        "pip", "six"]


def test_rendered_dockerfiles_pass_hadolint(built: tuple[str, Path]) -> None:
    _, root = built
    hadolint = Path(sys.executable).parent / "hadolint"
    files = sorted((root / ".dockyard" / "render").rglob("*Dockerfile"))
    assert len(files) == 4  # three families and hello (other brings its own)
    # What was built: the families and hello's own-packages layer.
    built = sorted((root / ".dockyard" / "build" / "families").glob("*/Dockerfile"))
    assert [p.parent.name for p in built] == ["base", "hello.service", "more", "py"]
    files += built
    for path in files:
        result = subprocess.run([str(hadolint), "--no-color", str(path)], capture_output=True,
                                text=True)
        assert result.returncode == 0 and not result.stdout.strip(), (path, result.stdout)


def test_second_build_rebuilds_nothing(built: tuple[str, Path]) -> None:
    _, root = built
    result = run_dockyard(root, "build")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "built: nothing; unchanged: 6" in result.stdout


def test_one_changed_service_rebuilds_only_it_and_keeps_prev(built: tuple[str, Path]) -> None:
    name, root = built
    before = {repo: image_id(f"{name}/{repo}:current")
              for repo in ("family-base", "family-py", "family-more", "family-hello.service",
                           "hello", "other")}
    (root / "svc" / "hello" / "app.py").write_text("VALUE = 2\n")
    result = run_dockyard(root, "build")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "built: service-hello " in result.stdout and "unchanged: 5" in result.stdout
    after = {repo: image_id(f"{name}/{repo}:current") for repo in before}
    assert [r for r in before if before[r] != after[r]] == ["hello"]
    assert image_id(f"{name}/hello:prev") == before["hello"]
    assert image_id(f"{name}/other:prev") == ""  # never rebuilt: no previous image


def test_failed_build_moves_no_tag(built: tuple[str, Path]) -> None:
    name, root = built
    tags = {ref: image_id(ref) for ref in (f"{name}/hello:current", f"{name}/hello:prev",
                                           f"{name}/other:current")}
    dockerfile = root / "svc" / "other" / "Dockerfile"
    app = root / "svc" / "hello" / "app.py"
    old_app = app.read_text()
    # hello would build fine; other fails: neither `:current` nor `:prev` may move.
    app.write_text("VALUE = 3\n")
    dockerfile.write_text(OTHER_DOCKERFILE.replace("WORKDIR /app", "RUN exit 3\nWORKDIR /app"))
    try:
        result = run_dockyard(root, "build")
    finally:
        dockerfile.write_text(OTHER_DOCKERFILE)
        app.write_text(old_app)
    assert result.returncode != 0
    assert "building service-other failed" in result.stderr
    assert "Traceback" not in result.stderr
    assert {ref: image_id(ref) for ref in tags} == tags
    leftovers = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}",
                                "--filter", f"reference={name}/*"], capture_output=True,
                               text=True).stdout
    assert "dy-build-" not in leftovers  # the run's own tags are gone too


def test_rollback_puts_prev_back_and_runs_it(built: tuple[str, Path], project: str) -> None:
    name, root = built
    current, prev = image_id(f"{name}/hello:current"), image_id(f"{name}/hello:prev")
    assert current and prev and current != prev
    result = dockyard("-f", str(root / "fleet.yaml"), "-p", project, "rollback", "hello",
                      env=OFFLINE, cwd=root, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert image_id(f"{name}/hello:current") == prev
    assert image_id(f"{name}/hello:prev") == current
    running = subprocess.run(["docker", "ps", "-q", "--filter",
                              f"label=com.docker.compose.project={project}", "--filter",
                              "label=com.docker.compose.service=hello"],
                             capture_output=True, text=True).stdout.split()
    assert len(running) == 1
    assert inspect_container(running[0])["Image"] == prev
    # No `:prev` to go back to: a located refusal, and nothing is retagged.
    refused = dockyard("-f", str(root / "fleet.yaml"), "-p", project, "rollback", "other",
                       env=OFFLINE, cwd=root)
    assert refused.returncode == 2 and "has no previous image" in refused.stderr
    assert image_id(f"{name}/hello:current") == prev  # the refusal retagged nothing
    # With no service named, every service that has a `:prev` goes back (hello, not other).
    again = dockyard("-f", str(root / "fleet.yaml"), "-p", project, "rollback", env=OFFLINE,
                     cwd=root, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "hello: current is now" in again.stdout and "other:" not in again.stdout
    assert image_id(f"{name}/hello:current") == current


def inspect_container(cid: str) -> dict[str, Any]:
    out = subprocess.run(["docker", "inspect", cid], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]  # type: ignore[no-any-return]


def test_an_image_whose_python_is_not_the_locked_one_fails_in_the_builder(
        engine: None, tmp_path: Path) -> None:
    name = f"dyt{uuid.uuid4().hex[:6]}"
    (tmp_path / "svc").mkdir()
    # Locked for 3.12.1 (markers judged for it), but bookworm's python3 is 3.11.2.
    (tmp_path / "fleet.yaml").write_text(
        f"fleet: {name}\nmachines: {{box: {{arch: amd64}}}}\nfamilies:\n"
        "  base: {from: 'debian:bookworm-slim', apt: [python3, python3-venv]}\n"
        "  py: {from: base, python: '3.12.1', requirements: [six]}\n"
        "services:\n  app: {family: py, build: svc}\n")
    try:
        result = run_dockyard(tmp_path, "build")
        said = " ".join(result.stderr.split())  # as one line, however rich wrapped it
        assert result.returncode != 0
        assert "this image has Python 3.11.2, the lock is for 3.12.1" in said
        assert "building family-py failed" in said
        assert image_id(f"{name}/family-py:current") == ""
    finally:
        ids = subprocess.run(["docker", "images", "-q", "--filter", f"reference={name}/*"],
                             capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "rmi", "-f", *sorted(set(ids))], capture_output=True)


def test_example_fleet_images_carry_labels_and_its_dockerfiles_pass_hadolint(
        example_built: Path) -> None:
    """The acceptance of issue 3 on the bundled example: every image non-root and labelled,
    every Dockerfile it was built from hadolint-clean."""
    for repo in ("family-base-python", "family-redis", "family-web", "family-embed", "store",
                 "embedder", "gateway"):
        config = inspect(f"quickstart/{repo}:current")["Config"]
        assert config["User"] == "10001:10001", repo
        for label in LABELS:
            assert config["Labels"].get(label), (repo, label)
    hadolint = Path(sys.executable).parent / "hadolint"
    files = [*sorted((example_built / "render").rglob("*Dockerfile")),
             *sorted((example_built / "build" / "families").glob("*/Dockerfile"))]
    assert len(files) == 11  # 4 family + 3 service renders, and the 4 families as built
    for path in files:
        result = subprocess.run([str(hadolint), "--no-color", str(path)], capture_output=True,
                                text=True)
        assert result.returncode == 0 and not result.stdout.strip(), (path, result.stdout)


BATCH_FLEET = """\
fleet: {name}
machines: {{box: {{arch: amd64}}}}
families:
  base: {{from: 'debian:bookworm-slim', apt: [python3, python3-venv]}}
services:
  a: {{family: base, build: svc/a, command: [python3, app.py]}}
  b: {{family: base, build: svc/b, command: [python3, app.py]}}
  c: {{family: base, build: svc/c, dockerfile: Dockerfile}}
"""


def test_thin_services_build_together_and_a_failure_names_its_service(
        engine: None, tmp_path: Path) -> None:
    name = f"dyt{uuid.uuid4().hex[:6]}"
    (tmp_path / "fleet.yaml").write_text(BATCH_FLEET.format(name=name))
    for svc in "abc":
        (tmp_path / "svc" / svc).mkdir(parents=True)
        (tmp_path / "svc" / svc / "app.py").write_text(f"print('{svc}')\n")
    dockerfile = tmp_path / "svc" / "c" / "Dockerfile"
    try:
        # One compose run builds a, b and c on `base`; c fails: the error names c (each is
        # then built alone), and nothing is tagged `:current`.
        dockerfile.write_text(OTHER_DOCKERFILE.replace("WORKDIR /app", "RUN exit 3\nWORKDIR /app"))
        failed = dockyard("-f", str(tmp_path / "fleet.yaml"), "build", env=OFFLINE, cwd=tmp_path)
        assert failed.returncode == BuildError.exit_code == 1
        assert "building service-c failed" in failed.stderr and "exit code: 3" in failed.stderr
        assert "Traceback" not in failed.stderr
        assert not any(image_id(f"{name}/{s}:current") for s in "abc")
        dockerfile.write_text(OTHER_DOCKERFILE)
        result = dockyard("-f", str(tmp_path / "fleet.yaml"), "build", env=OFFLINE, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        out = " ".join((result.stdout + result.stderr).split())
        for svc in "abc":
            assert f"service {svc}: built in " in out and "(one build of 3 images)" in out
            assert image_id(f"{name}/{svc}:current")
        said = subprocess.run(["docker", "run", "--rm", f"{name}/b:current", "python3",
                               "app.py"], capture_output=True, text=True, timeout=120)
        assert said.stdout.strip() == "b"
    finally:
        ids = subprocess.run(["docker", "images", "-q", "--filter", f"reference={name}/*"],
                             capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "rmi", "-f", *sorted(set(ids))], capture_output=True)
