"""Secrets stay secret: rendered files name a secret (`${DB_PASSWORD}`) and never hold its
value; `.env.example` lists names; an imported env_file stays a file; `down` loads without
the values. The engine side (compose gets the values, file modes, `check --images`) is in
tests/engine/test_secrets.py."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from dockyard.checks.security import image_secrets, is_secret_file
from dockyard.errors import InterpolationError, ManifestError
from dockyard.manifest.interpolate import (
    interpolate,
    keep_secrets,
    read_dotenv,
    secret_variables,
)
from dockyard.manifest.load import loads
from dockyard.plan import plan
from dockyard.render.compose import render_compose
from dockyard.render.env import render_env_example
from dockyard.render.files import render_all
from dockyard.render.kube import render_kubernetes
from dockyard.render.swarm import render_swarm

ROOT = Path(__file__).resolve().parents[2]
SECRETS = frozenset({"PW", "API_KEY"})
ENV = {"PW": "hunter2", "API_KEY": "sk-123", "HOST": "db", "PRICE": "$5", "EMPTY": ""}


# -- interpolate.keep_secrets: every form -------------------------------------------------------

@pytest.mark.parametrize(("text", "kept"), [
    ("${PW}", "${PW}"),  # plain
    ("$PW", "$PW"),  # bare
    ("${PW:-fallback}", "${PW:-fallback}"),  # a default: compose applies it the same way
    ("${PW-fallback}", "${PW-fallback}"),
    ("${PW:?set PW in .env}", "${PW:?set PW in .env}"),  # required: compose says so at up
    ("postgres://app:${PW}@${HOST}:5432/app", "postgres://app:${PW}@db:5432/app"),  # in a URL
    ("${HOST:-${PW}}", "${HOST:-${PW}}"),  # a secret nested in another's default
    ("${HOST:+--password=${PW}}", "${HOST:+--password=${PW}}"),  # an alternative that is one
    ("$$PW costs ${PRICE} for ${PW}", "$$PW costs $$5 for ${PW}"),  # `$$` and `$` in a value
    ("-a ${API_KEY} -h ${HOST:-localhost}", "-a ${API_KEY} -h db"),
])
def test_a_secret_is_kept_as_written_and_the_rest_filled_in(text: str, kept: str) -> None:
    assert keep_secrets(text, ENV, SECRETS) == kept


# `${PW:+--auth}` is `--auth` or nothing: the secret's value is not in it.
@pytest.mark.parametrize("text", ["${HOST}", "$$PW", "plain", "${EMPTY:-x}", "$${PW}",
                                  "${PW:+--auth}"])
def test_text_naming_no_secret_has_no_reference(text: str) -> None:
    assert keep_secrets(text, ENV, SECRETS) is None


def test_secrets_are_the_required_variables_and_those_named_so() -> None:
    texts = ["${DB_PASSWORD}", "${CREDS:?}", "${TAG:-1}", "${HF_TOKEN:-}", "${TOKEN_URL}",
             "$$API_KEY", "${A:-${NESTED:?m}}"]
    assert secret_variables(texts) == {"DB_PASSWORD", "CREDS", "HF_TOKEN", "NESTED"}


def test_lenient_interpolation_leaves_an_unset_required_variable_as_written() -> None:
    with pytest.raises(InterpolationError, match="required variable PW is not set"):
        interpolate("x ${PW:?set it}", {})
    assert interpolate("x ${PW:?set it} ${HOST:-h}", {}, lenient=True) == "x ${PW:?set it} h"
    assert interpolate("${PW:?}", {"PW": "v"}, lenient=True) == "v"


# -- the loader: references and the values compose needs ----------------------------------------

FLEET = """\
fleet: shop
machines:
  box: {profile: {SHARED_TOKEN: "${SHARED_TOKEN}"}}
services:
  db:
    image: postgres:16.4
    env:
      POSTGRES_PASSWORD: ${PW:?set PW}
      POSTGRES_USER: ${DB_USER:-app}
    health: {cmd: [pg_isready, -U, "${DB_USER:-app}"]}
  cache:
    image: redis:7.4.1
    command: "redis-server --requirepass ${REDIS_PASSWORD:?set it} --save ''"
    health: {cmd: [redis-cli, -a, "${REDIS_PASSWORD}", ping]}
  api:
    image: ghcr.io/x/api:1
    entrypoint: [/entry, "--key=${API_KEY}"]
    command: [serve, --db, "postgres://${DB_USER:-app}:${PW}@db/app", --price, "$$5"]
    env:
      DATABASE_URL: postgres://${DB_USER:-app}:${PW}@db/app
      GREETING: "${GREETING:-hi $$USER}"
      FALLBACK: ${API_KEY:-not-a-real-key}
    volumes: ["${DATA_DIR:-./data}:/data"]
"""
FLEET_ENV = {"PW": "pw-VALUE", "REDIS_PASSWORD": "redis-VALUE", "API_KEY": "key-VALUE",
             "SHARED_TOKEN": "shared-VALUE", "DB_USER": "shop"}


def compose_of(text: str, environ: dict[str, str], machine: str = "box") -> dict[str, object]:
    fleet = loads(text, environ=environ)
    rendered = render_all(fleet, plan(fleet), text)
    loaded: dict[str, object] = YAML(typ="safe").load(rendered[f"compose.{machine}.yaml"])
    return loaded


def test_the_loader_keeps_references_and_the_values_for_compose() -> None:
    fleet = loads(FLEET, environ=FLEET_ENV)
    # the spec holds values (dockyard's own probes use them) ...
    assert fleet.spec.services["db"].env["POSTGRES_PASSWORD"] == "pw-VALUE"
    # ... the references say where a secret stands, other variables filled in
    assert fleet.references[("services", "api", "env", "DATABASE_URL")] == \
        "postgres://shop:${PW}@db/app"
    assert ("services", "db", "env", "POSTGRES_USER") not in fleet.references
    assert dict(fleet.compose_env) == {"API_KEY": "key-VALUE", "PW": "pw-VALUE",
                                       "REDIS_PASSWORD": "redis-VALUE",
                                       "SHARED_TOKEN": "shared-VALUE"}


def test_compose_names_secrets_and_holds_no_value() -> None:
    text = render_all(loads(FLEET, environ=FLEET_ENV), plan(loads(FLEET, environ=FLEET_ENV)),
                      FLEET)["compose.box.yaml"]
    assert "VALUE" not in text
    assert "`dockyard up` gives compose their values" in text  # the header says how
    services = YAML(typ="safe").load(text)["services"]
    db, cache, api = services["db"], services["cache"], services["api"]
    assert db["environment"]["POSTGRES_PASSWORD"] == "${PW:?set PW}"
    assert db["environment"]["POSTGRES_USER"] == "shop"  # not a secret: its value
    assert db["environment"]["SHARED_TOKEN"] == "${SHARED_TOKEN}"  # the machine's profile
    assert db["healthcheck"]["test"] == ["CMD", "pg_isready", "-U", "shop"]
    assert cache["command"] == ["/bin/sh", "-c", "redis-server --requirepass "
                                "${REDIS_PASSWORD:?set it} --save ''"]
    assert cache["healthcheck"]["test"] == ["CMD", "redis-cli", "-a", "${REDIS_PASSWORD}",
                                            "ping"]
    assert api["entrypoint"] == ["/entry", "--key=${API_KEY}"]
    assert api["command"] == ["serve", "--db", "postgres://shop:${PW}@db/app", "--price",
                              "$$5"]
    assert api["environment"]["DATABASE_URL"] == "postgres://shop:${PW}@db/app"
    assert api["environment"]["GREETING"] == "hi $$USER"  # `$$` stays a literal dollar
    assert api["environment"]["FALLBACK"] == "${API_KEY:-not-a-real-key}"
    assert api["volumes"] == ["./data:/data"]


def test_the_rendered_file_does_not_depend_on_the_secret_values() -> None:
    other = {**FLEET_ENV, "PW": "another", "API_KEY": "k2", "REDIS_PASSWORD": "r2"}
    assert compose_of(FLEET, FLEET_ENV) == compose_of(FLEET, other)


def test_a_built_service_leaves_a_command_with_a_secret_out_of_its_image() -> None:
    text = """\
fleet: kv
machines: {box: {}}
families:
  web: {from: "python:3.11-slim"}
services:
  api:
    family: web
    build: ./api
    command: [python3, -m, api, --token, "${API_TOKEN:?set it}"]
    ports: {http: 8000}
    health: {cmd: [python3, /app/probe.py, "${API_TOKEN}"]}
  plain:
    family: web
    build: ./plain
    command: [python3, -m, plain]
"""
    fleet = loads(text, environ={"API_TOKEN": "tok-VALUE"})
    rendered = render_all(fleet, plan(fleet), text)
    assert not [rel for rel, body in rendered.items() if "tok-VALUE" in body]
    api_dockerfile = rendered["services/api.Dockerfile"]
    assert "CMD " not in api_dockerfile and "HEALTHCHECK" not in api_dockerfile
    assert 'CMD ["python3", "-m", "plain"]' in rendered["services/plain.Dockerfile"]
    services = YAML(typ="safe").load(rendered["compose.box.yaml"])["services"]
    assert services["api"]["command"] == ["python3", "-m", "api", "--token",
                                          "${API_TOKEN:?set it}"]
    assert services["api"]["healthcheck"]["test"][-1] == "${API_TOKEN}"
    assert "command" not in services["plain"]  # still the image's CMD


def test_a_secret_where_compose_cannot_name_it_is_refused_located() -> None:
    text = """\
fleet: g
machines: {box: {}}
services:
  group:
    image: ghcr.io/x/y:1
    agents:
      worker: {command: [python3, w.py], env: {WORKER_TOKEN: "${WORKER_TOKEN:?}"}}
"""
    with pytest.raises(ManifestError, match="uses the secret WORKER_TOKEN") as caught:
        render_all(loads(text, environ={"WORKER_TOKEN": "t"}), plan(loads(
            text, environ={"WORKER_TOKEN": "t"})), text)
    assert caught.value.where is not None and caught.value.where.line == 7
    assert "service's `env:`" in (caught.value.fix or "")


# -- .env.example --------------------------------------------------------------------------------

def test_env_example_lists_names_and_no_secret_default() -> None:
    example = render_env_example(textwrap.dedent("""\
        a: ${TAG:-1.27}
        b: "${API_KEY:-sk-default-in-the-manifest} $$HOME $${LITERAL}"
        c: ${DB_PASSWORD:?set it}
        d: ${HOST:-${PORT}} $BARE
        # e: ${COMMENTED_OUT}
        """))
    assert example.splitlines()[1:] == [
        "# secret", "API_KEY=", "BARE=", "# required: set it", "DB_PASSWORD=", "HOST=",
        "PORT=", "TAG=1.27"]
    assert "sk-default" not in example and "LITERAL" not in example and "HOME" not in example


# -- import: env_file stays a reference ---------------------------------------------------------

def test_import_keeps_env_file_a_reference_and_render_gives_it_back(tmp_path: Path) -> None:
    from dockyard.manifest.importer import import_compose, read_project

    (tmp_path / "compose.yaml").write_text(textwrap.dedent("""\
        services:
          app:
            image: x:1
            env_file: [app.env, {path: later.env, required: false}, .env]
            environment: {MODE: prod}
        """))
    (tmp_path / "app.env").write_text("API_KEY=sk-live-123\nDB_PASSWORD=pw-456\n")
    (tmp_path / ".env").write_text("COMPOSE_PROFILES=gpu\nTAG=2\n")
    result = import_compose(read_project([tmp_path / "compose.yaml"], environ={}),
                            out_dir=tmp_path)
    manifest = result.text()
    assert "sk-live-123" not in manifest and "pw-456" not in manifest
    app = YAML(typ="safe").load(manifest)["services"]["app"]
    assert app["env"] == {"MODE": "prod"}
    assert app["env_file"] == ["./app.env", {"path": "./later.env", "required": False},
                               {"path": "./.env", "skip": ["COMPOSE_PROFILES"]}]
    # Rendered back for the state folder (.dockyard/render): paths seen from there, the
    # skipped variable unset (null), and still no value.
    fleet = loads(manifest, environ={})
    text = render_all(fleet, plan(fleet), manifest, "../..")["compose.local.yaml"]
    assert "sk-live-123" not in text
    service = YAML(typ="safe").load(text)["services"]["app"]
    assert service["env_file"] == ["../../app.env",
                                   {"path": "../../later.env", "required": False},
                                   "../../.env"]
    assert service["environment"] == {"COMPOSE_PROFILES": None, "MODE": "prod"}
    # A Swarm stack reads the files where `docker stack deploy` runs; what it cannot keep is said.
    swarm = render_swarm(fleet, plan(fleet), root="../..")
    [stack] = [body for rel, body in swarm.files.items() if rel.endswith("stack.yaml")]
    assert YAML(typ="safe").load(stack)["services"]["app"]["env_file"] == [
        "../../app.env", "../../later.env", "../../.env"]
    assert sum("env_file" in line for line in swarm.lost) == 2


# -- every example and golden fleet: no secret value in any rendered byte ------------------------

def _manifests() -> list[tuple[Path, Path]]:
    golden = [(p, p.parent / "environ.env") for p in sorted(ROOT.glob("tests/golden/*/fleet.yaml"))]
    examples = [(p, p.parent / ".env.example") for p in sorted(ROOT.glob("examples/*/fleet*.yaml"))]
    bundled = ROOT / "src" / "dockyard" / "examples" / "quickstart" / "fleet.yaml"
    return [*golden, *examples, (bundled, bundled.parent / ".env")]


@pytest.mark.parametrize(("manifest", "environ"), _manifests(),
                         ids=lambda p: str(p.relative_to(ROOT)) if p.name.startswith("fleet")
                         else "")
def test_no_secret_value_reaches_a_rendered_file(manifest: Path, environ: Path) -> None:
    text = manifest.read_text(encoding="utf-8")
    env = read_dotenv(environ)
    first = loads(text, environ=env)
    secrets = secret_variables(first.raw.values())
    # Every secret gets a value no file could hold by chance; the rest keep the example's.
    marked = {**env, **{name: f"S3CRET-{name}-5e1f" for name in secrets}}
    fleet = loads(text, environ=marked)
    the_plan = plan(fleet)
    try:
        files = dict(render_all(fleet, the_plan, text, "../.."))
    except ManifestError:  # a seed's defect (CUDA twice) stops its Dockerfiles: the rest
        files = {m: render_compose(fleet, the_plan, m, "../..")
                 for m in fleet.spec.machines if the_plan.on(m)}
        files[".env.example"] = render_env_example(text)
    for target, render in (("kubernetes", render_kubernetes), ("swarm", render_swarm)):
        try:
            files.update({f"{target}/{rel}": body
                          for rel, body in render(fleet, the_plan).files.items()})
        except ManifestError:  # a seed's defect it refuses (two names as one): nothing written
            assert manifest.name == "fleet.yaml" and manifest.parent.parent.name == "examples"
    leaks = [f"{rel}: {name}" for rel, body in files.items() for name in secrets
             if marked[name] in body]
    assert leaks == []
    if manifest.parent.name == "her-os":
        assert {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "NEO4J_PASSWORD",
                "ANTHROPIC_API_KEY"} <= secrets


# -- DY707 on the engine's facts -----------------------------------------------------------------

@pytest.mark.parametrize(("name", "head", "secret"), [
    (".env", b"", True), (".env.production", b"", True), ("app.env", b"", True),
    (".env.example", b"", False), (".env.sample", b"", False), ("environment.py", b"", False),
    ("id_rsa", b"", True), ("server.pem", b"-----BEGIN PRIVATE KEY-----", True),
    ("server.pem", b"-----BEGIN CERTIFICATE-----", False), ("tls.key", b"", False),
    ("tls.key", b"-----BEGIN EC PRIVATE KEY-----", True), ("keystore.jks", b"", True),
])
def test_which_files_hold_credentials(name: str, head: bytes, secret: bool) -> None:
    assert is_secret_file(name, head) is secret


def test_dy707_names_the_service_and_the_files_found_in_its_image() -> None:
    text = """\
fleet: kv
machines: {box: {}}
families:
  web: {from: "python:3.11-slim"}
services:
  api: {family: web, build: ./api, command: [python3, -m, api]}
  other: {family: web, build: ./other, command: [python3, -m, other]}
"""
    fleet = loads(text)
    found = list(image_secrets(fleet, plan(fleet), {"api": ["/app/.env", "/app/id_rsa"],
                                                    "other": []}))
    assert [(f.code, f.service, f.where.line) for f in found] == [("DY707", "api", 6)]
    assert "/app/.env, /app/id_rsa" in found[0].message
    assert "kv/api:current" in found[0].message


def test_down_loads_without_the_secrets_and_renders_the_same_file() -> None:
    manifest = ROOT / "examples" / "her-os" / "fleet.fixed.yaml"
    text = manifest.read_text(encoding="utf-8")
    env = read_dotenv(manifest.parent / ".env.example")
    without = {k: v for k, v in env.items() if k not in secret_variables([text])}
    with pytest.raises(ManifestError, match="required variable POSTGRES_PASSWORD"):
        loads(text, environ=without)
    lenient = loads(text, environ=without, lenient=True)
    assert lenient.spec.services["postgres"].env["POSTGRES_PASSWORD"] == \
        "${POSTGRES_PASSWORD:?Set POSTGRES_PASSWORD in .env}"
    assert "POSTGRES_PASSWORD" not in lenient.compose_env
    full = loads(text, environ=env)
    assert render_compose(lenient, plan(lenient), "spark") == \
        render_compose(full, plan(full), "spark")
