"""Backups of a fleet on three machines, each its own engine reached over SSH only.

A service with a named volume on b, another on c, a stateless one on a: `backup` writes one
run per machine (b, c; a is skipped), all of one batch; `backups` lists both machines;
`restore latest --replace` (and `restore <batch>`) puts each machine's own files back (by
sha256); with c's engine stopped, `backup` still writes b's run and exits 3 naming c within
seconds."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.machines.harness import Harness, Machine
from tests.machines.test_fleet import MACHINES, PROBE, containers, dockyard

pytestmark = pytest.mark.engine

FLEET = MACHINES + """\
services:
  notes:
    image: {image}
    init: true
    machine: b
    command: [python3, -m, http.server, "18120"]
    volumes: ["notes:/srv/notes"]
    health: {{cmd: [python3, -c, "{probe}18120/')"], interval: 1s, retries: 30}}
  index:
    image: {image}
    init: true
    machine: c
    command: [python3, -m, http.server, "18121"]
    volumes: ["index:/srv/index"]
    health: {{cmd: [python3, -c, "{probe}18121/')"], interval: 1s, retries: 30}}
  web:
    image: {image}
    init: true
    machine: a
    command: [python3, -m, http.server, "18122"]
    health: {{cmd: [python3, -c, "{probe}18122/')"], interval: 1s, retries: 30}}
"""
FOLDERS = {"b": ("notes", "/srv/notes"), "c": ("index", "/srv/index")}


def _container(m: Machine, project: str, service: str) -> str:
    return next(c["Names"] for c in containers(m, project)
                if f"com.docker.compose.service={service}" in c["Labels"])


def _write(m: Machine, project: str, text: str) -> None:
    service, path = FOLDERS[m.name]
    m.docker("exec", _container(m, project, service), "sh", "-c",
             f"mkdir -p {path}/deep && printf '%s' '{text} on {m.name}' > {path}/deep/file && "
             f"head -c 200000 /dev/urandom > {path}/blob && chmod 640 {path}/deep/file")


def _hashes(m: Machine, project: str) -> str:
    service, path = FOLDERS[m.name]
    return m.docker("exec", _container(m, project, service), "sh", "-c",
                    f"cd {path} && find . -type f | sort | xargs sha256sum && "
                    "cat deep/file && stat -c '%a' deep/file").stdout


def test_hbm_backup_and_restore_on_every_machine_and_an_unreachable_one_named(
        machines: Harness, machine_image: str, tmp_path: Path) -> None:
    a, b, c = machines.machines
    name = f"hbm{machines.prefix[2:]}"
    (tmp_path / "fleet.yaml").write_text(FLEET.format(name=name, a=a, b=b, c=c,
                                                      image=machine_image, probe=PROBE))
    env = {**machines.env(), "DOCKYARD_STATE": str(tmp_path / "state")}
    try:
        up = dockyard("up", cwd=tmp_path, env=env)
        assert up.returncode == 0, up.stdout + up.stderr
        for m in (b, c):
            _write(m, name, "first")
        first = {m.name: _hashes(m, name) for m in (b, c)}
        assert "first on b" in first["b"] and "first on c" in first["c"]

        t0 = time.monotonic()
        backup = dockyard("backup", cwd=tmp_path, env=env)
        print(f"backup on b and c at once: {time.monotonic() - t0:.1f} s")
        assert backup.returncode == 0, backup.stdout + backup.stderr
        lines = backup.stdout.splitlines()
        assert [line.split(" on ")[1].split(":")[0] for line in lines
                if line.startswith("backup run ")] == ["b", "c"], backup.stdout
        listed = json.loads(dockyard("backups", "--format", "json", cwd=tmp_path,
                                     env=env).stdout)
        assert sorted((r["machine"], list(r["services"])) for r in listed) == [
            ("b", ["notes"]), ("c", ["index"])]
        assert listed[0]["batch"] == listed[1]["batch"] != ""  # one point in time
        assert listed[0]["id"] != listed[1]["id"]
        only_c = json.loads(dockyard("-m", "c", "backups", "--format", "json", cwd=tmp_path,
                                     env=env).stdout)
        assert [r["machine"] for r in only_c] == ["c"]

        for m in (b, c):
            _write(m, name, "second")
        assert all("second on" in _hashes(m, name) for m in (b, c))
        kept = dockyard("restore", "latest", cwd=tmp_path, env=env)
        assert kept.returncode == 1 and "--replace" in kept.stderr, kept.stderr
        assert "second on b" in _hashes(b, name)  # refused before anything was touched

        back = dockyard("restore", "latest", "--replace", cwd=tmp_path, env=env)
        assert back.returncode == 0, back.stdout + back.stderr
        assert "restored notes from backup run" in back.stdout
        assert "restored index from backup run" in back.stdout
        assert {m.name: _hashes(m, name) for m in (b, c)} == first

        # The batch, one point in time of the fleet: each machine gets its run of it.
        for m in (b, c):
            _write(m, name, "third")
        batch = dockyard("restore", listed[0]["batch"], "--replace", cwd=tmp_path, env=env)
        assert batch.returncode == 0, batch.stdout + batch.stderr
        assert {m.name: _hashes(m, name) for m in (b, c)} == first

        # A run id names its machine: -m naming another one is refused.
        wrong = dockyard("-m", "b", "restore", only_c[0]["id"], cwd=tmp_path, env=env)
        assert wrong.returncode == 1 and "is of machine c, not of b" in wrong.stderr, \
            wrong.stderr

        c.stop_engine()
        try:
            # What dockyard takes to start and read the manifest, asking no machine: the 5 s
            # are for reaching the machines and saying so.
            t0 = time.monotonic()
            assert dockyard("plan", cwd=tmp_path, env=env).returncode == 0
            baseline = time.monotonic() - t0
            t0 = time.monotonic()
            partly = dockyard("backup", cwd=tmp_path, env=env)
            took = time.monotonic() - t0
            print(f"backup with machine c's engine stopped: {took:.1f} s (plan: "
                  f"{baseline:.1f} s)")
            assert partly.returncode == 3, partly.stdout + partly.stderr
            assert "machine c" in partly.stderr and "backup did not succeed" in partly.stderr
            assert partly.stdout.count("backup run ") == 1 and " on b:" in partly.stdout
            runs = json.loads(dockyard("backups", "--format", "json", cwd=tmp_path,
                                       env=env).stdout)
            machines_of = [r["machine"] for r in runs]  # the batch's two in start order
            assert sorted(machines_of[:2]) == ["b", "c"] and machines_of[2:] == ["b"]
            assert runs[2]["batch"] not in ("", runs[0]["batch"])
            assert took - baseline < 5, f"{took:.1f} s (plan alone: {baseline:.1f} s)"
        finally:
            c.start_engine()
    finally:
        down = dockyard("down", "--volumes", cwd=tmp_path, env=env)
        assert down.returncode == 0, down.stdout + down.stderr
