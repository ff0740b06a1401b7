"""The compatibility data and its queries: known answers from the sources named in
data/compat.yaml, and "unknown" (None) for what the data does not list."""

from __future__ import annotations

import pytest

from dockyard import compat


def test_json_mirror_matches_the_yaml() -> None:
    """data/compat.json is generated from compat.yaml: `python -m dockyard.compat`."""
    from importlib import resources

    shipped = resources.files("dockyard").joinpath("data", "compat.json").read_text("utf-8")
    assert shipped == compat.generated_json(), "run `python -m dockyard.compat`"


def test_data_is_packaged_and_loads_once() -> None:
    first = compat.data()
    assert first is compat.data()  # cached
    assert "12.8" in first.cuda_min_driver
    assert first.torch["2.7"]["cu128"][-1] == "12.0"


@pytest.mark.parametrize(("version", "key"), [
    ("12.8.0", (12, 8, 0)), ("2.6.0a0+b5b1008", (2, 6, 0)), ("v0.8.5", (0, 8, 5)),
    ("2.10.0+cu128", (2, 10, 0)), ("", ()), ("latest", ())])
def test_version_key(version: str, key: tuple[int, ...]) -> None:
    assert compat.version_key(version) == key


def test_minor_and_variants() -> None:
    assert compat.minor("12.8.1") == "12.8"
    assert compat.minor("2.10.0+cu128") == "2.10"
    assert compat.variant_cuda("cu128") == "12.8"
    assert compat.variant_cuda("cu118") == "11.8"
    assert compat.variant_cuda("cpu") == ""
    assert compat.cuda_variant("12.1") == "cu121"
    assert compat.cuda_variant("13.0.2") == "cu130"
    assert compat.cuda_variant("cu126") == "cu126"


@pytest.mark.parametrize(("cuda", "driver"), [
    ("11.8", "520.61.05"), ("12.1", "530.30.02"), ("12.2.2", "535.54.03"), ("12.8", "570.26"),
    ("13.0", "580.65.06")])
def test_min_driver(cuda: str, driver: str) -> None:
    assert compat.min_driver(cuda) == driver


def test_min_driver_unknown_cuda() -> None:
    assert compat.min_driver("12.7") is None
    assert compat.min_driver("") is None


@pytest.mark.parametrize(("driver", "cuda"), [
    ("535.104.05", "12.2"), ("570.124.06", "12.8"), ("580.95.05", "13.0"), ("470.42.01", "11.4")])
def test_driver_cuda(driver: str, cuda: str) -> None:
    assert compat.driver_cuda(driver) == cuda


def test_driver_too_old_for_any_listed_cuda() -> None:
    assert compat.driver_cuda("440.33") is None
    assert compat.driver_cuda("") is None


@pytest.mark.parametrize(("cuda", "sm", "ok"), [
    ("12.8", "12.0", True), ("12.8", "12.1", True),  # GB10 runs sm_120 code
    ("12.6", "12.0", False), ("12.6", "12.1", False), ("12.4", "10.0", False),
    ("12.8", "10.0", True), ("11.8", "9.0", True), ("11.7", "9.0", False),
    ("11.8", "8.9", True), ("11.1", "8.6", True), ("11.0", "8.6", True),  # sm_80 code on 8.6
    ("12.1", "8.9", True), ("13.0", "7.0", False), ("12.9", "7.0", True), ("12.0", "3.7", False)])
def test_supports_sm(cuda: str, sm: str, ok: bool) -> None:
    assert compat.supports_sm(cuda, sm) is ok


def test_supports_sm_unknown() -> None:
    assert compat.supports_sm("12.7", "8.9") is None
    assert compat.supports_sm("12.8", "") is None


def test_first_cuda_for() -> None:
    assert compat.first_cuda_for("12.1") == "12.8"
    assert compat.first_cuda_for("9.0") == "11.8"
    # sm_80 cubins run on 8.6 and 8.9 (same major, higher minor): CUDA 11.0 builds run there,
    # though only 11.1 / 11.8 can target them (and their newer instructions) directly.
    assert compat.first_cuda_for("8.6") == "11.0"
    assert compat.first_cuda_for("8.9") == "11.0"


def test_torch_variants() -> None:
    assert set(compat.torch_variants("2.7.1") or {}) == {"cu118", "cu126", "cu128"}
    assert set(compat.torch_variants("2.2.2") or {}) == {"cu118", "cu121"}
    assert compat.torch_variants("1.13.1") is None
    sms = compat.torch_sms("2.2.2", "cu121") or ()
    assert "9.0" in sms and "12.0" not in sms
    assert compat.sm_runs(sms, "8.9")  # sm_86 code runs on Ada
    assert not compat.sm_runs(sms, "12.0")
    assert compat.sm_runs(compat.torch_sms("2.7.0", "cu128") or (), "12.1")


@pytest.mark.parametrize(("torch", "cuda", "arch", "url"), [
    ("2.7.1", "12.8", "amd64", "https://download.pytorch.org/whl/cu128"),
    ("2.7.1", "cu128", "arm64", "https://download.pytorch.org/whl/cu128"),
    ("2.10.0", "12.8", "arm64", "https://download.pytorch.org/whl/cu128"),
    ("2.2.2", "12.1", "amd64", "https://download.pytorch.org/whl/cu121"),
    ("2.2.2", "cpu", "arm64", "https://download.pytorch.org/whl/cpu"),
    ("2.2.2", "12.1", "arm64", None),  # no CUDA aarch64 wheels before 2.7
    ("2.7.1", "12.1", "amd64", None),  # no cu121 variant of 2.7
    ("1.13.1", "11.7", "amd64", None)])  # unknown release
def test_wheel_index(torch: str, cuda: str, arch: str, url: str | None) -> None:
    assert compat.wheel_index(torch, cuda, arch) == url


@pytest.mark.parametrize(("model", "sm"), [
    ("NVIDIA GeForce RTX 4090", "8.9"), ("NVIDIA GeForce RTX 3060", "8.6"),
    ("NVIDIA GeForce RTX 3060 Ti", "8.6"), ("NVIDIA GB10", "12.1"),
    ("NVIDIA H100 80GB HBM3", "9.0"),
    ("NVIDIA GeForce RTX 5090", "12.0"), ("Tesla T4", "7.5"), ("NVIDIA L4", "8.9"),
    ("NVIDIA L40S", "8.9"), ("NVIDIA A100-SXM4-80GB", "8.0")])
def test_gpu_sm(model: str, sm: str) -> None:
    assert compat.gpu_sm(model) == sm


def test_gpu_sm_unknown() -> None:
    assert compat.gpu_sm("Radeon RX 7900") is None
    assert compat.gpu_sm("") is None


@pytest.mark.parametrize(("image", "cuda"), [
    ("nvidia/cuda:12.8.0-runtime-ubuntu22.04", "12.8"),
    ("docker.io/nvidia/cuda:12.1.1-runtime-ubuntu22.04", "12.1"),
    ("nvcr.io/nvidia/pytorch:25.11-py3", "13.0"), ("nvcr.io/nvidia/pytorch:24.12-py3", "12.6"),
    ("nvcr.io/nvidia/pytorch:19.01-py3", None), ("nvidia/cuda", None), ("python:3.11-slim", None),
    ("vllm/vllm-openai:v0.8.5", None)])
def test_image_cuda(image: str, cuda: str | None) -> None:
    assert compat.image_cuda(image) == cuda


def test_image_kinds() -> None:
    assert compat.is_vendor_torch_image("nvcr.io/nvidia/pytorch:25.11-py3")
    assert not compat.is_vendor_torch_image("nvcr.io/nvidia/pytorchx:1")
    assert not compat.is_vendor_torch_image("pytorch/pytorch:2.7.0-cuda12.8-cudnn9-runtime")
    assert compat.is_cuda_runtime_image("nvidia/cuda:12.1.1-runtime-ubuntu22.04")
    assert not compat.is_cuda_runtime_image("python:3.11-slim")


def test_parse_requirement() -> None:
    req = compat.parse_requirement("torch==2.2.2+cu121")
    assert req is not None and (req.name, req.pin, req.local) == ("torch", "2.2.2+cu121", "cu121")
    req = compat.parse_requirement("Sentence_Transformers[train] >=3 ; python_version>'3.8'")
    assert req is not None and req.name == "sentence-transformers" and req.extras == ("train",)
    assert req.pin == ""
    req = compat.parse_requirement("torch==2.3.*")
    assert req is not None and req.pin == ""
    for junk in ("", "# comment", "--index-url https://x", "https://x/y.whl", "./local"):
        assert compat.parse_requirement(junk) is None


@pytest.mark.parametrize(("text", "dep"), [
    ("torchaudio", "torchaudio"), ("funasr==1.2.0", "funasr"),
    ("sentence-transformers>=3", "sentence-transformers"), ("transformers[torch]", "transformers"),
    ("transformers", None), ("fastapi", None), ("Accelerate", "accelerate")])
def test_torch_dependent(text: str, dep: str | None) -> None:
    assert compat.torch_dependent(text) == dep


def test_no_wheel() -> None:
    gap = compat.no_wheel("faiss-gpu", "arm64")
    assert gap is not None and not gap.cpu_only and "x86_64" in gap.note
    assert compat.no_wheel("faiss-gpu", "amd64") is None  # Python unknown: not judged
    assert compat.no_wheel("faiss-gpu", "amd64", "3.9") is None
    gap = compat.no_wheel("faiss-gpu", "amd64", "3.11")
    assert gap is not None and gap.python_below == "3.10"
    assert compat.no_wheel("faiss-cpu", "arm64") is None
    assert compat.no_wheel("bitsandbytes==0.43.1", "arm64") is not None
    assert compat.no_wheel("bitsandbytes==0.46.1", "arm64") is None
    assert compat.no_wheel("bitsandbytes", "arm64") is None  # latest has one
    gap = compat.no_wheel("faster-whisper", "arm64")
    assert gap is not None and gap.cpu_only


def test_pins_torch() -> None:
    assert compat.pins_torch("torchvision") == "torchvision"
    assert compat.pins_torch("vllm>=0.4") == "vllm"
    assert compat.pins_torch("accelerate") is None


def test_image_torch() -> None:
    assert compat.image_torch("pytorch/pytorch:2.7.0-cuda12.8-cudnn9-runtime") == ("2.7.0", "cu128")
    assert compat.image_torch("docker.io/pytorch/pytorch:2.5.1-cuda12.4-cudnn9-devel") == (
        "2.5.1", "cu124")
    assert compat.image_torch("pytorch/pytorch:latest") is None
    assert compat.image_torch("nvcr.io/nvidia/pytorch:25.11-py3") is None
