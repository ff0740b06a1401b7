"""Whether this engine can build the other architecture's images: QEMU's binfmt_misc entry,
enabled and with the F flag (read from a folder laid out as /proc/sys/fs/binfmt_misc)."""

from __future__ import annotations

from pathlib import Path

from dockyard.engine.bootstrap import emulation_problem

ENTRY = """{state}
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: {flags}
offset 0
magic 7f454c460201010000000000000000000200b700
"""


def test_native_needs_nothing(tmp_path: Path) -> None:
    assert emulation_problem("amd64", "amd64", tmp_path) == ""


def test_registered_with_the_f_flag_is_ready(tmp_path: Path) -> None:
    (tmp_path / "qemu-aarch64").write_text(ENTRY.format(state="enabled", flags="PF"))
    assert emulation_problem("arm64", "amd64", tmp_path) == ""


def test_missing_disabled_or_without_f_is_said(tmp_path: Path) -> None:
    assert "no QEMU for arm64 is registered" in emulation_problem("arm64", "amd64", tmp_path)
    (tmp_path / "qemu-aarch64").write_text(ENTRY.format(state="enabled", flags="P"))
    assert "not enabled with the F flag (flags: P)" in emulation_problem(
        "arm64", "amd64", tmp_path)
    (tmp_path / "qemu-aarch64").write_text(ENTRY.format(state="disabled", flags="PF"))
    assert "not enabled with the F flag" in emulation_problem("arm64", "amd64", tmp_path)
    (tmp_path / "qemu-x86_64").write_text(ENTRY.format(state="enabled", flags="OCF"))
    assert emulation_problem("amd64", "arm64", tmp_path) == ""
