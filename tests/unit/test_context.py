"""What a service's build context sends: only what the image may hold (issue 10 E)."""

from __future__ import annotations

from pathlib import Path

from dockyard.engine.context import sent_files, stage_context


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def staged(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_secrets_state_git_and_the_manifest_are_never_sent(tmp_path: Path) -> None:
    root = tree(tmp_path / "fleet", {
        "fleet.yaml": "fleet: x\n", ".env": "API_TOKEN=s3cret\n", ".env.prod": "A=1\n",
        "prod.env": "B=2\n", "locks/web.amd64.txt": "six==1\n",
        ".dockyard/render/compose.box.yaml": "API_TOKEN: s3cret\n", ".git/HEAD": "ref\n",
        "app.py": "print(1)\n", "sub/.env": "C=3\n", "sub/mod.py": "x = 1\n",
        # A user's .dockerignore cannot take any of them back.
        ".dockerignore": "!.env\n!.git\n!.dockyard\n!fleet.yaml\n",
    })
    target = tmp_path / "staged"
    assert stage_context(root, target, manifest=root / "fleet.yaml") == ["app.py", "sub/mod.py"]
    assert staged(target) == ["app.py", "sub/mod.py"]


def test_the_users_dockerignore_is_honoured(tmp_path: Path) -> None:
    root = tree(tmp_path / "svc", {"app.py": "", "data/big.bin": "x", "data/keep.txt": "",
                                   "key.pem": "-----BEGIN", "__pycache__/a.pyc": "",
                                   ".dockerignore": "# comment\ndata\n!data/keep.txt\n*.pem\n"})
    files = sent_files(root, ["**/__pycache__", *(root / ".dockerignore").read_text()
                              .split("\n")[1:-1]])
    assert files == ["app.py", "data/keep.txt"]
    target = tmp_path / "staged"
    stage_context(root, target, manifest=tmp_path / "fleet.yaml")
    assert staged(target) == ["app.py", "data/keep.txt"]


def test_a_service_without_build_sends_nothing(tmp_path: Path) -> None:
    target = tmp_path / "staged"
    tree(target, {"old.py": ""})  # left from a build when it had a context
    assert stage_context(None, target, manifest=tmp_path / "fleet.yaml") == []
    assert target.is_dir() and staged(target) == []


def test_restaging_follows_the_source(tmp_path: Path) -> None:
    root = tree(tmp_path / "svc", {"a.py": "1", "gone/b.py": "2", "c.py": "3"})
    target = tmp_path / "staged"
    stage_context(root, target, manifest=tmp_path / "fleet.yaml")
    linked = (target / "a.py").stat().st_ino
    (root / "gone" / "b.py").unlink()
    (root / "gone").rmdir()
    (root / "c.py").unlink()
    (root / "c.py").write_text("three")  # a new file under the old name
    stage_context(root, target, manifest=tmp_path / "fleet.yaml")
    assert staged(target) == ["a.py", "c.py"]
    assert (target / "c.py").read_text() == "three"
    assert (target / "a.py").stat().st_ino == linked  # unchanged: kept as it was
    assert not (target / "gone").exists()


def test_an_unrelated_file_beside_the_manifest_changes_no_context(tmp_path: Path) -> None:
    root = tree(tmp_path / "fleet", {"fleet.yaml": "", "svc/api/app.py": "1"})
    first = stage_context(root / "svc" / "api", tmp_path / "a", manifest=root / "fleet.yaml")
    (root / "NOTES.txt").write_text("remember the milk\n")
    second = stage_context(root / "svc" / "api", tmp_path / "a", manifest=root / "fleet.yaml")
    assert first == second == ["app.py"]
    assert stage_context(None, tmp_path / "b", manifest=root / "fleet.yaml") == []
