"""Compatibility data as typed queries: CUDA <-> driver, CUDA/torch <-> SM, torch wheels.

The facts live in ``data/compat.yaml`` (with their sources); this module only reads them,
once, and answers questions. Pure: no network, no clock. A question about something the data
does not list answers ``None`` ("unknown"), so callers can stay silent instead of guessing.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ruamel.yaml import YAML

from dockyard.names import package_name

WHEEL_INDEX = "https://download.pytorch.org/whl/"
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")
_CU = re.compile(r"^cu(\d+)(\d)$")


@cache
def version_key(version: str) -> tuple[int, ...]:
    """"12.8.0" -> (12, 8, 0); "2.6.0a0+b5b1008" -> (2, 6, 0); "" or junk -> ()."""
    parts: list[int] = []
    for piece in version.strip().lstrip("vV").split("+")[0].split("."):
        digits = re.match(r"\d+", piece)
        if not digits:
            break
        parts.append(int(digits[0]))
        if digits[0] != piece:
            break
    return tuple(parts)


def minor(version: str) -> str:
    """"12.8.1" -> "12.8"; "2.10.0+cu128" -> "2.10"; "" when there is no major.minor."""
    key = version_key(version)
    return f"{key[0]}.{key[1]}" if len(key) >= 2 else ""


def variant_cuda(variant: str) -> str:
    """"cu128" -> "12.8"; "cu121" -> "12.1"; "cpu" or junk -> ""."""
    match = _CU.match(variant.strip().lower())
    return f"{match[1]}.{match[2]}" if match else ""


def cuda_variant(cuda: str) -> str:
    """"12.8" (or "12.8.1", or "cu128") -> "cu128"; "" when it is not a CUDA version."""
    if _CU.match(cuda.strip().lower()):
        return cuda.strip().lower()
    key = version_key(cuda)
    return f"cu{key[0]}{key[1]}" if len(key) >= 2 else ""


@dataclass(frozen=True)
class Requirement:
    name: str  # PEP 503 normalised: lowercase, runs of -_. as "-"
    extras: tuple[str, ...]
    pin: str  # the version after `==`, "" when not pinned exactly
    text: str

    @property
    def local(self) -> str:
        """The local version label of the pin: "cu121" for torch==2.2.2+cu121."""
        return self.pin.split("+", 1)[1] if "+" in self.pin else ""


def parse_requirement(text: str) -> Requirement | None:
    """A requirement line ("torch==2.2.2+cu121", "transformers[torch]>=4") or None (a URL,
    an option such as --index-url, a comment)."""
    line = text.split("#", 1)[0].split(";", 1)[0].strip()
    if not line or line.startswith("-") or "://" in line or line.startswith((".", "/")):
        return None
    match = _REQUIREMENT.match(line)
    if not match:
        return None
    extras = tuple(sorted(package_name(e) for e in (match[2] or "[]")[1:-1].split(",")
                          if e.strip()))
    spec = match[3].strip()
    pin = spec[2:].strip() if spec.startswith("==") and "," not in spec else ""
    if pin.endswith("*"):
        pin = ""
    return Requirement(package_name(match[1]), extras, pin, text.strip())


@dataclass(frozen=True)
class NoWheel:
    name: str
    arch: str
    below: str  # only versions older than this; "" for every version
    cpu_only: bool  # a wheel exists, but without CUDA
    note: str
    python_below: str = ""  # wheels only for CPython older than this


@dataclass(frozen=True)
class Data:
    cuda_min_driver: dict[str, str]
    cuda_sm: dict[str, tuple[str, str]]  # sm -> (first CUDA, last CUDA or "")
    gpu_sm: dict[str, str]
    torch: dict[str, dict[str, tuple[str, ...]]]  # "2.7" -> {"cu128": ("7.5", ...)}
    torch_arm64: dict[str, tuple[str, ...]]
    torch_pypi_default: dict[str, str]
    cuda_tag_prefix: tuple[str, ...]
    ngc_cuda: dict[str, str]
    vendor_torch: tuple[str, ...]
    cuda_runtime: tuple[str, ...]
    torch_dependents: frozenset[str]
    torch_pinners: frozenset[str]
    env_misnamed: dict[str, str]
    no_wheel: tuple[NoWheel, ...]


def read_yaml() -> dict[str, Any]:
    """compat.yaml itself: the source of truth, with its sources in comments."""
    text = resources.files("dockyard").joinpath("data", "compat.yaml").read_text("utf-8")
    raw: dict[str, Any] = YAML(typ="safe", pure=True).load(text)
    return raw


def generated_json() -> str:
    """compat.json: compat.yaml as JSON, which loads in a millisecond instead of ~70 ms of
    pure-Python YAML on every `dockyard check`. Regenerate after editing the YAML with
    `python -m dockyard.compat`; a unit test fails while the two differ."""
    return json.dumps(read_yaml(), indent=1, sort_keys=True) + "\n"


@cache
def data() -> Data:
    """compat.json (the generated mirror of compat.yaml), read once per process."""
    raw: dict[str, Any] = json.loads(
        resources.files("dockyard").joinpath("data", "compat.json").read_text("utf-8"))
    images = raw["images"]
    torch = raw["torch"]
    return Data(
        cuda_min_driver={str(k): str(v) for k, v in raw["cuda_min_driver"].items()},
        cuda_sm={str(k): (str(v["from"]), str(v.get("until", "")))
                 for k, v in raw["cuda_sm"].items()},
        gpu_sm={str(k): str(v) for k, v in raw["gpu_sm"].items()},
        torch={str(k): {str(n): tuple(str(s) for s in sms)
                        for n, sms in v["variants"].items()} for k, v in torch.items()},
        torch_arm64={str(k): tuple(str(n) for n in v.get("arm64", [])) for k, v in torch.items()},
        torch_pypi_default={str(k): str(v) for k, v in raw["torch_pypi_default"].items()},
        cuda_tag_prefix=tuple(images["cuda_tag_prefix"]),
        ngc_cuda={str(k): str(v) for k, v in images["ngc_cuda"].items()},
        vendor_torch=tuple(images["vendor_torch"]),
        cuda_runtime=tuple(images["cuda_runtime"]),
        torch_dependents=frozenset(str(n) for n in raw["torch_dependents"]),
        torch_pinners=frozenset(str(n) for n in raw["torch_pinners"]),
        env_misnamed={str(k): str(v) for k, v in raw["env_misnamed"].items()},
        no_wheel=tuple(NoWheel(str(e["name"]), arch, str(e.get("below", "")),
                               bool(e.get("cpu_only", False)), str(e["note"]),
                               str(e.get("python_below", "")))
                       for arch, entries in raw["no_wheel"].items() for e in entries or []),
    )


# --- CUDA and drivers --------------------------------------------------------------------------

def min_driver(cuda: str) -> str | None:
    """The oldest Linux driver that runs CUDA `cuda` (its minor release's GA), or None."""
    return data().cuda_min_driver.get(minor(cuda))


def driver_cuda(driver: str) -> str | None:
    """The highest CUDA version a driver ("535.104.05") supports natively, or None."""
    key = version_key(driver)
    if not key:
        return None
    fits = [c for c, d in data().cuda_min_driver.items() if version_key(d) <= key]
    return max(fits, key=version_key) if fits else None


def cuda_at_least(have: str, need: str) -> bool:
    return version_key(have)[:2] >= version_key(need)[:2]


# --- SM architectures ------------------------------------------------------------------------

def sm_runs(built: tuple[str, ...] | list[str], sm: str) -> bool:
    """Does code built for `built` run natively on `sm`? Cubins run on the same major with an
    equal or higher minor (CUDA C Programming Guide, "Binary Compatibility")."""
    want = version_key(sm)
    return any(len(k := version_key(b)) >= 2 and len(want) >= 2 and k[0] == want[0]
               and k[1] <= want[1] for b in built)


def cuda_targets(cuda: str) -> list[str] | None:
    """The SMs CUDA `cuda` can compile for; None when that CUDA is unknown."""
    if not minor(cuda) or (minor(cuda) not in data().cuda_min_driver
                           and not _newer_than_known(cuda)):
        return None
    have = version_key(cuda)[:2]
    return [sm for sm, (first, last) in data().cuda_sm.items()
            if version_key(first)[:2] <= have and (not last or have <= version_key(last)[:2])]


def _newer_than_known(cuda: str) -> bool:
    newest = max(data().cuda_min_driver, key=version_key)
    return version_key(cuda)[:2] > version_key(newest)[:2]


def supports_sm(cuda: str, sm: str) -> bool | None:
    """Can a build made with CUDA `cuda` run natively on a GPU of compute capability `sm`?
    None when either is unknown."""
    targets = cuda_targets(cuda)
    if targets is None or not version_key(sm):
        return None
    return sm_runs(targets, sm)


def first_cuda_for(sm: str) -> str | None:
    """The oldest CUDA whose builds run natively on `sm` ("12.1" -> "12.8", via sm_120)."""
    want = version_key(sm)
    firsts = [first for s, (first, _) in data().cuda_sm.items()
              if len(k := version_key(s)) >= 2 and len(want) >= 2 and k[0] == want[0]
              and k[1] <= want[1]]
    return min(firsts, key=version_key) if firsts else None


def gpu_sm(model: str) -> str | None:
    """Compute capability of a GPU model name ("NVIDIA GeForce RTX 4090" -> "8.9")."""
    name = " " + re.sub(r"\b(nvidia|geforce)\b|[-_/(),]", " ", model.lower()) + " "
    name = re.sub(r"\s+", " ", name)
    for known in sorted(data().gpu_sm, key=len, reverse=True):
        if f" {known.lower()} " in name:
            return data().gpu_sm[known]
    return None


# --- PyTorch wheels --------------------------------------------------------------------------

def torch_variants(torch: str) -> dict[str, tuple[str, ...]] | None:
    """CUDA wheel variants of a torch release ("2.7.1" -> {"cu118": SMs, ...}), or None."""
    return data().torch.get(minor(torch))


def torch_sms(torch: str, variant: str) -> tuple[str, ...] | None:
    """The SMs the `variant` wheels of `torch` are built for; None when unknown."""
    return (torch_variants(torch) or {}).get(cuda_variant(variant) or variant)


def torch_arm64(torch: str) -> tuple[str, ...] | None:
    """The CUDA variants of `torch` published for linux aarch64; None when unknown."""
    return data().torch_arm64.get(minor(torch))


def pypi_default_variant(torch: str) -> str | None:
    """The CUDA variant PyPI's Linux x86_64 wheel of `torch` is built with."""
    return data().torch_pypi_default.get(minor(torch))


def wheel_index(torch: str, cuda: str, arch: str = "amd64") -> str | None:
    """The index to install `torch` built for `cuda` on `arch` from, e.g.
    https://download.pytorch.org/whl/cu128; None when no such wheel is published (or the
    release is unknown). `cuda` "" or "cpu" asks for the CPU build."""
    if not cuda or cuda == "cpu":
        return WHEEL_INDEX + "cpu" if minor(torch) in data().torch else None
    variant = cuda_variant(cuda)
    variants = torch_variants(torch)
    if not variant or variants is None or variant not in variants:
        return None
    if arch == "arm64" and variant not in (torch_arm64(torch) or ()):
        return None
    return WHEEL_INDEX + variant


# --- Images and packages -----------------------------------------------------------------------

def _repo(image: str) -> tuple[str, str]:
    """"nvcr.io/nvidia/pytorch:25.11-py3" -> ("nvcr.io/nvidia/pytorch", "25.11-py3")."""
    image = image.split("@", 1)[0]
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = image.rsplit(":", 1)
        return repo, tag
    return image, ""


def _matches(repo: str, prefixes: tuple[str, ...]) -> bool:
    repo = repo.lower().removeprefix("docker.io/")
    return any(repo == p or repo.startswith(p.rstrip("/") + "/") or repo == p.rstrip("/")
               for p in prefixes)


def image_cuda(image: str) -> str | None:
    """The CUDA a stock image's tag says it needs: nvidia/cuda:12.8.0-... -> "12.8",
    nvcr.io/nvidia/pytorch:25.11-py3 -> "13.0" (NGC month table). None when unknown."""
    repo, tag = _repo(image)
    if not tag:
        return None
    if _matches(repo, data().cuda_tag_prefix):
        return minor(tag) or None
    if repo.lower().startswith("nvcr.io/nvidia/"):
        month = re.match(r"(\d\d\.\d\d)", tag)
        return data().ngc_cuda.get(month[1]) if month else None
    return None


def image_torch(image: str) -> tuple[str, str] | None:
    """The torch build of an official pytorch/pytorch image, read off its tag:
    pytorch/pytorch:2.7.0-cuda12.8-cudnn9-runtime -> ("2.7.0", "cu128"); None otherwise."""
    repo, tag = _repo(image)
    if repo.lower().removeprefix("docker.io/") != "pytorch/pytorch":
        return None
    match = re.match(r"^(\d+\.\d+(?:\.\d+)?)-cuda(\d+\.\d+)", tag)
    return (match[1], cuda_variant(match[2])) if match else None


def is_vendor_torch_image(image: str) -> bool:
    """A base that ships its own torch build (NGC PyTorch and friends)."""
    return _matches(_repo(image)[0], data().vendor_torch)


def is_cuda_runtime_image(image: str) -> bool:
    """A base that already carries the CUDA runtime libraries (nvidia/cuda)."""
    return _matches(_repo(image)[0], data().cuda_runtime)


def torch_dependent(requirement: str) -> str | None:
    """The requirement's name when it is torch or pulls it in (sentence-transformers, ...)."""
    req = parse_requirement(requirement)
    if req is None:
        return None
    deps = data().torch_dependents
    if req.name in deps or any(f"{req.name}[{e}]" in deps for e in req.extras):
        return req.name
    return None


def pins_torch(requirement: str) -> str | None:
    """The requirement's name when its releases each need one exact torch (torchvision)."""
    req = parse_requirement(requirement)
    return req.name if req and req.name in data().torch_pinners else None


def env_real_name(name: str) -> str | None:
    """The variable meant by a near-miss name ("TORCH_CUDA_ALLOC_CONF" -> "PYTORCH_CUDA_
    ALLOC_CONF"); None when `name` is not a known near-miss."""
    return data().env_misnamed.get(name.upper())


def no_wheel(requirement: str, arch: str, python: str = "") -> NoWheel | None:
    """The known gap when `requirement` has no (CUDA) wheel for `arch` (and CPython `python`,
    when known), else None."""
    req = parse_requirement(requirement)
    if req is None:
        return None
    for gap in data().no_wheel:
        if gap.arch != arch or gap.name != req.name:
            continue
        if gap.below and (not req.pin or version_key(req.pin) >= version_key(gap.below)):
            continue  # unpinned: pip takes a release that has the wheel
        if gap.python_below and (not version_key(python) or version_key(python)[:2]
                                 < version_key(gap.python_below)[:2]):
            continue
        return gap
    return None


if __name__ == "__main__":  # python -m dockyard.compat: rewrite data/compat.json
    from pathlib import Path

    target = Path(__file__).parent / "data" / "compat.json"
    target.write_text(generated_json(), encoding="utf-8")
    sys.stdout.write(f"wrote {target}\n")
