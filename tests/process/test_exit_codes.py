"""The error types whose condition is a socket nothing listens on: no Docker engine at
DOCKER_HOST (exit 3) and no registry at `registry:` (exit 1). The CLI runs in-process,
as for every other type in tests/unit/test_exit_codes.py, whose helpers these are."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.errors import DockyardError
from tests.unit.test_exit_codes import ON_A_SOCKET, Case, assert_exits_with_its_code

pytestmark = pytest.mark.process


@pytest.mark.parametrize(("kind", "case"), [
    pytest.param(kind, case, id=f"{kind.__name__}-{case.args[0]}")
    for kind, cases in ON_A_SOCKET.items() for case in cases])
def test_each_error_exits_with_its_code_in_one_line(
        kind: type[DockyardError], case: Case, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert_exits_with_its_code(kind, case, tmp_path, monkeypatch, capsys)
