"""Where dockyard finds the manifest and keeps a fleet's state: the rule, case by case."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.manifest.load import find_manifest, load, loads
from dockyard.workspace import EXAMPLE, manifest_path, state_dir

FLEET = "fleet: shop\nmachines: {box: {}}\nservices:\n  web: {image: 'nginx:1.27'}\n"


def write(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fleet.yaml").write_text(FLEET)
    return folder / "fleet.yaml"


def test_dockyard_state_wins(tmp_path: Path) -> None:
    fleet = load(write(tmp_path / "site"))
    assert state_dir(fleet, {"DOCKYARD_STATE": str(tmp_path / "s")}) == tmp_path / "s"


def test_an_empty_dockyard_state_is_not_set(tmp_path: Path) -> None:
    fleet = load(write(tmp_path / "site"))
    assert state_dir(fleet, {"DOCKYARD_STATE": ""}) == tmp_path / "site" / ".dockyard"


def test_beside_a_manifest_whose_folder_is_writable(tmp_path: Path) -> None:
    fleet = load(write(tmp_path / "site"))
    assert state_dir(fleet, {}) == tmp_path / "site" / ".dockyard"


def test_a_folder_dockyard_cannot_write_goes_to_the_cache(tmp_path: Path) -> None:
    # A manifest loaded from text for a folder that does not exist: not writable.
    fleet = loads(FLEET, path=tmp_path / "gone" / "fleet.yaml")
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    assert state_dir(fleet, env) == tmp_path / "cache" / "dockyard" / "shop"


def test_the_bundled_example_keeps_its_state_in_the_cache(tmp_path: Path) -> None:
    fleet = load(EXAMPLE)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    assert state_dir(fleet, env) == tmp_path / "cache" / "dockyard" / fleet.spec.fleet
    assert state_dir(fleet, {}) == Path.home() / ".cache" / "dockyard" / fleet.spec.fleet


def test_the_manifest_given_the_nearest_above_or_the_example(tmp_path: Path) -> None:
    given = tmp_path / "other.yaml"
    assert manifest_path(given, tmp_path) == (given, False)
    found = write(tmp_path / "site")
    (tmp_path / "site" / "a" / "b").mkdir(parents=True)
    assert manifest_path(None, tmp_path / "site" / "a" / "b") == (found, False)
    if find_manifest(tmp_path) is not None:
        pytest.skip(f"a fleet.yaml above {tmp_path} would be found first")
    assert manifest_path(None, tmp_path / "empty") == (EXAMPLE, True)
