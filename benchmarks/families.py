"""Families benchmark: a fleet shaped like the 4090+3060 blueprint (../shared/seeds, 62 services
over 8 families), built (a) with dockyard families and (b) as naive per-service Dockerfiles,
each installing its full dependency set. One run reports, for both and as ratios:

    cold build time    (a) `dockyard lock` then `dockyard build` (wheelhouse, families,
                       services);
                       (b) `pip download` of the same pins into a host wheelhouse, then one
                       `docker compose build` of 62 Dockerfiles installing from it offline.
    unique disk        the images' distinct layer chains (plan/sizes.py, as `dockyard images`),
                       base image included in both (the same bootstrapped bookworm).
    rebuild            one service's source file changes; (a) `dockyard build` again, (b)
                       `docker compose build` again; how long, and how many images changed ID.

Fairness: both variants build on the same base image, install the same pinned packages from
a local wheelhouse (no network inside a build), and use BuildKit. The naive Dockerfiles use
the good ordering (requirements first, code last) so a source change does not reinstall; each
service's requirements file is its own (it names the service, as hand-written files do), so
BuildKit cannot share one service's install layer with another's. Every run sets a fresh
BENCH_RUN env in both variants so no build is served from an earlier run's cache. Real
packages stand in for torch/CUDA (this machine has 2 cores and no GPU).

    .venv/bin/python benchmarks/families.py [--services N] [--naive-parallel N] [--keep]

(b) runs `docker compose --parallel N build`, N = the cores by default: the bound dockyard's
build uses. With compose's default (-1, unbounded) 63 pip installs run at once on 2 cores.

Everything it creates (images of both variants, the wheelhouse image, temp folders) is
removed at the end, even on error, unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockyard.engine.connection import Engine
from dockyard.engine.images import describe
from dockyard.plan.sizes import SizeReport, size_report
from dockyard.units import format_size

REPO = Path(__file__).resolve().parent.parent
SEEN: set[str] = set()  # every image ID this run listed as its own: removed at the end
BASE_APT = ["redis-server"]  # the example fleet's root apt: its bootstrapped base is reused

# The blueprint's hierarchy (§B), with small real packages standing in for torch/CUDA/vLLM.
FAMILIES: dict[str, tuple[str, list[str]]] = {
    "base-python": ("python:3.11-slim", []),
    "base-utils": ("base-python", ["requests==2.34.2", "python-dateutil==2.9.0.post0",
                                   "pytz==2026.4", "tzdata==2026.4"]),
    "base-cpu-pydeps": ("base-utils", ["numpy==2.4.6", "starlette==1.7.0", "uvicorn==0.54.0",
                                       "pyyaml==6.0.3", "attrs==26.1.0", "packaging==26.3"]),
    "family-web": ("base-cpu-pydeps", ["websockets==17.1", "gunicorn==26.2.0",
                                       "jinja2==3.1.6"]),
    "base-gpu": ("base-utils", ["msgpack==1.2.3", "pyyaml==6.0.3"]),  # stands in for CUDA
    "family-torch": ("base-gpu", ["numpy==2.4.6", "pillow==12.3.0", "tqdm==4.70.1"]),  # torch
    "family-llm": ("family-torch", ["regex==2026.9.29", "jinja2==3.1.6"]),  # ... for vLLM
    "family-vision": ("base-gpu", ["pillow==12.3.0", "imageio==2.38.0"]),  # imageio: numpy
    "legacy-py310-cpu": ("base-python", ["click==8.5.0", "attrs==26.1.0", "six==1.17.0"]),
}
# The blueprint's fleet table (§F): service, machine, family, port. "both" runs on mainpc.
TABLE = """
ServiceRegistry 4090 family-web 7200|SystemDigitalTwin 4090 base-cpu-pydeps 7220
UnifiedSystemAgent 4090 base-cpu-pydeps 7201|SelfHealingSupervisor both base-cpu-pydeps 7009
MemoryFusionHub both base-cpu-pydeps 5713|ModelOpsCoordinator 4090 family-llm 7212
AffectiveProcessingCenter 4090 family-torch 5560|RealTimeAudioPipeline both family-torch 5557
UnifiedObservabilityCenter both family-web 9100|CodeGenerator 4090 base-cpu-pydeps 5650
PredictiveHealthMonitor 4090 base-cpu-pydeps 5613|Executor 4090 base-cpu-pydeps 5606
TinyLlamaServiceEnhanced 4090 family-llm 5615|SmartHomeAgent 4090 family-web 7125
CrossMachineGPUScheduler 4090 base-cpu-pydeps 7155|ChainOfThoughtAgent 4090 family-llm 5612
CognitiveModelAgent 4090 family-llm 5641|FaceRecognitionAgent 4090 family-vision 5610
LearningOpportunityDetector 4090 family-llm 7202|LearningManager 4090 family-llm 5580
ActiveLearningMonitor 4090 base-cpu-pydeps 5638|IntentionValidatorAgent 4090 legacy-py310-cpu 5701
NLUAgent 4090 legacy-py310-cpu 5709|AdvancedCommandHandler 4090 legacy-py310-cpu 5710
ChitchatAgent 4090 legacy-py310-cpu 5711|FeedbackHandler 4090 legacy-py310-cpu 5636
Responder 4090 family-torch 5637|DynamicIdentityAgent 4090 family-llm 5802
EmotionSynthesisAgent 4090 family-torch 5706|STTService 4090 family-torch 5800
TTSService 4090 family-torch 5801|AudioCapture 4090 base-cpu-pydeps 6550
StreamingSpeechRecognition 4090 family-torch 6553|StreamingTTSAgent 4090 family-torch 5562
ProactiveAgent 4090 family-llm 5624|EmotionEngine 4090 base-cpu-pydeps 5590
MoodTrackerAgent 4090 base-cpu-pydeps 5704|HumanAwarenessAgent 4090 base-cpu-pydeps 5705
ToneDetector 4090 base-cpu-pydeps 5625|VoiceProfilingAgent 4090 base-cpu-pydeps 5708
CloudTranslationService 4090 family-web 5592|StreamingTranslationProxy 4090 family-web 5596
ObservabilityDashboardAPI 4090 family-web 8001|CentralErrorBus 3060 family-web 7150
RealTimeAudioPipelinePC2 3060 family-torch 5557|TieredResponder 3060 base-cpu-pydeps 7100
AsyncProcessor 3060 base-cpu-pydeps 7101|CacheManager 3060 base-cpu-pydeps 7102
VisionProcessingAgent 3060 family-vision 7160|DreamWorldAgent 3060 family-vision 7104
ResourceManager 3060 base-cpu-pydeps 7113|TaskScheduler 3060 base-cpu-pydeps 7115
AuthenticationAgent 3060 base-cpu-pydeps 7116|UnifiedUtilsAgent 3060 base-cpu-pydeps 7118
ProactiveContextMonitor 3060 base-cpu-pydeps 7119|AgentTrustScorer 3060 base-cpu-pydeps 7122
FileSystemAssistantAgent 3060 base-cpu-pydeps 7123|RemoteConnectorAgent 3060 base-cpu-pydeps 7124
UnifiedWebAgent 3060 family-web 7126|DreamingModeAgent 3060 family-vision 7127
AdvancedRouter 3060 base-cpu-pydeps 7129|TutoringServiceAgent 3060 base-cpu-pydeps 7108
SpeechRelayService 3060 family-torch 7130
"""
APP = '''"""{name}: a stand-in agent ({family}); answers /health."""
import http.server
import json

SERVICE = "{name}"
PORT = {port}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({{"status": "ok", "service": SERVICE}}).encode()
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    http.server.ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
'''


@dataclass(frozen=True)
class Service:
    name: str
    machine: str
    family: str
    port: int


def services(limit: int | None) -> list[Service]:
    rows = [r.split() for line in TABLE.strip().splitlines() for r in line.split("|")]
    out = [Service(re.sub(r"(?<!^)(?=[A-Z][a-z])", "-", n).lower().replace("--", "-"),
                   "pc2" if m == "3060" else "mainpc", f, int(p)) for n, m, f, p in rows]
    if limit is None:
        return out
    # A smaller fleet still covers every family the services use.
    picked: list[Service] = []
    for fam in dict.fromkeys(s.family for s in out):
        picked += [s for s in out if s.family == fam][:max(1, limit // 6)]
    return picked[:max(limit, 1)]


def chain(family: str) -> list[str]:
    names = []
    current = family
    while current in FAMILIES:
        names.append(current)
        current = FAMILIES[current][0]
    return list(reversed(names))


def full_requirements(family: str) -> list[str]:
    seen: dict[str, None] = {}
    for fam in chain(family):
        for req in FAMILIES[fam][1]:
            seen.setdefault(req, None)
    return list(seen)


def sh(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
       timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                            env={**os.environ, **(env or {})})
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(argv[:6])}\n"
                 f"{(result.stderr or result.stdout)[-3000:]}")
    return result


def timed(argv: list[str], **kw: Any) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.monotonic()
    result = sh(argv, **kw)
    return time.monotonic() - t0, result


# --- (a) dockyard families ---------------------------------------------------------------


def write_fleet(root: Path, name: str, run: str, svcs: list[Service]) -> Path:
    lines = [f"fleet: {name}", "machines:", "  mainpc: {cpus: 16, memory: 64GiB}",
             "  pc2: {cpus: 8, memory: 32GiB}", "families:"]
    used = {f for s in svcs for f in chain(s.family)}
    for fam, (parent, reqs) in FAMILIES.items():
        if fam not in used:
            continue
        lines.append(f"  {fam}:")
        lines.append(f"    from: {parent}")
        if parent not in FAMILIES:
            lines.append(f"    apt: [{', '.join(BASE_APT)}]")
            # A fresh value per run: nothing is served from an earlier run's build cache.
            lines.append(f"    env: {{PYTHONUNBUFFERED: '1', BENCH_RUN: '{run}'}}")
        if reqs:
            lines.append(f"    requirements: [{', '.join(reqs)}]")
    lines.append("services:")
    for s in svcs:
        folder = root / "services" / s.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "app.py").write_text(APP.format(name=s.name, family=s.family, port=s.port))
        lines += [f"  {s.name}:", f"    family: {s.family}", f"    build: services/{s.name}",
                  f"    machine: {s.machine}",
                  "    command: [python3, app.py]",
                  f"    ports: {{http: {{port: {s.port}, publish: false}}}}",
                  "    health: {http: /health}"]
    manifest = root / "fleet.yaml"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def dockyard(*args: str, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    return timed([sys.executable, "-m", "dockyard", *args], env=env, timeout=3600)


def dockyard_build(manifest: Path, env: dict[str, str]) -> tuple[float, str, dict[str, float]]:
    """`dockyard build`, its output, and when (s after start) the last family and the last
    service finished, read off its progress lines as they come."""
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "dockyard", "-f", str(manifest), "build"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **env})
    lines: list[str] = []
    marks = {"families_done_s": 0.0, "services_done_s": 0.0}
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        done = re.search(r"\b(family|service) \S+: (built in|unchanged)", line)
        if done:
            marks[f"{'families' if done.group(1) == 'family' else 'services'}_done_s"] = \
                round(time.monotonic() - t0, 1)
    if proc.wait() != 0:
        sys.exit("dockyard build failed:\n" + "".join(lines[-40:]))
    return time.monotonic() - t0, "".join(lines), marks


def fleet_images(prefix: str) -> dict[str, str]:
    """ref -> image ID of every local image whose repository starts with `prefix`."""
    listed = sh(["docker", "images", "--no-trunc", "--format",
                 "{{.Repository}}:{{.Tag}} {{.ID}}"]).stdout.split("\n")
    pairs = (line.split() for line in listed if line.startswith(prefix))
    found = {p[0]: p[1] for p in pairs if len(p) == 2 and not p[0].endswith(":<none>")}
    SEEN.update(found.values())
    return found


def disk(refs: list[str]) -> SizeReport:
    engine = Engine.local()
    described = [d for d in (describe(engine, ref, "service", ref) for ref in refs)
                 if d is not None]
    return size_report(described)


# --- (b) naive per-service Dockerfiles -------------------------------------------------------


# The naive services' base: the same bootstrapped bookworm with Python and pip ready, as
# `python:3.11-slim` is (a venv, since Debian's python3 has no pip). Built once, timed in (b).
NAIVE_BASE = """FROM {base}
ENV BENCH_RUN={run} PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN python3 -m venv /opt/venv
"""
NAIVE = """FROM {base}
WORKDIR /app
COPY requirements.txt .
RUN --mount=type=bind,from={wheels},source=/wheels,target=/wheels \\
    pip install --no-index --no-cache-dir --disable-pip-version-check \\
      --find-links /wheels -r requirements.txt
COPY . .
CMD ["python", "app.py"]
"""


def write_naive(root: Path, name: str, run: str, base: str, wheels: str,
                svcs: list[Service]) -> Path:
    compose: dict[str, Any] = {"name": f"{name}-naive", "services": {}}
    for s in svcs:
        folder = root / s.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "app.py").write_text(APP.format(name=s.name, family=s.family, port=s.port))
        reqs = full_requirements(s.family)
        (folder / "requirements.txt").write_text(
            f"# {s.name}: its dependencies, kept by hand\n" + "".join(f"{r}\n" for r in reqs))
        (folder / "Dockerfile").write_text(NAIVE.format(base=base, run=run, wheels=wheels))
        compose["services"][s.name] = {"image": f"{name}-naive/{s.name}:current",
                                       "build": {"context": str(folder)}}
    path = root / "compose.yaml"
    path.write_text(json.dumps(compose, indent=1))  # JSON is YAML
    return path


def make_wheelhouse(root: Path, name: str, run: str, svcs: list[Service]) -> tuple[float, str]:
    """`pip download` every pin on the host (same index and Python minor as the families),
    packed as a scratch image the naive Dockerfiles bind-mount."""
    reqs = sorted({r for s in svcs for r in full_requirements(s.family)})
    wheels = root / "wheels"
    (root / "req.txt").write_text("".join(f"{r}\n" for r in reqs))
    seconds, _ = timed([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary",
                        ":all:", "--python-version", "3.11", "--platform",
                        "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64",
                        "--implementation", "cp", "-d", str(wheels), "-r", str(root / "req.txt")])
    (root / "Dockerfile.wheels").write_text(f"FROM scratch\nENV BENCH_RUN={run}\n"
                                            "COPY wheels /wheels\n")
    ref = f"{name}-naive/wheels:current"
    compose = root / "compose.wheels.yaml"
    compose.write_text(json.dumps({"services": {"wheels": {"image": ref, "build": {
        "context": str(root), "dockerfile": "Dockerfile.wheels"}}}}))
    more, _ = timed(["docker", "compose", "-p", f"{name}-wheels", "-f", str(compose), "build"])
    return seconds + more, ref


def make_naive_base(root: Path, name: str, run: str, base: str) -> tuple[float, str]:
    folder = root / "python-base"
    folder.mkdir()
    (folder / "Dockerfile").write_text(NAIVE_BASE.format(base=base, run=run))
    ref = f"{name}-naive/python-base:current"
    compose = root / "compose.base.yaml"
    compose.write_text(json.dumps({"services": {"base": {"image": ref, "build": {
        "context": str(folder)}}}}))
    seconds, _ = timed(["docker", "compose", "-p", f"{name}-base", "-f", str(compose), "build"])
    return seconds, ref


# --- the run -------------------------------------------------------------------------------


def base_image(build_log: str) -> str:
    match = re.search(r"(dockyard/bootstrap:bookworm-[0-9a-f]+)", build_log)
    if match:
        return match.group(1)
    from dockyard.engine.bootstrap import bootstrap_tag

    return bootstrap_tag(BASE_APT)


def touch(app: Path) -> None:
    app.write_text(app.read_text() + "\n# changed: one line of one service\n")


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Images (repositories, whatever their tags) whose `:current` is another image now."""
    return sorted(ref.rsplit(":", 1)[0] for ref in after
                  if ref.endswith(":current") and before.get(ref) != after[ref])


def distinct(images: dict[str, str]) -> int:
    return len(set(images.values()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=None, help="fewer services (smoke run)")
    parser.add_argument("--keep", action="store_true", help="keep images and folders")
    parser.add_argument("--naive-parallel", type=int, default=os.cpu_count() or 2,
                        help="builds compose runs at once for (b) (default: the cores, the "
                             "bound dockyard uses; -1: compose's default, unbounded)")
    opts = parser.parse_args()
    svcs = services(opts.services)
    run = uuid.uuid4().hex[:8]
    name = f"dybench{run[:6]}"
    work = Path(tempfile.mkdtemp(prefix="dockyard-families-"))
    print(f"fleet {name}: {len(svcs)} services, "
          f"{len({f for s in svcs for f in chain(s.family)})} families; work dir {work}",
          flush=True)
    results: dict[str, Any] = {"services": len(svcs), "run": run,
                               "naive_parallel": opts.naive_parallel}
    try:
        # (a) families
        fleet_dir = work / "families"
        manifest = write_fleet(fleet_dir, name, run, svcs)
        env = {"DOCKYARD_STATE": str(work / "state"), "COLUMNS": "200"}
        lock_a, _ = dockyard("-f", str(manifest), "lock", env=env)
        build_a, out, marks = dockyard_build(manifest, env)
        cold_a = lock_a + build_a
        base = base_image(out)
        images_a = fleet_images(f"{name}/")
        disk_a = disk(sorted(images_a))
        touch(fleet_dir / "services" / svcs[0].name / "app.py")
        rebuild_a, _ = dockyard("-f", str(manifest), "build", env=env)
        after_a = fleet_images(f"{name}/")
        print(f"(a) families: cold {cold_a:.1f} s (lock {lock_a:.1f} s + build {build_a:.1f} s), "
              f"families done at {marks['families_done_s']} s of the build, "
              f"{distinct(images_a)} images, disk "
              f"{format_size(disk_a.disk)}; rebuild {rebuild_a:.1f} s, changed "
              f"{changed(images_a, after_a)}", flush=True)

        # (b) naive
        naive_dir = work / "naive"
        naive_dir.mkdir()
        fetch_b, wheels = make_wheelhouse(naive_dir, name, run, svcs)
        base_b, python_base = make_naive_base(naive_dir, name, run, base)
        compose = write_naive(naive_dir, name, run, python_base, wheels, svcs)
        naive_build = ["docker", "compose", "--parallel", str(opts.naive_parallel), "-f",
                       str(compose), "build"]
        build_b, _ = timed(naive_build, timeout=3600)
        build_b += base_b
        cold_b = fetch_b + build_b
        images_b = {r: i for r, i in fleet_images(f"{name}-naive/").items() if "/wheels:" not in r}
        disk_b = disk(sorted(images_b))
        touch(naive_dir / svcs[0].name / "app.py")
        rebuild_b, _ = timed(naive_build, timeout=3600)
        after_b = {r: i for r, i in fleet_images(f"{name}-naive/").items() if "/wheels:" not in r}
        print(f"(b) naive: cold {cold_b:.1f} s (wheels {fetch_b:.1f} s + build {build_b:.1f} s), "
              f"{distinct(images_b)} images, disk {format_size(disk_b.disk)}; rebuild "
              f"{rebuild_b:.1f} s, changed {changed(images_b, after_b)}", flush=True)

        results.update({
            "base": base,
            "a": {"cold_s": round(cold_a, 1), "lock_s": round(lock_a, 1),
                  "build_s": round(build_a, 1), **marks, "images": distinct(images_a),
                  "disk": disk_a.disk,
                  "rebuild_s": round(rebuild_a, 1),
                  "rebuild_changed": changed(images_a, after_a)},
            "b": {"cold_s": round(cold_b, 1), "wheels_s": round(fetch_b, 1),
                  "build_s": round(build_b, 1), "images": distinct(images_b), "disk": disk_b.disk,
                  "rebuild_s": round(rebuild_b, 1),
                  "rebuild_changed": changed(images_b, after_b)},
            "ratios": {"disk": round(disk_b.disk / max(disk_a.disk, 1), 2),
                       "cold_time": round(cold_b / max(cold_a, 1e-9), 2),
                       "rebuild_time": round(rebuild_b / max(rebuild_a, 1e-9), 2)},
        })
        r = results["ratios"]
        goals = {"disk >= 5x less": r["disk"] >= 5, "cold time >= 3x less": r["cold_time"] >= 3,
                 "rebuild touches 1 image": len(results["a"]["rebuild_changed"]) == 1,
                 "rebuild < 10 s": rebuild_a < 10}
        results["goals"] = goals
        print(f"\nratios naive/families: disk {r['disk']}x, cold time {r['cold_time']}x, "
              f"rebuild time {r['rebuild_time']}x")
        for goal, met in goals.items():
            print(f"  {'met' if met else 'NOT met'}: {goal}")
        print(json.dumps(results, indent=1))
        return 0 if all(goals.values()) else 1
    finally:
        if not opts.keep:
            cleanup(name, work)


def cleanup(name: str, work: Path) -> None:
    """Remove what this run made: both variants' images and the temp folder (only ours)."""
    refs = [r for r in fleet_images(name) if r.startswith((f"{name}/", f"{name}-naive/"))]
    for i in range(0, len(refs), 50):
        subprocess.run(["docker", "rmi", "-f", *refs[i:i + 50]], capture_output=True)
    # Images replaced by the rebuild lost their tags; they are removed by ID.
    ids = sorted(SEEN)
    for i in range(0, len(ids), 50):
        subprocess.run(["docker", "rmi", "-f", *ids[i:i + 50]], capture_output=True)
    shutil.rmtree(work, ignore_errors=True)
    print(f"cleaned up {len(refs)} tags, {len(ids)} images and {work}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
