"""The unit tier is pure: no test here starts a program or opens a connection.

Every test runs with process creation (subprocess, os.system, os.fork, os.exec*, spawn) and
socket connects refused. The refusal is an OSError, as a missing program would be; code
under test may catch that, so each attempt is also recorded, and the test fails at teardown
naming what it tried. A test that needs a program, a socket or a fresh interpreter belongs
in tests/process/ (the same file name there, marked `process`).
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

_SPAWNS = ("system", "popen", "fork", "forkpty", "posix_spawn", "posix_spawnp", "spawnv",
           "spawnve", "spawnvp", "spawnvpe", "execv", "execve", "execvp", "execvpe")


@pytest.fixture(autouse=True)
def _pure(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    attempts: list[str] = []

    def refuse(what: str) -> Callable[..., Any]:
        def refused(*args: Any, **kwargs: Any) -> Any:
            attempts.append(what)
            raise PermissionError(f"a unit test may not use {what}: move it to tests/process/")

        return refused

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse("a subprocess"))
    for name in _SPAWNS:
        if hasattr(os, name):
            monkeypatch.setattr(os, name, refuse(f"os.{name}"))
    monkeypatch.setattr(socket.socket, "connect", refuse("a socket connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("a socket connect"))
    yield
    if attempts:
        pytest.fail(f"this unit test tried {', '.join(sorted(set(attempts)))}; unit tests "
                    "are pure: move it to tests/process/ (marked `process`)", pytrace=False)
