"""Detect the local machine (CPU, memory, NVIDIA GPUs) and print it as a manifest entry.

Pure parsers and renderers come first and are tested with fixture text; the impure shell
(`detect`, `probe_gpus`) only gathers raw facts from the OS, NVML or `nvidia-smi`.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import io
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from dockyard.errors import DockyardError
from dockyard.manifest.models import GpuSpec, MachineSpec
from dockyard.names import manifest_name
from dockyard.platforms import Arch, arch_of

MIB = 1024**2
GIB = 1024**3
NVIDIA_SMI_QUERY = "name,compute_cap,memory.total,driver_version"
NVIDIA_SMI_TIMEOUT = 15.0  # seconds; a wedged driver can make nvidia-smi hang forever

_MEMTOTAL = re.compile(r"^MemTotal:\s*(\d+)\s*(kB)?\s*$", re.MULTILINE)
_MIB_VALUE = re.compile(r"^(\d+)(?:\s*MiB)?$")
_VERSION = re.compile(r"^\d+(?:\.\d+)+$")
_CUDA_VERSION = re.compile(r"CUDA Version\s*:\s*(\d+\.\d+)")
# Plain YAML scalars: words of safe characters, one space apart, starting with a letter.
_PLAIN = re.compile(r"[A-Za-z][\w.()/+-]*(?: [\w.()/+-]+)*", re.ASCII)
# Words some YAML readers (1.1) turn into booleans or null; such strings are quoted.
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


class GpuStack(NamedTuple):
    """What the NVIDIA stack reports: the GPUs, the driver, and its highest CUDA version."""

    gpus: list[GpuSpec]
    driver: str = ""
    cuda_driver: str = ""


NO_GPUS = GpuStack([])


# --- pure core -------------------------------------------------------------------------------


def parse_meminfo(text: str) -> int:
    """Total memory in bytes from the MemTotal line of /proc/meminfo."""
    match = _MEMTOTAL.search(text)
    if not match:
        raise ValueError("no `MemTotal:` line found in /proc/meminfo")
    number, unit = match.groups()
    # The kernel writes "kB" but means KiB.
    return int(number) * (1024 if unit else 1)


def normalize_arch(uname_machine: str) -> Arch:
    """Docker's name for a CPU architecture: x86_64 -> amd64, aarch64/arm64 -> arm64."""
    arch = arch_of(uname_machine)
    if arch is None:
        raise ValueError(
            f"unsupported CPU architecture {uname_machine!r}: dockyard runs on amd64 (x86_64) "
            "and arm64 (aarch64) machines"
        )
    return arch


def is_unified(model: str) -> bool:
    """True for GPUs known to share the machine's RAM (DGX Spark's GB10)."""
    return "GB10" in model.upper()


def parse_nvidia_smi(csv_text: str) -> tuple[list[GpuSpec], str]:
    """GPUs and driver version from `nvidia-smi --query-gpu=name,compute_cap,memory.total,
    driver_version --format=csv,noheader,nounits` (memory in MiB)."""
    gpus: list[GpuSpec] = []
    driver = ""
    rows = csv.reader(io.StringIO(csv_text), skipinitialspace=True)
    for number, row in enumerate(rows, start=1):
        fields = [field.strip() for field in row]
        if not any(fields):
            continue
        if len(fields) < 4:
            raise ValueError(
                f"nvidia-smi line {number}: expected {NVIDIA_SMI_QUERY}, got {','.join(row)!r}"
            )
        # nvidia-smi does not quote its CSV; a comma inside a name would split it.
        model = ", ".join(fields[:-3])
        cap, memory, version = fields[-3:]
        total = _MIB_VALUE.match(memory)
        # GB10 has no memory of its own: nvidia-smi says "[N/A]" or "Not Supported".
        gpus.append(GpuSpec(
            model=model,
            sm=cap if _VERSION.match(cap) else "",
            memory=int(total.group(1)) * MIB if total else 0,
            unified=total is None or is_unified(model),
        ))
        if not driver and _VERSION.match(version):
            driver = version
    return gpus, driver


def parse_cuda_version(nvidia_smi_text: str) -> str:
    """The driver's CUDA version ("12.4") from plain `nvidia-smi` output; "" if it has none."""
    match = _CUDA_VERSION.search(nvidia_smi_text)
    return match.group(1) if match else ""


def cuda_version(nvml_version: int) -> str:
    """NVML's integer CUDA version as users write it: 12040 -> "12.4"."""
    if nvml_version <= 0:
        return ""
    major, rest = divmod(nvml_version, 1000)
    return f"{major}.{rest // 10}"


def machine_spec(
    arch: Arch, cpus: float, memory: int, gpus: Sequence[GpuSpec] = (),
    driver: str = "", cuda_driver: str = "",
) -> MachineSpec:
    """A validated MachineSpec from detected parts."""
    # Driver versions only describe GPUs; without one they would just be noise in the manifest.
    if not gpus:
        driver = cuda_driver = ""
    return MachineSpec(
        arch=arch, cpus=cpus, memory=memory, gpus=list(gpus), driver=driver,
        cuda_driver=cuda_driver,
    )


def floor_size(n: int) -> str:
    """Whole GiB, rounded down (24564MiB -> "23GiB"): a manifest never promises memory the
    machine lacks. Below 1GiB whole MiB; below 1MiB plain bytes."""
    if n < 0:
        raise ValueError("a size cannot be negative")
    if n >= GIB:
        return f"{n // GIB}GiB"
    if n >= MIB:
        return f"{n // MIB}MiB"
    return str(n)


def machine_name(hostname: str) -> str:
    """A manifest-valid machine name from a host name ("GPU-Box_1" -> "gpu-box_1")."""
    return manifest_name(hostname, "local")


def render_machine_yaml(name: str, spec: MachineSpec) -> str:
    """A `machines:` snippet for fleet.yaml; sizes rounded down to whole GiB, empty keys left
    out, versions quoted so YAML keeps them strings."""
    lines = [
        "machines:",
        f"  {_scalar(name)}:",
        f"    arch: {spec.arch}",
        f"    cpus: {_number(spec.cpus)}",
        f"    memory: {floor_size(spec.memory)}",
    ]
    if spec.gpus:
        lines.append("    gpus:")
        lines.extend(
            f"      - {{model: {_scalar(gpu.model)}, sm: {_quote(gpu.sm)}, "
            f"memory: {floor_size(gpu.memory)}, unified: {'true' if gpu.unified else 'false'}}}"
            for gpu in spec.gpus
        )
    if spec.cuda_driver:
        lines.append(f"    cuda_driver: {_quote(spec.cuda_driver)}")
    if spec.driver:
        lines.append(f"    driver: {_quote(spec.driver)}")
    if spec.host:
        lines.append(f"    host: {_quote(spec.host)}")
    if spec.profile:
        lines.append("    profile:")
        lines.extend(f"      {_scalar(k)}: {_quote(v)}" for k, v in sorted(spec.profile.items()))
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    # Plain ASCII out, everything else as a YAML escape: no reader can then misread a control
    # character, and astral characters stay one \U escape (JSON would split them in two).
    out = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def _scalar(text: str) -> str:
    plain = _PLAIN.fullmatch(text) and text.lower() not in _RESERVED
    return text if plain else _quote(text)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# --- impure shell ----------------------------------------------------------------------------


def detect() -> MachineSpec:
    """The local machine; a missing or broken GPU stack means no GPUs, never an error."""
    try:
        arch = normalize_arch(platform.machine())
    except ValueError as exc:
        raise DockyardError(str(exc), fix="write this machine into fleet.yaml by hand") from None
    stack = probe_gpus()
    return machine_spec(
        arch, os.cpu_count() or 0, _total_memory(), stack.gpus, stack.driver, stack.cuda_driver
    )


def probe_gpus() -> GpuStack:
    """NVIDIA GPUs via NVML, else via `nvidia-smi`, else none."""
    stack = _probe_nvml()
    if stack is None:
        stack = _probe_nvidia_smi()
    return stack if stack is not None else NO_GPUS


def _total_memory() -> int:
    with contextlib.suppress(OSError, ValueError):
        return parse_meminfo(Path("/proc/meminfo").read_text(encoding="utf-8"))
    # No /proc (macOS, a locked-down sandbox): ask the C library instead.
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError, AttributeError):
        return 0


def _probe_nvml() -> GpuStack | None:
    """None when NVML cannot answer (no nvidia-ml-py, no driver), so nvidia-smi gets a try."""
    try:
        nvml: Any = importlib.import_module("pynvml")
    except ImportError:
        return None
    # pynvml raises its own NVMLError subclasses, but a broken install can raise anything.
    try:
        nvml.nvmlInit()
    except Exception:
        return None
    try:
        return _read_nvml(nvml)
    except Exception:
        return None
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()


def _read_nvml(nvml: Any) -> GpuStack:
    gpus: list[GpuSpec] = []
    for index in range(int(nvml.nvmlDeviceGetCount())):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        model = _text(nvml.nvmlDeviceGetName(handle))
        try:
            major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
            sm = f"{major}.{minor}"
        except nvml.NVMLError:
            sm = ""
        try:
            memory, unified = int(nvml.nvmlDeviceGetMemoryInfo(handle).total), is_unified(model)
        except nvml.NVMLError_NotSupported:
            # GB10 (DGX Spark): the GPU uses the machine's RAM, so NVML has no total for it.
            memory, unified = 0, True
        gpus.append(GpuSpec(model=model, sm=sm, memory=memory, unified=unified))
    if not gpus:
        return NO_GPUS
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
    except nvml.NVMLError:
        driver = ""
    return GpuStack(gpus, driver, _nvml_cuda_version(nvml))


def _nvml_cuda_version(nvml: Any) -> str:
    # _v2 is the current call; older nvidia-ml-py releases only have the original.
    query = getattr(nvml, "nvmlSystemGetCudaDriverVersion_v2", None)
    if query is None:
        query = nvml.nvmlSystemGetCudaDriverVersion
    try:
        return cuda_version(int(query()))
    except nvml.NVMLError:
        return ""


def _text(value: str | bytes) -> str:
    # Older nvidia-ml-py returns bytes, newer str.
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _probe_nvidia_smi() -> GpuStack | None:
    """None when nvidia-smi is missing or fails (no driver, no devices)."""
    csv_text = _run_nvidia_smi(f"--query-gpu={NVIDIA_SMI_QUERY}", "--format=csv,noheader,nounits")
    if csv_text is None:
        return None
    try:
        gpus, driver = parse_nvidia_smi(csv_text)
    except ValueError:
        return None
    if not gpus:
        return NO_GPUS
    # Only the plain table names the CUDA version; a failure there still leaves the GPUs.
    return GpuStack(gpus, driver, parse_cuda_version(_run_nvidia_smi() or ""))


def _run_nvidia_smi(*args: str) -> str | None:
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return None
    try:
        done = subprocess.run(
            [executable, *args], capture_output=True, text=True, errors="replace",
            timeout=NVIDIA_SMI_TIMEOUT, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None
