"""Family facts have one home (plan/family.py): its chain, root image and Python are the same
answer wherever they are asked — the check that judges wheels, the Dockerfile's Python guard,
the lock's `--python-version`, the health test and `dockyard adopt`."""

from __future__ import annotations

import pytest

from dockyard.checks import check
from dockyard.engine.lock import python_of
from dockyard.manifest.load import Fleet, loads
from dockyard.plan import plan
from dockyard.plan.family import (
    chain,
    has_python,
    image_python,
    python_minor,
    python_version,
    root_family,
    root_image,
)
from dockyard.plan.health import health_test
from dockyard.render.adopt import family_facts
from dockyard.render.files import render_all


def fleet_on(base: str, *, apt: str = "[]", python: str = "") -> Fleet:
    """A root family on `base`, a child with faiss-gpu (no wheel for Python >= 3.10), a
    grandchild; one GPU service on the grandchild, one on a bare family of the same base."""
    own = f", python: \"{python}\"" if python else ""
    return loads(f"""\
fleet: facts
machines:
  box: {{cuda_driver: "12.8", gpus: [{{model: NVIDIA GeForce RTX 4090, memory: 24GiB}}]}}
families:
  root: {{from: "{base}"{own}}}
  mid: {{from: root, requirements: [faiss-gpu]}}
  top: {{from: mid}}
  bare: {{from: "{base}", apt: {apt}}}
services:
  memory: {{family: top, build: memory, gpu: {{memory: 2GiB}}, health: {{http: /health}},
           ports: {{http: 8000}}}}
  plain: {{family: bare, build: plain, health: {{http: /health}}, ports: {{http: 8000}}}}
""", environ={})


@pytest.mark.parametrize(("base", "full"), [("debian:bookworm-slim", "3.11.2"),
                                             ("python:3.11.9-slim", "3.11.9")])
def test_one_python_seen_from_checks_render_and_lock(base: str, full: str) -> None:
    fleet = fleet_on(base)
    the_plan = plan(fleet)
    families = fleet.spec.families
    assert python_version(families, "top") == full
    assert python_minor(families, "top") == "3.11"
    # The lock is made for the full version: uv judges python_full_version markers by it.
    assert python_of(fleet, the_plan, "top") == full
    # The family's Dockerfile refuses an image whose python3 is not the lock's.
    dockerfile = render_all(fleet, the_plan, "")["families/mid/Dockerfile"]
    assert f"v == '{full}'" in dockerfile
    # The check judges wheels by X.Y of the same answer: faiss-gpu has none for 3.11.
    (dy304,) = [f for f in check(fleet, the_plan) if f.code == "DY304"]
    assert "faiss-gpu in family mid has no wheel for Python 3.11 on linux/amd64" in \
        dy304.message


def test_python_nearest_first_and_unknown_is_empty() -> None:
    families = fleet_on("debian:bookworm-slim", python="3.11.4").spec.families
    assert python_version(families, "top") == "3.11.4"  # root's `python:` beats the image
    assert python_version(families, "bare") == "3.11.2"
    unknown = fleet_on("nvcr.io/nvidia/pytorch:25.11-py3").spec.families
    assert python_version(unknown, "top") == "" and python_minor(unknown, "top") == ""
    assert python_version(unknown, "nonesuch") == ""


@pytest.mark.parametrize(("image", "version"), [
    ("python:3.11-slim", "3.11"),
    ("python:3.11.9-slim", "3.11.9"),
    ("docker.io/library/python:3.12.4-bookworm", "3.12.4"),
    ("library/python:3.13", "3.13"),
    ("debian:bookworm-slim", "3.11.2"),
    ("debian:12", "3.11.2"),
    ("docker.io/library/debian:bookworm", "3.11.2"),
    ("ubuntu:24.04", "3.12.3"),
    ("dockyard/bootstrap:bookworm-0123456789ab", "3.11.2"),
    ("nvcr.io/nvidia/pytorch:25.11-py3", ""),
    ("python:latest", ""),
    ("alpine:3.20", ""),
])
def test_image_python(image: str, version: str) -> None:
    assert image_python(image) == version


def test_chain_and_root() -> None:
    families = fleet_on("debian:bookworm-slim").spec.families
    assert chain(families, "top") == ["top", "mid", "root"]
    assert (root_family(families, "top"), root_image(families, "top")) == \
        ("root", "debian:bookworm-slim")
    assert chain(families, "nonesuch") == [] and root_image(families, "nonesuch") == ""


def test_has_python_one_answer_for_render_checks_and_adopt() -> None:
    fleet = fleet_on("debian:bookworm-slim")
    families = fleet.spec.families
    # A venv (requirements in the chain) has python3; a plain Debian image has none.
    assert has_python(families, "top") and not has_python(families, "bare")
    compose = render_all(fleet, plan(fleet), "")["compose.box.yaml"]
    plain = health_test(fleet.spec.services["plain"], has_python=False)
    assert plain[0] == "CMD-SHELL" and plain[1] in compose  # curl || wget, not python3
    assert "urllib.request" in compose  # the service on the venv family probes with python3
    assert family_facts(fleet.spec, "bare", "img").python is False
    assert family_facts(fleet.spec, "top", "img").python is True
    with_apt = fleet_on("debian:bookworm-slim", apt="[python3]").spec.families
    assert has_python(with_apt, "bare")
    python_base = fleet_on("docker.io/library/python:3.12-slim").spec.families
    assert has_python(python_base, "bare") and has_python(python_base, "root")
