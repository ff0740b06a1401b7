"""Scale benchmark: load + check + plan + render of generated fleets, in-process.

Fleets of 100, 1,000 and 10,000 services over 100 machines (40 with GPUs: one or two 24 GiB
cards, or one 80 GiB card; 60 CPU-only), about a third of the services with a GPU budget, every
tenth service left for the planner (at most 200), the rest with `machine:` written. Each fleet
is generated as YAML text and goes through `loads` (parse + validate), `check`, `plan`
(placement included) and `render_all`; each stage is timed (best of --reps runs) and the growth
rate between sizes is printed as the exponent k in time ~ n^k.

Then: placement alone of 200 unfixed services over the same 100 machines (status, time), the
wall time of `dockyard --help` in a subprocess (best of 5), and the top imports by cumulative
time from `python -X importtime -m dockyard --help`.

    .venv/bin/python benchmarks/scale.py [--reps 3] [--sizes 100,1000,10000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import math
import os
import pstats
import random
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from dockyard.checks import check
from dockyard.manifest.load import Fleet, loads
from dockyard.plan import plan
from dockyard.render.files import render_all

MACHINES = 100
GPU_MACHINES = 40


def machines_yaml() -> str:
    lines = ["machines:"]
    for m in range(MACHINES):
        lines.append(f"  m{m:03d}:")
        lines.append(f"    cpus: {64 if m % 2 else 32}")
        lines.append(f"    memory: {256 if m % 2 else 128}GiB")
        if m < GPU_MACHINES:
            kind = m % 3
            cards = (["{model: NVIDIA GeForce RTX 4090, sm: '8.9', memory: 24GiB}"] * (1 + kind)
                     if kind < 2 else ["{model: NVIDIA H100, sm: '9.0', memory: 80GiB}"])
            lines.append(f"    gpus: [{', '.join(cards)}]")
            lines.append("    cuda_driver: '12.4'")
        lines.append("    profile: {OMP_NUM_THREADS: '8'}")
    return "\n".join(lines) + "\n"


def fleet_yaml(n: int, *, unfixed: int, seed: int = 7) -> str:
    """A fleet of n services; `unfixed` of them without `machine:` (spread evenly)."""
    rng = random.Random(seed)
    out = ["fleet: scale", machines_yaml(), "services:"]
    every = max(1, n // unfixed) if unfixed else n + 1
    # Fixed services are dealt round-robin, so each machine gets n/100 of them; their budgets
    # are sized so a machine's fixed load stays well under its capacity.
    per_machine = max(1, n // MACHINES)
    for i in range(n):
        free = unfixed and i % every == 0 and i // every < unfixed
        m = i % MACHINES
        gpu = (i % 3 == 0) and (free or m < GPU_MACHINES)
        lines = [f"  s{i:05d}:", f"    image: ghcr.io/example/svc{i % 17}:1.{i % 5}.0"]
        if not free:
            lines.append(f"    machine: m{m:03d}")
        lines.append(f"    ports: {{http: '{10000 + i}:8000'}}")
        # Fixed services carry few keys: the loader refuses more than 100,000 values (its
        # guard against alias bombs), and a 10,000-service fleet is close to that.
        if free:
            lines.append("    health: {http: /health}")
            lines.append(f"    cpus: {rng.choice([0.5, 1, 2])}")
        mem = rng.choice([512, 1024, 4096]) if free else max(64, (96 * 1024) // per_machine // 4)
        lines.append(f"    memory: {mem}MiB")
        if gpu and free:
            runtime = rng.choice(["vllm", "torch"])
            lines.append(f"    gpu: {{memory: {rng.choice([1, 2, 3, 4, 6, 8])}GiB, "
                         f"runtime: {runtime}}}")
        elif gpu:
            lines.append(f"    gpu: {{memory: {max(1, 16 // max(1, per_machine // 3))}GiB}}")
        if i and i % 10 == 1:
            lines.append(f"    depends_on: [s{i - 1:05d}]")
        out.extend(lines)
    return "\n".join(out) + "\n"


def best(fn: Callable[[], Any], reps: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(reps):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def stages(text: str, reps: int) -> dict[str, float]:
    t_load, fleet = best(lambda: loads(text, environ={}), reps)
    t_plan, p = best(lambda: plan(fleet), reps)
    t_check, findings = best(lambda: check(fleet, p), reps)
    t_render, files = best(lambda: render_all(fleet, p, text), reps)
    return {"load": t_load, "check": t_check, "plan": t_plan, "render": t_render,
            "total": t_load + t_check + t_plan + t_render, "findings": len(findings),
            "files": len(files), "status": p.placement.status,  # type: ignore[dict-item]
            "placed": len(p.placement.placed), "solve": p.placement.seconds,
            "work": p.placement.work,
            "line": p.placement.line()}  # type: ignore[dict-item]


def help_time(reps: int = 5) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dockyard", "--help"], check=True,
                       capture_output=True)
        times.append(time.perf_counter() - t)
    return min(times)


def import_offenders(top: int = 8) -> list[tuple[int, str]]:
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "dockyard", "--help"],
                         capture_output=True, text=True, check=True)
    rows = []
    for line in run.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
        if name == name.lstrip():  # top-level imports only: their time includes their children
            rows.append((int(cumulative), name))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--profile", action="store_true", help="cProfile the largest size")
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start "
          "(other work on the machine inflates wall times)")
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[int, dict[str, float]] = {}
    print(f"{'services':>8} {'load':>7} {'check':>7} {'plan':>7} {'render':>7} {'total':>7}"
          "  placement")
    for n in sizes:
        text = fleet_yaml(n, unfixed=min(200, n // 10))
        r = results[n] = stages(text, args.reps)
        print(f"{n:>8} {r['load']:7.3f} {r['check']:7.3f} {r['plan']:7.3f} {r['render']:7.3f} "
              f"{r['total']:7.3f}  {r['line']} (deterministic time {r['work']:.2f})",
              flush=True)
    for a, b in itertools.pairwise(sizes):
        k = math.log(results[b]["total"] / results[a]["total"]) / math.log(b / a)
        check_x = results[b]["check"] / results[a]["check"]
        print(f"growth {a} -> {b}: total x{results[b]['total'] / results[a]['total']:.1f}, "
              f"time ~ n^{k:.2f}; check alone x{check_x:.1f}, "
              f"~ n^{math.log(check_x) / math.log(b / a):.2f}")
    # The unit tier counts the lines `check` runs (tests/unit/checks/test_run.py); the clock
    # is here, where a busy machine only makes a number worse, never a test red.
    if args.profile:
        text = fleet_yaml(sizes[-1], unfixed=min(200, sizes[-1] // 10))
        prof = cProfile.Profile()
        prof.enable()
        stages(text, 1)
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)

    # Placement alone: 200 unfixed services (no fixed ones) over the 100 machines.
    fleet: Fleet = loads(fleet_yaml(200, unfixed=200, seed=11), environ={})
    t, p = best(lambda: plan(fleet), args.reps)
    print(f"placement of 200 unfixed services: {p.placement.status}, plan() {t:.3f} s "
          f"(placement {p.placement.seconds:.3f} s, solver deterministic time "
          f"{p.placement.work:.2f}); {p.placement.line()}")
    print(f"dockyard --help: {help_time() * 1000:.0f} ms (best of 5, subprocess); "
          f"load average now {os.getloadavg()[0]:.1f}")
    print("top imports (cumulative us): " + ", ".join(
        f"{name} {us}" for us, name in import_offenders()))


if __name__ == "__main__":
    main()
