"""Machine detection that runs programs: a fake `nvidia-smi` (a shell script first on PATH)
when NVML cannot answer, and detection of this box itself. Parsers, YAML and the GPU probe
on a fake NVML: tests/unit/test_machine.py."""

from __future__ import annotations

import os
import platform
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dockyard.engine import machine
from dockyard.engine.machine import (
    NO_GPUS,
    GpuStack,
    detect,
    machine_name,
    normalize_arch,
    parse_meminfo,
    probe_gpus,
    render_machine_yaml,
)
from tests.unit.test_machine import (
    FIXTURES,
    GB10,
    H100,
    RTX_3060,
    RTX_4090,
    FakeNvml,
    _floored,
    load_machine,
)

pytestmark = pytest.mark.process
posix_only = pytest.mark.skipif(os.name != "posix", reason="fake nvidia-smi is a shell script")


@pytest.fixture
def no_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import pynvml` raise ImportError, installed or not.
    monkeypatch.setitem(sys.modules, "pynvml", None)


@pytest.fixture
def fake_nvidia_smi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], None]:
    """Put an `nvidia-smi` script first on PATH; `script` is its shell body."""

    def install(script: str) -> None:
        folder = tmp_path / "bin"
        folder.mkdir(exist_ok=True)
        exe = folder / "nvidia-smi"
        exe.write_text(f"#!/bin/sh\n{script}\n", encoding="utf-8")
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
        monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")

    return install


def smi_serving(csv_name: str, table_name: str) -> str:
    query = f"--query-gpu={machine.NVIDIA_SMI_QUERY}"
    return (
        f'if [ "$1" = "{query}" ] && [ "$2" = "--format=csv,noheader,nounits" ]; '
        f'then cat "{FIXTURES / csv_name}"; '
        f'elif [ "$#" = 0 ]; then cat "{FIXTURES / table_name}"; else exit 2; fi'
    )


@posix_only
def test_nvml_init_failure_falls_back_to_nvidia_smi(
    monkeypatch: pytest.MonkeyPatch, fake_nvidia_smi: Callable[[str], None]
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml([], fail="init"))
    fake_nvidia_smi(smi_serving("nvidia-smi-gb10.csv", "nvidia-smi-gb10.txt"))
    assert probe_gpus() == GpuStack([GB10], "580.95.05", "13.0")


@posix_only
@pytest.mark.usefixtures("no_nvml")
def test_nvidia_smi_fallback(fake_nvidia_smi: Callable[[str], None]) -> None:
    fake_nvidia_smi(smi_serving("nvidia-smi-4090-3060.csv", "nvidia-smi-4090-3060.txt"))
    assert probe_gpus() == GpuStack([RTX_4090, RTX_3060], "550.54.15", "12.4")


@posix_only
@pytest.mark.usefixtures("no_nvml")
def test_nvidia_smi_table_failure_keeps_gpus(fake_nvidia_smi: Callable[[str], None]) -> None:
    fake_nvidia_smi(smi_serving("nvidia-smi-h100.csv", "/nonexistent"))
    assert probe_gpus() == GpuStack([H100], "535.129.03", "")


@posix_only
@pytest.mark.usefixtures("no_nvml")
@pytest.mark.parametrize(
    "script",
    [
        'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver."'
        "; exit 9",
        'echo "No devices were found"; exit 6',
        'echo "garbage"',
    ],
)
def test_broken_nvidia_smi_means_no_gpus(
    fake_nvidia_smi: Callable[[str], None], script: str
) -> None:
    fake_nvidia_smi(script)
    assert probe_gpus() == NO_GPUS


@posix_only
@pytest.mark.usefixtures("no_nvml")
def test_hanging_nvidia_smi_means_no_gpus(
    monkeypatch: pytest.MonkeyPatch, fake_nvidia_smi: Callable[[str], None]
) -> None:
    monkeypatch.setattr(machine, "NVIDIA_SMI_TIMEOUT", 0.3)
    fake_nvidia_smi("exec sleep 10")
    assert probe_gpus() == NO_GPUS


# --- this machine ----------------------------------------------------------------------------


def test_detect_this_machine() -> None:
    spec = detect()
    assert spec.arch == normalize_arch(platform.machine())
    assert spec.cpus == os.cpu_count()
    assert spec.memory > 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        assert spec.memory == parse_meminfo(meminfo.read_text(encoding="utf-8"))
    if not spec.gpus:
        assert spec.driver == "" and spec.cuda_driver == ""
    name = machine_name(platform.node())
    assert load_machine(render_machine_yaml(name, spec), name) == _floored(spec)
