"""Locks: the lock format, a child's delta over its parent, and what is decided before uv
runs (the family's Python, platforms, index). Running uv and pip: tests/process/test_lock.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.engine.lock import (
    changed_pins,
    delta,
    header_digest,
    parse_lock,
    python_of,
)
from dockyard.errors import ManifestError
from dockyard.manifest.load import load
from dockyard.plan import plan

LOCK_TEXT = """\
# dockyard lock of family web for amd64, Python 3.11.2.
# inputs: sha256:{digest}
idna==3.20 \\
    --hash=sha256:{a}
    # via -r requirements.in
Tomli_W==1.2.0 \\
    --hash=sha256:{b} \\
    --hash=sha256:{c}
    # via
    #   -r requirements.in
""".format(digest="d" * 64, a="a" * 64, b="b" * 64, c="c" * 64)


def test_parse_lock_reads_names_versions_and_every_hash() -> None:
    pins = parse_lock(LOCK_TEXT)
    assert sorted(pins) == ["idna", "tomli-w"]  # names are normalised
    assert pins["idna"].version == "3.20"
    assert pins["tomli-w"].hashes == ("sha256:" + "b" * 64, "sha256:" + "c" * 64)
    assert pins["tomli-w"].text.startswith("Tomli_W==1.2.0 \\\n")
    assert "# via" not in pins["tomli-w"].text
    assert header_digest(LOCK_TEXT) == "d" * 64


def test_delta_and_changed_pins() -> None:
    parent = parse_lock(LOCK_TEXT)
    child = parse_lock(LOCK_TEXT.replace("idna==3.20", "idna==3.10") + "six==1.17.0 \\\n"
                       "    --hash=sha256:" + "e" * 64 + "\n")
    assert [line.split(" ")[0] for line in delta(child, parent).splitlines()
            if not line.startswith(" ")] == ["six==1.17.0"]
    assert changed_pins(child, parent) == [("idna", "3.20", "3.10")]


def write_fleet(folder: Path, families: str) -> Path:
    path = folder / "fleet.yaml"
    path.write_text("fleet: locktest\nmachines: {box: {arch: amd64}}\nfamilies:\n" + families
                    + "services:\n  app: {family: top, build: app}\n")
    return path


BASE = "  base: {from: 'debian:bookworm-slim', apt: [python3, python3-venv]}\n"


def test_unknown_base_python_asks_for_the_python_field(tmp_path: Path) -> None:
    path = write_fleet(tmp_path, "  top: {from: 'ghcr.io/acme/base:1', requirements: [six]}\n")
    fleet = load(path)
    with pytest.raises(ManifestError, match="python: "):
        python_of(fleet, plan(fleet), "top")


def write_layered_fleet(folder: Path) -> Path:
    """Service app adds six over its family's tomli; service bad moves tomli's pin."""
    path = folder / "fleet.yaml"
    path.write_text("fleet: locktest\nmachines: {box: {arch: amd64}}\nfamilies:\n" + BASE
                    + "  top: {from: base, requirements: [tomli==2.4.0]}\n"
                    "services:\n  app: {family: top, build: app, requirements: [six]}\n"
                    "  bad: {family: top, build: bad, requirements: [tomli==2.4.1]}\n")
    return path


def test_a_services_own_requirements_are_a_layer_on_its_family(tmp_path: Path) -> None:
    from dockyard.plan.family import with_service_layers

    layered = with_service_layers(plan(load(write_layered_fleet(tmp_path))))
    step = layered.step("app", "service")
    assert step.parent == "app.service" and step.base == "locktest/family-app.service:current"
    assert layered.step("app.service", "family").parent == "top"
    assert with_service_layers(layered) == layered  # once is enough


def test_torch_and_cuda_fields_pick_the_pytorch_index(tmp_path: Path) -> None:
    from dockyard.engine.lock import torch_index
    from dockyard.plan.family import own_requirements

    path = write_fleet(tmp_path, "  gpu: {from: 'ubuntu:24.04', torch: '2.7.0', cuda: '12.8'}\n"
                       "  cpu: {from: 'ubuntu:24.04', torch: '2.7.0'}\n"
                       "  top: {from: gpu, requirements: [six]}\n")
    fleet = load(path)
    the_plan = plan(fleet)
    assert torch_index(the_plan, "top", "amd64") == "https://download.pytorch.org/whl/cu128"
    assert torch_index(the_plan, "cpu", "amd64") == "https://download.pytorch.org/whl/cpu"
    assert own_requirements(the_plan.families["gpu"]) == ["torch==2.7.0"]
    assert python_of(fleet, the_plan, "top") == "3.12.3"  # Ubuntu 24.04's python3


def test_platforms_written_inherited_or_from_the_machines(tmp_path: Path) -> None:
    from dockyard.engine.lock import platforms_of, written_platforms

    path = tmp_path / "fleet.yaml"
    path.write_text("fleet: p\nmachines: {spark: {arch: arm64}, pc: {arch: amd64}}\nfamilies:\n"
                    "  base: {from: 'debian:bookworm-slim'}\n"
                    "  arm: {from: base, platforms: [arm64]}\n"
                    "  armchild: {from: arm}\n"
                    "services:\n  app: {family: armchild, build: app, machine: spark}\n")
    fleet = load(path)
    the_plan = plan(fleet)
    assert platforms_of(fleet, the_plan, "base") == ["amd64", "arm64"]
    assert platforms_of(fleet, the_plan, "armchild") == ["arm64"]  # inherited
    assert written_platforms(the_plan, "base") == []
    # The engine's own platform joins only where none is written.
    path.write_text(path.read_text().replace("pc: {arch: amd64}", "pc2: {arch: arm64}"))
    fleet = load(path)
    assert platforms_of(fleet, plan(fleet), "base", also="amd64") == ["amd64", "arm64"]
    assert platforms_of(fleet, plan(fleet), "arm", also="amd64") == ["arm64"]
