"""`dockyard adopt`: rewrite an existing service Dockerfile onto a family. Pure text in, text out.

The image the Dockerfile ends in (its last stage, and the stages that one is built `FROM`)
is moved onto `ARG BASE_IMAGE` + `FROM ${BASE_IMAGE}`; steps the family already provides are
dropped (installing Python, pip installs of packages the family pins, apt packages it has,
creating users, making a venv); files are copied owned by the app user and the image ends
as `USER 10001:10001`. Anything it cannot map is kept as it was and reported: the report is
returned and also written as comments at the top of the new Dockerfile.

Build stages that only install what the family provides are dropped with the `COPY --from`
lines that used them; other stages stay as they are, on their own image, and are reported."""

from __future__ import annotations

import itertools
import json
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dockyard.manifest.models import FleetSpec
from dockyard.names import package_name
from dockyard.plan.family import chain, has_python, own_requirements, root_image

APP_USER = "10001:10001"
TINI = "/usr/bin/tini"
# Every dockyard root family has these (render adds tini; the base or bootstrap the rest).
ALWAYS_APT = frozenset({"tini", "ca-certificates", "passwd"})
PYTHON_APT = frozenset({"python3", "python3-pip", "python3-venv", "python-is-python3",
                        "python3-minimal", "python3-distutils", "python3-setuptools",
                        "python3-wheel", "python3.11", "python3.11-venv", "python3-full"})
PIP_ITSELF = frozenset({"pip", "setuptools", "wheel"})
TORCH_COMPANIONS = frozenset({"torchaudio", "torchvision", "torchtext", "xformers"})
# Images a family stands in for without losing anything a service relied on.
_PLAIN_BASES = ("python:", "debian:", "ubuntu:", "docker.io/library/python:",
                "docker.io/library/debian:")
_PIP_VALUE_FLAGS = {"-r", "--requirement", "-c", "--constraint", "-i", "--index-url",
                    "--extra-index-url", "-f", "--find-links", "-t", "--target", "--prefix",
                    "--root", "--trusted-host", "--platform", "--python-version",
                    "--only-binary", "--no-binary", "--progress-bar", "-e", "--editable",
                    "-w", "--wheel-dir", "-d", "--dest", "--cache-dir", "--src"}
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)$")
_HEREDOC = re.compile(r"<<-?\s*[\"']?([A-Za-z_][A-Za-z0-9_]*)[\"']?")
_CONTROL = re.compile(r"(^|[\s;&|(])(if|then|fi|for|while|do|done|case|esac)(?=[\s;)]|$)|\|\|")
_METADATA_TAIL = {"CMD", "ENTRYPOINT", "HEALTHCHECK", "EXPOSE", "LABEL", "STOPSIGNAL"}


@dataclass(frozen=True)
class FamilyFacts:
    """What a family (with its ancestors) gives the images built on it."""

    name: str
    image: str  # the family's image, the default of BASE_IMAGE
    base: str  # the external image at the bottom of its chain
    apt: frozenset[str] = frozenset()
    pins: Mapping[str, str] = field(default_factory=dict)  # normalized name -> requirement
    python: bool = True
    venv: bool = False  # a venv on PATH (/opt/venv): the family has Python requirements


@dataclass(frozen=True)
class AdoptResult:
    text: str
    changed: list[str]  # what was converted or dropped, "line N: ..."
    unconverted: list[str]  # what needs a person, "line N: ..."


def parse_requirement(text: str) -> tuple[str, str] | None:
    """(normalized name, version specifier) of `name[extra]==1.0`; None for paths and URLs."""
    text = text.split(";")[0].split("#")[0].strip()
    if not text or "/" in text or text.startswith((".", "-")) or "://" in text:
        return None
    m = _NAME.match(text)
    if not m or text.endswith((".whl", ".tar.gz", ".zip")):
        return None
    return package_name(m.group(1)), m.group(3).replace(" ", "")


def family_facts(spec: FleetSpec, name: str, image: str) -> FamilyFacts:
    """Walk `name`'s `from` chain: the apt packages, requirements and Python it provides."""
    fams = chain(spec.families, name)
    apt: set[str] = set(ALWAYS_APT)
    pins: dict[str, str] = {}
    for fam in (spec.families[n] for n in reversed(fams)):
        apt.update(fam.apt)
        for req in own_requirements(fam):
            parsed = parse_requirement(req)
            if parsed:
                pins[parsed[0]] = req.strip()
    return FamilyFacts(name, image, root_image(spec.families, name), frozenset(apt), pins,
                       has_python(spec.families, name), venv=bool(pins))


# --- parsing ---------------------------------------------------------------------------


@dataclass
class Instr:
    line: int  # 1-based line of the keyword
    keyword: str
    args: str  # the logical line after the keyword (continuations joined)
    raw: str  # the original text
    heredoc: bool = False


@dataclass
class Stage:
    index: int
    start: int  # index into items of its FROM
    image: str
    alias: str
    platform: str


def parse(text: str) -> tuple[list[str], list[Instr | str]]:
    """Parser directives, then items: instructions or comment/blank lines kept verbatim."""
    lines = text.splitlines()
    directives: list[str] = []
    i = 0
    while i < len(lines) and re.match(r"^#\s*[a-zA-Z]+\s*=", lines[i]):
        directives.append(lines[i])
        i += 1
    items: list[Instr | str] = []
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            items.append(line)
            i += 1
            continue
        start, raw, logical = i, [line], line.rstrip()
        while logical.endswith("\\") and i + 1 < len(lines):
            logical = logical[:-1].rstrip()
            i += 1
            raw.append(lines[i])
            nxt = lines[i].strip()
            if nxt.startswith("#"):
                logical += " \\"  # a comment inside a continuation is skipped
                continue
            logical += " " + lines[i].rstrip()
        keyword, _, args = logical.strip().partition(" ")
        heredoc = False
        match = _HEREDOC.search(args) if keyword.upper() in {"RUN", "COPY", "ADD"} else None
        if match:
            heredoc = True
            while i + 1 < len(lines):
                i += 1
                raw.append(lines[i])
                if lines[i].strip() == match.group(1):
                    break
        items.append(Instr(start + 1, keyword.upper(), args.strip(), "\n".join(raw), heredoc))
        i += 1
    return directives, items


def _stages(items: list[Instr | str]) -> list[Stage]:
    stages: list[Stage] = []
    for pos, item in enumerate(items):
        if isinstance(item, Instr) and item.keyword == "FROM":
            words = item.args.split()
            platform = next((w for w in words if w.startswith("--platform=")), "")
            words = [w for w in words if not w.startswith("--")]
            image = words[0] if words else ""
            alias = words[2] if len(words) >= 3 and words[1].lower() == "as" else ""
            stages.append(Stage(len(stages), pos, image, alias, platform))
    return stages


# --- shell commands ----------------------------------------------------------------------


def split_commands(body: str) -> list[tuple[str, str]]:
    """`a && b; c` -> [(a, "&&"), (b, ";"), (c, "")], splitting outside quotes only."""
    parts: list[tuple[str, str]] = []
    buf: list[str] = []
    quote = ""
    i = 0
    while i < len(body):
        ch = body[i]
        if quote:
            if ch == "\\" and quote == '"' and i + 1 < len(body):
                buf += [ch, body[i + 1]]
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "\\" and i + 1 < len(body):
            buf += [ch, body[i + 1]]
            i += 2
            continue
        elif body.startswith("&&", i) or ch == ";":
            sep = "&&" if ch == "&" else ";"
            parts.append(("".join(buf).strip(), sep))
            buf = []
            i += len(sep)
            continue
        buf.append(ch)
        i += 1
    parts.append(("".join(buf).strip(), ""))
    return [(cmd, sep) for cmd, sep in parts if cmd]


def _words(cmd: str) -> list[str] | None:
    try:
        return shlex.split(cmd)
    except ValueError:
        return None


def _strip_prefix(words: list[str]) -> tuple[list[str], list[str]]:
    """Leading `VAR=value` assignments and sudo, split off the command."""
    i = 0
    while i < len(words) and (re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[i])
                              or words[i] == "sudo"):
        i += 1
    return words[:i], words[i:]


def _pip_args(words: list[str]) -> tuple[str, list[str]] | None:
    """(subcommand, arguments) when `words` run pip: pip, pip3, python -m pip, uv pip."""
    if not words:
        return None
    prog = words[0].rsplit("/", 1)[-1]
    rest: list[str]
    if re.fullmatch(r"pip[0-9.]*", prog):
        rest = words[1:]
    elif re.fullmatch(r"python[0-9.]*", prog) and words[1:3] == ["-m", "pip"]:
        rest = words[3:]
    elif prog == "uv" and words[1:2] == ["pip"]:
        rest = words[2:]
    else:
        return None
    sub = next((w for w in rest if not w.startswith("-")), "")
    if sub not in {"install", "wheel", "download"}:
        return None
    at = rest.index(sub)
    return sub, rest[at + 1:]


class _Context:
    def __init__(self, facts: FamilyFacts, files: Mapping[str, str], dropped_stages: set[str]):
        self.facts = facts
        self.files = files
        self.users: set[str] = set()
        self.dropped_files: set[str] = set()  # requirement files nothing installs any more
        self.dropped_stages = dropped_stages
        self.changed: list[str] = []
        self.unconverted: list[str] = []

    def file(self, name: str) -> str | None:
        for key in (name, name.lstrip("./"), name.rsplit("/", 1)[-1]):
            if key in self.files:
                return self.files[key]
        return None


def _requirement_verdict(req: str, ctx: _Context, line: int, origin: str) -> bool:
    """True when the family provides `req` (drop it); notes why either way."""
    parsed = parse_requirement(req)
    facts = ctx.facts
    if parsed is None:
        if req.startswith(("git+", "http://", "https://")):
            ctx.unconverted.append(f"line {line}: {origin}`{req}` installs from a URL, "
                                   "unpinned: build a wheel and pin it in `requirements:`")
        return False
    name, spec = parsed
    if name in PIP_ITSELF:
        ctx.changed.append(f"line {line}: {origin}{req}: dockyard installs the family's "
                           "packages with its own pip; the image needs none")
        return True
    if name in facts.pins:
        pin = facts.pins[name]
        family_spec = (parse_requirement(pin) or ("", ""))[1]
        if spec and spec != family_spec:
            ctx.unconverted.append(
                f"line {line}: {origin}{req} differs from family {facts.name}'s {pin}; left "
                f"out, the family's pin wins (a service that needs its own version belongs on "
                f"a sidecar family)")
        else:
            ctx.changed.append(f"line {line}: {origin}{req}: family {facts.name} pins {pin}")
        return True
    if name in TORCH_COMPANIONS and "torch" in facts.pins:
        ctx.unconverted.append(
            f"line {line}: {origin}{req} is built against one torch release and can replace "
            f"family {facts.name}'s {facts.pins['torch']}: add the matching {name} to the "
            "family's `requirements:` (or a sidecar family)")
    elif not spec.startswith("==") or "*" in spec:
        ctx.unconverted.append(
            f"line {line}: {origin}{req} is not pinned and not in family {facts.name}: pin it "
            f"(name==version) in the service's `requirements:`")
    else:
        ctx.changed.append(f"line {line}: {origin}kept {req} (not in family {facts.name}; "
                           f"`requirements:` on the service would install it from the wheelhouse)")
    return False


def _pip(sub: str, args: list[str], head: list[str], ctx: _Context, line: int) -> str | None:
    """The pip command without what the family provides; None when nothing is left."""
    kept: list[str] = []
    installs = 0
    i = 0
    while i < len(args):
        word = args[i]
        flag, eq, value = word.partition("=")
        if word.startswith("-") and (flag in _PIP_VALUE_FLAGS):
            value = value if eq else (args[i + 1] if i + 1 < len(args) else "")
            step = 1 if eq else 2
            if flag in {"-r", "--requirement"}:
                content = ctx.file(value)
                if content is None:
                    ctx.unconverted.append(
                        f"line {line}: pip -r {value}: file not found beside the Dockerfile, "
                        f"so its packages were not compared with family {ctx.facts.name}")
                    kept += args[i:i + step]
                    installs += 1
                else:
                    reqs = [ln.strip() for ln in content.splitlines()
                            if ln.strip() and not ln.strip().startswith(("#", "-"))]
                    missing = [r for r in reqs if not _requirement_verdict(
                        r, ctx, line, f"{value}: ")]
                    if missing:
                        kept += args[i:i + step]
                        installs += 1
                    else:
                        ctx.dropped_files.add(value.rsplit("/", 1)[-1])
            elif flag in {"-e", "--editable"}:
                kept += args[i:i + step]
                installs += 1
            else:
                kept += args[i:i + step]
            i += step
            continue
        if word.startswith("-"):
            kept.append(word)
        elif not _requirement_verdict(word, ctx, line, ""):
            kept.append(word)
            installs += 1
        i += 1
    if not installs:
        return None
    return shlex.join([*head, sub, *kept])


def _apt(cmd: str, words: list[str], prefix: list[str], ctx: _Context, line: int) -> str | None:
    at = words.index("install")
    packages = [w for w in words[at + 1:] if not w.startswith("-")]
    flags = [w for w in words[at + 1:] if w.startswith("-")]
    facts = ctx.facts
    provided = facts.apt | (PYTHON_APT if facts.python else frozenset())
    have = [p for p in packages if p.split("=")[0] in provided]
    if not have:
        return cmd
    ctx.changed.append(f"line {line}: apt {' '.join(have)}: family {facts.name} has "
                       f"{'them' if len(have) > 1 else 'it'}")
    rest = [p for p in packages if p not in have]
    if not rest:
        return None
    return shlex.join([*prefix, *words[:at + 1], *flags, *rest])


def _command(cmd: str, ctx: _Context, line: int) -> str | None:
    """One shell command: itself, a rewrite, or None to drop it."""
    words = _words(cmd)
    if words is None:
        return cmd
    prefix, words = _strip_prefix(words)
    if not words:
        return cmd
    prog = words[0].rsplit("/", 1)[-1]
    if prog in {"apt-get", "apt", "aptitude"} and "install" in words:
        return _apt(cmd, words, prefix, ctx, line)
    if prog in {"apk", "yum", "dnf", "microdnf", "zypper"} and \
            any(w in {"add", "install"} for w in words):
        ctx.unconverted.append(f"line {line}: `{cmd}`: family {ctx.facts.name} is Debian-based; "
                               "add the Debian names of these packages to the family's `apt:`")
        return cmd
    pip = _pip_args(words)
    if pip is not None:
        sub, args = pip
        head = words[:len(words) - len(args) - 1]
        rewritten = _pip(sub, args, [*prefix, *head], ctx, line)
        if rewritten is not None and rewritten == shlex.join([*prefix, *words]):
            return cmd
        return rewritten
    if ctx.facts.venv and (
            (re.fullmatch(r"python[0-9.]*", prog) and words[1:3] == ["-m", "venv"])
            or prog in {"virtualenv", "venv"}):
        ctx.changed.append(f"line {line}: `{cmd}`: the family's venv /opt/venv is on PATH")
        return None
    if prog in {"useradd", "adduser", "groupadd", "addgroup"}:
        names = [w for w in words[1:] if not w.startswith("-")]
        if names:
            ctx.users.add(names[-1])
        ctx.changed.append(f"line {line}: `{prog}`: the family's app user is {APP_USER}")
        return None
    if prog == "chown" and ctx.users:
        new = [_owner(w, ctx) if i and not w.startswith("-") and (":" in w or w in ctx.users)
               else w for i, w in enumerate(words)]
        if new != words:
            ctx.changed.append(f"line {line}: chown to {APP_USER}")
            return shlex.join([*prefix, *new])
    return cmd


def _owner(value: str, ctx: _Context) -> str:
    user = value.split(":")[0]
    return APP_USER if user in ctx.users or user in {"app", "appuser"} else value


_APT_HOUSEKEEPING = re.compile(
    r"^(apt-get|apt) (-\S+ )*(update|clean|autoclean|autoremove)\b|^rm -rf /var/lib/apt/lists")


def _run(instr: Instr, ctx: _Context) -> str | None:
    body = instr.args
    flags = []  # RUN --mount=... --network=...: kept in front of what remains
    while body.startswith("--"):
        flag, _, body = body.partition(" ")
        flags.append(flag)
        body = body.lstrip()
    if body.startswith("["):
        try:
            words = json.loads(body)
        except ValueError:
            return instr.raw
        shell = len(words) == 3 and words[:2] == ["/bin/sh", "-c"]
        body = words[2] if shell else shlex.join(words)
    if instr.heredoc or _CONTROL.search(body):
        if re.search(r"\b(pip|pip3|apt-get|apt|apk|useradd|adduser)\b", instr.raw):
            ctx.unconverted.append(
                f"line {instr.line}: RUN with a heredoc or shell control flow kept as it is: "
                "check it does not reinstall what the family has")
        return instr.raw
    parts = split_commands(body)
    out: list[tuple[str, str]] = []
    changed = False
    for cmd, sep in parts:
        new = _command(cmd, ctx, instr.line)
        changed |= new != cmd
        if new is not None:
            out.append((new, sep))
    if not changed:
        return instr.raw
    if not any(re.search(r"\b(apt-get|apt|aptitude) .*install", c) for c, _ in out):
        out = [(c, s) for c, s in out if not _APT_HOUSEKEEPING.search(c)]
    if not out:
        return None
    text = "RUN " + "".join(f"{f} \\\n    " for f in flags) + out[0][0]
    for (_, sep), (cmd, _) in itertools.pairwise(out):
        text += (" \\\n    && " if sep == "&&" else "; \\\n    ") + cmd
    return text


# --- instructions ------------------------------------------------------------------------


def _copy(instr: Instr, ctx: _Context) -> str | None:
    words = instr.args.split()
    flags = [w for w in words if w.startswith("--")]
    rest = [w for w in words if not w.startswith("--")]
    source = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), "")
    if source and source in ctx.dropped_stages:
        ctx.changed.append(f"line {instr.line}: {instr.keyword} --from={source}: that stage only "
                           f"installed what family {ctx.facts.name} has")
        return None
    if instr.keyword == "ADD" and any(re.match(r"^https?://", w) for w in rest[:-1]):
        ctx.unconverted.append(
            f"line {instr.line}: ADD from a URL fetches at build time, unchecked: download it "
            "into the build context (or add `--checksum=sha256:...`)")
    if instr.heredoc or instr.args.startswith("["):
        return instr.raw
    sources = rest[:-1]
    if sources and not source and all(s.rsplit("/", 1)[-1] in ctx.dropped_files
                                      for s in sources):
        ctx.changed.append(f"line {instr.line}: {instr.keyword} {' '.join(sources)}: nothing "
                           "installs from it any more")
        return None
    if ctx.facts.venv and rest and "site-packages" in rest[-1]:
        ctx.unconverted.append(
            f"line {instr.line}: copies into {rest[-1]}, but family {ctx.facts.name}'s "
            "Python packages live in the venv /opt/venv: copy there, or install them with "
            "the family")
    chown = next((f for f in flags if f.startswith("--chown=")), "")
    if chown == f"--chown={APP_USER}":
        return instr.raw
    new_flags = [f for f in flags if not f.startswith("--chown=")] + [f"--chown={APP_USER}"]
    ctx.changed.append(f"line {instr.line}: {instr.keyword} owned by the app user {APP_USER}")
    return " ".join([instr.keyword, *new_flags, *rest])


def _user(instr: Instr, ctx: _Context) -> str | None:
    user = instr.args.split(":")[0]
    if user in ctx.users or user in {"app", "appuser"}:
        ctx.changed.append(f"line {instr.line}: USER {instr.args} -> {APP_USER}")
        return None
    return instr.raw


def _exec_form(instr: Instr, ctx: _Context) -> str:
    body = instr.args
    if body.startswith("["):
        try:
            words = json.loads(body)
        except ValueError:
            return instr.raw
    elif re.search(r"[$|&;<>*`(){}]", body):
        ctx.unconverted.append(
            f"line {instr.line}: shell-form {instr.keyword} kept: it runs under /bin/sh, which "
            "does not pass signals on; write it as a JSON list")
        return instr.raw
    else:
        words = shlex.split(body)
        ctx.changed.append(f"line {instr.line}: {instr.keyword} in JSON form")
    if instr.keyword == "ENTRYPOINT" and words[:1] != [TINI]:
        words = [TINI, "--", *words]
        ctx.changed.append(f"line {instr.line}: ENTRYPOINT under tini (PID 1 reaps and "
                           "forwards signals)")
    return f"{instr.keyword} {json.dumps(words)}"


def _stage_needs_keeping(items: list[Instr | str], stage: Stage, end: int,
                         facts: FamilyFacts, files: Mapping[str, str]) -> str:
    """Why a build stage does something the family does not already do ("" if it does not)."""
    ctx = _Context(facts, files, set())
    for item in items[stage.start + 1:end]:
        if not isinstance(item, Instr):
            continue
        if item.keyword in {"WORKDIR", "ENV", "ARG", "LABEL"}:
            continue
        if item.keyword == "COPY" and "--from=" not in item.args:
            continue  # requirement files (anything else is checked by the RUNs)
        if item.keyword != "RUN" or _run(item, ctx) is not None or ctx.unconverted:
            if ctx.unconverted:
                return ctx.unconverted[0].split(": ", 1)[1]
            step = " ".join(f"{item.keyword} {item.args}".split())
            return f"line {item.line}: {step[:60]}{'...' if len(step) > 60 else ''}"
    return ""


def _non_root(user: str) -> bool:
    return user.split(":")[0] not in {"", "0", "root"}


def adopt(text: str, facts: FamilyFacts, *, source: str = "Dockerfile",
          files: Mapping[str, str] | None = None) -> AdoptResult:
    """`text` (a Dockerfile) rewritten onto `facts`' family; `files` are the build context's
    requirement files by name, read by the caller (see `wanted_files`)."""
    files = files or {}
    directives, items = parse(text)
    stages = _stages(items)
    if not stages:
        return AdoptResult(text, [], [f"{source}: no FROM line: not a Dockerfile"])
    ends = [s.start for s in stages[1:]] + [len(items)]
    by_alias = {s.alias: s for s in stages if s.alias}
    # The runtime chain: the last stage and the stages it is built FROM.
    runtime = [stages[-1]]
    while runtime[-1].image in by_alias and by_alias[runtime[-1].image] not in runtime:
        runtime.append(by_alias[runtime[-1].image])
    root = runtime[-1]
    in_runtime = {s.index for s in runtime}
    dropped_stages: set[str] = set()
    kept_why: dict[int, str] = {}
    for s in stages:
        if s.index not in in_runtime:
            why = _stage_needs_keeping(items, s, ends[s.index], facts, files)
            if why:
                kept_why[s.index] = why
            else:
                dropped_stages.add(s.alias or str(s.index))
    ctx = _Context(facts, files, dropped_stages)
    for number, d in enumerate(directives, start=1):
        if "syntax" in d.split("=")[0].lower():
            ctx.changed.append(f"line {number}: {d.strip()} dropped (BuildKit would pull that "
                               "frontend from a registry)")
    # Pass 1: RUN steps of the runtime stages (they decide which users and files are gone).
    runs: dict[int, str | None] = {}
    for s in runtime:
        for pos in range(s.start + 1, ends[s.index]):
            item = items[pos]
            if isinstance(item, Instr) and item.keyword == "RUN":
                runs[pos] = _run(item, ctx)
    body: list[str] = []
    end_user: dict[str, str] = {}  # the user a stage ends as, by alias and by index
    for s in stages:
        segment = items[s.start:ends[s.index]]
        from_instr = segment[0]
        assert isinstance(from_instr, Instr)
        if s.alias in dropped_stages or str(s.index) in dropped_stages:
            ctx.changed.append(f"line {from_instr.line}: stage {s.alias or s.index} "
                               f"(FROM {s.image}) only installed what family {facts.name} has")
            continue
        inherited = APP_USER if s is root else end_user.get(s.image, "")
        if s.index not in in_runtime:
            ctx.unconverted.append(
                f"line {from_instr.line}: stage {s.alias or s.index} (FROM {s.image}) kept as "
                f"it is ({kept_why[s.index]}): move what it builds into family {facts.name} "
                "or a service's `requirements:`, or keep it")
            rest = [i.raw if isinstance(i, Instr) else i for i in segment[1:]]
            user = inherited
            for item in segment[1:]:
                if isinstance(item, Instr) and item.keyword == "USER":
                    break
                if isinstance(item, Instr) and item.keyword == "RUN" and _non_root(inherited):
                    rest.insert(0, "USER 0:0")
                    user = "0:0"
                    ctx.changed.append(f"line {from_instr.line}: USER 0:0 for stage "
                                       f"{s.alias or s.index}: it builds on {s.image}, which "
                                       "now ends as the app user")
                    break
            body += [from_instr.raw, *rest]
        else:
            lines, user = _runtime_stage(s, segment, root, runs, ctx,
                                         last=s is stages[-1], inherited=inherited)
            body += lines
        for item in segment[1:]:
            if isinstance(item, Instr) and item.keyword == "USER" and s.index not in in_runtime:
                user = item.args
        end_user[str(s.index)] = user
        if s.alias:
            end_user[s.alias] = user
    ctx.changed.sort(key=_line_of)
    ctx.unconverted.sort(key=_line_of)
    head = [f"# Adopted onto family {facts.name} by `dockyard adopt` from {source}.",
            "# Build it with BASE_IMAGE set to the family's image (dockyard build does)."]
    if ctx.changed:
        head.append("# Converted (or checked):")
        head += [f"#   {c}" for c in ctx.changed]
    if ctx.unconverted:
        head.append("# NOT converted (review by hand):")
        head += [f"#   {c}" for c in ctx.unconverted]
    kept_directives = [d for d in directives if "syntax" not in d.split("=")[0].lower()]
    preamble = [i.raw if isinstance(i, Instr) else i for i in items[:stages[0].start]]
    lines = [*kept_directives, *head, *preamble, f"ARG BASE_IMAGE={facts.image}", *body]
    return AdoptResult("\n".join(lines).rstrip("\n") + "\n", ctx.changed, ctx.unconverted)


def _line_of(note: str) -> int:
    """Notes read in file order; general ones (no line) last."""
    match = re.match(r"line (\d+):", note)
    return int(match.group(1)) if match else 10**9


def _runtime_stage(s: Stage, segment: list[Instr | str], root: Stage,
                   runs: dict[int, str | None], ctx: _Context, *, last: bool,
                   inherited: str) -> tuple[list[str], str]:
    """The stage's new lines, and the user it ends as."""
    from_instr = segment[0]
    assert isinstance(from_instr, Instr)
    out: list[str] = []
    if s is root:
        alias = f" AS {s.alias}" if s.alias else ""
        platform = f"--platform={s.platform.split('=', 1)[1]} " if s.platform else ""
        out.append(f"FROM {platform}${{BASE_IMAGE}}{alias}")
        ctx.changed.append(f"line {from_instr.line}: FROM {s.image} -> FROM ${{BASE_IMAGE}} "
                           f"(family {ctx.facts.name})")
        if not s.image.startswith(_PLAIN_BASES):
            ctx.unconverted.append(
                f"line {from_instr.line}: the service was built on {s.image}; check that family "
                f"{ctx.facts.name} (on {ctx.facts.base}) provides what that image had")
        if "alpine" in s.image:
            ctx.unconverted.append(f"line {from_instr.line}: {s.image} is Alpine (musl, apk); "
                                   "the family is Debian (glibc, apt)")
    else:
        out.append(from_instr.raw)
    converted: list[tuple[Instr | None, str]] = []
    user = inherited
    for offset, item in enumerate(segment[1:], start=1):
        if not isinstance(item, Instr):
            converted.append((None, item))
            continue
        new: str | None
        if item.keyword == "RUN":
            new = runs.get(s.start + offset, item.raw)
        elif item.keyword in {"COPY", "ADD"}:
            new = _copy(item, ctx)
        elif item.keyword == "USER":
            new = _user(item, ctx)
        elif item.keyword in {"CMD", "ENTRYPOINT"}:
            new = _exec_form(item, ctx)
        elif item.keyword == "ONBUILD":
            ctx.unconverted.append(f"line {item.line}: ONBUILD kept; dockyard images do not "
                                   "use it")
            new = item.raw
        else:
            new = item.raw
        if new is not None:
            converted.append((item, new))
    # The family ends as the app user: steps that ran as root before need root again.
    first_run = next((i for i, (it, _) in enumerate(converted)
                      if it is not None and it.keyword == "RUN"), None)
    first_user = next((i for i, (it, _) in enumerate(converted)
                       if it is not None and it.keyword == "USER"), None)
    if _non_root(inherited) and first_run is not None and (
            first_user is None or first_run < first_user):
        converted.insert(first_run, (None, "USER 0:0"))
        ctx.changed.append(f"stage {s.alias or s.index}: RUN steps run as root, as before (the "
                           "family ends as the app user)")
    for _, text in converted:
        if text.startswith("USER "):
            user = text[5:].strip()
    if last and user not in {APP_USER, "10001"}:
        tail = len(converted)
        while tail > 0 and (converted[tail - 1][0] is None
                            or converted[tail - 1][0].keyword in _METADATA_TAIL):  # type: ignore[union-attr]
            tail -= 1
        before = converted[tail - 1] if tail else (None, "")
        if before[1].startswith("USER ") and before[0] is not None:
            converted[tail - 1] = (None, f"USER {APP_USER}")
            ctx.changed.append(f"line {before[0].line}: USER {before[0].args} -> {APP_USER}: "
                               "the image runs as the app user")
        else:
            converted.insert(tail, (None, f"USER {APP_USER}"))
            ctx.changed.append(f"USER {APP_USER} added: the image runs as the app user")
    out += [text for _, text in converted]
    return out, user


def wanted_files(text: str) -> list[str]:
    """Requirement files a Dockerfile's pip installs read (`-r FILE`), for the caller to
    read from the build context."""
    found: list[str] = []
    for match in re.finditer(r"(?:-r|--requirement)[ =]+([^\s;&|\\]+)", text):
        name = match.group(1).strip("\"'")
        if name not in found:
            found.append(name)
    return found


def adopt_report(result: AdoptResult) -> Iterable[str]:
    yield from (f"converted: {c}" for c in result.changed)
    yield from (f"NOT converted: {c}" for c in result.unconverted)
