"""Startup benchmark: command -> all services healthy, for dockyard's bundled example fleet.

    (a) dockyard up: `dockyard.engine.deploy.up`, called in-process; dockyard creates
        every container with one `docker compose up --no-start`, then starts each
        dependency level through the engine API and probes health itself every 0.05 s.
    (b) docker compose: `docker compose up -d --wait` on a peer compose file derived from
        dockyard's own rendering, with the health-check style of the user research (interval
        5s, timeout 5s, retries 10, no start_period) and `depends_on: service_healthy`.

Both use the same prebuilt images (built first if missing). Runs alternate a, b, a, b, ...;
every project is torn down (`down --volumes --remove-orphans`) after its run, and again at the
end, even on error. The critical-path limit is, per run of (a), summed over the dependency
levels, the level's slowest readiness: the engine's container start (from the start request to
State.StartedAt, ~0.2 s on this engine even with no network) plus the service's own time from
then to healthy. No orchestrator that starts a level only once the previous one is healthy can
be faster. The app-only sum (without the engine's start) is printed too.

    .venv/bin/python benchmarks/startup.py [--reps N]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from dockyard.engine.build import build, write_render
from dockyard.engine.connection import Engine
from dockyard.engine.deploy import Target, containers, up, up_steps
from dockyard.engine.target import PROJECT_LABEL
from dockyard.events import Event, LevelStarted
from dockyard.manifest.load import Fleet, load
from dockyard.plan import Plan, plan
from dockyard.render.compose import compose_project, dump_yaml

ENGINE = Engine.local()  # the example fleet's one machine runs on the local engine
EXAMPLE = Path(__file__).resolve().parent.parent / "src/dockyard/examples/quickstart/fleet.yaml"
MACHINE = "local"
PEER_HEALTH = {"interval": "5s", "timeout": "5s", "retries": 10}  # her-os seed style
WAIT_TIMEOUT_S = 180
GOAL_VS_CRITICAL = 1.2
GOAL_VS_COMPOSE = 0.5


# ---------------------------------------------------------------------------------------------
# Measurements


@dataclass
class LevelTiming:
    """One dependency level of a dockyard run."""

    services: list[str]
    start_offset: float  # seconds from the command to the level's start
    total: float  # UpReport.level_seconds: start + waiting for health
    slowest_probe: float  # max ProbeResult.seconds: the level's readiness, as probed
    created_after: float  # from the level's start to its last container created
    started_after: float  # ... to its last container's process started

    @property
    def compose_up(self) -> float:
        """Starting the level's containers (plus thread-pool setup), by difference."""
        return self.total - self.slowest_probe


@dataclass
class Run:
    variant: str  # "dockyard" or "compose"
    rep: int
    project: str
    seconds: float = 0.0
    ok: bool = False
    error: str = ""
    levels: list[LevelTiming] = field(default_factory=list)  # dockyard only
    preamble: float = 0.0  # dockyard only: render, image check, observe+decide before level 0
    started: dict[str, float] = field(default_factory=dict)  # service -> offset, from docker
    healthy: dict[str, float] = field(default_factory=dict)  # service -> offset
    created: dict[str, float] = field(default_factory=dict)  # service -> offset, from docker
    poll_api: float = 0.0  # dockyard only: one wait_healthy iteration's engine API calls

    @property
    def critical_path(self) -> float:
        """Engine container start + the service's own readiness, slowest per level, summed."""
        return sum(level.started_after + level.slowest_probe for level in self.levels)

    @property
    def app_critical_path(self) -> float:
        """The services' own readiness only, as if starting a container took no time."""
        return sum(level.slowest_probe for level in self.levels)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def docker_time(stamp: str) -> float:
    """Docker's RFC 3339 nanosecond timestamp as epoch seconds (microsecond precision)."""
    stamp = stamp.rstrip("Z")
    if "." in stamp:
        whole, frac = stamp.split(".", 1)
        stamp = f"{whole}.{frac[:6]}"
    return datetime.fromisoformat(stamp + "+00:00").timestamp()


def container_times(project: str, t0_wall: float) -> dict[str, dict[str, float]]:
    """service -> {created, started, healthy}: seconds after t0_wall, as the engine recorded them
    (healthy: the end of the first passing engine healthcheck, where there is one)."""
    out: dict[str, dict[str, float]] = {}
    for service, container in containers(ENGINE, project).items():
        attrs, times = container.attrs, {}
        state = attrs.get("State", {})
        if attrs.get("Created"):
            times["created"] = docker_time(attrs["Created"]) - t0_wall
        if state.get("StartedAt"):
            times["started"] = docker_time(state["StartedAt"]) - t0_wall
        passes = [e for e in (state.get("Health") or {}).get("Log") or []
                  if e.get("ExitCode") == 0]
        if passes:
            times["healthy"] = docker_time(passes[0]["End"]) - t0_wall
        out[service] = times
    return out


# ---------------------------------------------------------------------------------------------
# Projects and cleanup


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_fleet(port: int) -> tuple[Fleet, Plan]:
    fleet = load(EXAMPLE, environ={**os.environ, "GATEWAY_PORT": str(port)})
    return fleet, plan(fleet)


def teardown(project: str) -> None:
    subprocess.run(["docker", "compose", "-p", project, "down", "--volumes", "--remove-orphans"],
                   check=False, capture_output=True, text=True, timeout=120)


def leftovers(projects: Sequence[str]) -> list[str]:
    """Containers, volumes and networks still labelled with one of the projects."""
    client = ENGINE.client
    found: list[str] = []
    for project in projects:
        label = {"label": f"{PROJECT_LABEL}={project}"}
        found += [f"container {c.name}" for c in client.containers.list(all=True, filters=label)]
        found += [f"volume {v.name}" for v in client.volumes.list(filters=label)]
        found += [f"network {n.name}" for n in client.networks.list(filters=label)]
    return found


@contextmanager
def project_scope(project: str, created: list[str]) -> Iterator[None]:
    created.append(project)
    try:
        yield
    finally:
        teardown(project)


# ---------------------------------------------------------------------------------------------
# The two variants


def run_dockyard(rep: int, project: str, work: Path) -> Run:
    result = Run("dockyard", rep, project)
    fleet, the_plan = load_fleet(free_port())
    target = Target(fleet, the_plan, work / f"state-{project}", MACHINE, project)
    level_starts: list[float] = []

    def mark(event: Event) -> None:
        if isinstance(event, LevelStarted):  # right before each level starts
            level_starts.append(time.time())

    t0_wall, t0 = time.time(), time.monotonic()
    report = up(target, emit=mark, build_missing=False)
    result.seconds = time.monotonic() - t0
    result.ok = report.changed and all(r.healthy for r in report.results)
    engine = container_times(project, t0_wall)
    result.created = {n: t["created"] for n, t in engine.items()}
    result.started = {n: t["started"] for n, t in engine.items()}
    probes = {r.service: r.seconds for r in report.results}
    for level, total, start in zip(target.levels(), report.level_seconds, level_starts,
                                   strict=True):
        names = [sp.name for sp in level]
        result.levels.append(LevelTiming(
            services=names,
            start_offset=start - t0_wall,
            total=total,
            slowest_probe=max(probes[n] for n in names),
            created_after=max(result.created[n] for n in names) - (start - t0_wall),
            started_after=max(result.started[n] for n in names) - (start - t0_wall),
        ))
        for n in names:  # dockyard's readiness: its probe answered (±0.05 s polling)
            result.healthy[n] = start - t0_wall + result.levels[-1].compose_up + probes[n]
    result.preamble = result.seconds - sum(report.level_seconds)
    result.poll_api = poll_api_cost(project, target.levels()[-1][0].name)
    return result


def poll_api_cost(project: str, service: str, samples: int = 5) -> float:
    """What each 0.05 s wait_healthy iteration asks the engine before probing (list + reload),
    timed after the run, with the services up."""
    times = []
    for _ in range(samples):
        t0 = time.monotonic()
        containers(ENGINE, project)[service].reload()
        times.append(time.monotonic() - t0)
    return median(times)


def peer_compose(fleet: Fleet, the_plan: Plan, project: str) -> dict[str, Any]:
    """dockyard's compose file, with the research's health-check timing; nothing else changed."""
    doc = copy.deepcopy(compose_project(fleet, the_plan, MACHINE))
    doc["name"] = project
    for service in doc["services"].values():
        check = service.get("healthcheck")
        if check:
            check.update(PEER_HEALTH)
            check.pop("start_period", None)
    return doc


def run_compose(rep: int, project: str, work: Path) -> Run:
    result = Run("compose", rep, project)
    fleet, the_plan = load_fleet(free_port())
    peer = work / f"{project}.yaml"
    peer.write_text(dump_yaml(peer_compose(fleet, the_plan, project)), encoding="utf-8")
    argv = ["docker", "compose", "-p", project, "-f", str(peer), "up", "-d", "--wait",
            "--wait-timeout", str(WAIT_TIMEOUT_S)]
    t0_wall, t0 = time.time(), time.monotonic()
    proc = subprocess.run(argv, check=False, capture_output=True, text=True,
                          timeout=WAIT_TIMEOUT_S + 60)
    result.seconds = time.monotonic() - t0
    result.ok = proc.returncode == 0
    if not result.ok:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        result.error = f"exit {proc.returncode}: {' '.join(last)}"
    engine = container_times(project, t0_wall)
    result.created = {n: t["created"] for n, t in engine.items() if "created" in t}
    result.started = {n: t["started"] for n, t in engine.items() if "started" in t}
    result.healthy = {n: t["healthy"] for n, t in engine.items() if "healthy" in t}
    return result


# ---------------------------------------------------------------------------------------------
# Setup: images, preamble costs, versions


def ensure_images(work: Path, say: Callable[[str], None]) -> str:
    fleet, the_plan = load_fleet(free_port())
    wanted = [sp.image for sp in the_plan.on(MACHINE) if sp.built]
    missing = [ref for ref in wanted if not ENGINE.image_id(ref)]
    if not missing:
        return f"present ({', '.join(wanted)})"
    say(f"building missing images: {', '.join(missing)}")
    t0 = time.monotonic()
    build(ENGINE, fleet, the_plan, work / "build-state", emit=lambda event: say(event.line()),
          only_missing=True)
    return f"built {', '.join(missing)} in {time.monotonic() - t0:.1f} s before timing"


def preamble_costs(work: Path, samples: int = 3) -> dict[str, float]:
    """Medians of the steps `up` takes before level 0, for a project with nothing running."""
    fleet, the_plan = load_fleet(free_port())
    target = Target(fleet, the_plan, work / "state-preamble", MACHINE,
                    f"dybench-{os.getpid()}-preamble")
    steps: dict[str, Callable[[], object]] = {
        "write_render": lambda: write_render(fleet, the_plan, target.state),
        "image_id x3": lambda: [ENGINE.image_id(sp.image) for sp in target.services()],
        "observe + decide (compose config --hash beside list, images, probes)":
            lambda: up_steps(target),
    }
    out: dict[str, float] = {}
    for name, step in steps.items():
        times = []
        for _ in range(samples):
            t0 = time.monotonic()
            step()
            times.append(time.monotonic() - t0)
        out[name] = median(times)
    return out


def versions() -> dict[str, str]:
    def cmd(*argv: str) -> str:
        proc = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=30)
        return proc.stdout.strip() or proc.stderr.strip()

    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": str(os.cpu_count()),
        "kernel": platform.release(),
        "docker_server": cmd("docker", "version", "--format", "{{.Server.Version}}"),
        "compose": cmd("docker", "compose", "version", "--short"),
        "python": platform.python_version(),
        "loadavg_1m": f"{os.getloadavg()[0]:.2f}",
        "other_containers_running": str(len(ENGINE.client.containers.list())),
    }


# ---------------------------------------------------------------------------------------------
# Report


def print_runs(runs: Sequence[Run]) -> None:
    print(f"{'rep':>3}  {'variant':<8}  {'total s':>7}  {'crit s':>6}  {'pre s':>5}  "
          "per level: compose-up s / probe-wait s   |   per service: started / healthy at s")
    for r in runs:
        if not r.ok:
            print(f"{r.rep:>3}  {r.variant:<8}  {r.seconds:7.2f}  FAILED: {r.error}")
            continue
        if r.variant == "dockyard":
            crit, pre = f"{r.critical_path:6.2f}", f"{r.preamble:5.2f}"
            levels = "  ".join(f"L{i} {lv.compose_up:.2f}/{lv.slowest_probe:.2f}"
                               for i, lv in enumerate(r.levels))
        else:
            crit, pre, levels = f"{'-':>6}", f"{'-':>5}", ""
        services = "  ".join(f"{s} {r.started.get(s, float('nan')):.2f}/"
                             f"{r.healthy.get(s, float('nan')):.2f}" for s in r.started)
        print(f"{r.rep:>3}  {r.variant:<8}  {r.seconds:7.2f}  {crit}  {pre}  "
              f"{levels:<40}|   {services}")


def summarize(runs: Sequence[Run], reps: int) -> dict[str, Any]:
    ours = [r for r in runs if r.variant == "dockyard" and r.ok]
    peer = [r for r in runs if r.variant == "compose" and r.ok]
    d, c = median([r.seconds for r in ours]), median([r.seconds for r in peer])
    crit = median([r.critical_path for r in ours])
    app = median([r.app_critical_path for r in ours])
    n_levels = len(ours[0].levels) if ours else 0

    def per_level(value: Callable[[LevelTiming], float]) -> list[float]:
        return [round(median([value(r.levels[i]) for r in ours]), 3) for i in range(n_levels)]

    return {
        "reps": reps,
        "ok": {"dockyard": len(ours), "compose": len(peer)},
        "median_s": {"dockyard": round(d, 3), "compose": round(c, 3),
                     "critical_path": round(crit, 3), "app_critical_path": round(app, 3)},
        "ratio": {"dockyard_vs_critical": round(d / crit, 3),
                  "dockyard_vs_app_critical": round(d / app, 3),
                  "dockyard_vs_compose": round(d / c, 3)},
        "goal_met": {"vs_critical_le_1.2": d / crit <= GOAL_VS_CRITICAL,
                     "vs_compose_le_0.5": d / c <= GOAL_VS_COMPOSE},
        "dockyard_breakdown_median_s": {
            "preamble": round(median([r.preamble for r in ours]), 3),
            "probe_poll_api": round(median([r.poll_api for r in ours]), 3),
            "services_per_level": [lv.services for lv in ours[0].levels] if ours else [],
            "compose_up_per_level": per_level(lambda lv: lv.compose_up),
            "container_created_after_per_level": per_level(lambda lv: lv.created_after),
            "container_started_after_per_level": per_level(lambda lv: lv.started_after),
            "probe_wait_per_level": per_level(lambda lv: lv.slowest_probe),
            "level_total_per_level": per_level(lambda lv: lv.total),
        },
    }


def print_summary(summary: dict[str, Any]) -> None:
    m, ratio, b = summary["median_s"], summary["ratio"], summary["dockyard_breakdown_median_s"]

    def verdict(value: float, goal: float) -> str:
        return f"goal <= {goal:.2f}: {'met' if value <= goal else f'MISSED by {value - goal:.2f}'}"

    print()
    print(f"medians over {summary['ok']['dockyard']} dockyard / {summary['ok']['compose']} "
          f"compose successful runs ({summary['reps']} reps each)")
    print(f"  {'dockyard up (a)':<42} {m['dockyard']:7.2f} s")
    print(f"  {'docker compose up -d --wait (b)':<42} {m['compose']:7.2f} s")
    print(f"  {'critical path (engine start + readiness)':<42} {m['critical_path']:7.2f} s")
    print(f"  {'  of which the services alone (app-only)':<42} {m['app_critical_path']:7.2f} s")
    print(f"  {'dockyard / critical path':<42} {ratio['dockyard_vs_critical']:7.2f} x   "
          f"({verdict(ratio['dockyard_vs_critical'], GOAL_VS_CRITICAL)})")
    print(f"  {'dockyard / app-only critical path':<42} "
          f"{ratio['dockyard_vs_app_critical']:7.2f} x")
    print(f"  {'dockyard / compose':<42} {ratio['dockyard_vs_compose']:7.2f} x   "
          f"({verdict(ratio['dockyard_vs_compose'], GOAL_VS_COMPOSE)})")
    print()
    print(f"dockyard up, where the time goes (medians, s); preamble before level 0: "
          f"{b['preamble']:.2f}; engine API calls per probe-loop iteration: "
          f"{b['probe_poll_api']:.3f}")
    print(f"  {'level':<22} {'start':>10} {'created at':>10} {'started at':>10} "
          f"{'probe wait':>10} {'level':>6}")
    for i, names in enumerate(b["services_per_level"]):
        print(f"  {f'L{i} ' + ','.join(names):<22} {b['compose_up_per_level'][i]:10.2f} "
              f"{b['container_created_after_per_level'][i]:10.2f} "
              f"{b['container_started_after_per_level'][i]:10.2f} "
              f"{b['probe_wait_per_level'][i]:10.2f} {b['level_total_per_level'][i]:6.2f}")
    print("  (start: starting the level's created containers; created/started at:"
          " the\n   engine's Created / State.StartedAt of the level's last container, counted from"
          " the level's start\n   (created is negative: made up front);"
          " probe wait: the slowest ProbeResult.seconds, the critical-path share)")


# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=5, help="repetitions per variant (5)")
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error("--reps must be at least 1")

    def say(message: str) -> None:
        print(f"  dockyard: {message}", file=sys.stderr)

    created: list[str] = []
    runs: list[Run] = []
    summary: dict[str, Any] = {}
    left: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="dockyard-bench-") as tmp:
            work = Path(tmp)
            info = versions()
            print(f"dockyard startup benchmark, {EXAMPLE.parent.name} fleet, {args.reps} reps "
                  "per variant, alternating dockyard/compose")
            print("  " + ", ".join(f"{k} {v}" for k, v in info.items()))
            print(f"  images: {ensure_images(work, say)}")
            pre = preamble_costs(work)
            print("  up() preamble steps, medians of 3, nothing running: "
                  + ", ".join(f"{k} {v:.3f} s" for k, v in pre.items()))
            print()
            base = f"dybench-{os.getpid()}"
            for rep in range(1, args.reps + 1):
                for variant, runner in (("dockyard", run_dockyard), ("compose", run_compose)):
                    project = f"{base}-{rep}-{variant[0]}"
                    print(f"  rep {rep} {variant} ({project}) ...", file=sys.stderr, flush=True)
                    with project_scope(project, created):
                        try:
                            runs.append(runner(rep, project, work))
                        except Exception as exc:  # recorded, reported, and the run goes on
                            runs.append(Run(variant, rep, project, error=f"{type(exc).__name__}: "
                                            f"{str(exc).splitlines()[0][:200]}"))
            print_runs(runs)
            summary = summarize(runs, args.reps)
            summary["machine"] = info
            summary["preamble_steps_s"] = {k: round(v, 3) for k, v in pre.items()}
            print_summary(summary)
    finally:
        created.append(f"dybench-{os.getpid()}-preamble")  # observing created nothing; check
        for project in created:
            teardown(project)
        left = leftovers(created)
        print(f"  left behind: {', '.join(left) if left else 'nothing'}", file=sys.stderr)
    print("JSON " + json.dumps(summary, separators=(",", ":")))
    failed = [r for r in runs if not r.ok]
    return 1 if failed or left else 0


if __name__ == "__main__":
    sys.exit(main())
