"""Container groups: a service's `agents:` run in one container under a small supervisor.

The supervisor is a Python script rendered per service (`services/<name>.supervisor.py`) with
its agents written into it; compose mounts it read-only and runs it with `init: true`, so
Docker's init is PID 1 (reaps zombies, passes signals on) and the supervisor is its child:

- each agent starts with its own command and env, in its own process group;
- an agent that exits is restarted after a back-off (1 s, doubling to 30 s; scaled by
  `DOCKYARD_SUPERVISOR_BACKOFF`); more than 5 exits
  within 60 s and the supervisor stops the others and exits 1, so the container's restart
  policy and dockyard's health probe see the failure instead of a silent crash loop;
- SIGTERM/SIGINT go to every agent; agents still running after 10 s
  (`DOCKYARD_SUPERVISOR_GRACE`) get SIGKILL; exit 0.

Each agent keeps its own ports (published from the one container) and health: the container is
healthy when every agent's health check passes (one rendered test checks all of them).
"""

from __future__ import annotations

import json
import shlex

from dockyard.manifest.models import AgentSpec, HealthSpec, ServiceSpec
from dockyard.plan.health import health_test

MOUNT = "/opt/dockyard/supervisor.py"

SCRIPT = '''\
#!/usr/bin/env python3
"""Supervisor for the agents of service {service}: rendered by dockyard, edit fleet.yaml."""
import contextlib
import os
import signal
import subprocess
import sys
import time

AGENTS = {agents}
STOP_GRACE = float(os.environ.get("DOCKYARD_SUPERVISOR_GRACE", "10"))
BACKOFF = float(os.environ.get("DOCKYARD_SUPERVISOR_BACKOFF", "1"))
MAX_EXITS, WINDOW = 5, 60.0


def say(text):
    print(f"[supervisor {service}] {{text}}", file=sys.stderr, flush=True)


def start(name):
    spec = AGENTS[name]
    env = dict(os.environ, **spec["env"], DOCKYARD_AGENT=name)
    say(f"starting {{name}}: {{' '.join(spec['command'])}}")
    return subprocess.Popen(spec["command"], env=env, start_new_session=True)


def main():
    procs = {{name: start(name) for name in AGENTS}}
    exits = []
    backoff = {{name: BACKOFF for name in AGENTS}}
    due = {{}}
    stopping = []

    def stop(signum, frame):
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    failed = False
    while not stopping and not failed:
        time.sleep(min(0.2, BACKOFF))
        now = time.monotonic()
        for name, proc in list(procs.items()):
            if proc is None or proc.poll() is None:
                continue
            say(f"{{name}} exited with {{proc.returncode}}")
            procs[name] = None
            exits.append(now)
            due[name] = now + backoff[name]
            backoff[name] = min(30 * BACKOFF, backoff[name] * 2)
        exits[:] = [t for t in exits if now - t < WINDOW]
        if len(exits) > MAX_EXITS:
            say(f"more than {{MAX_EXITS}} exits in {{WINDOW:g}} s: giving up")
            failed = True
            break
        for name, when in list(due.items()):
            if now >= when:
                del due[name]
                procs[name] = start(name)
    running = [p for p in procs.values() if p is not None and p.poll() is None]
    for proc in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for proc in running:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"pid {{proc.pid}} ignored SIGTERM for {{STOP_GRACE:g}} s: SIGKILL")
            os.killpg(proc.pid, signal.SIGKILL)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
'''


def agents_of(svc: ServiceSpec) -> dict[str, AgentSpec]:
    """The agents to supervise; the service's own `command:` runs as agent `main`."""
    agents = dict(sorted(svc.agents.items()))
    if svc.command and "main" not in agents:
        agents = {"main": AgentSpec(command=list(svc.command)), **agents}
    return agents


def render_supervisor(name: str, svc: ServiceSpec) -> str:
    table = {agent: {"command": list(spec.command), "env": dict(sorted(spec.env.items()))}
             for agent, spec in agents_of(svc).items()}
    text = json.dumps(table, indent=4, sort_keys=True)
    return SCRIPT.format(service=name, agents=text)


def supervisor_command() -> list[str]:
    return ["python3", MOUNT]


def _agent_probe(agent: AgentSpec, health: HealthSpec, *, has_python: bool) -> str:
    if health.cmd:
        return shlex.join(health.cmd)
    if isinstance(health.port, int):
        port = health.port
    elif health.port:
        port = agent.ports[health.port].port
    else:
        port = next(iter(sorted(agent.ports.items())))[1].port
    url = f"http://127.0.0.1:{port}{health.http}"
    if has_python:
        code = f"import urllib.request; urllib.request.urlopen({url!r}, timeout={health.timeout:g})"
        return shlex.join(["python3", "-c", code])
    return f"(curl -fsS {url} >/dev/null || wget -qO- {url} >/dev/null)"


def group_health(svc: ServiceSpec, *, has_python: bool) -> tuple[list[str], HealthSpec] | None:
    """One health test that passes when every agent (and the service's own check) passes,
    with the timing of the service's check or else of the slowest agent's."""
    checks: list[tuple[AgentSpec | None, HealthSpec]] = [
        (agent, agent.health) for agent in agents_of(svc).values() if agent.health]
    if svc.health:
        checks.insert(0, (None, svc.health))
    if not checks:
        return None
    parts = []
    for agent, health in checks:
        if agent is None:
            test = health_test(svc, has_python=has_python)
            parts.append(test[1] if test[0] == "CMD-SHELL" else shlex.join(test[1:]))
        else:
            parts.append(_agent_probe(agent, health, has_python=has_python))
    timing = svc.health or max((h for _, h in checks), key=lambda h: h.deadline)
    return ["CMD-SHELL", " && ".join(parts)], timing
