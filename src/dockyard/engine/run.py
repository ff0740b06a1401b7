"""One function runs every external command: logged, timed out, and failing with a typed error."""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from dockyard.errors import EngineError, MissingProgram

log = logging.getLogger("dockyard.engine")
INSTALL_HINT = "install and start one with scripts/install-engine.sh (Debian) or Docker's docs"
# What a program says when something it runs is not installed: a Docker CLI plugin (20.10:
# "docker: 'compose' is not a docker command."; 28: "docker: unknown command: docker
# compose"), or mmdebstrap's helper for another architecture.
_PLUGIN = re.compile(r"'([\w.-]+)' is not a docker command|unknown command: docker ([\w.-]+)")
_MMDEBSTRAP_NEEDS = re.compile(r"install (arch-test) for foreign architecture support")


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
        raise MissingProgram(Path(command[0]).name)
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
        missing = missing_program(command, result.stderr)
        if missing:
            raise MissingProgram(missing)
        raise EngineError(
            f"`{shlex.join(command[:6])}{' …' if len(command) > 6 else ''}` failed "
            f"(exit {proc.returncode}): {_last_line(result.stderr or result.stdout)}",
            command=command, returncode=proc.returncode, stderr=result.stderr,
        )
    return result


def missing_program(argv: Sequence[str], stderr: str) -> str:
    """The program that a failed `argv` says is not installed ("docker compose" for a
    missing CLI plugin), or ""."""
    name = Path(argv[0]).name if argv else ""
    if name == "docker" and len(argv) > 1:
        plugin = _PLUGIN.search(stderr)
        if plugin and argv[1] in plugin.groups():  # not a build's output quoting the words
            return f"docker {argv[1]}"
    elif name == "mmdebstrap":
        needed = _MMDEBSTRAP_NEEDS.search(stderr)
        if needed:
            return needed[1]
    return ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def feed(argv: Sequence[str], write: Callable[[IO[bytes]], None], *,
         timeout: float | None = 3600) -> Result:
    """Run `argv` with `write(stdin)` streaming its input (a `docker load` fed an archive
    without the archive touching the disk first); as run(): logged, EngineError on failure."""
    command = list(argv)
    log.debug("feed: %s", shlex.join(command))
    if shutil.which(command[0]) is None:
        raise MissingProgram(Path(command[0]).name)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=out, stderr=err)
        assert proc.stdin is not None
        broken = False
        try:
            write(proc.stdin)
        except BrokenPipeError:
            broken = True  # it stopped reading: its exit status and stderr say why
        finally:
            try:
                proc.stdin.close()
            except BrokenPipeError:
                broken = True
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise EngineError(f"`{shlex.join(command[:4])} …` did not finish within "
                              f"{timeout:g} s", command=command) from None
        out.seek(0)
        err.seek(0)
        result = Result(command, code, out.read().decode(errors="replace"),
                        err.read().decode(errors="replace"))
    if code != 0 or broken:
        raise EngineError(
            f"`{shlex.join(command[:6])}` failed (exit {code}): "
            f"{_last_line(result.stderr or result.stdout)}",
            command=command, returncode=code, stderr=result.stderr)
    return result


def pipe(source: Sequence[str], sink: Sequence[str],
         relay: Callable[[IO[bytes], IO[bytes]], None], *,
         timeout: float | None = 3600) -> Result:
    """`source | sink`, the bytes passing through `relay(source's stdout, sink's stdin)` in
    this process (so they can be counted); EngineError naming whichever of the two failed."""
    command = list(source)
    log.debug("pipe: %s | %s", shlex.join(command), shlex.join(sink))
    if shutil.which(command[0]) is None:
        raise MissingProgram(Path(command[0]).name)
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err)
        assert proc.stdout is not None
        out = proc.stdout
        try:
            result = feed(sink, lambda stdin: relay(out, stdin), timeout=timeout)
        finally:
            out.close()  # a sink that failed leaves the source a broken pipe: it ends
            try:
                code = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if code != 0:
        raise EngineError(f"`{shlex.join(command[:6])}` failed (exit {code}): "
                          f"{_last_line(stderr)}", command=command, returncode=code,
                          stderr=stderr)
    return result


def pid_alive(pid: int) -> bool:
    """Whether process `pid` still runs (one of another user's counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
