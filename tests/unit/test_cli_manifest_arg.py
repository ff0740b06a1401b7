"""`dockyard check fleet.yaml`: a bare manifest path after a command is taken as `-f`."""

from __future__ import annotations

from dockyard.cli import _argumentless
from dockyard.cli.options import manifest_first

COMMANDS = {"check": {"--format"}, "render": {"-o", "--output", "--target"}, "up": set()}


def test_a_bare_path_becomes_the_global_file_option() -> None:
    assert manifest_first(["check", "fleet.yaml"], COMMANDS) == ["-f", "fleet.yaml", "check"]
    assert manifest_first(["-p", "shop", "check", "--format", "json", "a/fleet.yml"],
                          COMMANDS) == ["-p", "shop", "-f", "a/fleet.yml", "check", "--format",
                                        "json"]


def test_what_is_not_a_bare_manifest_is_left_alone() -> None:
    for argv in (["render", "-o", "out.yaml"],                  # an option's value
                 ["-f", "a.yaml", "check", "b.yaml"],           # -f given: typer says no
                 ["import", "compose.yaml"],                    # takes arguments
                 ["check", "--format", "json"], ["--help"], []):
        assert manifest_first(argv, COMMANDS) == argv


def test_the_real_commands_are_known() -> None:
    commands = _argumentless()
    assert {"check", "plan", "render", "build", "up", "down", "ps"} <= set(commands)
    assert "import" not in commands and "adopt" not in commands and "machine" not in commands
    assert "--format" in commands["check"] and "--images" not in commands["check"]
