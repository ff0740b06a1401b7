"""Twelve real compose projects (../shared/realworld, read in place): `dockyard import` ->
load -> plan -> render, and `docker compose config` of the original and of the rendered file
for the default services and for each profile the original passes with. Every field the
original's config shows is kept, or named by import as not mapped (with a reason); the
rendered file passes wherever the original does; no import aborts or prints a traceback.

`python -m tests.process.test_realworld` prints the tally per project (fields kept / named /
lost), the numbers the commit messages quote."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dockyard.manifest.importer import ImportResult, import_compose, read_project
from dockyard.manifest.load import load
from dockyard.plan import plan
from dockyard.render.files import render_all
from tests.compose_compare import Tally, compose_available, compose_config, tally

pytestmark = pytest.mark.process

REPO = Path(__file__).resolve().parents[2]


def _corpus() -> Path:
    """$DOCKYARD_REALWORLD, else `shared/realworld` beside the checkout (CI clones the repo
    next to shared/); in a git worktree, beside the main checkout."""
    if os.environ.get("DOCKYARD_REALWORLD"):
        return Path(os.environ["DOCKYARD_REALWORLD"])
    beside = REPO.parent / "shared" / "realworld"
    dotgit = REPO / ".git"
    if not beside.is_dir() and dotgit.is_file():
        # A worktree's .git file: "gitdir: <main checkout>/.git/worktrees/<name>".
        gitdir = Path(dotgit.read_text().partition("gitdir:")[2].strip())
        main = next((p.parent for p in gitdir.parents if p.name == ".git"), None)
        if main is not None:
            return main.parent / "shared" / "realworld"
    return beside


REALWORLD = _corpus()


@dataclass(frozen=True)
class Case:
    """One import of a corpus project: its compose files, as SOURCE.txt lists them."""

    project: str
    variant: str  # "" for the `compose:` line, else the name of a `variant.<name>:` line
    files: tuple[str, ...]  # what is imported
    original: tuple[str, ...]  # what it is compared with: the `compose:` line's files

    @property
    def id(self) -> str:
        return f"{self.project}+{self.variant}" if self.variant else self.project

    @property
    def paths(self) -> list[Path]:
        return [REALWORLD / self.project / f for f in self.files]

    @property
    def original_paths(self) -> list[Path]:
        return [REALWORLD / self.project / f for f in self.original]


def cases() -> list[Case]:
    out = []
    for source in sorted(REALWORLD.glob("*/SOURCE.txt")):
        lines = [line.partition(":") for line in source.read_text().splitlines()]
        compose = next(tuple(value.split()) for key, _, value in lines if key == "compose")
        out.append(Case(source.parent.name, "", compose, compose))
        out += [Case(source.parent.name, key.removeprefix("variant."), tuple(value.split()),
                     compose)
                for key, _, value in lines if key.startswith("variant.")]
    return out


@dataclass
class Outcome:
    """One case's round trip: the tally over every run, and what went wrong."""

    case: Case
    tally: Tally = field(default_factory=Tally)
    runs: list[str] = field(default_factory=list)  # "default", profile names
    refused: list[str] = field(default_factory=list)  # runs the rendered file failed
    problems: list[str] = field(default_factory=list)
    default_named: int = 0


def round_trip(case: Case, tmp: Path) -> Outcome:
    """Import into `tmp` (the corpus is read-only), render, and compare every run."""
    outcome = Outcome(case)
    project = read_project(case.paths, environ={})
    result: ImportResult = import_compose(project, out_dir=tmp)
    manifest = tmp / "fleet.yaml"
    text = result.text()
    manifest.write_text(text)
    # What the `.env` note asks of the user: the project's variables beside fleet.yaml.
    environ = dict(project.environ)
    fleet = load(manifest, environ=environ)
    rendered = tmp / ".dockyard" / "render"
    for rel, content in render_all(fleet, plan(fleet), text).items():
        (rendered / rel).parent.mkdir(parents=True, exist_ok=True)
        (rendered / rel).write_text(content)
    ours = [rendered / "compose.local.yaml"]
    name = f"dyr{uuid.uuid4().hex[:6]}"
    _, known = _profiles(case)
    runs: list[tuple[str, list[str] | None, list[str]]] = [
        ("default", None, list(result.profiles))]
    runs += [(p, [p], [p]) for p in known]
    for label, theirs, mine in runs:
        original, error = compose_config(case.original_paths, name, profiles=theirs)
        if original is None:
            continue  # the original does not pass either: nothing to compare
        outcome.runs.append(label)
        # What `up` gives compose for the rendered file: the values of the secrets it names
        # (Fleet.compose_env), not the project's .env (COMPOSE_PROFILES stays out of it).
        copy, error = compose_config(ours, name, project_dir=tmp, profiles=mine,
                                     env=dict(fleet.compose_env))
        if copy is None:
            outcome.refused.append(f"{label}: {error.splitlines()[-1] if error else '?'}")
            continue
        counted = tally(original, copy, fleet, result.unmapped)
        counted.kept = [f"[{label}] {x}" for x in counted.kept]
        counted.lost = [f"[{label}] {x}" for x in counted.lost]
        counted.added = [f"[{label}] {x}" for x in counted.added]
        if label == "default":
            outcome.default_named = counted.named
        outcome.tally += counted
    return outcome


def _profiles(case: Case) -> tuple[str, list[str]]:
    args = ["docker", "compose"]
    for p in case.original_paths:
        args += ["-f", str(p)]
    result = subprocess.run([*args, "config", "--profiles"], capture_output=True, text=True,
                            timeout=60)
    return result.stderr, sorted(result.stdout.split())


@pytest.fixture(scope="module")
def corpus() -> Path:
    if not REALWORLD.is_dir() or not compose_available():
        missing = (f"the real-world corpus is not at {REALWORLD} (set DOCKYARD_REALWORLD)"
                   if not REALWORLD.is_dir() else "`docker compose` is not installed here")
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {missing}")
        pytest.skip(missing)
    return REALWORLD


# Without the corpus, one stand-in case, so that the `corpus` fixture says why (and fails
# under CI=true) instead of pytest skipping an empty parameter list.
CASES = cases() if REALWORLD.is_dir() else [Case("corpus-missing", "", (), ())]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_field_is_kept_or_named(corpus: Path, tmp_path: Path, case: Case) -> None:
    outcome = round_trip(case, tmp_path)
    assert outcome.runs, "the original passes `docker compose config` in no run"
    assert outcome.refused == [], "the rendered compose file fails where the original passes"
    assert outcome.tally.lost == [], "fields lost without a `not mapped:` line"
    assert outcome.tally.added == [], "fields only the rendered file has"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_imported_manifest_validates_against_the_schema(corpus: Path, tmp_path: Path,
                                                            case: Case) -> None:
    """What an editor checks with docs/fleet.schema.json agrees with what import writes."""
    import jsonschema
    from ruamel.yaml import YAML

    from dockyard.manifest.schema import json_schema

    result = import_compose(read_project(case.paths, environ={}), out_dir=tmp_path)
    written = YAML(typ="safe", pure=True).load(result.text())
    validator = jsonschema.Draft202012Validator(json_schema())
    assert [f"{'.'.join(map(str, e.path))}: {e.message}"[:200]
            for e in validator.iter_errors(written)] == []


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_dockyard_import_neither_aborts_nor_prints_a_traceback(corpus: Path, tmp_path: Path,
                                                              case: Case) -> None:
    out = tmp_path / "fleet.yaml"
    result = subprocess.run([sys.executable, "-m", "dockyard", "import", *map(str, case.paths),
                             "-o", str(out)], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path, env={**os.environ, "COLUMNS": "200"})
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == 0, result.stderr
    assert out.is_file()


def main() -> None:
    """Print each case's tally over all its runs, and over its default run alone: fields
    kept / named / lost (an import that aborts, or a rendered file compose refuses, loses
    every field of the runs it spoils), and fields only the rendered file has."""
    import tempfile

    print(f"{'case':22} {'runs':>4} {'kept':>6} {'named':>5} {'lost':>6} {'added':>5} "
          f"{'refused':>7} | default run: kept named lost")
    totals = [0] * 8
    for case in cases():
        with tempfile.TemporaryDirectory() as tmp:
            try:
                outcome = round_trip(case, Path(tmp))
            except Exception as exc:
                outcome = Outcome(case)
                outcome.problems.append(f"aborted: {type(exc).__name__}: {exc}"[:160])
            default = _default_tally(case, outcome, Path(tmp))
        t = outcome.tally
        lost = len(t.lost) + _spoiled(case, outcome)
        row = [len(outcome.runs), len(t.kept), t.named, lost, len(t.added),
               len(outcome.refused), *default]
        totals = [a + b for a, b in zip(totals, row, strict=True)]
        print(f"{case.id:22} {row[0]:>4} {row[1]:>6} {row[2]:>5} {row[3]:>6} {row[4]:>5} "
              f"{row[5]:>7} | {row[6]:>5} {row[7]:>4}  {_default_lost(case, outcome)}"
              + (f"  {outcome.problems[0]}" if outcome.problems else ""))
        if "-v" in sys.argv:
            for line in outcome.refused + t.lost + t.added:
                print(f"    {line}"[:300])
    print(f"{'total':22} {totals[0]:>4} {totals[1]:>6} {totals[2]:>5} {totals[3]:>6} "
          f"{totals[4]:>5} {totals[5]:>7} | {totals[6]:>5} {totals[7]:>4}")


def _original_fields(case: Case, profiles: list[str] | None) -> int:
    from tests.compose_compare import leaves

    original, _ = compose_config(case.original_paths, "dyrcount", profiles=profiles)
    if original is None:
        return 0
    return len(leaves({k: v for k, v in original.items() if not k.startswith("x-")}))


def _spoiled(case: Case, outcome: Outcome) -> int:
    """Fields of the runs an abort or a refused rendered file lost."""
    if outcome.problems:
        _, known = _profiles(case)
        return sum(_original_fields(case, p) for p in [None, *[[k] for k in known]])
    return sum(_original_fields(case, None if r.split(":")[0] == "default"
                                else [r.split(":")[0]]) for r in outcome.refused)


def _default_tally(case: Case, outcome: Outcome, tmp: Path) -> list[int]:
    kept = sum(1 for p in outcome.tally.kept if p.startswith("[default] "))
    return [kept, outcome.default_named]


def _default_lost(case: Case, outcome: Outcome) -> int:
    if outcome.problems or any(r.startswith("default:") for r in outcome.refused):
        return _original_fields(case, None)
    return sum(1 for p in outcome.tally.lost if p.startswith("[default] "))


if __name__ == "__main__":
    main()
