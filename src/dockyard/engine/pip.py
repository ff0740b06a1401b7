"""Where uv and pip find packages: the host's pip settings, read once and passed explicitly
to both `dockyard lock` (uv) and `dockyard fetch` (pip), so the two see the same indexes."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from dockyard.engine.run import run
from dockyard.errors import EngineError

_PIP_KEYS = ("index-url", "extra-index-url", "find-links", "cert", "constraint",
             "default-timeout", "trusted-host", "no-index")
_CONFIG_LINE = re.compile(r"^(?:global|:env:|install|download|wheel)\.([a-z-]+)='(.*)'$")


def host_pip_settings() -> dict[str, str]:
    """The host's pip settings that decide where wheels come from (`pip config list`)."""
    settings: dict[str, str] = {}
    try:
        listed = run([sys.executable, "-m", "pip", "config", "list"], check=False, timeout=60)
    except EngineError:
        return settings
    for line in listed.stdout.splitlines():
        match = _CONFIG_LINE.match(line.strip())
        if match and match.group(1) in _PIP_KEYS:
            settings[match.group(1)] = match.group(2)
    for key in _PIP_KEYS:
        value = os.environ.get("PIP_" + key.upper().replace("-", "_"))
        if value:
            settings[key] = value
    return settings


@dataclass(frozen=True)
class Indexes:
    """Where uv and pip find packages: the host's pip settings, passed explicitly."""

    index_url: str = ""
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()
    no_index: bool = False
    offline: bool = False
    cert: str = ""

    @classmethod
    def from_host(cls) -> Indexes:
        s = host_pip_settings()
        return cls(index_url=s.get("index-url", ""),
                   extra_index_urls=tuple(s.get("extra-index-url", "").split()),
                   find_links=tuple(s.get("find-links", "").split()),
                   constraints=tuple(p for p in s.get("constraint", "").split()
                                     if Path(p).is_file()),
                   cert=s.get("cert", ""),
                   no_index=s.get("no-index", "").lower() in ("1", "true", "yes", "on"))

    def args(self) -> list[str]:
        """Arguments both uv pip compile and pip download understand."""
        argv: list[str] = []
        if self.no_index:
            argv.append("--no-index")
        elif self.index_url:
            argv += ["--index-url", self.index_url]
        if not self.no_index:
            for url in self.extra_index_urls:
                argv += ["--extra-index-url", url]
        for link in self.find_links:
            argv += ["--find-links", link]
        return argv
