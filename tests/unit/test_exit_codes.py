"""Each error type exits with its documented code and says so in one `error:` line, no
traceback; the exit-code table in code is the one in README.md.

The CLI runs in-process (`main()` with sys.argv set) on real inputs: a manifest that breaks,
a PATH without the program. None of them reaches an engine. The two that need a socket (no
engine, no registry listening) are tests/process/test_exit_codes.py, on the same helpers."""

from __future__ import annotations

import inspect
import re
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from dockyard import errors
from dockyard.cli import main
from dockyard.engine.run import missing_program
from dockyard.errors import EXIT_CODES, DockyardError, ExitCode

README = Path(__file__).parents[2] / "README.md"

FLEET = """\
fleet: codes
machines:
  local: {cpus: 2, memory: 4GiB}
services:
  api:
    image: ghcr.io/x/api:1.0
    ports: {http: 18080}
    health: {cmd: [/bin/true]}
"""
# A second service on the same host port: finding DY101, an error.
CLASH = FLEET + """\
  worker:
    image: ghcr.io/x/worker:1.0
    ports: {http: 18080}
    health: {cmd: [/bin/true]}
"""
TYPO = FLEET.replace("    ports:", "    prots:")
UNSET = FLEET.replace("ghcr.io/x/api:1.0", "ghcr.io/x/api:${API_TAG:?set API_TAG}")
# `up` looks on the images for what health probes run (an engine call): no probes here.
CLASH_UNPROBED = CLASH.replace("    health: {cmd: [/bin/true]}\n", "")
# 20 + 20 GiB fit no GPU together, and only one GPU has room for either.
NO_ROOM = """\
fleet: codes
machines:
  a: {gpus: [{model: NVIDIA GeForce RTX 4090, memory: 24GiB}]}
  b: {gpus: [{model: NVIDIA GeForce RTX 3060, memory: 12GiB}]}
services:
  llm: {image: "ghcr.io/x/llm:1.0", gpu: {memory: 20GiB}, health: {cmd: [/bin/true]}}
  coder: {image: "ghcr.io/x/coder:1.0", gpu: {memory: 20GiB}, health: {cmd: [/bin/true]}}
"""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Case:
    """A command line that really meets the condition; `said`: a fragment of its error."""

    manifest: str
    args: tuple[str, ...]
    said: str
    env: Callable[[Path], dict[str, str]] = lambda tmp: {}


CASES: dict[type[DockyardError], list[Case]] = {
    errors.FindingsError: [
        Case(CLASH, ("build",), "(nothing was started: fix these, then run again)"),
        Case(CLASH_UNPROBED, ("up",), "(nothing was started: fix these, then run again)"),
    ],
    errors.ManifestError: [Case(TYPO, ("check",), "did you mean `ports`"),
                           Case(TYPO, ("up",), "did you mean `ports`")],
    errors.InterpolationError: [Case(UNSET, ("check",), "set API_TAG")],
    # The manifest is a file: a folder under it cannot be made. Said before any engine call.
    errors.BackupError: [Case(FLEET + "backup: {target: fleet.yaml/runs}\n", ("backup",),
                              "cannot be written (Not a directory); nothing was backed up")],
    errors.PlacementError: [Case(NO_ROOM, ("plan",), "cannot be placed")],
    errors.MissingProgram: [
        Case(FLEET, ("down",), "`docker` is not installed: it comes with Debian's docker.io",
             env=lambda tmp: {"PATH": str(tmp / "empty")})],
}
# A connect where nothing listens: not in the unit tier (tests/unit/conftest.py refuses it).
ON_A_SOCKET: dict[type[DockyardError], list[Case]] = {
    errors.EngineUnavailable: [Case(FLEET, ("ps",), "no Docker engine answers at unix://")],
    errors.RegistryUnavailable: [
        Case(FLEET.replace("fleet: codes\n", f"fleet: codes\nregistry: 127.0.0.1:"
                                             f"{_closed_port()}\n"),
             ("push",), "does not answer")],
}
# Raised where a real condition needs an engine, or never reaches the CLI on its own.
ELSEWHERE = {
    errors.DockyardError: "the base: every case here is one (the import bug path and an "
                          "unknown CPU architecture cannot be arranged)",
    errors.NoWheel: "tests/process/test_lock.py: lock_all makes it finding DY304 (exit 1)",
    errors.EngineError: "tests/engine/test_registry.py (a push of images not built)",
    errors.BuildError: "tests/engine/test_families.py (a Dockerfile whose RUN fails)",
    errors.UnhealthyError: "tests/engine/test_failures.py (a service that never gets healthy)",
    errors.StaleImages: "tests/engine/test_stale.py (`up --no-build` after an edited command)",
    errors.Interrupted: "tests/engine/test_interrupts.py (SIGINT during up's health wait)",
    errors.MachineUnreachable: "tests/machines/test_fleet.py (a machine's engine stopped, a "
                               "wrong key, an unknown host key: exit 3)",
    errors.UpgradeRolledBack: "tests/engine/test_upgrade.py (a new image that never gets "
                              "healthy: the set back on its previous images)",
    errors.RollbackFailed: "tests/engine/test_upgrade.py (the previous image removed during "
                           "the upgrade)",
    errors.UpgradePending: "tests/engine/test_upgrade.py (a new upgrade after a kill -9)",
}


def _error_types() -> list[type[DockyardError]]:
    return [c for _, c in inspect.getmembers(errors, inspect.isclass)
            if issubclass(c, DockyardError) and c.__module__ == errors.__name__]


def _run(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    (tmp_path / "empty").mkdir(exist_ok=True)
    manifest = tmp_path / "fleet.yaml"
    manifest.write_text(case.manifest)
    # Nothing is started: a socket no engine listens on would turn any engine call into 3.
    env = {"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock",
           "DOCKYARD_STATE": str(tmp_path / "state"), "COLUMNS": "1000", **case.env(tmp_path)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("API_TAG", raising=False)
    monkeypatch.setattr(sys, "argv", ["dockyard", "-f", str(manifest), *case.args])
    with pytest.raises(SystemExit) as exited:
        main()
    return int(exited.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize(("kind", "case"), [
    pytest.param(kind, case, id=f"{kind.__name__}-{case.args[0]}")
    for kind, cases in CASES.items() for case in cases])
def test_each_error_exits_with_its_code_in_one_line(
        kind: type[DockyardError], case: Case, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert_exits_with_its_code(kind, case, tmp_path, monkeypatch, capsys)


def assert_exits_with_its_code(kind: type[DockyardError], case: Case, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(case, tmp_path, monkeypatch, capsys)
    assert code == kind.exit_code, err
    assert "Traceback" not in err and "internal error" not in err
    said = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(said) == 1, err
    if kind is errors.FindingsError:  # one line per finding under it, then what was not done
        assert "DY101" in err and err.rstrip().endswith(case.said), err
    else:
        assert case.said in said[0], err
        assert err.rstrip().splitlines()[-1] == said[0], err


def test_a_usage_error_exits_2(monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["dockyard", "no-such-command"])
    with pytest.raises(SystemExit) as exited:
        main()
    err = capsys.readouterr().err
    assert exited.value.code == ExitCode.UNUSABLE == 2
    assert "No such command" in err and "Traceback" not in err


def test_every_error_type_has_a_case_a_docstring_and_a_code_in_the_table() -> None:
    types = _error_types()
    assert set(types) == set(CASES) | set(ON_A_SOCKET) | set(ELSEWHERE)
    for kind in types:
        assert int(kind.exit_code) in EXIT_CODES, kind
        assert kind.__doc__ and f"exit {int(kind.exit_code)}" in kind.__doc__.lower(), kind
    used = {int(kind.exit_code) for kind in types}
    # 0, usage (2 also), internal and interrupted are the CLI's own; every other code is a type's.
    assert used | {0, 2, 70, 130} == set(EXIT_CODES)


def test_the_readme_table_is_the_code_table() -> None:
    rows = re.findall(r"^\| (\d+) \| (.+?) \|$", README.read_text(encoding="utf-8"), re.M)
    assert {int(code): meaning for code, meaning in rows} == EXIT_CODES
    assert [int(code) for code, _ in rows] == sorted(EXIT_CODES)


@pytest.mark.parametrize(("argv", "stderr", "program"), [
    # recorded from Docker 20.10 and 28 CLIs without the compose plugin
    (["docker", "compose", "up"], "docker: 'compose' is not a docker command.\n"
                                  "See 'docker --help'\n", "docker compose"),
    (["docker", "compose", "-p", "x", "down"], "docker: unknown command: docker compose\n\n"
                                               "Run 'docker --help' for more information\n",
     "docker compose"),
    (["/usr/bin/mmdebstrap", "--architectures=arm64", "bookworm", "out.tar"],
     "I: chroot architecture arm64 is different from this system architecture amd64\n"
     "E: install arch-test for foreign architecture support\n", "arch-test"),
    # a build's own output that quotes the words is not a missing plugin
    (["docker", "compose", "build"], "#5 0.3 docker: 'buildx' is not a docker command.\n", ""),
    (["docker", "push", "x"], "denied: requested access to the resource is denied\n", ""),
])
def test_what_a_failed_program_says_is_missing(argv: list[str], stderr: str,
                                               program: str) -> None:
    assert missing_program(argv, stderr) == program
