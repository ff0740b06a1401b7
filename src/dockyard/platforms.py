"""The architecture map: the one table of what each CPU architecture dockyard builds for is
called by Docker (amd64), by the kernel (`uname -m`: x86_64), by Python wheel tags
(manylinux_2_28_x86_64) and by QEMU's binfmt_misc entry (qemu-x86_64)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Arch = Literal["amd64", "arm64"]
MANYLINUX = 28  # glibc 2.28 (Debian bookworm has 2.36): manylinux_2_28 and older wheels run


@dataclass(frozen=True)
class Platform:
    arch: Arch  # Docker's name, the manifest's `arch:` and `platforms:`: amd64
    machine: str  # the kernel's (uname -m) and the wheel tags': x86_64
    docker: str  # `--platform` and compose's `platform:`: linux/amd64
    uv: str  # uv's `--python-platform`: x86_64-manylinux_2_28
    pip: str  # pip's `--platform`, the newest manylinux tag: manylinux_2_28_x86_64
    qemu: str  # the binfmt_misc entry that runs its programs on another CPU: qemu-x86_64


def _platform(arch: Arch, machine: str) -> Platform:
    return Platform(arch, machine, f"linux/{arch}", f"{machine}-manylinux_2_{MANYLINUX}",
                    f"manylinux_2_{MANYLINUX}_{machine}", f"qemu-{machine}")


PLATFORMS: dict[str, Platform] = {"amd64": _platform("amd64", "x86_64"),
                                  "arm64": _platform("arm64", "aarch64")}
# Every name an architecture goes by: uname on Linux says x86_64/aarch64, Windows and macOS
# say AMD64 and arm64, the Docker CLI linux/amd64.
_NAMES: dict[str, Arch] = {name: p.arch for p in PLATFORMS.values()
                           for name in (p.arch, p.machine, p.docker)}


def arch_of(name: str) -> Arch | None:
    """Docker's name for an architecture written any of those ways; None when dockyard does
    not build for it."""
    return _NAMES.get(name.strip().lower())
