"""Name normalisers: the one place that turns what people write into the names dockyard
uses (a manifest name, a Python package name), and what a name says (a secret's)."""

from __future__ import annotations

import functools
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


_SECRET_KEY = re.compile(r"(?:^|_)(PASSWORD|PASSWD|PASS|SECRET|SECRET_KEY|TOKEN|API_?KEY|"
                         r"PRIVATE_KEY|ACCESS_KEY|CLIENT_SECRET)(?:_|$)", re.I)
_NOT_A_VALUE = re.compile(r"_(FILE|PATH|DIR|LENGTH|TTL|EXPIRY|EXPIRES|HEADER|NAME|URL)$", re.I)


@functools.lru_cache(maxsize=4096)
def is_secret_name(key: str) -> bool:
    """Whether an env variable's name says it holds a secret (DB_PASSWORD, HF_TOKEN; not
    TOKEN_URL): DY702 looks for them in the manifest, the Kubernetes renderer keeps them out."""
    return bool(_SECRET_KEY.search(key)) and not _NOT_A_VALUE.search(key)
