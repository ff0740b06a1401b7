"""Base images without a registry: Debian bookworm from mmdebstrap, imported into Docker."""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path

from dockyard import compat
from dockyard.checks.rules import image_registry
from dockyard.engine.connection import Engine
from dockyard.engine.run import run
from dockyard.errors import BuildError, EngineError
from dockyard.plan.family import image_python
from dockyard.platforms import PLATFORMS

REPO = "dockyard/bootstrap"
MAKING = "dockyard/bootstrap-making"  # where a bootstrap waits until it claims its tag
SUITE = "bookworm"
PYTHON = compat.minor(image_python(f"debian:{SUITE}"))  # bookworm's python3: 3.11
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


def image_exists(engine: Engine, ref: str, arch: str = "") -> bool:
    """`ref` is here (and, when `arch` is given, is an image for that architecture)."""
    from docker.errors import ImageNotFound

    try:
        image = engine.client.images.get(ref)
    except ImageNotFound:
        return False
    return not arch or image.attrs.get("Architecture") == arch


# What the engine says when a registry cannot be reached at all (not: this image is not
# there): then no other image is pulled from it for the rest of the run.
_UNREACHABLE = ("dial tcp", "no such host", "i/o timeout", "connection refused",
                "network is unreachable", "TLS handshake timeout", "Client.Timeout",
                "context deadline exceeded", "connection reset")
# (engine, registry) -> why it cannot be reached: remembered for this run (this process).
_unreachable: dict[tuple[str, str], str] = {}


def try_pull(engine: Engine, ref: str, arch: str = "") -> str:
    """Pull `ref` (for `arch` when given); return "" on success, else the engine's reason in
    one line. A registry found unreachable is not asked again in this run."""
    from docker.errors import APIError

    key = (engine.describe(), image_registry(ref))
    if key in _unreachable:
        return _unreachable[key]
    repo, _, tag = ref.rpartition(":") if ":" in ref.split("/")[-1] else (ref, "", "latest")
    try:
        engine.client.images.pull(repo, tag=tag,
                                  platform=PLATFORMS[arch].docker if arch else None)
    except APIError as exc:
        reason = str(exc.explanation or exc).splitlines()[0]
        if any(mark in reason for mark in _UNREACHABLE):
            _unreachable[key] = f"{key[1]} cannot be reached: {reason}"
            return _unreachable[key]
        return reason
    return ""


def substitution_lines(missing: dict[str, str], tag: str) -> list[str]:
    """What a build says when bases cannot be pulled: one line per reason, so the bases of
    one unreachable registry share one line."""
    by_reason: dict[str, list[str]] = {}
    for base, reason in sorted(missing.items()):
        by_reason.setdefault(reason, []).append(base + caveat(base))
    return [f"{' and '.join(bases)} cannot be pulled ({reason}); building on {tag}, Debian "
            f"{SUITE} made with mmdebstrap" for reason, bases in by_reason.items()]


# binfmt_misc: where the kernel's entries for another architecture's programs (QEMU) are.
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


def emulation_problem(arch: str, native: str, binfmt: Path = BINFMT_DIR) -> str:
    """Why this engine cannot build `arch` images, or "". A foreign architecture's RUN steps
    run under QEMU: its binfmt entry must be enabled with the F flag (the interpreter is
    opened when registered, so it works inside containers that do not have it)."""
    if arch == native:
        return ""
    entry = binfmt / PLATFORMS[arch].qemu
    try:
        text = entry.read_text()
    except OSError:
        return f"no QEMU for {arch} is registered with the kernel ({entry} is missing)"
    flags = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("flags:")), "")
    if not text.startswith("enabled") or "F" not in flags:
        return f"{entry} is not enabled with the F flag (flags: {flags or 'none'})"
    return ""


def require_emulation(arch: str, native: str) -> None:
    """Refuse, in one sentence, to make `arch` images on a `native` engine that cannot run
    `arch` programs."""
    problem = emulation_problem(arch, native)
    if problem:
        raise BuildError(f"this engine runs {native} programs, and building {arch} images runs "
                         f"{arch} ones: {problem}",
                         fix="run scripts/install-engine.sh --qemu (QEMU user emulation, "
                             f"registered with the kernel), or build on an {arch} machine")


_ROOT_DOCKERFILE = """\
# dockyard bootstrap: Debian {suite} minbase, made with mmdebstrap (no registry needed).
FROM scratch
ADD root.tar /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
LABEL org.opencontainers.image.description="dockyard bootstrap: {suite} minbase + {packages}"
CMD ["/bin/bash"]
"""


def claim(found: str, made: str) -> str:
    """The image a bootstrap tag names once this run made `made` for it, `found` being the
    image the tag names now ("" when none): a tag, once made, is never moved.

    mmdebstrap's root file systems differ byte by byte from run to run, so two bootstraps
    of one recipe are two images. Where two clients of one engine bootstrap at once, the
    first to finish keeps the tag and the other uses its image: had the second moved it,
    every image already built on the first would see a new base and rebuild (the clean-
    machine flake of issue 9)."""
    return found or made


def bootstrap_base(engine: Engine, packages: Iterable[str], arch: str = "amd64") -> str:
    """Build (once) a bookworm minbase image for `arch` with `packages` baked in; return its
    tag. The root file system becomes an image through a build (`FROM scratch`, `ADD`) rather
    than `docker import`, which gives the image the engine's own architecture whatever the
    files are. It is built under a tag of its own and then claims the recipe's (`claim`)."""
    from dockyard.engine.composebuild import compose_build

    tag = bootstrap_tag(packages, arch)
    if image_exists(engine, tag):
        return tag
    wanted = sorted(set(PACKAGES) | set(packages))
    version = tag.removeprefix(f"{REPO}:")
    own = f"{MAKING}:{version}-{uuid.uuid4().hex[:10]}"
    with tempfile.TemporaryDirectory(prefix="dockyard-bootstrap-") as tmp:
        tar = Path(tmp) / "root.tar"
        run(["mmdebstrap", "--variant=minbase", f"--architectures={arch}",
             "--include=" + ",".join(wanted),
             "--aptopt=APT::Install-Recommends \"false\"",
             "--customize-hook=rm -rf \"$1\"/var/lib/apt/lists/* \"$1\"/var/cache/apt/*.bin",
             SUITE, str(tar)], timeout=3600, env={"TMPDIR": tmp})
        if not tar.is_file() or os.path.getsize(tar) == 0:
            raise EngineError("mmdebstrap wrote no root file system",
                              fix="run it by hand to see why: mmdebstrap --variant=minbase "
                                  f"{SUITE} /tmp/out.tar")
        (Path(tmp) / "Dockerfile").write_text(
            _ROOT_DOCKERFILE.format(suite=SUITE, packages=" ".join(wanted)))
        compose_build(engine, Path(tmp), "dockyard-bootstrap", "bootstrap", {"bootstrap": {
            "image": own, "platform": PLATFORMS[arch].docker,
            "build": {"context": tmp, "dockerfile": "Dockerfile"}}})
    made = engine.client.images.get(own)
    if claim(engine.image_id(tag), made.id) == made.id:
        made.tag(REPO, version)
    engine.client.images.remove(own)  # only the tag when `tag` names it too; else the image
    return tag
