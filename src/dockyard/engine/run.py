"""One function runs every external command: logged, timed out, and failing with a typed error."""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import EngineError, EngineUnavailable

log = logging.getLogger("dockyard.engine")
INSTALL_HINT = "install and start one with scripts/install-engine.sh (Debian) or Docker's docs"


@dataclass(frozen=True)
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


def run(argv: Sequence[str], *, check: bool = True, timeout: float | None = 600,
        env: Mapping[str, str] | None = None, cwd: Path | None = None,
        input: str | None = None, capture: bool = True) -> Result:
    """Run `argv`; raise EngineError carrying the command, exit code and stderr on failure."""
    command = list(argv)
    log.debug("run: %s", shlex.join(command))
    if shutil.which(command[0]) is None:
        raise EngineUnavailable(f"`{command[0]}` is not installed", fix=INSTALL_HINT)
    try:
        proc = subprocess.run(
            command, check=False, timeout=timeout, cwd=cwd, input=input, text=True,
            capture_output=capture, env={**os.environ, **env} if env else None,
        )
    except subprocess.TimeoutExpired:
        raise EngineError(f"`{shlex.join(command[:4])} …` did not finish within {timeout:g} s",
                          command=command) from None
    result = Result(command, proc.returncode, proc.stdout or "", proc.stderr or "")
    if check and proc.returncode != 0:
        raise EngineError(
            f"`{shlex.join(command[:6])}{' …' if len(command) > 6 else ''}` failed "
            f"(exit {proc.returncode}): {_last_line(result.stderr or result.stdout)}",
            command=command, returncode=proc.returncode, stderr=result.stderr,
        )
    return result


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
