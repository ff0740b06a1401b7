"""Machine detection: parsers and YAML on fixture text, the GPU probe on a fake NVML.
A fake nvidia-smi and this box itself: tests/process/test_machine.py."""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from dockyard.engine.machine import (
    GIB,
    MIB,
    NO_GPUS,
    GpuStack,
    cuda_version,
    detect,
    floor_size,
    machine_name,
    machine_spec,
    normalize_arch,
    parse_cuda_version,
    parse_meminfo,
    parse_nvidia_smi,
    probe_gpus,
    render_machine_yaml,
)
from dockyard.errors import DockyardError
from dockyard.manifest.models import GpuSpec, MachineSpec
from dockyard.units import parse_size

FIXTURES = Path(__file__).parent.parent / "fixtures" / "machine"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def load_machine(text: str, name: str) -> MachineSpec:
    data = YAML(typ="safe").load(text)
    assert list(data) == ["machines"]
    return MachineSpec.model_validate(data["machines"][name])


RTX_4090 = GpuSpec(model="NVIDIA GeForce RTX 4090", sm="8.9", memory=24564 * MIB)
RTX_3060 = GpuSpec(model="NVIDIA GeForce RTX 3060", sm="8.6", memory=12288 * MIB)
GB10 = GpuSpec(model="NVIDIA GB10", sm="12.1", memory=0, unified=True)
H100 = GpuSpec(model="NVIDIA H100 80GB HBM3", sm="9.0", memory=81559 * MIB)


# --- parsers ---------------------------------------------------------------------------------


def test_meminfo_amd64() -> None:
    assert parse_meminfo(fixture("meminfo-amd64.txt")) == 24542412 * 1024


def test_meminfo_gb10() -> None:
    assert parse_meminfo(fixture("meminfo-gb10.txt")) == 125512376 * 1024


def test_meminfo_without_memtotal() -> None:
    with pytest.raises(ValueError, match="MemTotal"):
        parse_meminfo("MemFree:  1024 kB\n")


@pytest.mark.parametrize(
    ("uname", "arch"),
    [("x86_64", "amd64"), ("AMD64", "amd64"), ("aarch64", "arm64"), ("arm64", "arm64")],
)
def test_normalize_arch(uname: str, arch: str) -> None:
    assert normalize_arch(uname) == arch


@pytest.mark.parametrize("uname", ["ppc64le", "riscv64", "i686", "armv7l", ""])
def test_normalize_arch_rejects_others(uname: str) -> None:
    with pytest.raises(ValueError, match=r"unsupported CPU architecture .*amd64.*arm64"):
        normalize_arch(uname)


def test_nvidia_smi_two_consumer_gpus() -> None:
    gpus, driver = parse_nvidia_smi(fixture("nvidia-smi-4090-3060.csv"))
    assert gpus == [RTX_4090, RTX_3060]
    assert driver == "550.54.15"


def test_nvidia_smi_gb10_is_unified() -> None:
    gpus, driver = parse_nvidia_smi(fixture("nvidia-smi-gb10.csv"))
    assert gpus == [GB10]
    assert driver == "580.95.05"


def test_nvidia_smi_h100() -> None:
    gpus, driver = parse_nvidia_smi(fixture("nvidia-smi-h100.csv"))
    assert gpus == [H100]
    assert driver == "535.129.03"


@pytest.mark.parametrize("memory", ["[N/A]", "Not Supported", "[Not Supported]"])
def test_nvidia_smi_unknown_memory_means_unified(memory: str) -> None:
    gpus, _ = parse_nvidia_smi(f"NVIDIA GB10, 12.1, {memory}, 580.95.05\n")
    assert gpus == [GB10]


def test_nvidia_smi_gb10_by_name_keeps_reported_memory() -> None:
    gpus, _ = parse_nvidia_smi("NVIDIA GB10, 12.1, 1024, 580.95.05\n")
    assert gpus[0].unified and gpus[0].memory == GIB


def test_nvidia_smi_tolerates_units_blank_lines_and_unknown_fields() -> None:
    gpus, driver = parse_nvidia_smi("\nTesla T4, [N/A], 15360 MiB, [N/A]\n\n")
    assert gpus == [GpuSpec(model="Tesla T4", sm="", memory=15360 * MIB)]
    assert driver == ""


def test_nvidia_smi_name_with_comma() -> None:
    gpus, _ = parse_nvidia_smi("Odd, Name, 8.0, 40960, 535.1\n")
    assert gpus[0].model == "Odd, Name" and gpus[0].sm == "8.0"


def test_nvidia_smi_empty_and_malformed() -> None:
    assert parse_nvidia_smi("") == ([], "")
    with pytest.raises(ValueError, match="nvidia-smi line 1"):
        parse_nvidia_smi("No devices were found\n")


def test_cuda_version_from_table() -> None:
    assert parse_cuda_version(fixture("nvidia-smi-4090-3060.txt")) == "12.4"
    assert parse_cuda_version(fixture("nvidia-smi-gb10.txt")) == "13.0"
    assert parse_cuda_version("NVIDIA-SMI has failed\n") == ""


@pytest.mark.parametrize(
    ("nvml", "text"), [(12040, "12.4"), (13000, "13.0"), (11080, "11.8"), (12090, "12.9"), (0, "")]
)
def test_cuda_version_from_nvml(nvml: int, text: str) -> None:
    assert cuda_version(nvml) == text


@pytest.mark.parametrize(
    ("n", "text"),
    [(24564 * MIB, "23GiB"), (81559 * MIB, "79GiB"), (16 * GIB, "16GiB"), (512 * MIB, "512MiB"),
     (1000, "1000"), (0, "0")],
)
def test_floor_size(n: int, text: str) -> None:
    assert floor_size(n) == text


@given(st.integers(min_value=0, max_value=2**50))
def test_floor_size_never_rounds_up(n: int) -> None:
    shown = parse_size(floor_size(n))
    assert shown <= n
    assert n - shown < (GIB if n >= GIB else MIB)


@pytest.mark.parametrize(
    ("host", "name"),
    [("gpu1", "gpu1"), ("DGX-Spark", "dgx-spark"), ("box.lab.example", "box.lab.example"),
     ("My Box!", "my-box"), ("-x", "x"), ("", "local"), ("!!!", "local")],
)
def test_machine_name(host: str, name: str) -> None:
    assert machine_name(host) == name


def test_machine_spec_drops_driver_without_gpus() -> None:
    spec = machine_spec("amd64", 4, 8 * GIB, [], "550.54.15", "12.4")
    assert spec == MachineSpec(arch="amd64", cpus=4, memory=8 * GIB)


# --- YAML ------------------------------------------------------------------------------------


GOLDEN = {
    "machine-4090-3060.yaml": (
        "myhost",
        machine_spec("amd64", 16, parse_meminfo(fixture("meminfo-amd64.txt")),
                     [RTX_4090, RTX_3060], "550.54.15", "12.4"),
    ),
    "machine-gb10.yaml": (
        "spark",
        machine_spec("arm64", 20, parse_meminfo(fixture("meminfo-gb10.txt")), [GB10],
                     "580.95.05", "13.0"),
    ),
    "machine-h100.yaml": (
        "h100",
        machine_spec("amd64", 26, 235 * GIB + 12345, [H100], "535.129.03", "12.2"),
    ),
    "machine-cpu-only.yaml": ("laptop", machine_spec("amd64", 2, 24542412 * 1024, [])),
}


def _floored(spec: MachineSpec) -> MachineSpec:
    def down(n: int) -> int:
        return parse_size(floor_size(n))

    gpus = [gpu.model_copy(update={"memory": down(gpu.memory)}) for gpu in spec.gpus]
    return spec.model_copy(update={"memory": down(spec.memory), "gpus": gpus})


@pytest.mark.parametrize("golden", sorted(GOLDEN))
def test_render_golden(golden: str) -> None:
    name, spec = GOLDEN[golden]
    text = render_machine_yaml(name, spec)
    assert text == fixture(golden)
    assert load_machine(text, name) == _floored(spec)


def test_render_is_deterministic_and_keeps_extra_fields() -> None:
    spec = MachineSpec(arch="arm64", cpus=2.5, memory=3 * GIB, host="10.0.0.7",
                       profile={"B": "2", "A": "yes"})
    text = render_machine_yaml("edge", spec)
    assert text == render_machine_yaml("edge", spec)
    assert text.index("A:") < text.index("B:")
    assert load_machine(text, "edge") == spec


_awkward = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30)


@settings(max_examples=100)
@given(model=_awkward, sm=st.text(max_size=8), driver=_awkward, name=_awkward)
def test_render_round_trips_any_strings(model: str, sm: str, driver: str, name: str) -> None:
    spec = machine_spec("amd64", 1, GIB, [GpuSpec(model=model, sm=sm, memory=GIB)], driver, "1.0")
    data = YAML(typ="safe").load(render_machine_yaml(name, spec))
    assert list(data["machines"]) == [name]
    assert MachineSpec.model_validate(data["machines"][name]) == spec


# --- the shell, with fakes -------------------------------------------------------------------


class FakeNvml:
    """Just enough of pynvml (nvidia-ml-py) for the calls detection makes."""

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):  # pynvml's name
        pass

    def __init__(self, devices: list[tuple[str, tuple[int, int], int | None]], *,
                 fail: str = "") -> None:
        self.devices = devices
        self.fail = fail
        self.shut_down = False

    def _maybe_fail(self, call: str) -> None:
        if self.fail == call:
            raise self.NVMLError(f"{call} failed")

    def nvmlInit(self) -> None:
        self._maybe_fail("init")

    def nvmlShutdown(self) -> None:
        self.shut_down = True

    def nvmlSystemGetDriverVersion(self) -> str:
        return "580.95.05"

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        return 13000

    def nvmlDeviceGetCount(self) -> int:
        if self.fail == "count":
            raise RuntimeError("driver/library version mismatch")
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetName(self, handle: int) -> bytes:
        return self.devices[handle][0].encode()  # older nvidia-ml-py returns bytes

    def nvmlDeviceGetCudaComputeCapability(self, handle: int) -> tuple[int, int]:
        return self.devices[handle][1]

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        total = self.devices[handle][2]
        if total is None:
            raise self.NVMLError_NotSupported("Not Supported")
        return SimpleNamespace(total=total, free=total, used=0)


def test_nvml_reads_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = FakeNvml([("NVIDIA GeForce RTX 4090", (8, 9), 24564 * MIB),
                     ("NVIDIA GeForce RTX 3060", (8, 6), 12288 * MIB)])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert probe_gpus() == GpuStack([RTX_4090, RTX_3060], "580.95.05", "13.0")
    assert nvml.shut_down


def test_nvml_gb10_memory_not_supported_is_unified(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml([("NVIDIA GB10", (12, 1), None)]))
    assert probe_gpus() == GpuStack([GB10], "580.95.05", "13.0")


def test_nvml_without_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml([]))
    assert probe_gpus() == NO_GPUS


def test_broken_gpu_stack_never_raises(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml([], fail="count"))
    monkeypatch.setenv("PATH", str(tmp_path))  # and no nvidia-smi to fall back to
    spec = detect()
    assert spec.gpus == [] and spec.driver == "" and spec.cuda_driver == ""


def test_detect_unsupported_arch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "ppc64le")
    with pytest.raises(DockyardError, match="ppc64le"):
        detect()
