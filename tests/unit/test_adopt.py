"""`dockyard adopt`: golden rewrites of realistic Dockerfiles onto families, and the pieces.

Each folder under tests/fixtures/adopt/ is a case: `Dockerfile` (the service's own), `family`
(the family's name in tests/fixtures/adopt/fleet.yaml), any requirement files it reads, and
`expected.Dockerfile`. After an intended change, rewrite and review:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_adopt.py && git diff tests/fixtures/adopt
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from dockyard.manifest.load import load
from dockyard.plan.plan import MOVING_TAG, image_name
from dockyard.render.adopt import (
    AdoptResult,
    adopt,
    family_facts,
    parse,
    parse_requirement,
    split_commands,
    wanted_files,
)

ROOT = Path(__file__).parents[1] / "fixtures" / "adopt"
CASES = sorted(p.name for p in ROOT.iterdir() if (p / "Dockerfile").is_file())
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
FLEET = load(ROOT / "fleet.yaml")


def run_case(case: str) -> AdoptResult:
    folder = ROOT / case
    family = (folder / "family").read_text().strip()
    facts = family_facts(FLEET.spec, family,
                         f"{image_name(FLEET, family, 'family')}:{MOVING_TAG}")
    text = (folder / "Dockerfile").read_text()
    files = {n: (folder / n).read_text() for n in wanted_files(text) if (folder / n).is_file()}
    return adopt(text, facts, source=f"{case}/Dockerfile", files=files)


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    got = run_case(case).text
    expected_path = ROOT / case / "expected.Dockerfile"
    if UPDATE:
        expected_path.write_text(got)
    expected = expected_path.read_text()
    diff = "".join(difflib.unified_diff(expected.splitlines(True), got.splitlines(True),
                                        "expected", "got"))
    assert got == expected, diff


def body(result: AdoptResult) -> list[str]:
    """The Dockerfile lines without the report comments at the top."""
    return [ln for ln in result.text.splitlines() if not ln.startswith("#")]


def test_cases_exist() -> None:
    assert len(CASES) >= 5


def test_single_stage_onto_family() -> None:
    r = run_case("flask-root")
    lines = body(r)
    assert lines[:2] == ["ARG BASE_IMAGE=registry.local:5000/shop/family-web:current",
                         "FROM ${BASE_IMAGE}"]
    # python3-pip and curl come with the family; libpq5 does not.
    assert "    && apt-get install -y --no-install-recommends libpq5 \\" in lines
    # psycopg is not in the family, so the requirements file is still installed.
    assert "RUN pip install --no-cache-dir -r requirements.txt" in lines
    assert any("kept psycopg[binary]==3.2.3" in c for c in r.changed)
    assert lines[-3:] == ["USER 10001:10001", "EXPOSE 8000",
                          'CMD ["python", "-m", "uvicorn", "app:app", "--host", "0.0.0.0", '
                          '"--port", "8000"]']
    assert lines.index("USER 0:0") < lines.index(next(ln for ln in lines if "apt-get" in ln))
    assert r.unconverted == []


def test_builder_stage_that_only_installs_family_packages_is_dropped() -> None:
    r = run_case("multistage-venv")
    text = "\n".join(body(r))
    assert "AS builder" not in text and "--from=builder" not in text
    assert "useradd" not in text and "groupadd" not in text and "appuser" not in text
    assert "COPY --chown=10001:10001 . /app" in text
    assert "chown -R 10001:10001 /app/data" in text
    assert text.count("FROM ") == 1
    assert body(r)[-1] == ('ENTRYPOINT ["/usr/bin/tini", "--", "uvicorn", "app:app", "--host", '
                           '"0.0.0.0", "--port", "8080"]')
    assert r.unconverted == []


def test_cuda_torch_service_reports_what_it_cannot_convert() -> None:
    r = run_case("cuda-torch")
    text = "\n".join(body(r))
    assert "apt-get install -y git ffmpeg" in text  # python3, pip, libgomp1 come with gpu
    assert "torch==2.1.0" not in text and "numpy" not in text and "transformers" not in text
    notes = "\n".join(r.unconverted)
    assert "torch==2.1.0 differs from family gpu's torch==2.5.1" in notes
    assert "torchaudio is built against one torch release" in notes
    assert "git+https://github.com/openai/whisper.git` installs from a URL" in notes
    assert "line 8: ADD from a URL" in notes
    assert "built on nvidia/cuda:12.1.0-runtime-ubuntu22.04" in notes
    # The report is also in the file, as comments.
    assert all(f"#   {n}" in r.text for n in r.unconverted)


def test_foreign_build_stage_is_kept_and_reported() -> None:
    r = run_case("node-ui")
    lines = body(r)
    assert "FROM node:20-bookworm AS ui" in lines and "RUN npm ci" in lines
    assert "FROM ${BASE_IMAGE} AS runtime" in lines
    assert "COPY --from=ui --chown=10001:10001 /ui/dist /srv/static" in lines
    assert "RUN pip install --no-cache-dir jinja2==3.1.4" in lines
    assert [n.split(":")[0] for n in r.unconverted] == ["line 1"]
    assert "stage ui (FROM node:20-bookworm) kept as it is" in r.unconverted[0]


def test_alpine_heredoc_and_syntax_line() -> None:
    r = run_case("alpine-heredoc")
    lines = body(r)
    assert not any(ln.startswith("# syntax") for ln in r.text.splitlines())
    assert "RUN apk add --no-cache curl tini" in lines  # kept, and reported
    assert "USER worker" not in lines and lines[-2:] == ["USER 10001:10001",
                                                         'CMD ["python", "/srv/worker.py"]']
    notes = "\n".join(r.unconverted)
    assert "apk add" in notes and "Alpine" in notes and "heredoc" in notes


def test_parse_joins_continuations_and_keeps_comments() -> None:
    directives, items = parse("# syntax=docker/dockerfile:1\n# note\nFROM a\nRUN x \\\n"
                              "  # inside\n  && y\n")
    assert directives == ["# syntax=docker/dockerfile:1"]
    assert items[0] == "# note"
    run = items[2]
    assert not isinstance(run, str)
    assert (run.line, run.keyword, split_commands(run.args)) == (4, "RUN", [("x", "&&"),
                                                                           ("y", "")])


def test_split_commands_respects_quotes() -> None:
    assert split_commands("echo 'a && b'; make && echo \"x;y\"") == [
        ("echo 'a && b'", ";"), ("make", "&&"), ('echo "x;y"', "")]


def test_parse_requirement() -> None:
    assert parse_requirement("Flask_Login[extra]==0.6.3 ; python_version>'3'") == \
        ("flask-login", "==0.6.3")
    assert parse_requirement("numpy") == ("numpy", "")
    assert parse_requirement("./pkg") is None and parse_requirement("git+https://x/y") is None
    assert parse_requirement("dist/a-1.0-py3-none-any.whl") is None


def test_wanted_files() -> None:
    assert wanted_files("RUN pip install -r requirements.txt --requirement=dev.txt \\\n"
                        " && pip install -r requirements.txt") == ["requirements.txt", "dev.txt"]


def test_family_facts_walk_the_chain() -> None:
    facts = family_facts(FLEET.spec, "gpu", "img")
    assert facts.base == "python:3.11-slim" and facts.venv and facts.python
    assert {"curl", "libgomp1", "tini"} <= facts.apt
    assert facts.pins["torch"] == "torch==2.5.1" and facts.pins["fastapi"] == "fastapi==0.115.12"
    base = family_facts(FLEET.spec, "base", "img")
    assert not base.venv and base.python and "fastapi" not in base.pins


def test_not_a_dockerfile() -> None:
    r = adopt("RUN echo\n", family_facts(FLEET.spec, "web", "img"))
    assert r.unconverted == ["Dockerfile: no FROM line: not a Dockerfile"]


def test_cli_writes_the_file_and_reports(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dockyard.cli import app

    out = tmp_path / "Dockerfile.adopted"
    result = CliRunner().invoke(app, ["adopt", str(ROOT / "cuda-torch" / "Dockerfile"),
                                      "--family", "gpu", "-f", str(ROOT / "fleet.yaml"),
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    expected = (ROOT / "cuda-torch" / "expected.Dockerfile").read_text()
    assert out.read_text().splitlines()[1:] == expected.splitlines()[1:]
    assert "NOT converted: line 6: torch==2.1.0 differs" in result.output


def test_cli_unknown_family_is_a_located_error() -> None:
    from typer.testing import CliRunner

    from dockyard.cli import app
    from dockyard.errors import ManifestError

    result = CliRunner().invoke(app, ["adopt", str(ROOT / "node-ui" / "Dockerfile"),
                                      "--family", "wbe", "-f", str(ROOT / "fleet.yaml")])
    assert isinstance(result.exception, ManifestError)
    assert "no family 'wbe'" in str(result.exception) and "did you mean 'web'" in str(
        result.exception) and "fleet.yaml:6:1" in str(result.exception)


def test_blueprint_stage_chain_keeps_root_for_run_steps() -> None:
    # The blueprint's ModelOpsCoordinator: base -> builder, base -> runtime.
    r = run_case("blueprint-moc")
    lines = body(r)
    assert lines[:2] == ["ARG BASE_IMAGE=registry.local:5000/shop/family-gpu:current",
                         "FROM ${BASE_IMAGE} AS base"]
    # The family ends as 10001: the builder's pip and the runtime's chmod need root again.
    assert lines[lines.index("FROM base AS builder") + 1] == "USER 0:0"
    chmod = lines.index("RUN chmod +x /entrypoint.sh && chmod +x /usr/bin/tini")
    assert lines[chmod - 1] == "USER 0:0" and lines[chmod + 1] == "USER 10001:10001"
    assert "RUN --mount=type=cache,target=/root/.cache/pip pip install" in "\n".join(lines)
    notes = "\n".join(r.unconverted)
    assert "stage builder (FROM base) kept as it is (pip -r requirements.txt: file not found" \
        in notes
    assert "family gpu's Python packages live in the venv /opt/venv" in notes


def test_run_flags_survive_a_rewrite() -> None:
    facts = family_facts(FLEET.spec, "web", "img")
    r = adopt("FROM python:3.11-slim\nRUN --mount=type=cache,target=/root/.cache/pip "
              "pip install fastapi==0.115.12 jinja2==3.1.4\n", facts)
    assert "RUN --mount=type=cache,target=/root/.cache/pip \\\n    pip install jinja2==3.1.4" \
        in r.text
