"""Backups that restore, on a real engine (issue 11 item 3): Postgres and Redis from Debian's
packages and a plain volume are backed up while they serve, the volumes are deleted, and
the restore is compared by content (per-table row checksums, DEBUG DIGEST, sha256 of each
file). A tampered file, an unwritable target and retention are checked on the volume kind.

The fleet is tests/fixtures/backup, built once per session on a local bookworm base (a
bootstrap image of the engine's architecture, or one made here): its family's apt step is
its only cost, and none when its images are still here from an earlier session."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.actions.backup import backup as take
from dockyard.actions.target import Choice
from dockyard.events import ignore
from dockyard.manifest.load import load
from dockyard.plan import plan
from tests.engine.conftest import dockyard

pytestmark = pytest.mark.engine

FIXTURE = Path(__file__).parents[1] / "fixtures" / "backup"
SECRET = "hbk-secret-" + uuid.uuid4().hex  # in a container's env: never in a backup


def _docker(*args: str, check: bool = True) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True,
                          check=check).stdout.strip()


def _local_base() -> str:
    """A dockyard/bootstrap bookworm image of the engine's architecture (made if none)."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(_docker("info", "--format",
                                                                "{{.Architecture}}"), "amd64")
    for _ in range(2):
        for tag in _docker("images", "--format", "{{.Repository}}:{{.Tag}}",
                           "dockyard/bootstrap").split():
            if ":<none>" not in tag and _docker("image", "inspect", "--format",
                                                "{{.Architecture}}", tag) == arch:
                return tag
        result = dockyard("bootstrap-base", timeout=900)
        assert result.returncode == 0, result.stderr[-2000:]
    raise AssertionError("no bootstrap base of the engine's architecture")


@pytest.fixture(scope="session")
def stores(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture fleet, copied, built once. Its images (hbkdata/*) and base tag are left
    on the engine: the next session's build finds them unchanged and costs nothing (remove
    them freely)."""
    base = "hbk/bookworm:current"
    _docker("tag", _local_base(), base)
    folder = tmp_path_factory.mktemp("hbk-stores")
    shutil.copytree(FIXTURE, folder, dirs_exist_ok=True)
    text = (folder / "fleet.yaml").read_text().replace("BASE_IMAGE", base)
    # A secret in a service's env, as a user keeps one: it must never reach a backup.
    text = text.replace("    env: {PGHOST: /tmp}",
                        "    env: {PGHOST: /tmp, API_TOKEN: \"${HBK_TOKEN:?set HBK_TOKEN}\"}")
    (folder / "fleet.yaml").write_text(text)
    (folder / ".env").write_text(f"HBK_TOKEN={SECRET}\n")
    result = dockyard("build", cwd=folder, env=_env(folder), timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    return folder


@pytest.fixture
def hbk_project(engine: None) -> Iterator[str]:
    name = f"hbk-{uuid.uuid4().hex[:8]}"
    yield name
    ids = _docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={name}")
    if ids:
        _docker("rm", "-f", *ids.split(), check=False)
    vols = _docker("volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={name}")
    if vols:
        _docker("volume", "rm", "-f", *vols.split(), check=False)
    _docker("network", "rm", f"{name}_default", check=False)


def _env(folder: Path) -> dict[str, str]:
    return {"DOCKYARD_STATE": str(folder / "state")}


def _dy(folder: Path, project: str, *args: str) -> subprocess.CompletedProcess[str]:
    return dockyard("-p", project, *args, cwd=folder, env=_env(folder), timeout=600)


def _exec(project: str, service: str, *argv: str) -> str:
    return _docker("exec", f"{project}-{service}-1", *argv)


def _sql(project: str, sql: str, db: str = "postgres") -> str:
    return _exec(project, "db", "psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U",
                 "postgres", "-d", db, "-c", sql)


def _row_checksums(project: str) -> dict[str, str]:
    """db.table -> row count and md5 of every row, for each table of each database."""
    out = {}
    for db in _sql(project, "select datname from pg_database where not datistemplate "
                            "order by 1").split():
        for table in _sql(project, "select tablename from pg_tables where schemaname = "
                                   "'public' order by 1", db).split():
            out[f"{db}.{table}"] = _sql(
                project, f"select count(*) || ' ' || coalesce(md5(string_agg(t::text, ',' "
                         f"order by t::text)), '') from {table} t", db)
    return out


def _file_hashes(project: str) -> str:
    return _exec(project, "files", "sh", "-c",
                 "cd /srv/files && find . -type f | sort | xargs sha256sum; "
                 "find . | sort | xargs stat -c '%n %u:%g %a'")


def _started(project: str, service: str) -> str:
    return _docker("inspect", "--format", "{{.State.StartedAt}}", f"{project}-{service}-1")


def _seed(project: str) -> None:
    _sql(project, "create database app")
    _sql(project, "create role reader login password 'reader-pw'; "
                  "create table items(id int primary key, name text, at timestamptz "
                  "default now()); insert into items(id, name) select g, md5(g::text) from "
                  "generate_series(1, 20000) g; create table notes(body jsonb); insert into "
                  "notes select jsonb_build_object('n', g) from generate_series(1, 500) g; "
                  "grant select on items to reader", "app")
    _sql(project, "create table settings(k text primary key, v text); "
                  "insert into settings values ('mode', 'prod')")
    _exec(project, "cache", "sh", "-c",
          "for i in $(seq 1 500); do echo \"SET key:$i value-$i\"; done | redis-cli >/dev/null"
          " && redis-cli RPUSH queue a b c >/dev/null && redis-cli HSET user:1 name ada "
          "role admin >/dev/null && redis-cli ZADD board 1 x 2 y >/dev/null")
    _exec(project, "files", "sh", "-c",
          "mkdir -p /srv/files/models/v1 && head -c 300000 /dev/urandom > "
          "/srv/files/models/v1/weights.bin && echo '{\"dim\": 384}' > "
          "/srv/files/models/v1/config.json && chmod 640 /srv/files/models/v1/config.json "
          "&& ln -s v1 /srv/files/models/latest")


def test_backup_then_down_volumes_then_restore_gives_the_same_data(
        stores: Path, hbk_project: str) -> None:
    up = _dy(stores, hbk_project, "up")
    assert up.returncode == 0, up.stderr[-3000:]
    _seed(hbk_project)
    rows = _row_checksums(hbk_project)
    assert rows["app.items"].startswith("20000 ") and "postgres.settings" in rows
    digest = _exec(hbk_project, "cache", "redis-cli", "DEBUG", "DIGEST")
    assert digest != "0" * 40
    files = _file_hashes(hbk_project)
    before = {s: _started(hbk_project, s) for s in ("db", "cache", "files")}

    made = _dy(stores, hbk_project, "backup", "--format", "json")
    assert made.returncode == 0, made.stderr[-3000:]
    run = json.loads(made.stdout)
    # Postgres and Redis kept serving (never restarted); the quiesced volume was stopped.
    assert _started(hbk_project, "db") == before["db"]
    assert _started(hbk_project, "cache") == before["cache"]
    assert _started(hbk_project, "files") != before["files"]
    kinds = {s["service"]: s for s in run["services"]}
    assert {k: s["kind"] for k, s in kinds.items()} == {
        "db": "postgres", "cache": "redis", "files": "volume"}
    assert 0 <= kinds["db"]["write_pause_s"] <= 1.0
    assert 0 <= kinds["cache"]["write_pause_s"] <= 1.0
    assert kinds["db"]["version"].startswith("PostgreSQL 15")
    assert kinds["cache"]["version"].startswith("redis 7")
    assert set(kinds["db"]["details"]["databases"]) == {"app", "postgres"}
    for name, saved in kinds.items():
        assert saved["image_id"] == _docker("inspect", "--format", "{{.Image}}",
                                            f"{hbk_project}-{name}-1")
    assert run["fleet_hash"] == "sha256:" + hashlib.sha256(
        (stores / "fleet.yaml").read_bytes()).hexdigest()

    # On disk: the owner's alone, every sha256 right, no secret of the env anywhere.
    folder = stores / "state" / "backups" / run["id"]
    for path in [folder, *folder.rglob("*")]:
        assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path
    for saved in run["services"]:
        for f in saved["files"]:
            data = (folder / f["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == f["sha256"] and len(data) == f["bytes"]
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data and b"reader-pw" not in data, path
    listed = _dy(stores, hbk_project, "backups", "--format", "json")
    assert [r["id"] for r in json.loads(listed.stdout)] == [run["id"]]

    gone = _dy(stores, hbk_project, "down", "--volumes")
    assert gone.returncode == 0, gone.stderr[-2000:]
    assert not _docker("volume", "ls", "-q", "--filter",
                       f"label=com.docker.compose.project={hbk_project}")
    back = _dy(stores, hbk_project, "restore", run["id"])
    assert back.returncode == 0, back.stderr[-3000:]
    assert "restored db, cache, files" in back.stdout or "restored cache, db, files" in \
        back.stdout, back.stdout
    assert _row_checksums(hbk_project) == rows
    assert _sql(hbk_project, "select rolname from pg_roles where rolname = 'reader'") == \
        "reader"
    assert _exec(hbk_project, "cache", "redis-cli", "DEBUG", "DIGEST") == digest
    assert _file_hashes(hbk_project) == files
    health = json.loads(_dy(stores, hbk_project, "ps", "--format", "json").stdout)
    assert {r["service"]: r["health"] for r in health} == {
        "db": "healthy", "cache": "healthy", "files": "healthy"}


def test_tampered_files_unwritable_targets_existing_volumes_and_retention(
        stores: Path, hbk_project: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_STATE", _env(stores)["DOCKYARD_STATE"])
    up = _dy(stores, hbk_project, "up")
    assert up.returncode == 0, up.stderr[-3000:]
    _exec(hbk_project, "files", "sh", "-c", "echo one > /srv/files/a")
    manifest = stores / "fleet.yaml"
    original = manifest.read_text()
    try:
        # A target under a file cannot be made: said, located, before files is stopped.
        started = _started(hbk_project, "files")
        manifest.write_text(original.replace("machines:", "backup: {target: fleet.yaml/runs, "
                                                          "keep: 2}\nmachines:", 1))
        refused = _dy(stores, hbk_project, "backup", "files")
        assert refused.returncode == 1
        assert "fleet.yaml:" in refused.stderr and "cannot be written" in refused.stderr
        assert _started(hbk_project, "files") == started

        # Retention: keep 2 of 3 runs (in-process: three CLI starts cost more than the runs).
        target = stores / "runs-hbk"
        manifest.write_text(original.replace("machines:", f"backup: {{target: {target}, "
                                                          "keep: 2}\nmachines:", 1))
        fleet = load(manifest, environ={"HBK_TOKEN": SECRET})
        chosen = Choice(project=hbk_project)
        ids = [take(fleet, plan(fleet), ["files"], chosen, emit=ignore).run.id
               for _ in range(3)]
        listed = json.loads(_dy(stores, hbk_project, "backups", "--format", "json").stdout)
        assert [r["id"] for r in listed] == ids[1:]
        assert sorted(p.name for p in target.iterdir()) == ids[1:]

        # Existing volumes are not deleted unless asked.
        kept = _dy(stores, hbk_project, "restore", ids[-1], "files")
        assert kept.returncode == 1 and "--replace" in kept.stderr
        assert _exec(hbk_project, "files", "cat", "/srv/files/a") == "one"

        # A file that is not what was written: refused by name, nothing touched.
        tar = target / ids[-1] / "files" / "volume-files-data.tar"
        data = bytearray(tar.read_bytes())
        data[600] ^= 0xFF
        tar.write_bytes(bytes(data))
        _exec(hbk_project, "files", "sh", "-c", "echo two > /srv/files/a")
        bad = _dy(stores, hbk_project, "restore", ids[-1], "files", "--replace")
        assert bad.returncode == 1
        assert str(tar) in bad.stderr and "does not match its sha256" in bad.stderr
        assert _exec(hbk_project, "files", "cat", "/srv/files/a") == "two"

        # The run before it is whole: --replace puts its data into a fresh volume.
        good = _dy(stores, hbk_project, "restore", ids[-2], "files", "--replace")
        assert good.returncode == 0, good.stderr[-2000:]
        assert _exec(hbk_project, "files", "cat", "/srv/files/a") == "one"
    finally:
        manifest.write_text(original)


# A service on the database: its "new version" (BROKEN=1) runs a one-way migration (it
# deletes the rows) and never turns healthy, so the upgrade rolls back.
API = """\
  api:
    image: {image}
    command: [/bin/sh, -c, "if [ \\"$$BROKEN\\" = 1 ]; then psql -h db -U postgres -d app -c
              'delete from items'; exec sleep infinity; fi; touch /tmp/up; exec sleep
              infinity"]
    depends_on: [db]
    health: {{cmd: [test, -f, /tmp/up], interval: 1s, retries: 4}}
"""


def test_a_failed_upgrade_restores_the_database_its_new_version_migrated(
        stores: Path, hbk_project: str, tmp_path: Path) -> None:
    folder = tmp_path / "fleet"
    shutil.copytree(stores, folder, ignore=shutil.ignore_patterns("state", "runs-hbk"))
    image = f"{hbk_project}/api:current"
    family = (stores / "fleet.yaml").read_text().split("fleet: ")[1].split()[0]
    _docker("tag", f"{family}/family-stores:current", image)
    try:
        with (folder / "fleet.yaml").open("a") as f:
            f.write(API.format(image=image))
        up = _dy(folder, hbk_project, "up")
        assert up.returncode == 0, up.stderr[-3000:]
        _sql(hbk_project, "create database app")
        _sql(hbk_project, "create table items(id int primary key, v text); insert into items "
                          "select g, md5(g::text) from generate_series(1, 5000) g", "app")
        rows = _row_checksums(hbk_project)
        old_api = _docker("inspect", "--format", "{{.Image}}", f"{hbk_project}-api-1")
        cid = _docker("create", image)
        _docker("commit", "--change", "ENV BROKEN=1", cid, image)
        _docker("rm", cid)

        # A backup that cannot be written stops the upgrade before any container changes.
        manifest = folder / "fleet.yaml"
        text = manifest.read_text()
        manifest.write_text(text.replace("machines:", "backup: {target: fleet.yaml/runs}\n"
                                                      "machines:", 1))
        refused = _dy(folder, hbk_project, "upgrade", "--no-build")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "pre-upgrade backup failed, so nothing was changed" in refused.stderr
        assert _docker("inspect", "--format", "{{.Image}}", f"{hbk_project}-api-1") == old_api
        assert "upgrade" not in _dy(folder, hbk_project, "status").stderr  # none pending
        manifest.write_text(text)

        result = _dy(folder, hbk_project, "upgrade", "--no-build")
        assert result.returncode == 6, result.stdout + result.stderr
        said = result.stderr
        assert "DELETE 5000" in said  # the new api's migration ran (its last log lines)
        assert "backup db (postgres)" in said and "restore db (postgres)" in said, said
        assert said.index("backup db") < said.index("recreate api: started")
        assert said.index("restore db") < said.index("revert api: started")
        assert _row_checksums(hbk_project) == rows  # the migration's delete is undone
        assert _docker("inspect", "--format", "{{.Image}}", f"{hbk_project}-api-1") == old_api
        runs = json.loads(_dy(folder, hbk_project, "backups", "--format", "json").stdout)
        assert [(r["reason"], list(r["services"])) for r in runs] == [("pre-upgrade", ["db"])]
    finally:
        _docker("rmi", "-f", image, check=False)
