"""The fleets of ../shared/seeds, transcribed in examples/: `dockyard check` finds their real
defects, and each fixed version checks clean.

Each examples/<name>/ holds `fleet.yaml` (the seed as written, defects included), its
`fleet.fixed.yaml`, a README.md whose defect table names the code that reports each defect,
and (where the seed uses variables) `.env.example`, loaded as the environment. The test runs
the real CLI in-process (`dockyard -f ... check --format text`) and compares its output with
tests/golden/examples/<name>.txt. After an intended change to the rules or the examples:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_examples.py
    git diff tests/golden/examples/

and check that every defect in each README still shows up.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dockyard.cli import app
from dockyard.errors import ManifestError
from dockyard.manifest.interpolate import read_dotenv
from dockyard.manifest.load import loads

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GOLDEN = ROOT / "tests" / "golden" / "examples"
NAMES = sorted(p.name for p in EXAMPLES.iterdir() if (p / "fleet.yaml").is_file())
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def run_check(manifest: Path) -> tuple[int, str]:
    env = read_dotenv(manifest.parent / ".env.example")
    # Only the example's own variables: nothing from the shell running the tests leaks in.
    clean = {k: None for k in os.environ if k not in ("PATH", "HOME", "LANG", "TERM")}
    result = CliRunner().invoke(app, ["-f", str(manifest), "check", "--format", "text"],
                                env={**clean, **env})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_the_four_seed_fleets_are_here() -> None:
    assert NAMES == ["agents-77", "blueprint-4090-3060", "her-os", "spark-control"]


@pytest.mark.parametrize("name", NAMES)
def test_check_output_is_golden(name: str) -> None:
    code, output = run_check(EXAMPLES / name / "fleet.yaml")
    golden = GOLDEN / f"{name}.txt"
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        golden.write_text(output, encoding="utf-8")
    expected = golden.read_text(encoding="utf-8")
    if output != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), output.splitlines(True),
                                            f"golden/{name}.txt", "dockyard check"))
        pytest.fail(f"check output of examples/{name} changed:\n{diff}")
    assert code == 1, "the transcribed seed has error-level defects"
    assert "Traceback" not in output


def readme_codes(name: str) -> tuple[set[str], int]:
    """Codes the README's defect table says report a defect, and its "not yet" rows."""
    codes: set[str] = set()
    undetected = 0
    for line in (EXAMPLES / name / "README.md").read_text(encoding="utf-8").splitlines():
        if (not line.startswith("|") or set(line) <= set("|-: ")
                or line.lower().startswith("| defect")):
            continue
        verdict = line.split("|")[-2]
        if "not yet detected" in verdict or "loader" in verdict:
            undetected += 1
            continue
        codes.update(re.findall(r"\bDY\d{3}\b", verdict))
    return codes, undetected


@pytest.mark.parametrize("name", NAMES)
def test_every_defect_the_readme_lists_is_reported(name: str) -> None:
    codes, _ = readme_codes(name)
    assert codes, f"examples/{name}/README.md lists no defects"
    _, output = run_check(EXAMPLES / name / "fleet.yaml")
    reported = set(re.findall(r"\b(DY\d{3}):", output))
    assert codes <= reported, f"listed but not reported: {sorted(codes - reported)}"


def test_blueprint_table_family_the_loader_refuses() -> None:
    """The table's `family-cpu-pydeps` (not defined in section B) stops the manifest at load:
    exit 2 with a located message, which is why the example maps it to base-cpu-pydeps."""
    text = (EXAMPLES / "blueprint-4090-3060" / "fleet.yaml").read_text(encoding="utf-8")
    marked = "    family: base-cpu-pydeps  # table says family-cpu-pydeps"
    assert text.count(marked) == 2
    raw = text.replace(marked, "    family: family-cpu-pydeps  # as the table says")
    with pytest.raises(ManifestError) as caught:
        loads(raw, environ={})
    assert "unknown family `family-cpu-pydeps`" in str(caught.value)
    assert str(caught.value).count("fleet.yaml:") == 2


@pytest.mark.parametrize("name", NAMES)
def test_fixed_version_has_no_errors(name: str) -> None:
    code, output = run_check(EXAMPLES / name / "fleet.fixed.yaml")
    assert " error DY" not in output, output
    assert code == 0, output
    assert re.search(r"\b0 error\(s\)", output) or "no findings" in output, output
