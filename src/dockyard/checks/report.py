"""A check Report as text (one line per finding), JSON, or SARIF 2.1.0 for code scanners."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dockyard.checks.run import Report, codes
from dockyard.findings import Finding, Severity

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def summary(report: Report) -> str:
    parts = [f"{report.count(Severity.ERROR)} error(s)", f"{report.count(Severity.WARNING)} "
             f"warning(s)", f"{report.count(Severity.INFO)} info"]
    if report.suppressed:
        parts.append(f"{len(report.suppressed)} suppressed")
    return ", ".join(parts)


def render_text(report: Report, manifest: str = "fleet.yaml") -> str:
    """`file:line:col: severity CODE: message`, the fix indented below, then a summary."""
    lines: list[str] = []
    for f in report.findings:
        lines.append(f"{f.where}: {f.severity} {f.code}: {f.message}")
        lines.append(f"    fix: {f.fix}")
    if not report.findings:
        lines.append(f"{manifest}: no findings" + (f" ({len(report.suppressed)} suppressed)"
                                                   if report.suppressed else ""))
    else:
        lines.append(summary(report))
    return "\n".join(lines) + "\n"


def render_json(report: Report) -> str:
    return json.dumps({
        "findings": [f.as_dict() for f in report.findings],
        "suppressed": [s.as_dict() for s in report.suppressed],
        "summary": {"errors": report.count(Severity.ERROR),
                    "warnings": report.count(Severity.WARNING),
                    "info": report.count(Severity.INFO),
                    "suppressed": len(report.suppressed)},
    }, indent=2) + "\n"


def artifact_uri(manifest: Path, cwd: Path) -> str:
    """The manifest as SARIF wants it: relative to the checked-out tree, else a file URI."""
    path = manifest if manifest.is_absolute() else cwd / manifest
    try:
        return path.relative_to(cwd).as_posix()
    except ValueError:
        return path.as_uri()


def _result(f: Finding, rule_index: dict[str, int], suppression: str | None,
            uri: str) -> dict[str, Any]:
    region: dict[str, int] = {}
    if f.where.line > 0:
        region = {"startLine": f.where.line, "startColumn": max(f.where.col, 1)}
    location: dict[str, Any] = {"artifactLocation": {"uri": uri or f.where.file}}
    if region:
        location["region"] = region
    result: dict[str, Any] = {
        "ruleId": f.code,
        "ruleIndex": rule_index[f.code],
        "level": _LEVEL[f.severity],
        "message": {"text": f"{f.message} (fix: {f.fix})"},
        "locations": [{"physicalLocation": location}],
        # SARIF's `fixes` need replacement text; a fix in words goes in the properties.
        "properties": {"fix": f.fix, **({"service": f.service} if f.service else {})},
    }
    if suppression is not None:
        result["suppressions"] = [{"kind": "inSource", "justification": suppression}]
    return result


def render_sarif(report: Report, version: str = "", uri: str = "") -> str:
    """SARIF 2.1.0: every documented code as a rule; suppressed findings marked as such.

    `uri` names the manifest (see `artifact_uri`); default: the file name in each finding.
    """
    documented = codes()
    seen = [f.code for f in report.findings] + [s.finding.code for s in report.suppressed]
    ids = sorted(set(documented) | set(seen))
    rules: list[dict[str, Any]] = []
    for code in ids:
        doc = documented.get(code)
        example = next((f for f in report.findings if f.code == code), None) or next(
            (s.finding for s in report.suppressed if s.finding.code == code), None)
        title = doc.title if doc else (example.message if example else code)
        fix = doc.fix if doc else (example.fix if example else "")
        severity = doc.severity if doc else (example.severity if example else Severity.WARNING)
        rules.append({
            "id": code,
            "shortDescription": {"text": title},
            "help": {"text": f"fix: {fix}"},
            "defaultConfiguration": {"level": _LEVEL[severity]},
        })
    index = {code: i for i, code in enumerate(ids)}
    results = [_result(f, index, None, uri) for f in report.findings]
    results += [_result(s.finding, index, s.reason, uri) for s in report.suppressed]
    driver: dict[str, Any] = {"name": "dockyard", "rules": rules}
    if version:
        driver["version"] = version
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0",
                       "runs": [{"tool": {"driver": driver}, "results": results}]},
                      indent=2) + "\n"
