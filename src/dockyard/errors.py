"""The few errors dockyard raises on purpose; the CLI prints each as one line and exits."""

from __future__ import annotations

from dataclasses import dataclass


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
    """Base class: a message for the user, where it happened, and how to fix it."""

    exit_code = 1

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


class ManifestError(DockyardError):
    """The manifest cannot be used as written."""

    exit_code = 2


class PlacementError(ManifestError):
    """No placement of the services on the machines and GPUs respects every budget and rule.

    `dockyard check` reports it as finding DY801 (exit 1); commands that need a plan stop."""


class EngineUnavailable(DockyardError):
    """No Docker engine answers."""

    exit_code = 3


class EngineError(DockyardError):
    """A Docker or compose command failed."""

    def __init__(
        self, message: str, *, command: list[str] | None = None, returncode: int = 0,
        stderr: str = "", fix: str = "",
    ) -> None:
        super().__init__(message, fix=fix)
        self.command = command or []
        self.returncode = returncode
        self.stderr = stderr


class BuildError(EngineError):
    """An image failed to build."""


class UnhealthyError(DockyardError):
    """A service did not become healthy before its deadline."""

    exit_code = 4
