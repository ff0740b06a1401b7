"""`dockyard check` run as a program on a billion laughs: refused at the loader's real limit
(a walk of a million values), exit 2, the file named, no traceback. The generated texts, and
the same bomb against a lowered limit, in-process: tests/unit/test_fuzz.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard.manifest.load import MAX_VALUES
from tests.unit.test_fuzz import _laughs

pytestmark = pytest.mark.process


def test_a_billion_laughs_is_refused_at_the_real_limit(tmp_path: Path) -> None:
    manifest = tmp_path / "fleet.yaml"
    manifest.write_text(_laughs(9, 9))  # 9^9 values once its aliases are expanded
    result = subprocess.run([sys.executable, "-m", "dockyard", "-f", str(manifest), "check"],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COLUMNS": "200"})
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == 2, output
    assert f"fleet.yaml: manifest expands to more than {MAX_VALUES} values" in output, output
