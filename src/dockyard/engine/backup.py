"""Backups that restore: each stateful service's data saved by its own tool while it keeps
serving, into one folder per run, and put back into fresh volumes.

- **postgres**: `pg_dumpall --globals-only` (roles, tablespaces), then `pg_dump -Fc` per
  database, run inside the container (`docker exec`) as its user, connecting as
  `backup.user` (default postgres) over the local socket. pg_dump reads one MVCC snapshot
  and takes no lock that blocks writes; while it runs, a session inside the server commits
  a write transaction every 50 ms and times each commit: the slowest is the write pause.
  Restore: the service starts on a fresh volume (its image makes the cluster), then the
  globals, then `pg_restore` of each database.
- **redis**: `BGSAVE`, `LASTSAVE` polled until it moves (the background save finished), then
  the RDB copied out of the container. The pause is the fork (`latest_fork_usec`).
  Restore: the RDB goes into the fresh volume before Redis starts, also as the append-only
  file's base when AOF was on (Redis 7 ignores a lone RDB then; it adopts an old-style AOF).
- **volume**: a tar of each named volume through the engine's archive API (no helper
  container, no image), live; `quiesce: stop` stops the service around it (the pause is
  then the time it was stopped until healthy again). Restore: the tar is unpacked into the
  fresh volume of a created, not yet started container, owners and modes as they were.

A run is written as `<id>.partial` and renamed when complete, so a listed run is whole.
Files are 0600 and folders 0700 (engine/private.py); the manifest JSON holds sha256,
image IDs and versions, never an environment: a backup holds no secret that was not
already in a volume. A restore checks every file's sha256 before it touches anything.
"""

from __future__ import annotations

import hashlib
import io
import os
import shlex
import shutil
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from dockyard.engine.build import write_render
from dockyard.engine.private import fsync_dir, private_folder, write_private
from dockyard.engine.probe import wait_healthy
from dockyard.engine.target import Target, compose, containers
from dockyard.errors import BackupError, EngineError, Location
from dockyard.events import BackedUp, Progress, Restored, Sink
from dockyard.manifest.load import Fleet
from dockyard.ops.backup import (
    MANIFEST,
    PARTIAL,
    RUN_ID,
    FileRecord,
    RunRecord,
    ServiceRecord,
    expired_per_machine,
    iso,
    record_from_json,
    run_id,
    unused_id,
    wrong_files,
)
from dockyard.plan.backup import backup_kind, backup_share, backup_volumes, stateful
from dockyard.plan.model import ServicePlan

BACKUPS = "backups"
VOLUME_LABEL = "com.docker.compose.volume"
PROJECT_LABEL = "com.docker.compose.project"
DEFAULT_DEADLINE = 30.0  # a restored service without a health check: running counts
SAVE_TIMEOUT = 3600.0  # the longest a BGSAVE may take
CHUNK = 1 << 20

__all__ = ["RestoreReport", "backup", "backup_root", "check_restore", "ensure_writable",
           "list_runs", "prune", "read_run", "restore", "restore_service", "verify"]


# -- where runs go ---------------------------------------------------------------------------

def backup_root(fleet: Fleet, state: Path) -> Path:
    """The folder runs are written under: `backup.target` (relative to the manifest's
    folder; `~` is the user's home), else `backups/` in the state folder."""
    given = fleet.spec.backup.target.strip()
    if not given:
        return state / BACKUPS
    path = Path(os.path.expanduser(given))
    return path if path.is_absolute() else (fleet.root / path).absolute()


def root_where(fleet: Fleet) -> Location | None:
    """Where the manifest says where runs go (None: the state folder's default)."""
    return fleet.where("backup", "target") if fleet.spec.backup.target.strip() else None


def ensure_writable(root: Path, where: Location | None = None) -> None:
    """Make `root` (0700 when dockyard makes it) and prove a file can be written in it;
    else one located BackupError. Called before any container is touched."""
    try:
        if not root.is_dir():
            private_folder(root)
        probe = root / f".dockyard-write-{uuid.uuid4().hex[:8]}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"ok")
            os.fsync(fd)
        finally:
            os.close(fd)
        probe.unlink()
    except OSError as exc:
        said = exc.strerror or str(exc)
        raise BackupError(
            f"backup target {root} cannot be written ({said}); nothing was backed up or "
            "stopped", where=where,
            fix="set `backup: {target: <a folder you can write>}` in the manifest, or make "
                f"{root} writable") from None


# -- backup ------------------------------------------------------------------------------------

@dataclass
class _Run:
    target: Target
    folder: Path  # <root>/<id>.partial
    emit: Sink
    records: list[ServiceRecord] = field(default_factory=list)


def backup(target: Target, services: Sequence[str] | None = None, *, emit: Sink,
           reason: str = "backup", root: Path | None = None,
           now: datetime | None = None, batch: str = "") -> RunRecord:
    """Back up `services` (None: every stateful one on the target's machine) into a new run
    under `root` (default: backup_root). The target is proven writable and every service
    checked (running, known kind) before any is touched; a failure removes the partial
    run and raises. Retention (`backup.keep`, per machine) runs after a complete run.
    `batch` marks the runs one command makes on several machines at once."""
    fleet = target.fleet
    root = root or backup_root(fleet, target.state)
    ensure_writable(root, root_where(fleet))
    names = _chosen(target, services)
    found = containers(target.engine, target.project)
    for name in names:
        _ready(target, name, found.get(name))
    start = now or datetime.now(UTC)
    rid, folder = _reserve(root, run_id(start), batch)
    run = _Run(target, folder, emit)
    try:
        for name in names:
            run.records.append(_backup_service(run, target.plan.services[name], found[name]))
        record = RunRecord(
            id=rid, fleet=fleet.spec.fleet, fleet_hash=_fleet_hash(fleet),
            machine=target.machine, project=target.project, reason=reason,
            started=iso(start), finished=iso(datetime.now(UTC)), services=tuple(run.records),
            batch=batch)
        write_private(folder / MANIFEST, record.to_json())
        fsync_dir(folder)
        folder.rename(root / rid)
        fsync_dir(root)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    for old in prune(root, fleet.spec.backup.keep, target.machine):
        emit(Progress(f"backup run {old} removed (keeping the last {fleet.spec.backup.keep} "
                      f"of machine {target.machine})"))
    return record


def _reserve(root: Path, wanted: str, batch: str) -> tuple[str, Path]:
    """A run id of its own and its `<id>.partial` folder, made (mkdir is atomic: machines
    backed up at once never share a folder, even when they start in one microsecond)."""
    taken = {batch}
    while True:
        rid = unused_id(wanted, taken)
        folder = root / (rid + PARTIAL)
        if not (root / rid).exists():
            try:
                folder.mkdir()
            except FileExistsError:
                pass
            else:
                private_folder(folder)
                return rid, folder
        taken.add(rid)


def _chosen(target: Target, services: Sequence[str] | None) -> list[str]:
    spec = target.fleet.spec
    here = [sp.name for sp in target.services()]
    if not services:
        names = stateful(spec, here)
        if not names:
            raise BackupError(f"no service on machine {target.machine} holds data to back up",
                              fix="give a service named volumes, or `backup: {kind: ...}`")
        return names
    homes = {n: sp.machine for n, sp in target.plan.services.items()}
    return backup_share(spec, {target.machine: here}, services, homes).get(target.machine, [])


def _ready(target: Target, name: str, container: Any) -> None:
    kind = backup_kind(target.fleet.spec, name)
    if container is None:
        raise BackupError(f"service {name} has no container in project {target.project}; "
                          "nothing was backed up", fix="`dockyard up` it first")
    if kind in ("postgres", "redis") and container.status != "running":
        raise BackupError(f"service {name} ({kind}) is {container.status}: its dump tool "
                          "needs it running; nothing was backed up",
                          fix="`dockyard up` it first")


def _backup_service(run: _Run, sp: ServicePlan, container: Any) -> ServiceRecord:
    kind = backup_kind(run.target.fleet.spec, sp.name)
    assert kind is not None
    folder = run.folder / sp.name
    private_folder(folder)
    t0 = time.monotonic()
    if kind == "postgres":
        files, version, details, pause = _postgres_dump(sp, container, folder)
    elif kind == "redis":
        files, version, details, pause = _redis_save(sp, container, folder)
    else:
        files, version, details, pause = _volume_tars(run.target, sp, container, folder)
    fsync_dir(folder)
    seconds = time.monotonic() - t0
    image_id = str(container.attrs.get("Image", ""))
    record = ServiceRecord(
        service=sp.name, kind=kind, image=str(container.attrs.get("Config", {}).get("Image",
                                                                                  sp.image)),
        image_id=image_id, version=version or _image_version(run.target, image_id),
        files=tuple(FileRecord(f"{sp.name}/{name}", digest, size)
                    for name, digest, size in files),
        volumes=dict(backup_volumes(run.target.fleet.spec, sp.name)),
        write_pause_s=round(pause, 4), seconds=round(seconds, 3), details=details)
    run.emit(BackedUp(sp.name, kind, sum(f.bytes for f in record.files), seconds, pause))
    return record


Files = list[tuple[str, str, int]]  # (file name, sha256, bytes)


# -- postgres

def _pg_user(sp: ServicePlan) -> str:
    return (sp.spec.backup.user if sp.spec.backup and sp.spec.backup.user else "postgres")


def _psql(user: str, sql: str, db: str = "postgres") -> list[str]:
    return ["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", user, "-d", db,
            "-c", sql]


def _postgres_dump(sp: ServicePlan, container: Any, folder: Path
                   ) -> tuple[Files, str, dict[str, Any], float]:
    user = _pg_user(sp)
    version = "PostgreSQL " + _text(container, _psql(user, "show server_version"), sp.name)
    wanted = sp.spec.backup.databases if sp.spec.backup and sp.spec.backup.databases else None
    listed = _text(container, _psql(user, "select datname from pg_database where not "
                                          "datistemplate and datallowconn order by 1"),
                   sp.name).splitlines()
    missing = [d for d in wanted or [] if d not in listed]
    if missing:
        raise BackupError(f"service {sp.name}: database {missing[0]!r} does not exist "
                          f"(there are: {', '.join(listed)})",
                          fix="fix `backup.databases`, or leave it out to dump every one")
    databases = wanted or listed
    probe = _WriteProbe(container, user)
    files: Files = []
    dumped: dict[str, str] = {}
    with probe:
        files.append(_exec_to_file(container, ["pg_dumpall", "-U", user, "--globals-only"],
                                   folder / "globals.sql", sp.name))
        for i, db in enumerate(databases):
            name = f"db-{i:02d}-{_safe(db)}.dump"
            files.append(_exec_to_file(
                container, ["pg_dump", "-U", user, "-Fc", "--lock-wait-timeout=30000",
                            "-d", db], folder / name, sp.name))
            dumped[db] = name
    return files, version, {"databases": dumped, "user": user}, probe.worst


_PROBE_APP = "dockyard-write-probe"
# A write transaction (an XID, a commit record flushed) every 50 ms inside the server, timed
# there: the exec round trip is not in it. A NOTICE each time the slowest grows.
_PROBE_SQL = """DO $$
DECLARE t0 timestamptz; took float8; worst float8 := 0;
BEGIN
  FOR i IN 1..720000 LOOP
    t0 := clock_timestamp();
    PERFORM txid_current();
    COMMIT;
    took := extract(epoch FROM clock_timestamp() - t0);
    IF took > worst THEN worst := took; RAISE NOTICE 'dockyard-probe %', worst; END IF;
    PERFORM pg_sleep(0.05);
  END LOOP;
END $$"""


class _WriteProbe:
    """While a dump runs, a session commits a write transaction every 50 ms and times each
    commit itself; `worst` is the slowest (the write pause the dump caused, -1 when the
    probe could not run). Ended by cancelling its backend (found by application_name)."""

    def __init__(self, container: Any, user: str) -> None:
        self.container, self.user = container, user
        self.worst = -1.0
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        api = self.container.client.api
        try:
            ex = api.exec_create(self.container.id, ["psql", "-X", "-q", "-U", self.user,
                                                     "-d", "postgres", "-c", _PROBE_SQL],
                                 stdout=True, stderr=True,
                                 environment={"PGAPPNAME": _PROBE_APP})
            stream = api.exec_start(ex["Id"], stream=True, demux=True)
            said = b""
            for _, err in stream:
                if err:
                    said += err
                    for line in said.decode(errors="replace").splitlines():
                        if "dockyard-probe " in line:
                            self.worst = max(self.worst, float(line.rsplit(" ", 1)[-1]))
                            self._started.set()
                    said = said[said.rfind(b"\n") + 1:]
        except Exception:  # the probe is a measurement: the dump goes on without it
            pass
        finally:
            self._started.set()

    def __enter__(self) -> _WriteProbe:
        self._thread.start()
        self._started.wait(5)  # its first commit is in: the dump's pause is what follows
        return self

    def __exit__(self, *exc: object) -> None:
        self.container.exec_run(_psql(self.user, "select pg_cancel_backend(pid) from "
                                      f"pg_stat_activity where application_name = "
                                      f"'{_PROBE_APP}'"))
        self._thread.join(timeout=10)


# -- redis

def _redis_cli(sp: ServicePlan, *args: str) -> list[str]:
    """redis-cli for the service's port; a password is read inside the container from the
    env variable `backup.password_env` names, never by dockyard."""
    ports = [p.port for p in sp.spec.ports.values() if p.protocol == "tcp"]
    port = 6379 if not ports or 6379 in ports else ports[0]
    argv = ["redis-cli", "-p", str(port), *args]
    secret = sp.spec.backup.password_env if sp.spec.backup else ""
    if not secret:
        return argv
    return ["/bin/sh", "-c", f'REDISCLI_AUTH="${{{secret}}}" exec "$@"', "redis-cli", *argv]


def _redis(sp: ServicePlan, container: Any, *args: str) -> str:
    out = _text(container, _redis_cli(sp, *args), sp.name)
    if out.split(" ", 1)[0] in ("ERR", "NOAUTH", "WRONGPASS", "NOPERM", "LOADING",
                                "MISCONF", "READONLY"):
        raise BackupError(f"service {sp.name}: redis-cli {' '.join(args)} said: {out}",
                          fix="set `backup.password_env` to the env variable holding its "
                              "password" if out.startswith(("NOAUTH", "WRONGPASS")) else "")
    return out


def _info(text: str) -> dict[str, str]:
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line
                and not line.startswith("#"))


def _redis_save(sp: ServicePlan, container: Any, folder: Path
                ) -> tuple[Files, str, dict[str, Any], float]:
    """BGSAVE, LASTSAVE polled, the RDB copied out. Where Redis kept no RDB in its folder
    (`save ""`, AOF only), the one BGSAVE wrote is removed after the copy and the folder
    gets its owner, mode and mtime back: the volume is as it was, byte for byte."""
    config = {key: _redis(sp, container, "CONFIG", "GET", key).splitlines()[-1]
              for key in ("dir", "dbfilename", "appendonly", "appendfilename")}
    version = "redis " + _info(_redis(sp, container, "INFO", "server")).get(
        "redis_version", "?").strip()
    folder_there = PurePosixPath(config["dir"])
    rdb = str(folder_there / config["dbfilename"])
    kept = _stat(container, rdb) is not None
    entry = None if kept else _first_entry(container, str(folder_there))
    try:
        fork = _bgsave(sp, container)
        file, digest, size, member = _copy_out(container, rdb, folder / "dump.rdb", sp.name)
    finally:
        if not kept:  # Redis kept none: the one BGSAVE wrote goes, the folder's times back
            container.exec_run(["rm", "-f", rdb])
            if entry is not None:
                _put_entry(container, str(folder_there), entry)
    details = {"dir": config["dir"], "dbfilename": config["dbfilename"],
               "aof": config["appendonly"] == "yes", "appendfilename": config["appendfilename"],
               "uid": member.uid, "gid": member.gid, "mode": member.mode}
    return [(file, digest, size)], version, details, fork


def _bgsave(sp: ServicePlan, container: Any) -> float:
    """BGSAVE and wait for it (LASTSAVE moves; rdb_saves too, as LASTSAVE counts seconds);
    the seconds the fork held the server (the write pause)."""
    before = int(_redis(sp, container, "LASTSAVE"))
    saves = int(_info(_redis(sp, container, "INFO", "persistence")).get("rdb_saves", "0"))
    said = _redis(sp, container, "BGSAVE", "SCHEDULE")
    end = time.monotonic() + SAVE_TIMEOUT
    while True:
        persistence = _info(_redis(sp, container, "INFO", "persistence"))
        done = persistence.get("rdb_bgsave_in_progress", "0").strip() == "0" and (
            int(_redis(sp, container, "LASTSAVE")) > before
            or int(persistence.get("rdb_saves", "0")) > saves)
        if done:
            break
        if time.monotonic() > end:
            raise BackupError(f"service {sp.name}: BGSAVE ({said}) did not finish within "
                              f"{SAVE_TIMEOUT:g} s")
        time.sleep(0.05)
    if persistence.get("rdb_last_bgsave_status", "ok").strip() != "ok":
        raise BackupError(f"service {sp.name}: BGSAVE failed (rdb_last_bgsave_status: "
                          f"{persistence['rdb_last_bgsave_status'].strip()})",
                          fix=f"`dockyard logs {sp.name}` says why (a full disk, a "
                              "read-only data folder)")
    return int(_info(_redis(sp, container, "INFO", "stats")).get("latest_fork_usec", "0")) / 1e6


def _stat(container: Any, path: str) -> dict[str, Any] | None:
    """The engine's stat of a path in the container (name, size, mode, mtime), None when
    there is nothing there: a HEAD of the archive endpoint, no bytes copied."""
    import base64
    import json

    api = container.client.api
    res = api.head(api._url("/containers/{0}/archive", container.id), params={"path": path})
    if res.status_code == 404:
        return None
    api._raise_for_status(res)
    said = res.headers.get("X-Docker-Container-Path-Stat", "")
    return dict(json.loads(base64.b64decode(said))) if said else {}


def _first_entry(container: Any, path: str) -> tuple[tarfile.TarInfo, str] | None:
    """A folder's own tar entry (owner, mode) and its exact mtime, reading only the start
    of the engine's archive of it."""
    stat = _stat(container, path)
    if stat is None:
        return None
    stream, _ = container.get_archive(path, chunk_size=64 * 1024)
    with tarfile.open(fileobj=_Chunks(stream), mode="r|") as tar:
        entry = tar.next()
    if entry is None or not entry.isdir():
        return None
    stamp = str(stat.get("mtime", ""))  # RFC 3339 with nanoseconds
    return entry, _epoch(stamp) if stamp else str(entry.mtime)


def _epoch(stamp: str) -> str:
    """"2026-12-02T01:13:52.904509775Z" -> "1796174032.904509775" (no float rounding)."""
    whole, _, rest = stamp.rstrip("Z").partition(".")
    fraction = "".join(c for c in rest if c.isdigit())
    seconds = int(datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp())
    return f"{seconds}.{fraction}" if fraction else str(seconds)


def _put_entry(container: Any, path: str, entry: tuple[tarfile.TarInfo, str]) -> None:
    """The folder's entry put back over it: the engine sets its owner, mode and mtime."""
    info, mtime = entry
    again = tarfile.TarInfo(PurePosixPath(path).name)
    again.type, again.mode, again.uid, again.gid = tarfile.DIRTYPE, info.mode, info.uid, \
        info.gid
    again.uname, again.gname = info.uname, info.gname
    again.pax_headers = {"mtime": mtime}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(again)
    buffer.seek(0)
    container.put_archive(str(PurePosixPath(path).parent), buffer)


# -- plain volumes

def _volume_tars(target: Target, sp: ServicePlan, container: Any, folder: Path
                 ) -> tuple[Files, str, dict[str, Any], float]:
    volumes = backup_volumes(target.fleet.spec, sp.name)
    if not volumes:
        raise BackupError(f"service {sp.name} has no named volume to back up",
                          where=target.fleet.where("services", sp.name, "volumes"),
                          fix="mount its data as `name:/path`, or give `backup: {kind: ...}`")
    stop = bool(sp.spec.backup and sp.spec.backup.quiesce == "stop")
    stopped_at = 0.0
    if stop and container.status == "running":
        stopped_at = time.monotonic()
        container.stop(timeout=30)
    files: Files = []
    try:
        for volume, path in volumes:
            files.append(_archive_to_file(container, path, folder / f"volume-{_safe(volume)}"
                                                                     ".tar", sp.name))
    finally:
        if stopped_at:
            container.start()
    pause = 0.0
    if stopped_at:
        result = wait_healthy(sp.name, sp.spec, lambda: container,
                              deadline=_deadline(sp), probe=target.engine.probe)
        pause = time.monotonic() - stopped_at
        if not result.healthy:
            raise BackupError(f"service {sp.name} did not become healthy again after its "
                              f"quiesced backup: {result.output}",
                              fix=f"`dockyard logs {sp.name}`; `dockyard up` starts it again")
    return files, "", {"quiesce": "stop" if stop else "none"}, pause


# -- exec and archives, streamed into private files

def _create_private(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def _exec_to_file(container: Any, argv: list[str], path: Path, service: str
                  ) -> tuple[str, str, int]:
    """Run `argv` in the container, its stdout into `path` (0600); (name, sha256, bytes)."""
    api = container.client.api
    ex = api.exec_create(container.id, argv, stdout=True, stderr=True)
    digest, size, errors = hashlib.sha256(), 0, b""
    fd = _create_private(path)
    with os.fdopen(fd, "wb") as out:
        for chunk_out, chunk_err in api.exec_start(ex["Id"], stream=True, demux=True):
            if chunk_out:
                out.write(chunk_out)
                digest.update(chunk_out)
                size += len(chunk_out)
            if chunk_err:
                errors = (errors + chunk_err)[-4000:]
        out.flush()
        os.fsync(out.fileno())
    code = api.exec_inspect(ex["Id"]).get("ExitCode")
    if code != 0:
        raise BackupError(f"service {service}: `{shlex.join(argv[:4])} …` failed (exit "
                          f"{code}): {_last_line(errors.decode(errors='replace'))}",
                          fix=f"`dockyard logs {service}`; the partial run was removed")
    return path.name, digest.hexdigest(), size


def _text(container: Any, argv: list[str], service: str) -> str:
    code, out = container.exec_run(argv, demux=True)
    stdout, stderr = out if isinstance(out, tuple) else (out, b"")
    if code != 0:
        said = (stderr or stdout or b"").decode(errors="replace")
        raise BackupError(f"service {service}: `{shlex.join(argv[:6])}` failed (exit {code})"
                          f": {_last_line(said)}",
                          fix="check `backup.user` (the database role dumps run as)"
                          if argv[0] == "psql" else "")
    return (stdout or b"").decode(errors="replace").strip()


def _archive(container: Any, path: str, service: str) -> Any:
    """The engine's tar stream of `path` in the container (running or not)."""
    from docker.errors import APIError, NotFound

    try:
        stream, _ = container.get_archive(path, chunk_size=CHUNK)
    except (APIError, NotFound) as exc:
        raise BackupError(f"service {service}: {path} cannot be read from its container: "
                          f"{getattr(exc, 'explanation', exc)}") from None
    return stream


def _archive_to_file(container: Any, path: str, out_path: Path, service: str
                     ) -> tuple[str, str, int]:
    """The engine's tar of `path` in the container (running or not) into `out_path`."""
    stream = _archive(container, path, service)
    digest, size = hashlib.sha256(), 0
    with os.fdopen(_create_private(out_path), "wb") as out:
        for chunk in stream:
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return out_path.name, digest.hexdigest(), size


def _copy_out(container: Any, path: str, out_path: Path, service: str
              ) -> tuple[str, str, int, tarfile.TarInfo]:
    """One file of the container into `out_path`; (name, sha256, bytes, its tar entry)."""
    stream = _archive(container, path, service)
    digest, size = hashlib.sha256(), 0
    with tarfile.open(fileobj=_Chunks(stream), mode="r|") as tar:
        member = tar.next()
        if member is None or not member.isfile():
            raise BackupError(f"service {service}: {path} is not a file in its container")
        source = tar.extractfile(member)
        assert source is not None
        with os.fdopen(_create_private(out_path), "wb") as out:
            while block := source.read(CHUNK):
                out.write(block)
                digest.update(block)
                size += len(block)
            out.flush()
            os.fsync(out.fileno())
    return out_path.name, digest.hexdigest(), size, member


class _Chunks(io.RawIOBase):
    """A file over an iterator of byte chunks (the engine's archive stream)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it: Iterator[bytes] = iter(chunks)
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            try:
                self._left = next(self._it)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._left))
        buffer[:n] = self._left[:n]
        self._left = self._left[n:]
        return n


# -- runs ------------------------------------------------------------------------------------

def list_runs(root: Path) -> list[RunRecord]:
    """The complete runs under `root`, oldest first (a folder without a readable manifest
    is skipped)."""
    if not root.is_dir():
        return []
    out = []
    for folder in sorted(root.iterdir()):
        if not RUN_ID.match(folder.name) or not (folder / MANIFEST).is_file():
            continue
        try:
            out.append(record_from_json((folder / MANIFEST).read_text()))
        except (OSError, ValueError, KeyError, TypeError):  # OSError: pruned meanwhile
            continue
    return out


def read_run(root: Path, run: str) -> RunRecord:
    """Run `run` (its id, or `latest`) under `root`, or a BackupError naming what there is."""
    runs = list_runs(root)
    if run == "latest" and runs:
        return runs[-1]
    found = next((r for r in runs if r.id == run), None)
    if found is None:
        known = ", ".join(r.id for r in runs[-5:]) or "none yet"
        raise BackupError(f"no backup run {run!r} in {root} (latest: {known})",
                          fix="`dockyard backups` lists the runs")
    return found


def verify(root: Path, record: RunRecord, services: Sequence[str] | None = None) -> None:
    """Every file of `record` (of `services`) has the sha256 written when it was made; else
    a BackupError naming the first that does not (or is missing)."""
    folder = root / record.id
    found: dict[str, str | None] = {}
    for f in record.files:
        found[f.path] = _sha256(folder / f.path)
    wrong = wrong_files(record, found, services)
    if wrong:
        what = "is missing" if found.get(wrong[0]) is None else "does not match its sha256"
        raise BackupError(f"backup run {record.id}: {folder / wrong[0]} {what}; nothing was "
                          "restored", fix="restore another run (`dockyard backups`)")


def prune(root: Path, keep: int, machine: str | None = None) -> list[str]:
    """Remove all but the newest `keep` complete runs of each machine under `root` (of
    `machine` alone when given: machines backed up at once each prune their own); the ids
    removed."""
    runs = list_runs(root)
    mine = {r.id for r in runs if machine is None or r.machine == machine}
    gone = [i for i in expired_per_machine(((r.id, r.machine) for r in runs), keep)
            if i in mine]
    for rid in gone:
        shutil.rmtree(root / rid, ignore_errors=True)
    return gone


def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


# -- restore ---------------------------------------------------------------------------------

@dataclass
class RestoreReport:
    run: str
    services: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def check_restore(target: Target, root: Path, record: RunRecord,
                  services: Sequence[str] | None = None, *, replace: bool = False
                  ) -> list[str]:
    """Whether run `record` can be put back on the target, touching nothing: the services
    it restores (of `services`, None: all it holds that run on this machine), in start
    order, once every file's sha256 is checked and, unless `replace`, no volume exists."""
    names = _restore_names(target, record, services)
    verify(root, record, names)
    engine = target.engine
    volumes = {n: _engine_volumes(target, n) for n in names}
    existing = [v for n in names for v in volumes[n].values() if _volume_exists(engine, v)]
    if existing and not replace:
        where = f" on machine {target.machine}" if len(target.fleet.spec.machines) > 1 else ""
        raise BackupError(f"volume {existing[0]} exists{where}: restore puts data into fresh "
                          "volumes and deleting it would lose what it holds; nothing was "
                          "restored",
                          fix="`dockyard restore --replace` deletes it first (after a "
                              "backup of it), or `dockyard down --volumes`")
    return names


def restore(target: Target, run: str, services: Sequence[str] | None = None, *, emit: Sink,
            replace: bool = False, root: Path | None = None,
            checked: list[str] | None = None) -> RestoreReport:
    """Put run `run`'s data of `services` (None: all it holds that run on this machine)
    back: each service's container and volumes are made anew, the data goes in, and the
    service starts and is waited for until healthy, in start order. Every file's sha256 is
    checked first, and existing volumes are refused unless `replace` (they are deleted);
    `checked`: check_restore already said these services, and the caller wrote the render
    (machines restored at once do not write the same files at once)."""
    fleet = target.fleet
    root = root or backup_root(fleet, target.state)
    record = read_run(root, run)
    if checked is None:
        names = check_restore(target, root, record, services, replace=replace)
        write_render(fleet, target.plan, target.state)
    else:
        names = checked
    report = RestoreReport(record.id)
    for name in names:
        report.seconds[name] = restore_service(target, root, record, name, emit=emit,
                                               verified=True)
        report.services.append(name)
    return report


Create = Callable[[str], None]


def restore_service(target: Target, root: Path, record: RunRecord, name: str, *,
                    emit: Sink, create: Create | None = None, verified: bool = False) -> float:
    """Service `name` of run `record` back on fresh volumes, healthy: its container and
    volumes are deleted, `create(name)` makes the container again (not started; default:
    `compose up --no-start` with the rendered file; an upgrade's rollback passes one with
    the old configuration), the data goes in, it starts and is waited for. Its files'
    sha256 are checked first (unless `verified`). The seconds it took."""
    t0 = time.monotonic()
    if not verified:
        verify(root, record, [name])
    saved = record.service(name)
    if saved is None:
        raise BackupError(f"backup run {record.id} holds no data of service {name!r}")
    _restore_service(target, root / record.id, saved, _engine_volumes(target, name),
                     emit=emit, create=create)
    seconds = time.monotonic() - t0
    emit(Restored(name, saved.kind, record.id, seconds))
    return seconds


def _restore_names(target: Target, record: RunRecord, services: Sequence[str] | None
                   ) -> list[str]:
    held = [s.service for s in record.services]
    asked = list(services or held)
    for name in asked:
        if name not in held:
            raise BackupError(f"backup run {record.id} holds no data of service {name!r} "
                              f"(it holds: {', '.join(held)})",
                              fix="`dockyard backups` lists what each run holds")
        if name not in target.fleet.spec.services:
            raise BackupError(f"service {name} of backup run {record.id} is no longer in the "
                              "manifest", fix="restore the services it still has by name")
    here = {sp.name for sp in target.services()}
    away = [n for n in asked if n not in here]
    if away and services:
        raise BackupError(f"service {away[0]} does not run on machine {target.machine}",
                          fix=f"pass -m {target.plan.services[away[0]].machine}")
    order = [sp.name for level in target.levels() for sp in level]
    return [n for n in order if n in asked]


def _engine_volumes(target: Target, name: str) -> dict[str, str]:
    """volume -> the engine's name for it (compose: <project>_<volume>)."""
    return {v: f"{target.project}_{v}" for v, _ in backup_volumes(target.fleet.spec, name)}


def _volume_exists(engine: Any, name: str) -> bool:
    from docker.errors import NotFound

    try:
        engine.client.volumes.get(name)
    except NotFound:
        return False
    return True


def _restore_service(target: Target, folder: Path, saved: ServiceRecord,
                     volumes: dict[str, str], *, emit: Sink, create: Create | None) -> None:
    from docker.errors import APIError, NotFound

    engine = target.engine
    sp = target.plan.services[saved.service]
    old = containers(engine, target.project).get(sp.name)
    if old is not None:
        emit(Progress(f"restore {sp.name}: removing its container"))
        old.remove(force=True)
    for volume in volumes.values():
        try:
            engine.client.volumes.get(volume).remove()
        except NotFound:
            pass
        except APIError as exc:
            raise BackupError(f"volume {volume} of service {sp.name} cannot be deleted: "
                              f"{exc.explanation or exc}",
                              fix="stop the other containers that use it "
                                  "(`dockyard down`)") from None
    if create is None:
        compose(target, "up", "--no-start", "--no-deps", "--no-build", "--force-recreate",
                sp.name)
    else:
        create(sp.name)
    container = containers(engine, target.project).get(sp.name)
    if container is None:
        raise EngineError(f"restore {sp.name}: compose made no container")
    kind = saved.kind
    if kind == "volume":
        paths = dict(backup_volumes(target.fleet.spec, sp.name))
        for volume, then in saved.volumes.items():
            path = paths.get(volume)
            if path is None:
                raise BackupError(f"service {sp.name} no longer mounts volume {volume} "
                                  f"(it was at {then})", fix="mount it again to restore it")
            tar = folder / sp.name / f"volume-{_safe(volume)}.tar"
            _put_tar(container, path, tar, then, sp.name)
    elif kind == "redis":
        _put_rdb(container, folder / sp.name / "dump.rdb", saved.details, sp.name)
    container.start()
    result = wait_healthy(sp.name, sp.spec, lambda: container, deadline=_deadline(sp),
                          probe=engine.probe)
    if not result.healthy:
        raise BackupError(f"restored service {sp.name} did not become healthy: "
                          f"{result.output}", fix=f"`dockyard logs {sp.name}`")
    if kind == "postgres":
        _pg_restore(container, folder / sp.name, saved, sp.name)


def _put_tar(container: Any, path: str, tar: Path, then: str, service: str) -> None:
    """Unpack a volume's tar (its entries under the backed-up path's last part) at `path`."""
    parent = str(PurePosixPath(path).parent)
    if PurePosixPath(then).name != PurePosixPath(path).name:
        raise BackupError(f"service {service}: the volume was backed up at {then}, and is "
                          f"mounted at {path} now", fix=f"mount it at {then} to restore it")
    with tar.open("rb") as data:
        if not container.put_archive(parent, data):
            raise BackupError(f"service {service}: {tar.name} could not be unpacked at {path}")


def _put_rdb(container: Any, rdb: Path, details: Any, service: str) -> None:
    """The RDB into the fresh volume, where Redis loads it from: as `dbfilename`, or, when
    AOF is on (Redis then ignores an RDB), as an old-style append-only file, which Redis 7
    adopts as the base of its AOF (and Redis 6 reads by its RDB preamble)."""
    names = [details["appendfilename"] if details.get("aof") else details["dbfilename"]]
    buffer = io.BytesIO()
    size = rdb.stat().st_size
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size, info.uid, info.gid = size, int(details["uid"]), int(details["gid"])
            info.mode, info.mtime = int(details["mode"]) & 0o7777, int(time.time())
            with rdb.open("rb") as source:
                tar.addfile(info, source)
    buffer.seek(0)
    if not container.put_archive(details["dir"], buffer):
        raise BackupError(f"service {service}: the RDB could not be put into {details['dir']}")


def _pg_restore(container: Any, folder: Path, saved: ServiceRecord, service: str) -> None:
    """Globals, then each database: into the one of its name when the new cluster has it
    (postgres), else created by pg_restore itself (-C keeps its encoding and locale)."""
    user = str(saved.details.get("user", "postgres"))
    ids = _text(container, ["id", "-u"], service), _text(container, ["id", "-g"], service)
    inside = f"/tmp/dockyard-restore-{uuid.uuid4().hex[:8]}"
    files = ["globals.sql", *saved.details["databases"].values()]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        top = tarfile.TarInfo(PurePosixPath(inside).name)
        top.type, top.mode = tarfile.DIRTYPE, 0o700
        top.uid, top.gid = int(ids[0]), int(ids[1])
        tar.addfile(top)
        for name in files:
            info = tar.gettarinfo(str(folder / name), arcname=f"{top.name}/{name}")
            info.uid, info.gid, info.mode = top.uid, top.gid, 0o600
            with (folder / name).open("rb") as source:
                tar.addfile(info, source)
    buffer.seek(0)
    if not container.put_archive("/tmp", buffer):
        raise BackupError(f"service {service}: the dumps could not be copied into its /tmp")
    try:
        # Roles that the new cluster already has (its superuser) are said to exist: fine.
        container.exec_run(["psql", "-X", "-q", "-U", user, "-d", "postgres", "-f",
                            f"{inside}/globals.sql"])
        have = set(_text(container, _psql(user, "select datname from pg_database"),
                         service).splitlines())
        for db, name in saved.details["databases"].items():
            argv = (["pg_restore", "-U", user, "-d", db, "--exit-on-error", f"{inside}/{name}"]
                    if db in have else
                    ["pg_restore", "-U", user, "-C", "-d", "postgres", "--exit-on-error",
                     f"{inside}/{name}"])
            _text(container, argv, service)
    finally:
        container.exec_run(["rm", "-rf", inside])


# -- small things

def _deadline(sp: ServicePlan) -> float:
    return sp.spec.health.deadline if sp.spec.health else DEFAULT_DEADLINE


def _safe(name: str) -> str:
    """A database or volume name as a file name (an odd character becomes `_`)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80] or "_"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _fleet_hash(fleet: Fleet) -> str:
    data = fleet.path.read_bytes() if fleet.path.is_file() else b""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _image_version(target: Target, image_id: str) -> str:
    """The image's dated tag (or OCI revision), for a kind whose tool says no version."""
    try:
        image = target.engine.client.images.get(image_id)
    except Exception:  # a version is a nicety; the ID is what counts
        return ""
    dated = sorted(t for t in image.tags if not t.endswith((":current", ":prev")))
    if dated:
        return str(dated[-1].rsplit(":", 1)[-1])
    return str((image.labels or {}).get("org.opencontainers.image.revision", ""))
