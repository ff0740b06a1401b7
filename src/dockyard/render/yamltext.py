"""A small, fast YAML writer for rendered files (compose): block style, like ruamel's dump.

ruamel's pure-Python emitter took ~95% of `render` on large fleets (6 s of 7 for 1,000
services); compose files only hold mappings, lists, strings, numbers and booleans, so this
writes them directly. A string is written plain only when a YAML 1.1 or 1.2 reader cannot take
it for anything else (number, boolean, null, an indicator); otherwise single-quoted, or
double-quoted (JSON escapes) when it holds a line break or a control character. The unit tests
read every output back and compare it with the input.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

# Plain scalars that a resolver would read as something other than a string.
_NOT_STRING = re.compile(r"""^(?:
    [-+]?[0-9_]+ | [-+]?0b[01_]+ | [-+]?0o?[0-7_]+ | [-+]?0x[0-9a-fA-F_]+       # int
  | [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?                         # sexagesimal
  | [-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?                       # float
  | [-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
  | [-+]?\.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN)
  | y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF
  | null|Null|NULL|~
  | [0-9]{4}\ ?-[0-9][0-9]?.*                                                 # timestamp
  | <<|=|!|&|\*
)$""", re.VERBOSE)
_FIRST = set("-?:,[]{}#&*!|>'\"%@`")
# Printable in YAML and no line break in 1.1 or 1.2 (so not NEL, LS, PS) and no BOM.
_SAFE_CHARS = re.compile("^[\x20-\x7e\u00a0-\u2027\u202a-\ud7ff\ue000-\ufefe"
                         "\uff00-\ufffd\U00010000-\U0010ffff]*$")


def _plain_ok(s: str) -> bool:
    if not s or s != s.strip() or _NOT_STRING.fullmatch(s):
        return False
    if s[0] in "-?:":  # "--model" is plain; "-", "- x" and "?" are indicators
        if len(s) == 1 or s[1] == " ":
            return False
    elif s[0] in _FIRST:
        return False
    if ": " in s or " #" in s or s.endswith(":") or s.startswith(("---", "...")):
        return False
    return bool(_SAFE_CHARS.fullmatch(s)) and "\t" not in s


def scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else (
            ".nan" if value != value else ".inf" if value > 0 else "-.inf")
    return _string(str(value))


@lru_cache(maxsize=1 << 16)  # keys and many values repeat across services
def _string(text: str) -> str:
    if _plain_ok(text):
        return text
    if _SAFE_CHARS.fullmatch(text) and "\t" not in text:
        return "'" + text.replace("'", "''") + "'"
    return _double_quoted(text)


def _double_quoted(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif _SAFE_CHARS.fullmatch(ch):
            out.append(ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def _block(value: Any, indent: int, out: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            _entry(f"{pad}{scalar(key)}:", item, indent, out)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                first = True
                for key, sub in item.items():
                    head = f"{pad}- {scalar(key)}:" if first else f"{pad}  {scalar(key)}:"
                    _entry(head, sub, indent + 2, out)
                    first = False
            elif isinstance(item, list) and item:
                out.append(f"{pad}-")
                _block(item, indent + 2, out)
            else:
                out.append(f"{pad}- {_inline(item)}")


def _entry(head: str, item: Any, indent: int, out: list[str]) -> None:
    if isinstance(item, dict) and item:
        out.append(head)
        _block(item, indent + 2, out)
    elif isinstance(item, list) and item:
        out.append(head)
        _block(item, indent, out)  # list items line up with their key, as ruamel writes them
    else:
        out.append(f"{head} {_inline(item)}")


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return scalar(value)


def dump(doc: Any) -> str:
    """`doc` (mappings, lists, scalars) as block-style YAML text ending in a newline."""
    if not isinstance(doc, dict | list) or not doc:
        return _inline(doc) + "\n"
    out: list[str] = []
    _block(doc, 0, out)
    return "\n".join(out) + "\n"
