"""Compose-style variable interpolation: ${VAR}, ${VAR:-default}, ${VAR-default},
${VAR:?message}, ${VAR?message}, ${VAR:+alt}, $VAR, and $$ for a literal dollar."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from dockyard.errors import InterpolationError

# A braced variable may hold one nested level (${A:-${B}}); a `${` that does not close is an error.
_TOKEN = re.compile(r"\$(?:(\$)|\{((?:[^{}]|\{[^{}]*\})*)\}|([A-Za-z_][A-Za-z0-9_]*)|(\{))")
_BRACED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?$", re.DOTALL)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Replace every variable in `text`; raise InterpolationError for a required one unset."""

    def replace(match: re.Match[str]) -> str:
        escaped, braced, bare, unclosed = match.groups()
        if escaped:
            return "$"
        if bare:
            return env.get(bare, "")
        if unclosed:
            raise InterpolationError(
                "`${` is not closed (or nests more than one level): write ${NAME}, "
                "or $$ for a literal $"
            )
        parsed = _BRACED.match(braced)
        if not parsed:
            raise InterpolationError(
                f"invalid variable ${{{braced}}}: use ${{NAME}} or ${{NAME:-default}}"
            )
        name, op, arg = parsed.groups()
        value = env.get(name)
        empty = value is None or (op is not None and op.startswith(":") and value == "")
        if op is None:
            return value or ""
        if op.endswith("-"):
            return interpolate(arg, env) if empty else value or ""
        if op.endswith("?"):
            if empty:
                raise InterpolationError(
                    f"required variable {name} is not set"
                    + (f": {arg}" if arg else "")
                    + f" (set {name} in the environment or in .env beside the manifest)"
                )
            return value or ""
        # ":+" / "+": the alternative when set
        return "" if empty else interpolate(arg, env)

    return _TOKEN.sub(replace, text)


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file; comments, blank lines and `export ` prefixes allowed."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values
