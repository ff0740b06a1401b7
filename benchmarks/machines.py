"""Many machines: a fleet of ~30 services on the three-machine harness (tests/machines).

Each machine is its own Docker engine reached only over SSH (harness.py). The fleet has three
start levels of ten services each, spread over machines a, b and c; every service above level
0 depends on one on another machine (so each level crosses machines). Measured, with the CLI
as a user runs it:

    (a) `dockyard up` (cold: containers absent, images present on every machine);
    (b) the by-hand peer: `DOCKER_HOST=ssh://root@<m> docker compose -f compose.<m>.yaml up
        -d --wait --no-deps <that level's services>` per level and machine, in order, on the
        compose files dockyard renders (same health checks, interval 1 s);
    (c) `dockyard ps` warm (the fleet up, SSH connections kept from the previous command);
    (d) `dockyard ps` with one machine's engine stopped: the time until it exits, naming it;
    (e) `dockyard ps` warm again once the same fleet probes its health every 5 s (dockyard's
        default) instead of every second: on this harness the three "machines" share the
        host's cores, so 30 health checks a second are load that separate machines would
        not put on the one dockyard runs on.

    sudo .venv/bin/python benchmarks/machines.py [--reps N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.machines.harness import Harness, missing_programs  # noqa: E402

SERVICES = 30
LEVELS = 3
PROBE = "import urllib.request as u; u.urlopen('http://127.0.0.1:{port}/')"


def fleet_text(name: str, h: Harness, image: str, interval: str = "1s") -> str:
    machines = [m.name for m in h.machines]
    lines = [f"fleet: {name}", "machines:"]
    for m in h.machines:
        lines.append(f'  {m.name}: {{engine: "{m.engine_url}", host: {m.address}}}')
    lines.append("services:")
    per_level = SERVICES // LEVELS
    for i in range(SERVICES):
        port = 9000 + i
        machine = machines[i % len(machines)]
        lines += [f"  s{i:02d}:", f"    image: {image}", "    init: true",
                  f"    machine: {machine}",
                  f'    command: [python3, -m, http.server, "{port}"]',
                  f"    ports: {{http: {port}}}",
                  f'    health: {{cmd: [python3, -c, "{PROBE.format(port=port)}"], '
                  f"interval: {interval}, retries: 60}}"]
        if i >= per_level:  # one on another machine, a level below
            below = range(i - i % per_level - per_level, i - i % per_level)
            ring = [*below[i % per_level:], *below[:i % per_level]]
            dep = next(j for j in ring if j % len(machines) != i % len(machines))
            lines.append(f"    depends_on: [s{dep:02d}]")
    return "\n".join(lines) + "\n"


def dockyard(*args: str, cwd: Path, env: dict[str, str]
             ) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "dockyard", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)
    return time.monotonic() - t0, done


def peer_up(folder: Path, h: Harness, env: dict[str, str], project: str) -> float:
    """By hand: compose over ssh:// per level and machine, in order."""
    from dockyard.manifest.load import load
    from dockyard.plan import plan

    the_plan = plan(load(folder / "fleet.yaml"))
    render = folder / "state" / "render"
    t0 = time.monotonic()
    for level in the_plan.levels:
        for m in h.machines:
            names = [n for n in level if the_plan.services[n].machine == m.name]
            if not names:
                continue
            done = subprocess.run(
                ["docker", "compose", "-p", project, "-f",
                 str(render / f"compose.{m.name}.yaml"), "up", "-d", "--wait", "--no-deps",
                 *names],
                env={**env, "DOCKER_HOST": m.engine_url}, capture_output=True, text=True,
                timeout=900)
            if done.returncode != 0:
                raise SystemExit(f"peer up on {m.name} failed: {done.stderr[-2000:]}")
    return time.monotonic() - t0


def peer_down(h: Harness, project: str) -> None:
    for m in h.machines:
        ids = m.docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"
                       ).stdout.split()
        if ids:
            m.docker("rm", "-f", *ids)
        m.docker("network", "prune", "-f", check=False)


def ssh_wrapper(h: Harness, folder: Path) -> Path:
    """A folder with an `ssh` that reads the harness's config: the docker CLI's ssh:// runs
    `ssh` from PATH and takes no -F."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {h.ssh_config} "$@"\n')
    wrapper.chmod(0o755)
    return bin_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1)
    args = parser.parse_args()
    gone = missing_programs()
    if gone:
        raise SystemExit(f"needs {', '.join(gone)}")
    tags = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}",
                           "dockyard/bootstrap"], capture_output=True, text=True).stdout.split()
    tags = [t for t in tags if ":<none>" not in t]
    if not tags:
        raise SystemExit("no dockyard/bootstrap:* image here: run `dockyard bootstrap-base`")
    name = f"hmb{uuid.uuid4().hex[:6]}"
    results: dict[str, list[float]] = {"up": [], "peer": [], "ps": [], "stopped": [],
                                       "ps5": []}
    loads: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="hma-bench-") as tmp, Harness(name[3:] + "bm") as h:
        folder = Path(tmp)
        image = f"{name}/python:current"
        subprocess.run(["docker", "tag", tags[0], image], check=True)
        try:
            h.load_images([image])
            (folder / "fleet.yaml").write_text(fleet_text(name, h, image))
            env = {**os.environ, **h.env(), "DOCKYARD_STATE": str(folder / "state"),
                   "COLUMNS": "200"}
            peer_env = {**env, "PATH": f"{ssh_wrapper(h, folder)}:{os.environ['PATH']}"}
            for _ in range(args.reps):
                took, done = dockyard("up", cwd=folder, env=env)
                if done.returncode != 0:
                    raise SystemExit(done.stderr[-3000:])
                results["up"].append(took)
                for _ in range(3):
                    took, done = dockyard("ps", "--format", "json", cwd=folder, env=env)
                    assert done.returncode == 0, done.stderr
                    assert len(json.loads(done.stdout)) == SERVICES
                    results["ps"].append(took)
                loads["ps"] = os.getloadavg()[0]
                h["c"].stop_engine()
                took, done = dockyard("ps", cwd=folder, env=env)
                assert done.returncode == 3 and "machine c" in done.stderr, done.stderr
                results["stopped"].append(took)
                h["c"].start_engine()
                dockyard("down", cwd=folder, env=env)
                results["peer"].append(peer_up(folder, h, peer_env, f"{name}-peer"))
                peer_down(h, f"{name}-peer")
            (folder / "every5s.yaml").write_text(fleet_text(name, h, image, "5s"))
            took, done = dockyard("-f", "every5s.yaml", "up", cwd=folder, env=env)
            if done.returncode != 0:
                raise SystemExit(done.stderr[-3000:])
            time.sleep(15)  # the recreation's own load settles
            for _ in range(3):
                took, done = dockyard("-f", "every5s.yaml", "ps", "--format", "json",
                                      cwd=folder, env=env)
                assert done.returncode == 0, done.stderr
                results["ps5"].append(took)
            loads["ps5"] = os.getloadavg()[0]
            dockyard("-f", "every5s.yaml", "down", cwd=folder, env=env)
        finally:
            subprocess.run(["docker", "rmi", image], capture_output=True)
    med = {k: statistics.median(v) for k, v in results.items() if v}
    print(f"{SERVICES} services, {LEVELS} levels across 3 machines over SSH; "
          f"loadavg {os.getloadavg()[0]:.1f}")
    print(f"  dockyard up (cold)                 {med['up']:6.2f} s")
    print(f"  by hand: compose --wait per level  {med['peer']:6.2f} s "
          f"(dockyard / peer: {med['up'] / med['peer']:.2f}x)")
    print(f"  dockyard ps, warm                  {med['ps']:6.2f} s (goal < 3 s; health "
          f"every 1 s, loadavg {loads['ps']:.1f})")
    print(f"  dockyard ps, machine c stopped     {med['stopped']:6.2f} s (goal < 5 s)")
    print(f"  dockyard ps, warm                  {med['ps5']:6.2f} s (goal < 3 s; health "
          f"every 5 s, loadavg {loads['ps5']:.1f})")


if __name__ == "__main__":
    main()
