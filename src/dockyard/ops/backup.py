"""What a backup run is, as data: its manifest JSON, the runs retention keeps, and what a
restore finds wrong with a run's files. Pure: engine/backup.py writes and reads the files.

A run is one folder under the backup root (`backup.target`, else `<state>/backups`):

    <root>/<run id>/manifest.json        this module's RunRecord
    <root>/<run id>/<service>/<file>     the dumps, RDBs and tars it names, sha256 each

The id is the run's UTC start time to the microsecond (`20261202-011500-417305`): runs
sort by it in the order they were made, even several in one second, and a run being
written is `<id>.partial` until every file is in.

A fleet on several machines writes one run per machine; the runs of one `dockyard backup`
share its `batch` (the command's start, in the form of a run id): one point in time of the
whole fleet, which `dockyard restore <batch>` puts back on every machine. Retention keeps
the newest `backup.keep` runs of each machine, so one machine's runs never evict another's."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

FORMAT = 1
MANIFEST = "manifest.json"
PARTIAL = ".partial"
RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")


@dataclass(frozen=True)
class FileRecord:
    """One file of a run, relative to the run's folder (`db/db-app.dump`)."""

    path: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class ServiceRecord:
    """What one service's backup holds and how it was taken."""

    service: str
    kind: str  # postgres, redis or volume
    image: str  # the ref it ran
    image_id: str
    version: str  # what the software says (PostgreSQL 15.20, redis 7.0.15), else ""
    files: tuple[FileRecord, ...]
    volumes: Mapping[str, str]  # volume -> path in the container, as backed up
    write_pause_s: float  # the longest writes waited (or the service was stopped) for it
    seconds: float
    # Kind facts a restore needs: databases (postgres), dir/dbfilename/aof (redis).
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunRecord:
    """One backup run: the manifest JSON beside its files."""

    id: str
    fleet: str
    fleet_hash: str  # sha256 of fleet.yaml as it was
    machine: str
    project: str
    reason: str  # "backup" (asked for) or "pre-upgrade"
    started: str  # ISO 8601, UTC
    finished: str
    services: tuple[ServiceRecord, ...]
    format: int = FORMAT
    batch: str = ""  # the same on every machine's run of one command ("": a run alone)

    def service(self, name: str) -> ServiceRecord | None:
        return next((s for s in self.services if s.service == name), None)

    @property
    def files(self) -> list[FileRecord]:
        return [f for s in self.services for f in s.files]

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    def summary(self) -> dict[str, Any]:
        """What `dockyard backups --format json` prints per run."""
        return {"id": self.id, "fleet": self.fleet, "machine": self.machine,
                "reason": self.reason, "started": self.started, "finished": self.finished,
                "services": {s.service: s.kind for s in self.services}, "bytes": self.bytes,
                "fleet_hash": self.fleet_hash, "batch": self.batch}


def record_from_json(text: str) -> RunRecord:
    """A RunRecord from its manifest JSON (ValueError when it is not one)."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"not a dockyard backup manifest of format {FORMAT}")
    services = tuple(
        ServiceRecord(**{**s, "files": tuple(FileRecord(**f) for f in s["files"])})
        for s in data["services"])
    return RunRecord(**{**data, "services": services})


def run_id(now: datetime) -> str:
    """The id of a run started at `now`: its UTC time to the microsecond, so ids sort as the
    runs were made, even several in one second (retention drops the oldest by that order)."""
    return now.astimezone(UTC).strftime("%Y%m%d-%H%M%S-%f")


def expired(ids: Iterable[str], keep: int) -> list[str]:
    """The complete runs retention removes: all but the newest `keep` (oldest first)."""
    runs = sorted(i for i in ids if RUN_ID.match(i))
    return runs[:-keep] if keep > 0 else runs


def expired_per_machine(runs: Iterable[tuple[str, str]], keep: int) -> list[str]:
    """Of the complete runs, given as (id, machine), those retention removes: all but the
    newest `keep` of each machine (oldest first), so a machine that backs up often never
    evicts another's runs."""
    by_machine: dict[str, list[str]] = {}
    for rid, machine in runs:
        by_machine.setdefault(machine, []).append(rid)
    return sorted(i for ids in by_machine.values() for i in expired(ids, keep))


def unused_id(wanted: str, taken: Iterable[str]) -> str:
    """`wanted`, or the first id after it (one microsecond on) that is not `taken`: runs
    started at once on several machines each get their own folder."""
    used = set(taken)
    rid = wanted
    while rid in used:
        stamp = datetime.strptime(rid, "%Y%m%d-%H%M%S-%f").replace(tzinfo=UTC)
        rid = run_id(stamp + timedelta(microseconds=1))
    return rid


@dataclass(frozen=True)
class RestorePick:
    """Which run each machine gets back (machine -> run id), and the chosen machines that
    have no run to restore (said, skipped)."""

    runs: dict[str, str]
    without: list[str]


def pick_runs(runs: Sequence[tuple[str, str, str]], run: str, machines: Sequence[str],
              named: bool) -> RestorePick:
    """What `dockyard restore RUN` restores, from the complete runs as (id, machine, batch)
    oldest first, on `machines` (those chosen; `named`: with -m). `latest`: each machine's
    newest run. A run id: that run, on its own machine (which -m must not leave out). A
    batch: each chosen machine's run of it. ValueError says what is wrong."""
    chosen = list(machines)
    if run == "latest":
        newest = {m: rid for rid, m, _ in runs if m in chosen}
        if not newest:
            raise ValueError(f"no backup run of machine {', '.join(chosen)} yet")
        return RestorePick({m: newest[m] for m in chosen if m in newest},
                           [m for m in chosen if m not in newest])
    one = next(((rid, m) for rid, m, _ in runs if rid == run), None)
    if one is not None:
        if named and one[1] not in chosen:
            raise ValueError(f"backup run {run} is of machine {one[1]}, not of "
                             f"{', '.join(chosen)}")
        return RestorePick({one[1]: one[0]}, [])
    batch = {m: rid for rid, m, b in runs if b == run}
    if not batch:
        raise LookupError(run)
    picked = {m: batch[m] for m in chosen if m in batch}
    if not picked:
        raise ValueError(f"backup batch {run} has no run of machine {', '.join(chosen)} "
                         f"(it has: {', '.join(sorted(batch))})")
    return RestorePick(picked, [m for m in chosen if m not in batch] if named else [])


def wrong_files(record: RunRecord, found: Mapping[str, str | None],
                services: Sequence[str] | None = None) -> list[str]:
    """Of the run's files (of `services`, else all), those whose sha256 is not the one
    recorded; `found` maps a file's path to its sha256 now, None when it is missing."""
    return [f.path for s in record.services if services is None or s.service in services
            for f in s.files if found.get(f.path) != f.sha256]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
