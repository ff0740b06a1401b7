"""Rendered Dockerfiles: two stages, offline hash-checked installs, non-root,
and no CUDA runtime base under CUDA torch wheels."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dockyard.errors import ManifestError
from dockyard.manifest.load import loads
from dockyard.plan import plan
from dockyard.plan.family import cuda_stack_problem
from dockyard.render.dockerfile import render_family_dockerfile
from dockyard.render.files import render_all

GOLDEN = Path(__file__).parent.parent / "golden"
DOCKERFILES = sorted(p for p in GOLDEN.glob("*/expected/**/*") if p.name.endswith("Dockerfile"))


def test_there_are_golden_dockerfiles() -> None:
    assert len(DOCKERFILES) >= 10


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(GOLDEN)))
def test_every_ignored_rule_says_why(path: Path) -> None:
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"# hadolint ignore=([A-Z0-9,]+)", line)
        if match:
            reasons = "\n".join(lines[max(0, i - 3):i])
            for rule in match.group(1).split(","):
                assert f"{rule} (" in reasons and "ignored:" in reasons, (path, rule)


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(GOLDEN)))
def test_shape_non_root_tini_no_syntax_line(path: Path) -> None:
    text = path.read_text()
    assert not text.startswith("# syntax")
    assert "ARG BASE_IMAGE=" in text
    final = text.split("\nFROM ")[-1]
    assert final.startswith("${BASE_IMAGE}\n")
    users = re.findall(r"^USER (.+)$", final, re.MULTILINE)
    assert users[-1] == "10001:10001"
    assert 'ENTRYPOINT ["/usr/bin/tini", "--"]' in final
    assert "USER root" not in text  # numeric, so `docker inspect` and hadolint can tell


def _render(text: str) -> dict[str, str]:
    fleet = loads(text, environ={})
    return render_all(fleet, plan(fleet), text)


FLEET = """\
fleet: shapes
machines: {box: {}}
families:
  base: {from: "debian:bookworm-slim", apt: [python3, python3-venv]}
  web: {from: base, requirements: [idna==3.20]}
  extra: {from: web, requirements: [six==1.17.0]}
services:
  api: {family: extra, build: api, command: [python3, -m, api], health: {http: /health,
        port: 8000}, ports: {http: 8000}}
"""


def test_builder_checks_hashes_and_runtime_installs_only_from_it() -> None:
    files = _render(FLEET)
    web = files["families/web/Dockerfile"]
    builder, runtime = web.split("\nFROM ${BASE_IMAGE}\n")
    assert "FROM ${BASE_IMAGE} AS builder" in builder
    # pip runs from its own wheel (from the wheelhouse): no venv is made for it.
    assert "python3 /wheels/pip-26.2.1-py3-none-any.whl/pip download --no-index --no-deps" \
        in builder
    assert "--require-hashes" in builder and "venv" not in builder
    assert "--mount=type=bind,source=wheels,target=/wheels" in builder
    # The runtime stage installs the checked wheels through mounts: no wheel, no pip (not even
    # the one installing), no pip cache and no download tool lands in a layer.
    assert "--mount=type=bind,from=builder,source=/tmp/verified,target=/wheels" in runtime
    assert ("--mount=type=bind,source=wheels/pip-26.2.1-py3-none-any.whl,"
            "target=/tmp/pip-26.2.1-py3-none-any.whl") in runtime
    assert ("/opt/venv/bin/python /tmp/pip-26.2.1-py3-none-any.whl/pip install --no-index "
            "--no-deps") in runtime
    assert "--require-hashes --no-cache-dir" in runtime
    assert "COPY" not in runtime and "pip download" not in runtime
    # the first family with requirements makes the venv, without pip
    assert "RUN python3 -m venv --without-pip /opt/venv" in runtime
    # A child installs its delta into its parent's venv; it makes no venv of its own.
    extra = files["families/extra/Dockerfile"].split("\nFROM ${BASE_IMAGE}\n")[1]
    assert "venv /opt/venv" not in extra
    assert "pip install" in extra
    # A family without requirements has one stage and a cached apt step.
    base = files["families/base/Dockerfile"]
    assert "AS builder" not in base
    assert "--mount=type=cache,target=/var/lib/apt/lists,sharing=locked" in base


def test_service_dockerfile_has_json_cmd_and_healthcheck() -> None:
    api = _render(FLEET)["services/api.Dockerfile"]
    assert 'CMD ["python3", "-m", "api"]' in api
    assert "HEALTHCHECK --interval=5s --timeout=5s --retries=3" in api
    assert "ARG BASE_IMAGE=shapes/family-extra:current" in api


CUDA_ON_CUDA = """\
fleet: gpu
machines: {box: {gpus: [{memory: 24GiB}]}}
families:
  torch:
    from: nvidia/cuda:12.8.0-runtime-ubuntu22.04
    python: "3.10.12"
    torch: "2.7.0"
    cuda: "12.8"
  asr: {from: torch, requirements: [six]}
services:
  asr: {family: asr, build: asr}
"""


def test_cuda_torch_wheels_are_refused_on_a_cuda_runtime_base() -> None:
    fleet = loads(CUDA_ON_CUDA, environ={})
    the_plan = plan(fleet)
    assert "ship twice" in cuda_stack_problem(the_plan.families, "torch")
    assert "ship twice" in cuda_stack_problem(the_plan.families, "asr")  # inherited through `from`
    with pytest.raises(ManifestError, match=r"nvidia/cuda:12\.8\.0-runtime-ubuntu22\.04"):
        render_family_dockerfile(the_plan, the_plan.step("torch", "family"))


def test_cuda_torch_wheels_on_a_plain_base_are_fine() -> None:
    text = CUDA_ON_CUDA.replace("nvidia/cuda:12.8.0-runtime-ubuntu22.04", "ubuntu:22.04")
    fleet = loads(text, environ={})
    the_plan = plan(fleet)
    assert cuda_stack_problem(the_plan.families, "torch") == ""
    dockerfile = render_family_dockerfile(the_plan, the_plan.step("torch", "family"))
    assert "pip install --no-index" in dockerfile
    # A CUDA base with no torch on it is someone's own CUDA program: not our business.
    plain = CUDA_ON_CUDA.replace('    torch: "2.7.0"\n', "")
    no_torch = loads(plain, environ={})
    assert cuda_stack_problem(plan(no_torch).families, "torch") == ""


OLD_PYTHON = """\
fleet: old
machines: {box: {arch: amd64}}
families:
  legacy: {from: "python:PY-slim", requirements: [six]}
services:
  app: {family: legacy, build: app, command: [python3, app.py]}
"""


def test_the_pip_that_installs_suits_the_images_python() -> None:
    from dockyard.render.dockerfile import pip_for

    assert pip_for("3.11.2").version == "26.2.1" and pip_for("3.10").version == "26.2.1"
    assert pip_for("3.9").version == "25.0.1" and pip_for("3.8.18").version == "25.0.1"
    assert pip_for("").version == "26.2.1"  # unknown: the newest
    new = _render(OLD_PYTHON.replace("PY", "3.12"))["families/legacy/Dockerfile"]
    assert new.count("pip-26.2.1-py3-none-any.whl/pip") == 2  # builder and runtime
    old = _render(OLD_PYTHON.replace("PY", "3.9"))["families/legacy/Dockerfile"]
    assert old.count("pip-25.0.1-py3-none-any.whl/pip") == 2 and "26.2.1" not in old
    with pytest.raises(ManifestError, match=r"Python 3\.7 is older than any pip"):
        _render(OLD_PYTHON.replace("PY", "3.7"))
