"""The import action: where the manifest goes, what it refuses, and the reload check."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.actions.importer import check_reload, import_project
from dockyard.errors import DockyardError, ManifestError
from dockyard.manifest.load import loads

COMPOSE = ("services:\n  web:\n    image: 'nginx:1.27'\n    container_name: w\n"
           "    environment: {TOKEN: '${TOKEN:?set TOKEN}'}\n")


def test_writes_fleet_yaml_beside_the_compose_file(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    result = import_project([], cwd=tmp_path, fleet="site", machine="box")
    assert result.path == tmp_path / "fleet.yaml"
    assert (tmp_path / "fleet.yaml").read_text() == result.text
    assert result.services == 1
    [unmapped] = result.unmapped  # "where: why", as `not mapped:` prints it
    assert unmapped.startswith("services.web.container_name: dockyard names containers ")


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    (tmp_path / "fleet.yaml").write_text("mine\n")
    with pytest.raises(ManifestError, match="already exists") as caught:
        import_project([tmp_path / "compose.yaml"], cwd=tmp_path)
    assert "--force" in caught.value.fix
    assert (tmp_path / "fleet.yaml").read_text() == "mine\n"
    import_project([tmp_path / "compose.yaml"], cwd=tmp_path, force=True)
    assert (tmp_path / "fleet.yaml").read_text().startswith("# imported by `dockyard import`")


def test_to_stdout_writes_no_file(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    result = import_project([tmp_path / "compose.yaml"], cwd=tmp_path, output=Path("-"))
    assert result.path is None and result.text.startswith("# imported by `dockyard import`")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compose.yaml"]


def test_no_compose_file_here(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"no compose\.yaml in this folder"):
        import_project([], cwd=tmp_path)


def test_the_reload_check_takes_any_value_for_unset_variables(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOKEN", raising=False)
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    result = import_project([], cwd=tmp_path)
    assert "${TOKEN:?set TOKEN}" in result.text and "TOKEN" not in result.environ
    with pytest.raises(ManifestError, match="required variable TOKEN is not set"):
        loads(result.text, path=result.path, environ=result.environ)  # as `up` would
    check_reload(result.text, result.path, result.environ)


def test_a_manifest_that_does_not_load_is_reported_as_a_dockyard_bug(tmp_path: Path) -> None:
    text = "fleet: site\nmachines: {box: {}}\nservices:\n  web: {image: 'nginx:1.27', port: 80}\n"
    with pytest.raises(DockyardError) as caught:
        check_reload(text, tmp_path / "fleet.yaml", {})
    assert not isinstance(caught.value, ManifestError)  # exit 1: not the user's manifest
    assert caught.value.message.startswith("the imported manifest does not load: fleet.yaml:4:")
    assert "dockyard bug" in caught.value.fix
