#!/usr/bin/env python3
"""Supervisor for the agents of service infra-core-cpu: rendered by dockyard, edit fleet.yaml."""
import contextlib
import os
import signal
import subprocess
import sys
import time

AGENTS = {
    "advanced-router": {
        "command": [
            "python",
            "agents/AdvancedRouter.py"
        ],
        "env": {}
    },
    "agent-trust-scorer": {
        "command": [
            "python",
            "agents/AgentTrustScorer.py"
        ],
        "env": {}
    },
    "authentication-agent": {
        "command": [
            "python",
            "agents/AuthenticationAgent.py"
        ],
        "env": {}
    },
    "cache-manager": {
        "command": [
            "python",
            "agents/CacheManager.py"
        ],
        "env": {}
    },
    "context-manager": {
        "command": [
            "python",
            "agents/ContextManager.py"
        ],
        "env": {}
    },
    "experience-tracker": {
        "command": [
            "python",
            "agents/ExperienceTracker.py"
        ],
        "env": {}
    },
    "file-system-assistant-agent": {
        "command": [
            "python",
            "agents/FileSystemAssistantAgent.py"
        ],
        "env": {}
    },
    "observability-hub": {
        "command": [
            "python",
            "agents/ObservabilityHub.py"
        ],
        "env": {}
    },
    "remote-connector-agent": {
        "command": [
            "python",
            "agents/RemoteConnectorAgent.py"
        ],
        "env": {}
    },
    "resource-manager": {
        "command": [
            "python",
            "agents/ResourceManager.py"
        ],
        "env": {}
    },
    "task-scheduler": {
        "command": [
            "python",
            "agents/TaskScheduler.py"
        ],
        "env": {}
    },
    "unified-utils-agent": {
        "command": [
            "python",
            "agents/UnifiedUtilsAgent.py"
        ],
        "env": {}
    },
    "unified-web-agent": {
        "command": [
            "python",
            "agents/UnifiedWebAgent.py"
        ],
        "env": {}
    }
}
STOP_GRACE = float(os.environ.get("DOCKYARD_SUPERVISOR_GRACE", "10"))
BACKOFF = float(os.environ.get("DOCKYARD_SUPERVISOR_BACKOFF", "1"))
MAX_EXITS, WINDOW = 5, 60.0


def say(text):
    print(f"[supervisor infra-core-cpu] {text}", file=sys.stderr, flush=True)


def start(name):
    spec = AGENTS[name]
    env = dict(os.environ, **spec["env"], DOCKYARD_AGENT=name)
    say(f"starting {name}: {' '.join(spec['command'])}")
    return subprocess.Popen(spec["command"], env=env, start_new_session=True)


def main():
    procs = {name: start(name) for name in AGENTS}
    exits = []
    backoff = {name: BACKOFF for name in AGENTS}
    due = {}
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
            say(f"{name} exited with {proc.returncode}")
            procs[name] = None
            exits.append(now)
            due[name] = now + backoff[name]
            backoff[name] = min(30 * BACKOFF, backoff[name] * 2)
        exits[:] = [t for t in exits if now - t < WINDOW]
        if len(exits) > MAX_EXITS:
            say(f"more than {MAX_EXITS} exits in {WINDOW:g} s: giving up")
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
            say(f"pid {proc.pid} ignored SIGTERM for {STOP_GRACE:g} s: SIGKILL")
            os.killpg(proc.pid, signal.SIGKILL)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
