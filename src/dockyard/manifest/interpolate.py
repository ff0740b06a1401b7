"""Compose-style variable interpolation: ${VAR}, ${VAR:-default}, ${VAR-default},
${VAR:?message}, ${VAR?message}, ${VAR:+alt}, $VAR, and $$ for a literal dollar."""

from __future__ import annotations

import re
from collections import ChainMap
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from dockyard.errors import InterpolationError
from dockyard.names import is_secret_name

# A braced variable may hold one nested level (${A:-${B}}); a `${` that does not close is an error.
_TOKEN = re.compile(r"\$(?:(\$)|\{((?:[^{}]|\{[^{}]*\})*)\}|([A-Za-z_][A-Za-z0-9_]*)|(\{))")
_BRACED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?$", re.DOTALL)


def interpolate(text: str, env: Mapping[str, str], *, lenient: bool = False) -> str:
    """Replace every variable in `text`; raise InterpolationError for a required one unset
    (`lenient`: leave it as written, for commands that need no values, such as `down`)."""

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
            if empty and lenient:
                return match[0]
            if empty:
                raise InterpolationError(
                    f"required variable {name} is not set"
                    + (f": {arg}" if arg else "")
                    + f" (set {name} in the environment or in .env beside the manifest)"
                )
            return value or ""
        # ":+" / "+": the alternative when set
        return "" if empty else interpolate(arg, env, lenient=lenient)

    return _TOKEN.sub(replace, text)


def variables(text: str) -> Iterator[tuple[str, str]]:
    """(name, operator) of every variable in `text`, nested defaults included; `$$` is none."""
    for match in _TOKEN.finditer(text):
        _, braced, bare, _ = match.groups()
        if bare:
            yield bare, ""
        elif braced and (parsed := _BRACED.match(braced)):
            name, op, arg = parsed.groups()
            yield name, op or ""
            if arg:
                yield from variables(arg)


def secret_variables(texts: Iterable[str]) -> frozenset[str]:
    """The variables that hold secrets: those required somewhere (`${VAR:?}`, the way a
    manifest asks for a value it must not carry) and those whose names say so (DB_PASSWORD,
    HF_TOKEN). Rendered files name them and never hold their values."""
    found: set[str] = set()
    for text in texts:
        found.update(name for name, op in variables(text)
                     if op.endswith("?") or is_secret_name(name))
    return frozenset(found)


def keep_secrets(text: str, env: Mapping[str, str], secrets: frozenset[str]) -> str | None:
    """`text` as compose must read it, with each variable whose value is one of `secrets` kept
    as written (`${DB_PASSWORD:?set it}`, also inside a URL) for compose to fill in from its
    environment; every other variable is its value here, with `$` doubled, and `$$` stays.
    None when `text` names no secret (then its value is all there is to write)."""
    kept = False

    def replace(match: re.Match[str]) -> str:
        nonlocal kept
        if match[1]:
            return "$$"
        if _uses(match[0], secrets):
            kept = True
            return match[0]
        return interpolate(match[0], env, lenient=True).replace("$", "$$")

    out = _TOKEN.sub(replace, text)
    return out if kept else None


def _uses(token: str, secrets: frozenset[str]) -> bool:
    """Whether a variable's value holds a secret's: `${S:+alt}` is `alt`, not S."""
    braced = token[2:-1] if token.startswith("${") else ""
    parsed = _BRACED.match(braced) if braced else None
    if parsed and (parsed[2] or "").endswith("+"):
        return any(name in secrets for name, _ in variables(parsed[3] or ""))
    return any(name in secrets for name, _ in variables(token))


def read_dotenv(path: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """KEY=VALUE lines of a .env file, read the way compose reads them.

    Blank lines, `# comments` and `export ` prefixes are allowed. Unquoted values end at an
    inline ` # comment` and are trimmed; 'single quotes' are literal; "double quotes" may span
    lines and take escapes (\\n, \\t, \\", \\\\, \\$). Unquoted and double-quoted values
    are interpolated (`TAG=${TAG:-1.27}`, `URL=http://${HOST}`): a variable is looked up in
    `environ` (the process environment, which also wins over the file) and then in the lines
    above it; a `${VAR:?}` that fails leaves the value as written."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    lookup = ChainMap(dict(environ or {}), values)
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        index += 1
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        key, value = key.strip(), value.lstrip()
        if value.startswith("'") and "'" in value[1:]:
            values[key] = value[1:value.index("'", 1)]
            continue
        if value.startswith('"'):
            while _closing_quote(value) < 0 and index < len(lines):
                value += "\n" + lines[index]
                index += 1
            end = _closing_quote(value)
            text = _unescape(value[1:end if end > 0 else len(value)])
        else:
            text = re.split(r"\s#", value, maxsplit=1)[0].strip()
        try:
            values[key] = interpolate(text, lookup)
        except InterpolationError:
            values[key] = text
    return values


def _closing_quote(value: str) -> int:
    """Where the double-quoted value that starts `value` ends; -1: on a later line."""
    escaped = False
    for i, char in enumerate(value[1:], 1):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            return i
    return -1


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$$"}


def _unescape(text: str) -> str:
    """Escapes of a double-quoted .env value; `\\$` stays a literal `$` (written `$$`, which
    interpolation turns into one `$`)."""
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], m[0]), text)
