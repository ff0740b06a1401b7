#!/usr/bin/env python3
"""Supervisor for the agents of service language-stack-gpu: rendered by dockyard, edit fleet.yaml."""
import contextlib
import os
import signal
import subprocess
import sys
import time

AGENTS = {
    "advanced-command-handler": {
        "command": [
            "python",
            "agents/AdvancedCommandHandler.py"
        ],
        "env": {}
    },
    "chitchat-agent": {
        "command": [
            "python",
            "agents/ChitchatAgent.py"
        ],
        "env": {}
    },
    "dynamic-identity-agent": {
        "command": [
            "python",
            "agents/DynamicIdentityAgent.py"
        ],
        "env": {}
    },
    "emotion-synthesis-agent": {
        "command": [
            "python",
            "agents/EmotionSynthesisAgent.py"
        ],
        "env": {}
    },
    "feedback-handler": {
        "command": [
            "python",
            "agents/FeedbackHandler.py"
        ],
        "env": {}
    },
    "goal-manager": {
        "command": [
            "python",
            "agents/GoalManager.py"
        ],
        "env": {}
    },
    "intention-validator-agent": {
        "command": [
            "python",
            "agents/IntentionValidatorAgent.py"
        ],
        "env": {}
    },
    "model-orchestrator": {
        "command": [
            "python",
            "agents/ModelOrchestrator.py"
        ],
        "env": {}
    },
    "nlu-agent": {
        "command": [
            "python",
            "agents/NLUAgent.py"
        ],
        "env": {}
    },
    "responder": {
        "command": [
            "python",
            "agents/Responder.py"
        ],
        "env": {}
    },
    "translation-service": {
        "command": [
            "python",
            "agents/TranslationService.py"
        ],
        "env": {}
    }
}
STOP_GRACE = float(os.environ.get("DOCKYARD_SUPERVISOR_GRACE", "10"))
BACKOFF = float(os.environ.get("DOCKYARD_SUPERVISOR_BACKOFF", "1"))
MAX_EXITS, WINDOW = 5, 60.0


def say(text):
    print(f"[supervisor language-stack-gpu] {text}", file=sys.stderr, flush=True)


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
