"""Base images without a registry: Debian bookworm from mmdebstrap, imported into Docker."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from dockyard.engine.client import docker
from dockyard.engine.run import run
from dockyard.errors import EngineError

REPO = "dockyard/bootstrap"
SUITE = "bookworm"
PYTHON = "3.11"  # bookworm's python3
# What every dockyard image relies on: Python for apps and probes, tini as PID 1, passwd for
# the non-root user, CA certificates for TLS.
PACKAGES = ("ca-certificates", "passwd", "python3", "python3-venv", "tini")
# External bases a bookworm root can stand in for, and what they differ in.
_STANDS_IN = ("python:3.11", "python:3", "debian:bookworm", "debian:12", "debian:stable",
              "python:3.10", "python:3.12", "python:3.13")


def can_stand_in(image: str) -> bool:
    name = image.split("/")[-1] if image.startswith("docker.io/library/") else image
    return name.startswith(_STANDS_IN)


def caveat(image: str) -> str:
    """What differs between `image` and the bootstrapped base, said to the user."""
    if image.startswith("python:") and not image.startswith(("python:3.11", "python:3-")):
        return f" (note: it has Python {PYTHON}, not the version {image} has)"
    return ""


def bootstrap_tag(packages: Iterable[str], arch: str = "amd64") -> str:
    wanted = sorted(set(PACKAGES) | set(packages))
    digest = hashlib.sha256(f"{SUITE} {arch} {' '.join(wanted)}".encode()).hexdigest()[:12]
    return f"{REPO}:{SUITE}-{digest}"


def image_exists(ref: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        docker().images.get(ref)
    except ImageNotFound:
        return False
    return True


def try_pull(ref: str) -> str:
    """Pull `ref`; return "" on success, else the engine's reason in one line."""
    from docker.errors import APIError

    repo, _, tag = ref.rpartition(":") if ":" in ref.split("/")[-1] else (ref, "", "latest")
    try:
        docker().images.pull(repo, tag=tag)
    except APIError as exc:
        return str(exc.explanation or exc).splitlines()[0]
    return ""


def bootstrap_base(packages: Iterable[str], arch: str = "amd64") -> str:
    """Build (once) a bookworm minbase image with `packages` baked in; return its tag."""
    tag = bootstrap_tag(packages, arch)
    if image_exists(tag):
        return tag
    wanted = sorted(set(PACKAGES) | set(packages))
    with tempfile.TemporaryDirectory(prefix="dockyard-bootstrap-") as tmp:
        tar = Path(tmp) / "root.tar"
        run(["mmdebstrap", "--variant=minbase", f"--architectures={arch}",
             "--include=" + ",".join(wanted),
             "--aptopt=APT::Install-Recommends \"false\"",
             "--customize-hook=rm -rf \"$1\"/var/lib/apt/lists/* \"$1\"/var/cache/apt/*.bin",
             SUITE, str(tar)], timeout=1800, env={"TMPDIR": tmp})
        if not tar.is_file() or os.path.getsize(tar) == 0:
            raise EngineError("mmdebstrap wrote no root file system",
                              fix="run it by hand to see why: mmdebstrap --variant=minbase "
                                  f"{SUITE} /tmp/out.tar")
        run(["docker", "import",
             "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "--change", "ENV LANG=C.UTF-8",
             "--change", 'CMD ["/bin/bash"]',
             "--message", f"dockyard bootstrap: {SUITE} minbase + {' '.join(wanted)}",
             str(tar), tag], timeout=900)
    return tag
