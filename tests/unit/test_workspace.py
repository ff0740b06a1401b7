"""Where dockyard keeps a fleet's state: the rule, case by case."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.workspace import EXAMPLE, state_dir


def manifest(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fleet.yaml").write_text("fleet: shop\n")
    return folder / "fleet.yaml"


def test_dockyard_state_wins(tmp_path: Path) -> None:
    path = manifest(tmp_path / "site")
    assert state_dir(path, "shop", {"DOCKYARD_STATE": str(tmp_path / "s")}) == tmp_path / "s"


def test_an_empty_dockyard_state_is_not_set(tmp_path: Path) -> None:
    path = manifest(tmp_path / "site")
    assert state_dir(path, "shop", {"DOCKYARD_STATE": ""}) == tmp_path / "site" / ".dockyard"


def test_beside_a_manifest_whose_folder_is_writable(tmp_path: Path) -> None:
    assert state_dir(manifest(tmp_path / "site"), "shop", {}) == tmp_path / "site" / ".dockyard"


def test_a_folder_dockyard_cannot_write_goes_to_the_cache(tmp_path: Path) -> None:
    # A folder that does not exist cannot be written (the tests may run as root, who may
    # write any folder that does).
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    assert state_dir(tmp_path / "gone" / "fleet.yaml", "shop", env) == (
        tmp_path / "cache" / "dockyard" / "shop")


def test_the_bundled_example_keeps_its_state_in_the_cache(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    assert state_dir(EXAMPLE, "quickstart", env) == tmp_path / "cache" / "dockyard" / "quickstart"
    assert state_dir(EXAMPLE, "quickstart", {}) == (
        Path.home() / ".cache" / "dockyard" / "quickstart")


def test_a_relative_manifest_gives_an_absolute_state_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `dockyard -f fleet.yaml build`: compose resolved a relative context against its own
    # folder (".dockyard/build/compose/.dockyard/build/families/base not found").
    manifest(tmp_path / "site")
    monkeypatch.chdir(tmp_path / "site")
    assert state_dir(Path("fleet.yaml"), "shop", {}) == tmp_path / "site" / ".dockyard"
    assert state_dir(Path("fleet.yaml"), "shop", {"DOCKYARD_STATE": "st"}) == (
        tmp_path / "site" / "st")
