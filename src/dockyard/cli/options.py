"""What every command shares: the global options, the manifest they name, output formats."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.actions.target import Choice
from dockyard.errors import ManifestError

if TYPE_CHECKING:
    from dockyard.manifest.load import Fleet
    from dockyard.plan.model import Plan


class Format(StrEnum):
    table = "table"
    json = "json"


class RenderTarget(StrEnum):
    compose = "compose"
    kubernetes = "kubernetes"
    swarm = "swarm"


class RunTarget(StrEnum):
    compose = "compose"
    swarm = "swarm"


class SchemaFormat(StrEnum):
    json = "json"
    markdown = "markdown"


class CheckFormat(StrEnum):
    text = "text"
    table = "table"  # the same as text
    json = "json"
    sarif = "sarif"


@dataclass
class Options:
    """The global options, given before the command (`dockyard -f x.yaml up`)."""

    file: Path | None
    project: str | None
    machines: list[str]  # -m, repeatable; none: every machine (or the only one)
    profiles: list[str]

    @property
    def machine(self) -> str | None:
        """The one machine -m names, for a command that acts on one (None: not named)."""
        if len(set(self.machines)) > 1:
            raise ManifestError(f"this command acts on one machine; -m was given "
                                f"{len(self.machines)} times ({', '.join(self.machines)})",
                                fix="give -m once")
        return self.machines[0] if self.machines else None

    def choice(self) -> Choice:
        named = tuple(dict.fromkeys(self.machines))
        return Choice(named[0] if len(named) == 1 else None, self.project,
                      tuple(self.profiles), named)


def manifest(opts: Options, *, destructive: str = "") -> Path:
    """The manifest named with -f, else the nearest fleet.yaml from here up, else the
    bundled example fleet (and a note that says so); never the example for a `destructive`
    command (its name): that would act on a fleet the user did not mean."""
    from dockyard.cli.views import err
    from dockyard.manifest.load import find_manifest
    from dockyard.workspace import EXAMPLE

    if opts.file is not None:
        return opts.file
    found = find_manifest(Path.cwd())
    if found is None and destructive:
        raise ManifestError(f"no fleet.yaml here or above, and `{destructive}` does not fall "
                            "back to the bundled example fleet",
                            fix=f"pass the manifest: dockyard -f path/to/fleet.yaml "
                                f"{destructive}, or run it in the fleet's folder")
    if found is None:
        err.print(f"[dim]no fleet.yaml here or above; using the bundled example fleet "
                  f"({EXAMPLE.parent.name})[/dim]")
        return EXAMPLE
    return found


def load(opts: Options, *, lenient: bool = False, destructive: str = ""
         ) -> tuple[Fleet, Plan]:
    """`lenient`: unset required variables are no error (a command that needs no values);
    `destructive`: the command's name, when it must not fall back to the bundled example.
    A `--profile` no service is in is refused here, for every command."""
    from dockyard.manifest.load import load as load_fleet
    from dockyard.plan import plan

    fleet = load_fleet(manifest(opts, destructive=destructive), lenient=lenient)
    fleet.check_profiles(opts.profiles)
    return fleet, plan(fleet)


def platform_arch(given: str) -> str:
    """--platform's value as amd64 or arm64 ("" when not given)."""
    arch = {"linux/amd64": "amd64", "linux/arm64": "arm64", "x86_64": "amd64",
            "aarch64": "arm64"}.get(given, given)
    if arch not in ("", "amd64", "arm64"):
        raise ManifestError(f"--platform {given}: dockyard builds amd64 and arm64 images",
                            fix="pass --platform amd64 or --platform arm64")
    return arch


_GLOBAL_VALUES = {"-f", "--file", "-p", "--project", "-m", "--machine", "--profile"}


def manifest_first(argv: list[str], commands: dict[str, set[str]]) -> list[str]:
    """`dockyard check fleet.yaml`, as every linter takes its file: a YAML path given to a
    command that takes no arguments becomes the global `-f`. `commands` maps each such
    command to its options that take a value (a `-o x.yaml` stays what it is)."""
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in _GLOBAL_VALUES:
            i += 2
            continue
        if token.startswith("-"):
            i += 1
            continue
        break
    else:
        return argv
    if argv[i] not in commands or "-f" in argv[:i] or "--file" in argv[:i]:
        return argv
    takes_value = commands[argv[i]]
    for j in range(i + 1, len(argv)):
        token = argv[j]
        if (token.endswith((".yaml", ".yml")) and not token.startswith("-")
                and argv[j - 1] not in takes_value):
            return [*argv[:i], "-f", token, *argv[i:j], *argv[j + 1:]]
    return argv
