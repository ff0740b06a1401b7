"""The wheelhouse: every wheel a family needs, resolved by the image's own Python and kept on
the host, so image builds install offline with `--no-index`.

Resolution runs in a throw-away container of the family's base image: environment markers
such as `python_full_version < "3.11.3"` must be judged by the interpreter that will run the
code, not the host's (pip's --python-version does not change markers). The host's pip
settings (index, find-links, CA bundle, constraints) travel into that container."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import sys
from pathlib import Path

from dockyard.engine.run import run
from dockyard.errors import BuildError, EngineError

STAMP = ".dockyard-wheelhouse"
_PIP_KEYS = ("index-url", "extra-index-url", "find-links", "cert", "constraint",
             "default-timeout", "trusted-host")
_CONFIG_LINE = re.compile(r"^(?:global|:env:|install|download|wheel)\.([a-z-]+)='(.*)'$")


def wheelhouse_key(requirements: list[str], base_id: str) -> str:
    text = "\n".join([base_id, *requirements])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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


def _local_paths(value: str) -> list[str]:
    paths = []
    for word in value.split():
        path = word.removeprefix("file://").rstrip("/")
        if path.endswith("/simple"):
            # A local PEP 503 index links to files beside its `simple/` folder.
            path = os.path.dirname(path)
        if path.startswith("/") and os.path.exists(path):
            paths.append(path)
    return paths


def fill_wheelhouse(dest: Path, requirements: list[str], *, base_image: str, base_id: str,
                    family: str) -> bool:
    """Make `dest` hold every wheel `requirements` need; return False when it already did."""
    key = wheelhouse_key(requirements, base_id)
    stamp = dest / STAMP
    if stamp.is_file() and stamp.read_text().strip() == key:
        return False
    dest.mkdir(parents=True, exist_ok=True)
    reqs = dest.parent / "requirements.txt"
    reqs.write_text("".join(f"{r}\n" for r in requirements))
    settings = host_pip_settings()
    mounts = ["-v", f"{dest.resolve()}:/wheels", "-v", f"{reqs.resolve()}:/req.txt:ro"]
    env: list[str] = ["-e", "HOME=/tmp", "-e", "PIP_DISABLE_PIP_VERSION_CHECK=1"]
    for name, value in sorted(settings.items()):
        for path in _local_paths(value):
            mounts += ["-v", f"{path}:{path}:ro"]
        env += ["-e", f"PIP_{name.upper().replace('-', '_')}={value}"]
    script = ("python3 -m venv /tmp/resolver >/dev/null && "
              "/tmp/resolver/bin/pip wheel --quiet --wheel-dir /wheels -r /req.txt")
    argv = ["docker", "run", "--rm", "--network", "host", "--user", f"{os.getuid()}:{os.getgid()}",
            *mounts, *env, "--entrypoint", "/bin/sh", base_image, "-c", script]
    try:
        run(argv, timeout=3600)
    except EngineError as exc:
        problem = [ln for ln in exc.stderr.splitlines() if "ERROR" in ln] or [exc.message]
        raise BuildError(
            f"family {family}: cannot fetch wheels for {base_image}: {problem[-1].strip()}",
            fix="pin versions that publish wheels for this platform, or correct the requirement"
                f" (resolver command: {shlex.join(argv[:3])} …)",
            command=exc.command, returncode=exc.returncode, stderr=exc.stderr) from None
    stamp.write_text(key + "\n")
    return True
