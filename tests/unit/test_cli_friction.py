"""What a new user hit on the command line (issue 10 F, G), through the real entry point:
`--profile nope` accepted silently, `plan`'s ports and capacity, and `down` acting on the
bundled example in a folder with no fleet.yaml."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dockyard.cli import main

FLEET = """\
fleet: friction
machines:
  box: {cpus: 2}
services:
  api:
    image: ghcr.io/x/api:1.0
    ports: {svc: "7009:7009", health: "9008:9008", internal: {port: 7100, publish: false}}
    health: {http: /health, port: health}
    profiles: [web]
  group:
    image: ghcr.io/x/agents:1.0
    command: [python3, -m, agents]
    agents:
      watcher: {command: [python3, -m, watcher], ports: {http: "127.0.0.1:18111:8111"}}
    profiles: [agents]
"""


def run(argv: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["dockyard", *argv])
    with pytest.raises(SystemExit) as exited:
        main()
    got = capsys.readouterr()
    return int(exited.value.code or 0), got.out, got.err


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET)
    return path


def test_an_unknown_profile_is_refused_naming_the_known_ones(
        manifest: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["-f", str(manifest), "--profile", "nope", "plan"], monkeypatch, capsys)
    assert code == 2
    assert err.splitlines() == [
        "error: no service is in profile 'nope' (the fleet's profiles: agents, web) (fix: pass "
        "--profile with one of them, or add it to a service's `profiles:`)"]
    code, out, _ = run(["-f", str(manifest), "--profile", "web", "plan"], monkeypatch, capsys)
    assert code == 0 and "api" in out


def test_plan_lists_ports_as_the_manifest_does_agents_included(
        manifest: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["-f", str(manifest), "plan"], monkeypatch, capsys)
    assert code == 0, out
    api = next(line for line in out.splitlines() if "│ api " in line)
    # svc before health (as written; the health port is not put first), internal as 7100
    assert "127.0.0.1:7009->7009, 127.0.0.1:9008->9008, 7100" in api, api
    group = next(line for line in out.splitlines() if "│ group " in line)
    assert "127.0.0.1:18111->8111" in group, group  # what its rendered compose publishes


def test_plan_says_capacity_unknown_apart_from_the_amount(
        manifest: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    manifest.write_text(FLEET.replace("    profiles: [web]\n",
                                      "    profiles: [web]\n    memory: 2GiB\n"))
    code, out, _ = run(["-f", str(manifest), "plan"], monkeypatch, capsys)
    assert code == 0
    assert "capacity unknown (2GiB / ?)" in out and "unknown2GiB" not in out, out


@pytest.mark.parametrize("argv", [["down"], ["down", "--volumes"], ["rollback"]])
def test_destructive_commands_never_fall_back_to_the_bundled_example(
        argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # no fleet.yaml here or above
    code, out, err = run(argv, monkeypatch, capsys)
    assert code == 2, out + err
    command = " ".join(argv)
    assert err.splitlines() == [
        f"error: no fleet.yaml here or above, and `{command}` does not fall back to the "
        f"bundled example fleet (fix: pass the manifest: dockyard -f path/to/fleet.yaml "
        f"{command}, or run it in the fleet's folder)"]
    assert "bundled example fleet (quickstart)" not in err  # the fallback's own line


def test_the_health_wait_is_a_line_every_few_seconds_without_a_terminal(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The engine says whom it waits for every second; a log gets it every 5 s of a level."""
    from dockyard.cli import views
    from dockyard.events import HealthWaiting, LevelHealthy, LevelStarted

    views.say(LevelStarted(("embedder",)))
    for second in range(1, 12):
        views.say(HealthWaiting((("embedder", 60.0 - second),), second + 0.01))
    views.say(LevelHealthy((("embedder", 11.5),)))
    views.say(LevelStarted(("gateway",)))
    views.say(HealthWaiting((("gateway", 20.0),), 5.02))  # a new level starts the count again
    assert capsys.readouterr().err.splitlines() == [
        "dockyard starting embedder",
        "dockyard waiting for health: embedder (55 s left)",
        "dockyard waiting for health: embedder (50 s left)",
        "dockyard healthy: embedder (11.5s)",
        "dockyard starting gateway",
        "dockyard waiting for health: gateway (20 s left)"]


def test_the_health_wait_is_a_live_line_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from dockyard.cli import views
    from dockyard.events import HealthWaiting, LevelHealthy

    screen = io.StringIO()
    monkeypatch.setattr(views, "err", Console(file=screen, force_terminal=True, width=120))
    views.say(HealthWaiting((("embedder", 59.0),), 1.0))
    live = views._waiting.live
    assert live is not None  # one status line, updated in place
    views.say(HealthWaiting((("embedder", 58.0),), 2.0))
    assert views._waiting.live is live
    views.say(LevelHealthy((("embedder", 2.5),)))
    assert views._waiting.live is None  # gone before the next line is printed
    shown = screen.getvalue()
    assert "waiting for health: embedder (58 s left)" in shown
    assert shown.rstrip().endswith("healthy: embedder (2.5s)")
