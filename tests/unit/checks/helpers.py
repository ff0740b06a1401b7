"""Shared by the check tests: manifests written inline, loaded, planned and checked.

Locations are counted by hand from the inline YAML: each manifest starts at line 1 with
`fleet: demo`, so with the three-line BASE `services:` is line 4 and the first service line 5.
"""

from __future__ import annotations

from dockyard.checks import Finding, Severity, check
from dockyard.checks.run import Report, check_report
from dockyard.manifest.load import loads
from dockyard.plan import plan

BASE = """\
fleet: demo
machines:
  local: {}
"""

TWO = """\
fleet: demo
machines:
  a: {}
  b: {}
"""

GPU = """\
fleet: demo
machines:
  box:
    gpus: [{model: NVIDIA GeForce RTX 4090, memory: 24GiB}, {memory: 12GiB}]
"""

HEALTH = "    health: {cmd: [/bin/true]}\n"


def report(text: str, environ: dict[str, str] | None = None) -> Report:
    fleet = loads(text, environ=environ or {})
    return check_report(fleet, plan(fleet))


def findings(text: str, code: str | None = None,
             environ: dict[str, str] | None = None) -> list[Finding]:
    fleet = loads(text, environ=environ or {})
    found = check(fleet, plan(fleet))
    return [f for f in found if code is None or f.code == code]


def codes(text: str, environ: dict[str, str] | None = None) -> list[str]:
    return [f.code for f in findings(text, environ=environ)]


def only(text: str, code: str, environ: dict[str, str] | None = None) -> Finding:
    found = findings(text, code, environ=environ)
    assert len(found) == 1, found
    return found[0]


def assert_finding(f: Finding, code: str, severity: Severity, where: str, service: str) -> None:
    assert f.code == code
    assert f.severity is severity
    assert str(f.where) == where
    assert f.message.strip() and f.fix.strip()
    assert service in f.message
    assert str(f).startswith(f"{where}: {severity} {code}: ")
    as_dict = f.as_dict()
    assert (as_dict["file"], as_dict["line"], as_dict["col"]) == (
        f.where.file, f.where.line, f.where.col)
    assert as_dict["severity"] == str(severity)
