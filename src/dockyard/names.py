"""Name normalisers: the one place that turns what people write into the names dockyard
uses (a manifest name, a Python package name)."""

from __future__ import annotations

import re

# Fleet, machine, family and service names become container, image and network names:
# lowercase, like Docker wants them.
NAME = r"^[a-z0-9][a-z0-9_.-]*$"
_NAME_RE = re.compile(NAME)
_NOT_NAME = re.compile(r"[^a-z0-9_.-]+")
_PACKAGE_SEPARATORS = re.compile(r"[-_.]+")


def is_name(text: str) -> bool:
    """Whether `text` is a valid manifest name."""
    return bool(_NAME_RE.match(text))


def manifest_name(text: str, default: str = "") -> str:
    """`text` as a manifest name: lowercase, each run of other characters one "-", and no
    "-", "_" or "." at either end ("My Box!" -> "my-box"); `default` when nothing is left."""
    return _NOT_NAME.sub("-", text.lower()).strip("-_.") or default


def package_name(name: str) -> str:
    """A Python package name normalised as PEP 503 does: "Flask_Login" -> "flask-login"."""
    return _PACKAGE_SEPARATORS.sub("-", name).lower()
