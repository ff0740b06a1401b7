"""A Finding: a stable code, how bad it is, where, what, and the fix."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from dockyard.errors import Location


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    where: Location
    message: str
    fix: str
    # The service the finding is about: its `suppress:` can accept it. "" = fleet-wide only.
    service: str = ""

    def __str__(self) -> str:
        return f"{self.where}: {self.severity} {self.code}: {self.message} (fix: {self.fix})"

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": str(self.severity), "file": self.where.file,
                "line": self.where.line, "col": self.where.col, "message": self.message,
                "fix": self.fix, "service": self.service}


@dataclass(frozen=True)
class Code:
    """What a code means, for docs/checks.md and SARIF's `tool.driver.rules`."""

    code: str
    severity: Severity
    title: str
    fix: str
