"""Bad manifests: each must fail with a ManifestError that says where (fleet.yaml:LINE:COL),
what is wrong, and how to fix it, in one line per problem and without a traceback.

Line numbers in the expectations are counted by hand from the inline YAML: every manifest
below starts at line 1 with `fleet: demo`, so the three-line BASE puts `services:` on line 4.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.errors import ManifestError
from dockyard.manifest import load as manifest_load
from dockyard.manifest.load import load, loads

BASE = """\
fleet: demo
machines:
  local: {}
"""


def fails(text: str, environ: dict[str, str] | None = None) -> ManifestError:
    """Load `text`, expect a ManifestError, and check what every such error must be."""
    with pytest.raises(ManifestError) as caught:
        loads(text, environ=environ or {})
    exc = caught.value
    message = str(exc)
    assert exc.exit_code == 2
    assert "Traceback" not in message
    # One problem a line, and every line starts with the place it is about.
    for line in message.splitlines():
        assert line.startswith("fleet.yaml:"), line
    return exc


# (id, manifest, exact location, fragments the message must contain: what is wrong + the fix)
CASES: list[tuple[str, str, str, list[str]]] = [
    (
        "unknown-service-key",
        BASE + """\
services:
  api:
    image: nginx
    depend_on: [db]
  db:
    image: postgres
""",
        "fleet.yaml:7:5",
        ["services.api.depend_on", "unknown key `depend_on`", "did you mean `depends_on`?"],
    ),
    (
        "unknown-gpu-key-flow-style",
        BASE + """\
services:
  api:
    image: nginx
    gpu: {memroy: 2GiB}
""",
        "fleet.yaml:7:11",
        ["services.api.gpu.memroy", "unknown key `memroy`", "did you mean `memory`?"],
    ),
    (
        "unknown-key-without-close-match-lists-allowed",
        BASE + """\
services:
  api:
    image: nginx
    health:
      zzz: 1
""",
        "fleet.yaml:8:7",
        ["unknown key `zzz`", "allowed: cmd, http, interval, port, retries, start_period"],
    ),
    (
        "top-level-typo",
        BASE + """\
servces:
  api:
    image: nginx
""",
        "fleet.yaml:4:1",
        ["unknown key `servces`", "did you mean `services`?"],
    ),
    (
        "port-not-a-number",
        BASE + """\
services:
  api:
    image: nginx
    ports:
      http: "abc"
""",
        "fleet.yaml:8:7",
        ["services.api.ports.http", "expected a port such as 8000", "\"18000:8000\"",
         "got 'abc'"],
    ),
    (
        "port-too-many-colons",
        BASE + """\
services:
  api:
    image: nginx
    ports: {http: "1:2:3:4"}
""",
        "fleet.yaml:7:13",
        ["services.api.ports.http", "expected a port such as 8000", "got '1:2:3:4'"],
    ),
    (
        "port-out-of-range",
        BASE + """\
services:
  api:
    image: nginx
    ports:
      http: 70000
""",
        "fleet.yaml:8:7",
        ["services.api.ports.http", "less than or equal to 65535", "got 70000"],
    ),
    (
        "ports-as-a-list",
        BASE + """\
services:
  api:
    image: nginx
    ports: [8000]
""",
        "fleet.yaml:7:5",
        ["services.api.ports", "expected `key: value` entries", "got a list"],
    ),
    (
        "cpus-not-a-number",
        BASE + """\
services:
  api:
    image: nginx
    cpus: many
""",
        "fleet.yaml:7:5",
        ["services.api.cpus", "valid number", "got 'many'"],
    ),
    (
        "bad-size",
        BASE + """\
services:
  api:
    image: nginx
    memory: 15 gigs
""",
        "fleet.yaml:7:5",
        ["services.api.memory", "expected a size such as 512MiB or 16GiB", "got '15 gigs'"],
    ),
    (
        "bad-machine-size",
        """\
fleet: demo
machines:
  local:
    memory: lots
services:
  api: {image: nginx}
""",
        "fleet.yaml:4:5",
        ["machines.local.memory", "expected a size such as 512MiB", "got 'lots'"],
    ),
    (
        "bad-duration",
        BASE + """\
services:
  api:
    image: nginx
    ports: {http: 80}
    health:
      http: /health
      interval: soon
""",
        "fleet.yaml:10:7",
        ["services.api.health.interval", "expected a duration such as 5s, 1m30s or 250ms",
         "got 'soon'"],
    ),
    (
        "bad-enum",
        BASE + """\
services:
  api:
    image: nginx
    restart: sometimes
""",
        "fleet.yaml:7:5",
        ["services.api.restart", "'no', 'always', 'on-failure' or 'unless-stopped'",
         "got 'sometimes'"],
    ),
    (
        "image-and-family",
        BASE + """\
families:
  py: {from: "python:3.11-slim"}
services:
  api:
    image: nginx
    family: py
""",
        "fleet.yaml:7:3",
        ["services.api", "give either `image:`", "`family:` + `build:`, not both"],
    ),
    (
        "neither-image-nor-family",
        BASE + """\
services:
  api:
    command: echo hi
""",
        "fleet.yaml:5:3",
        ["services.api", "a service needs `image:`", "or `family:`"],
    ),
    (
        "dockerfile-without-build",
        BASE + """\
families:
  py: {from: "python:3.11-slim"}
services:
  api:
    family: py
    dockerfile: Dockerfile.api
""",
        "fleet.yaml:7:3",
        ["services.api", "`dockerfile:` needs a `build:` context"],
    ),
    (
        "unknown-family",
        BASE + """\
families:
  python: {from: "python:3.11-slim"}
services:
  api:
    family: pyton
""",
        "fleet.yaml:8:5",
        ["services.api.family", "unknown family `pyton`", "did you mean `python`?"],
    ),
    (
        "unknown-family-none-defined",
        BASE + """\
services:
  api:
    family: web
""",
        "fleet.yaml:6:5",
        ["unknown family `web`", "known: none"],
    ),
    (
        "unknown-machine",
        BASE + """\
services:
  api:
    image: nginx
    machine: lokal
""",
        "fleet.yaml:7:5",
        ["services.api.machine", "unknown machine `lokal`", "did you mean `local`?"],
    ),
    (
        "unknown-dependency-flow-list",
        BASE + """\
services:
  api:
    image: nginx
    depends_on: [store, dbb]
  db:
    image: postgres
  store: {image: redis}
""",
        "fleet.yaml:7:25",
        ["services.api.depends_on", "unknown service `dbb`", "did you mean `db`?"],
    ),
    (
        "unknown-dependency-block-list",
        BASE + """\
services:
  api:
    image: nginx
    depends_on:
      - store
      - dbb
  store: {image: redis}
  db: {image: postgres}
""",
        "fleet.yaml:9:9",
        ["unknown service `dbb`", "did you mean `db`?"],
    ),
    (
        "unknown-dependency-mapping",
        BASE + """\
services:
  api:
    image: nginx
    depends_on:
      store: {condition: started}
      dbb: {condition: healthy}
  store: {image: redis}
  db: {image: postgres}
""",
        "fleet.yaml:9:7",
        ["services.api.depends_on.dbb", "unknown service `dbb`", "did you mean `db`?"],
    ),
    (
        "self-dependency",
        BASE + """\
services:
  api:
    image: nginx
    depends_on:
      api: {condition: started}
""",
        "fleet.yaml:8:7",
        ["services.api.depends_on", "cannot depend on itself", "remove `api`"],
    ),
    (
        "bad-dependency-condition",
        BASE + """\
services:
  api:
    image: nginx
    depends_on:
      db: {condition: ready}
  db: {image: postgres}
""",
        "fleet.yaml:8:12",
        ["services.api.depends_on.db.condition", "'healthy', 'started' or 'completed'",
         "got 'ready'"],
    ),
    (
        "health-http-and-cmd",
        BASE + """\
services:
  api:
    image: nginx
    ports: {http: 80}
    health: {http: /health, cmd: [curl, -f, localhost]}
""",
        "fleet.yaml:8:5",
        ["services.api.health", "exactly one of `http: /path` or `cmd: ...`"],
    ),
    (
        "health-neither-http-nor-cmd",
        BASE + """\
services:
  api:
    image: nginx
    health:
      retries: 3
""",
        "fleet.yaml:7:5",
        ["services.api.health", "exactly one of `http: /path` or `cmd: ...`"],
    ),
    (
        "http-health-without-port",
        BASE + """\
services:
  api:
    image: nginx
    health:
      http: /health
""",
        "fleet.yaml:7:5",
        ["services.api.health", "http health check needs a port", "add `ports:`"],
    ),
    (
        "health-path-without-slash",
        BASE + """\
services:
  api:
    image: nginx
    ports: {http: 80}
    health:
      http: health
""",
        "fleet.yaml:9:7",
        ["services.api.health.http", "must start with '/'", "got 'health'", "write '/health'"],
    ),
    (
        "health-unknown-port-name",
        BASE + """\
services:
  api:
    image: nginx
    ports: {http: 80}
    health: {http: /h, port: htp}
""",
        "fleet.yaml:8:24",
        ["services.api.health.port", "unknown port name `htp`", "did you mean `http`?"],
    ),
    (
        "family-from-itself",
        BASE + """\
families:
  py: {from: py}
services:
  api: {family: py}
""",
        "fleet.yaml:5:8",
        ["families.py.from", "a family cannot be built from itself"],
    ),
    (
        "family-missing-from",
        BASE + """\
families:
  py:
    apt: [curl]
services:
  api: {family: py}
""",
        "fleet.yaml:5:3",
        ["families.py", "missing required key `from`", "add `from:`"],
    ),
    (
        "missing-fleet-name",
        """\
machines:
  local: {}
services:
  api: {image: nginx}
""",
        "fleet.yaml:1:1",
        ["missing required key `fleet`", "add `fleet:`"],
    ),
    (
        "no-services",
        BASE + """\
services: {}
""",
        "fleet.yaml:4:1",
        ["services", "needs at least one entry"],
    ),
    (
        "service-with-no-body",
        BASE + """\
services:
  api:
  db:
    image: postgres
""",
        "fleet.yaml:5:3",
        ["services.api", "is empty", "expected `key: value` entries"],
    ),
    (
        "uppercase-service-name",
        BASE + """\
services:
  db:
    image: postgres
  API:
    image: nginx
""",
        "fleet.yaml:7:3",
        ["services.API", "name 'API' must be lowercase letters", "try 'api'"],
    ),
    (
        "bad-fleet-name",
        """\
fleet: My Fleet
machines:
  local: {}
services:
  api: {image: nginx}
""",
        "fleet.yaml:1:1",
        ["name 'My Fleet' must be lowercase", "try 'my-fleet'"],
    ),
    (
        "required-variable-missing",
        BASE + """\
services:
  db:
    image: postgres
    env:
      POSTGRES_PASSWORD: ${DB_PASSWORD:?set it}
""",
        "fleet.yaml:8:7",
        ["services.db.env.POSTGRES_PASSWORD", "required variable DB_PASSWORD is not set",
         "set it", "in the environment or in .env"],
    ),
    (
        "invalid-variable",
        BASE + """\
services:
  api:
    image: "nginx:${TAG NAME}"
""",
        "fleet.yaml:6:5",
        ["services.api.image", "invalid variable ${TAG NAME}", "use ${NAME}"],
    ),
    (
        "unclosed-variable",
        BASE + """\
services:
  api:
    image: nginx
    command: ["echo", "${NAME"]
""",
        "fleet.yaml:7:23",
        ["services.api.command.1", "`${` is not closed", "$$ for a literal $"],
    ),
    (
        "non-word-key",
        BASE + """\
services:
  api:
    image: nginx
    env:
      ~: value
""",
        "fleet.yaml:8:7",
        ["keys must be plain words", "got None"],
    ),
    (
        "bad-indentation",
        """\
fleet: demo
machines:
  local: {}
services:
  api:
    image: nginx
   ports: [80]
""",
        "fleet.yaml:7:4",
        ["invalid YAML", "check indentation"],
    ),
    (
        "tab-indentation",
        "fleet: demo\n\tmachines: {}\n",
        "fleet.yaml:2:1",
        ["invalid YAML", "'\\t'", "check indentation"],
    ),
    (
        "unclosed-quote",
        """\
fleet: "demo
machines:
""",
        "fleet.yaml:3:1",
        ["invalid YAML", "quoted scalar", "check indentation, quotes"],
    ),
    (
        "undefined-alias",
        BASE + """\
services:
  api: *common
""",
        "fleet.yaml:5:8",
        ["invalid YAML", "undefined alias 'common'"],
    ),
    (
        "duplicate-key",
        BASE + """\
services:
  api:
    image: nginx
  api:
    image: redis
""",
        "fleet.yaml:7:3",
        ["duplicate key `api`", "keep one `api:`"],
    ),
    (
        "empty-file",
        "",
        "fleet.yaml:1:1",
        ["manifest is empty", "start with `fleet: NAME`"],
    ),
    (
        "only-comments",
        "# a fleet, some day\n\n",
        "fleet.yaml:1:1",
        ["manifest is empty", "start with `fleet: NAME`"],
    ),
    (
        "cpus-past-any-machine",  # found by hypothesis: infinity once in milli-CPUs (exit 70)
        "fleet: demo\nmachines: {box: {cpus: 0.01e308}}\nservices: {a: {image: 'x:1'}}\n",
        "fleet.yaml:2:18",
        ["machines.box.cpus", "less than or equal to 1000000"],
    ),
    (
        "top-level-list",
        "- fleet: demo\n- services: {}\n",
        "fleet.yaml:1:1",
        ["must be a mapping of keys", "start with `fleet: NAME`"],
    ),
]


@pytest.mark.parametrize(("text", "where", "fragments"),
                         [pytest.param(t, w, f, id=i) for i, t, w, f in CASES])
def test_bad_manifest_is_located_and_explained(text: str, where: str,
                                               fragments: list[str]) -> None:
    message = str(fails(text))
    assert message.startswith(where + ":"), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_there_are_many_distinct_cases() -> None:
    assert len({case[0] for case in CASES}) == len(CASES) >= 14


def test_every_problem_is_reported_on_its_own_line_in_file_order() -> None:
    text = BASE + """\
services:
  api:
    image: nginx
    depend_on: [db]
    cpus: many
  worker:
    image: nginx
    restart: sometimes
"""
    lines = str(fails(text)).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("fleet.yaml:7:5: services.api.depend_on: unknown key")
    assert lines[1].startswith("fleet.yaml:8:5: services.api.cpus: ")
    assert lines[2].startswith("fleet.yaml:11:5: services.worker.restart: ")


def test_a_typo_is_one_problem_not_two() -> None:
    # `servces:` is both an unknown key and a missing `services:`; the "did you mean" says it.
    text = BASE + "servces:\n  api: {image: nginx}\n"
    assert str(fails(text)) == (
        "fleet.yaml:4:1: servces: unknown key `servces` (did you mean `services`?)"
    )


def test_a_missing_key_with_no_lookalike_is_reported() -> None:
    text = BASE + "extra:\n  api: {image: nginx}\n"
    lines = str(fails(text)).splitlines()
    assert lines == [
        "fleet.yaml:1:1: the top level: missing required key `services` (add `services:`)",
        "fleet.yaml:4:1: extra: unknown key `extra` (allowed: backup, families, fleet, "
        "image_history, machines, "
        "networks, registry, services, suppress)",
    ]


def test_value_is_quoted_once() -> None:
    message = str(fails(BASE + "services:\n  api:\n    image: nginx\n    memory: 15 gigs\n"))
    assert message.count("'15 gigs'") == 1


def test_required_variable_is_fine_once_set() -> None:
    text = BASE + """\
services:
  db:
    image: postgres
    env:
      POSTGRES_PASSWORD: ${DB_PASSWORD:?set it}
"""
    fleet = loads(text, environ={"DB_PASSWORD": "s3cret"})
    assert fleet.spec.services["db"].env == {"POSTGRES_PASSWORD": "s3cret"}
    # Empty counts as unset for `:?`.
    assert "DB_PASSWORD" in str(fails(text, environ={"DB_PASSWORD": ""}))


def test_merged_key_is_located_where_it_is_written() -> None:
    text = BASE + """\
services:
  api: &common
    image: nginx
    restart: always
    depend_on: [db]
  worker:
    <<: *common
    command: work
"""
    message = str(fails(text))
    assert "fleet.yaml:8:5: services.api.depend_on: unknown key `depend_on`" in message
    assert "fleet.yaml:8:5: services.worker.depend_on: unknown key `depend_on`" in message


def test_alias_bomb_is_refused_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nine levels of ten aliases would expand to 10^9 values; the walk counts the values it
    makes and stops past MAX_VALUES, so the work is bounded by the limit, not the expansion.
    The limit is lowered here to keep the walk short; the real one on a real bomb, through
    the CLI as a program: tests/process/test_fuzz.py."""
    monkeypatch.setattr(manifest_load, "MAX_VALUES", 1000)
    lines = ["fleet: demo", "machines: {local: {}}", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    lines.append("services: {api: {image: nginx, volumes: *a8}}")
    with pytest.raises(ManifestError) as caught:
        loads("\n".join(lines) + "\n", environ={})
    assert caught.value.exit_code == 2
    assert "expands to more than 1000 values" in str(caught.value)
    assert "alias" in str(caught.value)
    # It is the count of values that refuses, aliases or not: 400 plain ones load, 1,000 not.
    def with_env(n: int) -> str:
        env = ", ".join(f"V{i}: x" for i in range(n))
        return ("fleet: demo\nmachines: {local: {}}\n"
                f"services: {{api: {{image: nginx, env: {{{env}}}}}}}\n")

    assert len(loads(with_env(400), environ={}).spec.services["api"].env) == 400
    with pytest.raises(ManifestError, match="expands to more than 1000 values"):
        loads(with_env(1000), environ={})


@pytest.mark.parametrize("value", [".inf", "-.inf", "99999999999999999999" * 20 + "TiB"])
def test_infinite_size_is_a_manifest_error(value: str) -> None:
    message = str(fails(BASE + f"services:\n  api:\n    image: nginx\n    memory: {value}\n"))
    assert message.startswith("fleet.yaml:7:5: services.api.memory: ")


def test_infinite_duration_is_a_manifest_error() -> None:
    text = BASE + "services:\n  api:\n    image: nginx\n    health: {cmd: [x], timeout: .inf}\n"
    message = str(fails(text))
    assert message.startswith("fleet.yaml:7:24: services.api.health.timeout: ")
    assert "expected a duration" in message


def test_non_utf8_file_is_located(tmp_path: Path) -> None:
    manifest = tmp_path / "fleet.yaml"
    manifest.write_bytes(b"fleet: demo\nmachines:\n  local: {}\nservices:\n"
                         b"  api: {image: caf\xe9}\n")
    with pytest.raises(ManifestError) as caught:
        load(manifest, environ={})
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert message.startswith("fleet.yaml:5:19: ")
    assert "not UTF-8" in message
    assert "0xe9" in message
    assert "save the file as UTF-8" in message
    assert "Traceback" not in message


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "fleet.yaml"
    with pytest.raises(ManifestError) as caught:
        load(missing, environ={})
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert message.startswith(str(missing) + ": ")
    assert "cannot read manifest" in message
    assert "No such file" in message
    assert "pass an existing fleet.yaml with -f" in message


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as caught:
        load(tmp_path, environ={})
    assert "cannot read manifest" in str(caught.value)
    assert caught.value.exit_code == 2


def test_errors_in_a_file_use_its_name(tmp_path: Path) -> None:
    manifest = tmp_path / "dockyard.yaml"
    manifest.write_text(BASE + "services:\n  api:\n    image: nginx\n    cpus: many\n")
    with pytest.raises(ManifestError) as caught:
        load(manifest, environ={})
    assert str(caught.value).startswith("dockyard.yaml:7:5: services.api.cpus: ")
