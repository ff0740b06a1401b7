"""The architecture map and the name normalisers: one table each (platforms.py, names.py)."""

from __future__ import annotations

import pytest

from dockyard.names import is_name, manifest_name, package_name
from dockyard.platforms import PLATFORMS, arch_of


@pytest.mark.parametrize(("name", "arch"), [
    ("amd64", "amd64"), ("x86_64", "amd64"), ("AMD64", "amd64"), ("linux/amd64", "amd64"),
    ("arm64", "arm64"), ("aarch64", "arm64"), (" linux/arm64\n", "arm64"),
    ("riscv64", None), ("", None), ("linux/386", None),
])
def test_every_name_of_an_architecture(name: str, arch: str | None) -> None:
    assert arch_of(name) == arch


def test_what_each_tool_calls_a_platform() -> None:
    arm = PLATFORMS["arm64"]
    assert (arm.docker, arm.uv, arm.pip, arm.qemu) == (
        "linux/arm64", "aarch64-manylinux_2_28", "manylinux_2_28_aarch64", "qemu-aarch64")
    assert PLATFORMS["amd64"].pip == "manylinux_2_28_x86_64"


@pytest.mark.parametrize(("text", "name"), [
    ("gpu1", "gpu1"), ("DGX-Spark", "dgx-spark"), ("My Box!", "my-box"), ("box.", "box"),
    ("-x_", "x"), ("Shop Front", "shop-front"), ("!!!", ""),
])
def test_manifest_name(text: str, name: str) -> None:
    assert manifest_name(text) == name
    assert is_name(name) or name == ""


def test_manifest_name_default_and_package_name() -> None:
    assert manifest_name("", "local") == "local" and manifest_name("???", "imported") == "imported"
    assert package_name("Flask_Login") == "flask-login"
    assert package_name("zope.interface") == package_name("Zope__Interface") == "zope-interface"
