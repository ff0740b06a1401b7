"""The adopt action's checks before any rewriting: the family, the Dockerfile, its files."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.actions.adopt import adopt, read_dockerfile, require_family
from dockyard.errors import ManifestError
from dockyard.manifest.load import load

ROOT = Path(__file__).parents[2] / "fixtures" / "adopt"
FLEET = load(ROOT / "fleet.yaml")


def test_an_unknown_family_names_the_nearest_one_and_where() -> None:
    with pytest.raises(ManifestError) as caught:
        require_family(FLEET, "wbe")
    assert str(caught.value) == ("fleet.yaml:6:1: no family 'wbe' in fleet.yaml (did you mean "
                                 "'web'?) (fix: one of: base, gpu, web)")


def test_an_unknown_family_far_from_any_lists_them_all() -> None:
    with pytest.raises(ManifestError) as caught:
        require_family(FLEET, "zzzzzz")
    assert "did you mean" not in str(caught.value)
    assert caught.value.fix == "one of: base, gpu, web"


def test_a_known_family_passes() -> None:
    require_family(FLEET, "gpu")


def test_a_missing_dockerfile_says_why(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as caught:
        read_dockerfile(tmp_path / "Dockerfile")
    assert caught.value.message == (f"cannot read {tmp_path / 'Dockerfile'}: "
                                    "No such file or directory")
    assert caught.value.fix == "pass the path of a service's Dockerfile"


def test_a_dockerfile_that_is_not_text_says_so(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_bytes(b"FROM x\n\xff\xfe\n")
    with pytest.raises(ManifestError, match=r"cannot read .*Dockerfile: 'utf-8' codec"):
        read_dockerfile(tmp_path / "Dockerfile")


def test_the_requirement_files_it_reads_come_along_when_present(tmp_path: Path) -> None:
    text = ("FROM python:3.11-slim\nCOPY . .\n"
            "RUN pip install -r requirements.txt -r extra.txt --requirement=dev.txt\n")
    (tmp_path / "Dockerfile").write_text(text)
    (tmp_path / "requirements.txt").write_text("fastapi==0.115.12\n")
    (tmp_path / "dev.txt").write_text("pytest\n")
    read, files = read_dockerfile(tmp_path / "Dockerfile")
    assert read == text
    assert files == {"requirements.txt": "fastapi==0.115.12\n", "dev.txt": "pytest\n"}


def test_adopt_checks_the_family_before_reading_anything(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no family 'nope'"):
        adopt(FLEET, tmp_path / "absent" / "Dockerfile", "nope")


def test_adopt_rewrites_onto_the_familys_image(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\nRUN pip install -r r.txt\n")
    (tmp_path / "r.txt").write_text("fastapi==0.115.12\n")
    result = adopt(FLEET, tmp_path / "Dockerfile", "web")
    assert "ARG BASE_IMAGE=registry.local:5000/shop/family-web:current" in result.text
    assert not result.unconverted
