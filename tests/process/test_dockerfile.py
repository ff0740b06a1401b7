"""Rendered Dockerfiles (the golden ones) pass hadolint, run as a program, with no finding at
all. The rest of what a rendered Dockerfile must hold: tests/unit/test_dockerfile.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_dockerfile import DOCKERFILES, GOLDEN

pytestmark = pytest.mark.process
HADOLINT = Path(sys.executable).parent / "hadolint"


@pytest.mark.skipif(not HADOLINT.is_file(), reason="hadolint is not installed in this venv")
@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(GOLDEN)))
def test_hadolint_passes_with_no_finding_at_all(path: Path) -> None:
    result = subprocess.run([str(HADOLINT), "--no-color", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "", result.stdout  # not even an info or a style note
