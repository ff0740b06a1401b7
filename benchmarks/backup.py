"""Backup and restore benchmark, per kind: seconds to back up, seconds to restore into fresh
volumes (healthy again), bytes, and the write pause each backup caused.

The fleet is tests/fixtures/backup (Postgres and Redis from Debian's packages, a plain volume
with `quiesce: stop`), built on a local bookworm base. Data: Postgres `--rows` rows (two
tables, ~100 bytes a row), Redis `--keys` keys of 100 bytes, the volume `--mib` MiB of random
files. Each rep: backup (in-process, engine/backup.py), `down --volumes`, restore. The write
pause is what the backup measures: for Postgres the slowest commit of a write transaction
issued every 50 ms inside the server while the dumps ran; for Redis the BGSAVE fork
(`latest_fork_usec`); for the volume the time the service was stopped until healthy again.

    .venv/bin/python benchmarks/backup.py [--reps 3] [--rows 200000] [--keys 100000] [--mib 64]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "backup"


def sh(*argv: str, check: bool = True) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=check).stdout.strip()


def dockyard(folder: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "dockyard", *args], cwd=folder, check=True,
                   env={**os.environ, "DOCKYARD_STATE": str(folder / "state")},
                   capture_output=True)


def base_image() -> str:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(
        sh("docker", "info", "--format", "{{.Architecture}}"), "amd64")
    for tag in sh("docker", "images", "--format", "{{.Repository}}:{{.Tag}}",
                  "dockyard/bootstrap").split():
        if sh("docker", "image", "inspect", "--format", "{{.Architecture}}", tag) == arch:
            return tag
    subprocess.run([sys.executable, "-m", "dockyard", "bootstrap-base"], check=True)
    return base_image()


def seed(project: str, rows: int, keys: int, mib: int) -> None:
    def ex(service: str, script: str) -> None:
        sh("docker", "exec", f"{project}-{service}-1", "sh", "-c", script)

    ex("db", "psql -q -U postgres -c 'create database app' && psql -q -U postgres -d app -c "
       f"\"create table items as select g as id, md5(g::text) || md5((g+1)::text) as v from "
       f"generate_series(1, {rows}) g; create table events as select g as id, now() as at, "
       f"repeat('x', 40) as body from generate_series(1, {rows}) g\"")
    ex("cache", f"redis-cli DEBUG POPULATE {keys} key 100 >/dev/null")
    ex("files", f"mkdir -p /srv/files/blobs && for i in $(seq 1 {mib}); do head -c 1048576 "
       f"/dev/urandom > /srv/files/blobs/$i.bin; done")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--mib", type=int, default=64)
    opts = parser.parse_args()

    from dockyard.engine.backup import backup, restore
    from dockyard.engine.deploy import down
    from dockyard.engine.target import Target
    from dockyard.events import ignore
    from dockyard.manifest.load import load
    from dockyard.plan import plan

    work = Path(tempfile.mkdtemp(prefix="hbk-bench-"))
    project = f"hbk-bench-{uuid.uuid4().hex[:6]}"
    shutil.copytree(FIXTURE, work, dirs_exist_ok=True)
    sh("docker", "tag", base_image(), "hbk/bookworm:current")
    manifest = work / "fleet.yaml"
    manifest.write_text(manifest.read_text().replace("BASE_IMAGE", "hbk/bookworm:current"))
    numbers: dict[str, dict[str, list[float]]] = {}
    try:
        dockyard(work, "build")
        fleet = load(manifest, environ={})
        target = Target(fleet, plan(fleet), work / "state", "local", project)
        for rep in range(opts.reps):
            dockyard(work, "-p", project, "up")
            seed(project, opts.rows, opts.keys, opts.mib)
            run = backup(target, emit=ignore)
            down(target, volumes=True)
            report = restore(target, run.id, emit=ignore)
            for saved in run.services:
                row = numbers.setdefault(saved.kind, {})
                row.setdefault("backup_s", []).append(saved.seconds)
                row.setdefault("restore_s", []).append(report.seconds[saved.service])
                row.setdefault("pause_s", []).append(saved.write_pause_s)
                row.setdefault("mib", []).append(sum(f.bytes for f in saved.files) / 2**20)
            down(target, volumes=True)
            print(f"rep {rep + 1}/{opts.reps} done", file=sys.stderr)
    finally:
        subprocess.run([sys.executable, "-m", "dockyard", "-p", project, "down", "--volumes"],
                       cwd=work, capture_output=True,
                       env={**os.environ, "DOCKYARD_STATE": str(work / "state")})
        shutil.rmtree(work, ignore_errors=True)
    print(f"backup/restore, {opts.reps} reps (median, max); data: Postgres {opts.rows} rows x "
          f"2 tables, Redis {opts.keys} keys x 100 B, volume {opts.mib} MiB")
    print(f"{'kind':<9} {'MiB':>7} {'backup s':>16} {'restore s':>16} {'write pause s':>18}")
    for kind, row in numbers.items():
        print(f"{kind:<9} {statistics.median(row['mib']):>7.1f} {_cell(row['backup_s']):>16} "
              f"{_cell(row['restore_s']):>16} {_cell(row['pause_s'], 3):>18}")
    print(f"engine {sh('docker', 'version', '--format', '{{.Server.Version}}')}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


def _cell(values: list[float], digits: int = 2) -> str:
    return f"{statistics.median(values):.{digits}f} ({max(values):.{digits}f})"


if __name__ == "__main__":
    main()
