"""DY7xx: security — root users, secrets in the manifest or an image, the Docker socket, open
datastores."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from dockyard.checks.images import known
from dockyard.checks.ports import WILDCARD
from dockyard.checks.rules import Rule, image_repo
from dockyard.findings import Code, Finding, Severity
from dockyard.manifest.load import Fleet
from dockyard.names import is_secret_name as _is_secret
from dockyard.plan.context import context_patterns, sent_files
from dockyard.plan.model import Plan

CODES = {c.code: c for c in (
    Code("DY701", Severity.WARNING, "a service runs as root (`user: root`/`0`, or a stock "
         "image known to run as root with no `user:`)",
         "set `user:` to an unprivileged UID, or use the image's non-root variant"),
    Code("DY702", Severity.WARNING, "a secret (PASSWORD, SECRET, TOKEN, API_KEY, PRIVATE_KEY) "
         "is written in the manifest instead of a required variable",
         "write `KEY: ${KEY:?set it in .env}` and keep the value in .env, out of git"),
    Code("DY703", Severity.WARNING, "the Docker socket is mounted: that is root on the host",
         "drop the mount, or put a socket proxy that allows only what is needed in between"),
    Code("DY704", Severity.WARNING, "a datastore publishes its port on all interfaces "
         "(published ports bypass ufw, moby#4737)",
         "publish on 127.0.0.1 (the default), or do not publish it: services reach it by name"),
    Code("DY705", Severity.ERROR, "a private key or credentials file in a build context would "
         "be copied into the image (env files never are: dockyard does not send them)",
         "name it in the context's .dockerignore, or move it out of the `build:` folder"),
    Code("DY706", Severity.ERROR, "a family's `env:` holds a secret: image ENV is in every "
         "layer and in `docker history`",
         "move it to the runtime `env:` of the services that need it"),
    Code("DY707", Severity.ERROR, "a built image holds an env file or a private key (found "
         "by `check --images` in its WORKDIR or /app): whoever can pull the image can read it",
         "keep the file out of the image (do not COPY it; .dockerignore), pass its values as "
         "runtime env, and rebuild"),
)}
# Files that hold credentials by their name, and key files by their first bytes.
_KEY_NAMES = {"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", ".netrc", ".pypirc", ".npmrc",
              ".git-credentials", "credentials.json"}
_KEY_SUFFIXES = (".p12", ".pfx", ".jks", ".keystore")
_MAYBE_KEY = (".pem", ".key")

# A variable use ${NAME...} or $NAME, after `$$` (a literal dollar) is removed.
_VARIABLE = re.compile(r"\$\{[A-Za-z_]|\$[A-Za-z_]")
_DEFAULT = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]+)\}")
_REFERENCE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
_FLAGS = {"true", "false", "yes", "no", "on", "off", "0", "1", "none", "null", "disabled"}
DATASTORES = {"postgres", "redis", "mysql", "mariadb", "mongo", "qdrant/qdrant", "memcached",
              "elasticsearch", "neo4j", "rabbitmq", "clickhouse/clickhouse-server",
              "chromadb/chroma", "semitechnologies/weaviate", "milvusdb/milvus", "valkey/valkey"}


def root_user(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY701: a process running as root owns the container and whatever it mounts."""
    for name, svc in sorted(fleet.spec.services.items()):
        user = svc.user.split(":")[0].strip()
        if user in ("root", "0"):
            yield Finding(
                "DY701", Severity.WARNING, fleet.where("services", name, "user"),
                f"service {name} runs as root (`user: {svc.user}`)",
                "set `user:` to an unprivileged UID such as 10001", service=name)
        elif not user and svc.image and known(svc.image).root:
            yield Finding(
                "DY701", Severity.WARNING, fleet.where("services", name, "image"),
                f"service {name}: {svc.image} runs as root and no `user:` is set",
                "set `user:` to an unprivileged UID (check which folders it writes), or use "
                "the image's non-root variant", service=name)


def inline_secrets(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY702: secrets belong in .env or the environment, not in a file that goes to git.

    The manifest's text before interpolation (Fleet.raw) tells `${DB_PASSWORD:?}` from a
    literal: interpolation has already replaced the variable in the spec.
    """
    places: list[tuple[tuple[str | int, ...], str, str, str]] = []
    for name, svc in fleet.spec.services.items():
        places += [(("services", name, "env", k), k, v, name)
                   for k, v in svc.env.items() if v and _is_secret(k)]
        for agent_name, agent in svc.agents.items():
            places += [(("services", name, "agents", agent_name, "env", k), k, v, name)
                       for k, v in agent.env.items() if v and _is_secret(k)]
    for fam_name, fam in fleet.spec.families.items():
        places += [(("families", fam_name, "env", k), k, v, "")
                   for k, v in fam.env.items() if v and _is_secret(k)]
    for path, key, value, service in places:
        if value.lower() in _FLAGS:
            continue  # DISABLE_TOKEN: "true" is a switch, not a secret
        raw = fleet.raw.get(path, value)
        text = raw.replace("$$", "")
        default = _DEFAULT.search(text)
        if _VARIABLE.search(text) and not default:
            continue
        owner = f"service {service}" if service else f"family {path[1]}"
        how = (f"has the default `{default[1]}` written in the manifest" if default
               else "is written in the manifest")
        yield Finding(
            "DY702", Severity.WARNING, fleet.where(*path),
            f"{owner}: the secret {key} {how}, so it goes wherever the file goes",
            f"write `{key}: ${{{key}:?set {key} in .env}}` and put the value in .env "
            "(kept out of git)", service=service)


def docker_socket(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY703: the Docker socket gives root on the host, even read-only (dockge#849)."""
    for name, svc in sorted(fleet.spec.services.items()):
        for i, volume in enumerate(svc.volumes):
            if volume.split(":")[0].endswith("docker.sock"):
                yield Finding(
                    "DY703", Severity.WARNING, fleet.where("services", name, "volumes", i),
                    f"service {name} mounts the Docker socket: whoever controls it is root "
                    "on the host (`:ro` does not help)",
                    "drop the mount, or put a socket proxy that allows only the calls it needs "
                    "in between", service=name)


def open_datastores(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY704: a database published on 0.0.0.0 is reachable from the network, past ufw."""
    for name, svc in sorted(fleet.spec.services.items()):
        if not svc.image or image_repo(svc.image) not in DATASTORES:
            continue
        for port_name, port in sorted(svc.ports.items()):
            if port.publish and port.bind in WILDCARD:
                yield Finding(
                    "DY704", Severity.WARNING,
                    fleet.where("services", name, "ports", port_name),
                    f"service {name} ({image_repo(svc.image)}) publishes port "
                    f"{port.host_port} on all interfaces: published ports bypass ufw",
                    "bind it to 127.0.0.1 (the default), or set `publish: false`: other "
                    "services reach it by name", service=name)


def _holds_a_key(path: Path) -> bool:
    name = path.name
    if name in _KEY_NAMES or name.endswith(_KEY_SUFFIXES):
        return True
    if name.endswith(_MAYBE_KEY):  # a .pem may be a public certificate: look inside
        try:
            with path.open("rb") as handle:
                return b"PRIVATE KEY" in handle.read(65536)
        except OSError:
            return False
    return False


# Env files by name: .env, .env.production, app.env; not the examples that hold no values.
_ENV_FILE = re.compile(r"^(\.env(\..+)?|.+\.env)$")
_NO_VALUES = (".example", ".sample", ".template", ".dist")


def needs_a_look(name: str) -> bool:
    """Whether a file's name alone cannot tell (a .pem or .key): its first bytes decide."""
    return name.endswith(_MAYBE_KEY) and name not in _KEY_NAMES


def is_secret_file(name: str, head: bytes) -> bool:
    """Whether a file named `name`, whose first bytes are `head`, holds credentials: an env
    file, a key by its name, or a .pem/.key holding a PRIVATE KEY."""
    if _ENV_FILE.match(name) and not name.endswith(_NO_VALUES):
        return True
    if name in _KEY_NAMES or name.endswith(_KEY_SUFFIXES):
        return True
    return needs_a_look(name) and b"PRIVATE KEY" in head


def image_secrets(fleet: Fleet, plan: Plan,
                  found: Mapping[str, Sequence[str]]) -> Iterator[Finding]:
    """DY707: what `check --images` found in built images (engine/programs.py's facts)."""
    for name, paths in sorted(found.items()):
        sp = plan.services.get(name)
        if not paths or sp is None:
            continue
        at = ("services", name, "build") if sp.spec.build else ("services", name)
        shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
        yield Finding(
            "DY707", Severity.ERROR, fleet.where(*at),
            f"service {name}: its image {sp.image} holds {shown}: whoever can pull the image "
            "can read it", "do not COPY it into the image (a .dockerignore in the build "
            "context keeps it out), pass its values as runtime `env:`, then rebuild",
            service=name)


def context_keys(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY705: `COPY . /app` takes whatever the context holds; a key there is in the image."""
    if not fleet.path.is_file():
        return  # a manifest given as text (tests, import's check): no folder to look in
    for name, svc in sorted(fleet.spec.services.items()):
        if not svc.build:
            continue
        context = (fleet.root / svc.build).resolve()
        if not context.is_dir():
            continue  # DY605 says so
        sent = sent_files(context, context_patterns(context, manifest=fleet.path))
        keys = [rel for rel in sent if _holds_a_key(context / rel)]
        if keys:
            yield Finding(
                "DY705", Severity.ERROR, fleet.where("services", name, "build"),
                f"service {name}: its build context {svc.build} holds {', '.join(keys[:3])}"
                + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
                + ", which the build would copy into the image",
                f"add {keys[0]} to {svc.build}/.dockerignore, or move it out of the context",
                service=name)


def family_secrets(fleet: Fleet, plan: Plan) -> Iterator[Finding]:
    """DY706: `env: {HF_TOKEN: ${HF_TOKEN:?}}` on a family bakes the value into image ENV."""
    for fam_name, fam in sorted(fleet.spec.families.items()):
        for key, value in fam.env.items():
            raw = fleet.raw.get(("families", fam_name, "env", key), value)
            refs = [m[1] for m in _REFERENCE.finditer(raw.replace("$$", ""))]
            if not refs:
                continue  # a literal: DY702 says so, and how to move it
            secret = next((r for r in refs if _is_secret(r)), key if _is_secret(key) else "")
            if not secret:
                continue
            yield Finding(
                "DY706", Severity.ERROR, fleet.where("families", fam_name, "env", key),
                f"family {fam_name}: env {key} holds the secret {secret}, which would be "
                "baked into the image's ENV (every layer, `docker history`)",
                f"move `{key}` to the `env:` of the services built on {fam_name}",
                service="")


RULES: list[Rule] = [root_user, inline_secrets, docker_socket, open_datastores, context_keys,
                     family_secrets]
