"""DY3xx rules: for each, a manifest that triggers it (code, severity, place, a message and a
fix that name what is wrong) and one that does not.

Each manifest starts at line 1 with `fleet: demo`; places are counted by hand.
"""

from __future__ import annotations

from dockyard.checks import Finding, Severity, check
from dockyard.checks import cuda as rules
from dockyard.checks.run import MODULES, codes
from dockyard.manifest.load import loads
from dockyard.plan import plan

HEALTH = "    health: {cmd: [/bin/true]}\n"


def findings(text: str, code: str) -> list[Finding]:
    fleet = loads(text, environ={})
    return [f for f in check(fleet, plan(fleet)) if f.code == code]


def only(text: str, code: str) -> Finding:
    found = findings(text, code)
    assert len(found) == 1, found
    return found[0]


def machine(arch: str = "amd64", driver: str = "12.8", model: str = "NVIDIA GeForce RTX 4090",
            sm: str = "") -> str:
    fields = [f"model: {model}"] if model else []
    fields += ["memory: 24GiB"] + ([f'sm: "{sm}"'] if sm else [])
    gpu = "{" + ", ".join(fields) + "}"
    return f"""\
fleet: demo
machines:
  box:
    arch: {arch}
    cuda_driver: "{driver}"
    gpus: [{gpu}]
"""


def test_registered_with_documented_codes() -> None:
    assert rules in MODULES
    documented = {c for c in codes() if c.startswith("DY3")}
    assert documented == {f"DY30{i}" for i in range(1, 10)}
    for code in documented:
        assert codes()[code].title and codes()[code].fix


# --- DY301: CUDA above the driver --------------------------------------------------------------

def test_dy301_stock_cuda_image_on_an_older_driver() -> None:
    text = machine(driver="12.2") + """\
services:
  llm:
    image: nvidia/cuda:12.8.0-runtime-ubuntu22.04
    gpu: {memory: 4GiB}
""" + HEALTH
    f = only(text, "DY301")
    assert (f.severity, str(f.where)) == (Severity.ERROR, "fleet.yaml:9:5")
    assert "CUDA 12.8" in f.message and "CUDA 12.2" in f.message and "llm" in f.message
    assert "NVIDIA_REQUIRE_CUDA" in f.message
    assert ">= 570.26" in f.fix and f.service == "llm"


def test_dy301_torch_wheel_within_one_major_is_a_warning() -> None:
    text = machine(driver="12.2") + """\
families:
  torch:
    from: python:3.11-slim
    requirements: [torch==2.7.1+cu128]
services:
  app:
    family: torch
    build: app
    gpu: {memory: 4GiB}
""" + HEALTH
    f = only(text, "DY301")
    assert (f.severity, str(f.where)) == (Severity.WARNING, "fleet.yaml:10:20")
    assert "minor version compatibility" in f.message


def test_dy301_across_majors_from_the_driver_version() -> None:
    text = """\
fleet: demo
machines:
  box: {driver: "535.104.05", gpus: [{model: NVIDIA H100, memory: 80GiB}]}
families:
  ngc: {from: "nvcr.io/nvidia/pytorch:25.11-py3"}
services:
  a: {family: ngc, build: a, gpu: {memory: 8GiB}}
  b: {family: ngc, build: b, gpu: {memory: 8GiB}}
"""
    f = only(text, "DY301")
    assert (f.severity, str(f.where)) == (Severity.ERROR, "fleet.yaml:5:9")
    assert "CUDA 13.0" in f.message and "CUDA 12.2" in f.message
    assert "services a, b" in f.message and f.service == ""


def test_dy301_no_finding_when_the_driver_is_new_enough_or_unknown() -> None:
    body = """\
services:
  llm:
    image: nvidia/cuda:12.8.0-runtime-ubuntu22.04
    gpu: {memory: 4GiB}
""" + HEALTH + """\
  cpu:
    image: nvidia/cuda:13.0.0-runtime-ubuntu24.04
""" + HEALTH
    assert findings(machine(driver="13.0") + body, "DY301") == []
    assert findings(machine(driver="12.8") + body, "DY301") == []  # `cpu` asks for no GPU
    unknown = "fleet: demo\nmachines:\n  box: {gpus: [{memory: 24GiB}]}\n" + body
    assert findings(unknown, "DY301") == []


# --- DY302: SM architecture --------------------------------------------------------------------

def test_dy302_torch_wheel_without_the_gpus_sm() -> None:
    text = machine(model="NVIDIA GeForce RTX 5090") + """\
families:
  torch:
    from: python:3.11-slim
    requirements: [fastapi, torch==2.5.1+cu124]
services:
  app:
    family: torch
    build: app
    gpu: {memory: 4GiB}
""" + HEALTH
    f = only(text, "DY302")
    assert (f.severity, str(f.where)) == (Severity.ERROR, "fleet.yaml:10:29")
    assert "sm_120" in f.message and "cu124" in f.message and "app" in f.message
    assert "https://download.pytorch.org/whl/cu128" in f.fix and "torch>=2.7" in f.fix


def test_dy302_pypi_default_wheel_is_judged_on_amd64() -> None:
    text = machine(model="NVIDIA GeForce RTX 5090") + """\
services:
  app:
    image: python:3.11-slim
    family: ""
""" + HEALTH
    assert findings(text, "DY302") == []  # no GPU request, no torch
    text = machine(model="NVIDIA GeForce RTX 5090") + """\
families:
  t: {from: "python:3.11-slim", requirements: [torch==2.6.0]}
services:
  app: {family: t, build: app, gpu: {memory: 4GiB}}
"""
    f = only(text, "DY302")
    assert "cu124" in f.message  # what PyPI's 2.6.0 is built with


def test_dy302_pytorch_image_tag_and_family_torch_field() -> None:
    text = machine(model="NVIDIA GeForce RTX 5090") + """\
families:
  t: {from: "python:3.11-slim", torch: "2.4.1+cu124"}
services:
  stock:
    image: pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
    gpu: {memory: 4GiB}
""" + HEALTH + """\
  built: {family: t, build: built, gpu: {memory: 4GiB}}
"""
    found = findings(text, "DY302")
    assert [str(f.where) for f in found] == ["fleet.yaml:8:33", "fleet.yaml:11:5"]
    assert "torch 2.4.1 cu124" in found[0].message and "built" in found[0].message
    assert "torch 2.5.1 cu124" in found[1].message and "stock" in found[1].message
    fine = text.replace("2.5.1-cuda12.4", "2.7.0-cuda12.8").replace("2.4.1+cu124", "2.7.1+cu128")
    assert findings(fine, "DY302") == []


def test_dy302_old_cuda_on_a_new_gpu_is_a_warning() -> None:
    text = machine(arch="arm64", driver="13.0", model="NVIDIA GB10") + """\
families:
  audio:
    from: mekopa/whisperx-blackwell:latest
    cuda: "12.6"
services:
  asr:
    family: audio
    build: asr
    gpu: {memory: 9GiB}
""" + HEALTH
    f = only(text, "DY302")
    assert (f.severity, str(f.where)) == (Severity.WARNING, "fleet.yaml:10:5")
    assert "sm_121" in f.message and "PTX" in f.message and "asr" in f.message
    assert "CUDA >= 12.8" in f.fix


def test_dy302_cuda_that_dropped_the_gpu_is_an_error() -> None:
    text = machine(driver="13.0", model="Tesla V100-SXM2-32GB") + """\
services:
  old:
    image: nvidia/cuda:13.0.0-runtime-ubuntu24.04
    gpu: {memory: 4GiB}
""" + HEALTH
    f = only(text, "DY302")
    assert f.severity is Severity.ERROR and "dropped" in f.message and "sm_70" in f.message


def test_dy302_no_finding_when_the_build_runs_on_the_gpu() -> None:
    text = machine(arch="arm64", driver="13.0", model="NVIDIA GB10") + """\
families:
  ser:
    from: python:3.12-slim
    requirements: [torch==2.10.0+cu128, torchaudio==2.10.0+cu128]
services:
  ser:
    family: ser
    build: ser
    gpu: {memory: 2GiB}
""" + HEALTH + """\
  cuda:
    image: nvidia/cuda:12.8.0-runtime-ubuntu22.04
    gpu: {memory: 1GiB}
""" + HEALTH
    assert findings(text, "DY302") == []
    ada = machine(sm="8.9", model="") + """\
families:
  t: {from: "python:3.11-slim", requirements: [torch==2.2.2+cu121]}
services:
  app: {family: t, build: app, gpu: {memory: 4GiB}}
"""
    assert findings(ada, "DY302") == []  # sm_86 code runs on sm_89


# --- DY303: platforms --------------------------------------------------------------------------

def test_dy303_amd64_family_on_an_arm64_machine() -> None:
    text = machine(arch="arm64", driver="13.0", model="NVIDIA GB10") + """\
families:
  base:
    from: python:3.11-slim
    platforms: [amd64]
  web:
    from: base
services:
  api:
    family: web
    build: api
""" + HEALTH
    f = only(text, "DY303")
    assert (f.severity, str(f.where)) == (Severity.ERROR, "fleet.yaml:10:5")
    assert "amd64" in f.message and "arm64" in f.message and "api" in f.message
    assert "families.base.platforms" in f.fix


def test_dy303_no_finding_when_the_platform_is_listed_or_unsaid() -> None:
    text = machine(arch="arm64") + """\
families:
  base: {from: "python:3.11-slim", platforms: [amd64, arm64]}
  other: {from: "python:3.11-slim"}
services:
  api: {family: base, build: api}
  web: {family: other, build: web}
"""
    assert findings(text, "DY303") == []


# --- DY304: no wheel for the platform ------------------------------------------------------

def test_dy304_x86_only_package_on_arm64() -> None:
    text = machine(arch="arm64", driver="13.0", model="NVIDIA GB10") + """\
families:
  mem:
    from: python:3.12-slim
    requirements: [langchain, faiss-gpu]
services:
  memory:
    family: mem
    build: memory
""" + HEALTH
    f = only(text, "DY304")
    assert (f.severity, str(f.where)) == (Severity.ERROR, "fleet.yaml:10:31")
    assert "faiss-gpu" in f.message and "linux/arm64" in f.message and "memory" in f.message


def test_dy304_cuda_torch_variant_missing_on_arm64() -> None:
    text = machine(arch="arm64", driver="13.0", model="NVIDIA GB10") + """\
families:
  t: {from: "python:3.11-slim", requirements: [torch==2.3.1+cu121]}
services:
  app: {family: t, build: app, gpu: {memory: 4GiB}}
"""
    f = only(text, "DY304")
    assert f.severity is Severity.ERROR and "cu121" in f.message and "arm64" in f.message


def test_dy304_pypi_torch_on_an_arm64_gpu_is_cpu_only() -> None:
    text = machine(arch="arm64", driver="13.0", model="NVIDIA GB10") + """\
families:
  t: {from: "python:3.12-slim", requirements: [torch==2.9.0]}
services:
  app: {family: t, build: app, gpu: {memory: 4GiB}}
"""
    f = only(text, "DY304")
    assert f.severity is Severity.WARNING and "CPU-only" in f.message
    assert "torch==2.9.0+cu130" in f.fix


def test_dy304_cpu_only_wheel_for_a_gpu_service_is_a_warning() -> None:
    text = machine(arch="arm64", driver="13.0", model="NVIDIA GB10") + """\
families:
  stt: {from: "python:3.12-slim", requirements: [faster-whisper]}
services:
  stt: {family: stt, build: stt, gpu: {memory: 4GiB}}
"""
    f = only(text, "DY304")
    assert (f.severity, str(f.where)) == (Severity.WARNING, "fleet.yaml:8:50")
    assert "no CUDA wheel" in f.message and "CTranslate2" in f.message and f.service == "stt"


def test_dy304_no_wheel_for_the_familys_python() -> None:
    text = machine() + """\
families:
  base: {from: "python:3.11-slim"}
  mem: {from: base, requirements: [langchain, faiss-gpu]}
services:
  memory: {family: mem, build: memory, gpu: {memory: 2GiB}}
"""
    f = only(text, "DY304")
    assert (f.severity, str(f.where)) == (Severity.ERROR, "fleet.yaml:9:47")
    assert "Python 3.11" in f.message and "memory" in f.message


def test_dy304_no_finding_on_amd64_or_for_packages_with_wheels() -> None:
    text = machine() + """\
families:
  mem: {from: "python:3.9-slim", requirements: [faiss-gpu, decord, "torch==2.3.1+cu121"]}
services:
  memory: {family: mem, build: memory, gpu: {memory: 2GiB}}
"""
    assert findings(text, "DY304") == []
    arm = machine(arch="arm64", driver="13.0", model="NVIDIA GB10") + """\
families:
  ok: {from: "python:3.12-slim", requirements: [faiss-cpu, "bitsandbytes==0.46.1",
                                                 "torch==2.9.0+cu130", faster-whisper]}
services:
  cpu: {family: ok, build: cpu}
"""
    assert findings(arm, "DY304") == []  # faster-whisper only matters with a GPU


# --- DY305 / DY306: torch replaced ------------------------------------------------------------

def test_dy305_package_pulling_torch_on_ngc() -> None:
    text = machine(arch="arm64", driver="13.0", model="NVIDIA GB10") + """\
families:
  core:
    from: nvcr.io/nvidia/pytorch:25.11-py3
    requirements: [fastapi, sentence-transformers, gliner]
services:
  core:
    family: core
    build: core
""" + HEALTH
    found = findings(text, "DY305")
    assert [str(f.where) for f in found] == ["fleet.yaml:10:29", "fleet.yaml:10:52"]
    assert all(f.severity is Severity.ERROR and "sidecar" in f.fix for f in found)
    assert "sentence-transformers" in found[0].message and "nvcr.io/nvidia/pytorch" in \
        found[0].message


def test_dy305_child_of_a_vendor_torch_family_and_a_service_layer() -> None:
    text = machine(arch="arm64", driver="13.0", model="NVIDIA GB10") + """\
families:
  audio:
    from: mekopa/whisperx-blackwell:latest
    torch: "2.6.0a0+b5b1008"
  ser:
    from: audio
    requirements: [funasr]
services:
  ser:
    family: ser
    build: ser
    requirements: [torchaudio]
""" + HEALTH
    found = findings(text, "DY305")
    assert [str(f.where) for f in found] == ["fleet.yaml:13:20", "fleet.yaml:18:20"]
    assert "2.6.0a0" in found[0].message and found[1].service == "ser"


def test_dy305_no_finding_for_pure_python_on_ngc_or_torch_on_a_plain_base() -> None:
    text = machine() + """\
families:
  ngc: {from: "nvcr.io/nvidia/pytorch:25.11-py3", requirements: [fastapi, uvicorn, httpx]}
  side: {from: "python:3.12-slim", requirements: ["torch==2.7.1+cu128", funasr]}
services:
  a: {family: ngc, build: a}
  b: {family: side, build: b}
"""
    assert findings(text, "DY305") == []
    assert findings(text, "DY306") == []


def test_dy306_unpinned_torch_pinner_on_a_torch_parent() -> None:
    text = machine() + """\
families:
  torch:
    from: python:3.11-slim
    torch: "2.2.2"
    requirements: [torch==2.2.2+cu121]
  llm:
    from: torch
    requirements: [vllm, accelerate, "torchvision==0.17.2"]
services:
  llm: {family: llm, build: llm, gpu: {memory: 8GiB}}
"""
    f = only(text, "DY306")
    assert (f.severity, str(f.where)) == (Severity.WARNING, "fleet.yaml:14:20")
    assert "vllm" in f.message and "2.2.2" in f.message


# --- DY307: CUDA twice ---------------------------------------------------------------------

def test_dy307_torch_wheels_on_nvidia_cuda() -> None:
    text = machine() + """\
families:
  gpu: {from: "nvidia/cuda:12.1.1-runtime-ubuntu22.04"}
  torch: {from: gpu, requirements: [numpy, "torch==2.2.2+cu121"]}
services:
  app: {family: torch, build: app}
"""
    f = only(text, "DY307")
    assert (f.severity, str(f.where)) == (Severity.WARNING, "fleet.yaml:9:44")
    assert "twice" in f.message and "plain base" in f.fix


def test_dy307_no_finding_on_a_plain_base_or_for_cpu_torch() -> None:
    text = machine() + """\
families:
  plain: {from: "python:3.11-slim", requirements: ["torch==2.2.2+cu121"]}
  cpu: {from: "nvidia/cuda:12.1.1-runtime-ubuntu22.04", requirements: ["torch==2.2.2+cpu"]}
services:
  a: {family: plain, build: a}
  b: {family: cpu, build: b}
"""
    assert findings(text, "DY307") == []


# --- DY308: TORCH_CUDA_ARCH_LIST -------------------------------------------------------------

def test_dy308_malformed_arch_list() -> None:
    text = machine() + """\
families:
  gpu:
    from: python:3.11-slim
    env: {TORCH_CUDA_ARCH_LIST: "89;86"}
services:
  app: {family: gpu, build: app}
"""
    f = only(text, "DY308")
    assert str(f.where) == "fleet.yaml:10:11" and '"8.9;8.6"' in f.fix


def test_dy308_arch_list_without_the_gpu_in_use() -> None:
    text = machine(model="NVIDIA GeForce RTX 3060") + """\
services:
  app:
    image: ghcr.io/x/app:1.0
    env: {TORCH_CUDA_ARCH_LIST: "8.9"}
    gpu: {memory: 4GiB}
""" + HEALTH
    f = only(text, "DY308")
    assert "sm_86" in f.message and "app" in f.message and "8.9;8.6" in f.fix


def test_dy308_no_finding_for_a_covering_list() -> None:
    text = machine(model="NVIDIA GeForce RTX 3060") + """\
services:
  a:
    image: ghcr.io/x/app:1.0
    env: {TORCH_CUDA_ARCH_LIST: "8.0;8.9"}
    gpu: {memory: 4GiB}
""" + HEALTH + """\
  b:
    image: ghcr.io/x/app:1.0
    env: {TORCH_CUDA_ARCH_LIST: "7.5+PTX"}
    gpu: {memory: 4GiB}
""" + HEALTH
    assert findings(text, "DY308") == []


# --- DY309: misnamed environment ----------------------------------------------------------

def test_dy309_near_miss_names_in_profile_family_and_service() -> None:
    text = """\
fleet: demo
machines:
  box:
    profile: {GPU_VISIBLE_DEVICES: "0", OMP_NUM_THREADS: "4"}
families:
  t: {from: "python:3.11-slim", env: {TORCH_CUDA_ALLOC_CONF: "max_split_size_mb:64"}}
services:
  app: {family: t, build: app, env: {CUDA_VISIBLE_DEVICE: "0"}}
"""
    found = findings(text, "DY309")
    assert [str(f.where) for f in found] == ["fleet.yaml:4:15", "fleet.yaml:6:39",
                                             "fleet.yaml:8:38"]
    assert "CUDA_VISIBLE_DEVICES" in found[0].fix and "PYTORCH_CUDA_ALLOC_CONF" in found[1].fix
    assert found[2].service == "app" and all(f.severity is Severity.WARNING for f in found)


def test_dy309_no_finding_for_real_names() -> None:
    text = """\
fleet: demo
machines:
  box:
    profile: {CUDA_VISIBLE_DEVICES: "0", PYTORCH_CUDA_ALLOC_CONF: "max_split_size_mb:64"}
services:
  app: {image: "ghcr.io/x/app:1", env: {TORCH_CUDA_ARCH_LIST: "8.9", GPU_MODEL: rtx}}
"""
    assert findings(text, "DY309") == []
