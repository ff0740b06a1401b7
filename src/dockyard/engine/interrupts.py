"""Ctrl-C held over steps that must not be cut in half, and the points where a test stops
dockyard on purpose.

`held()` defers SIGINT until its block ends (then raises KeyboardInterrupt): a build's tag
moves run in one, so `:current`, `:prev` and the dated tag move for every image or for none.

`reach(point)` marks a step boundary. Two environment variables, for tests only, act there:

    DOCKYARD_KILL_AT=<point>[:<n>]   SIGKILL this process the n-th time (default: the first)
                                     it reaches <point>, as a power cut or `kill -9` would
    DOCKYARD_PAUSE_AT=<point>[:<n>]  say `dockyard: paused at <point>` on stderr and wait
                                     (PAUSE_SECONDS, or until SIGINT) before going on

Points (each named where it is reached):
    build.promote   between two images' tag moves (after the first image's tags moved)

A test waits for the pause line, then sends SIGINT (tests/engine/test_interrupts.py), or
lets the kill happen and runs the command again to see it recover."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

KILL_AT = "DOCKYARD_KILL_AT"
PAUSE_AT = "DOCKYARD_PAUSE_AT"
PAUSE_SECONDS = 60.0

_reached: Counter[str] = Counter()
_requested = threading.Event()  # SIGINT came while held: a pause ends early


@contextmanager
def held() -> Iterator[None]:
    """Run the block to its end even when Ctrl-C comes; then raise KeyboardInterrupt.

    Only the main thread receives signals; elsewhere this holds nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        came.append(signum)
        _requested.set()

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _requested.clear()
        if came:
            raise KeyboardInterrupt


def _wanted(variable: str, point: str, count: int) -> bool:
    value = os.environ.get(variable, "")
    name, _, nth = value.partition(":")
    return name == point and count == (int(nth) if nth.isdigit() else 1)


def reach(point: str) -> None:
    """A step boundary: a test's DOCKYARD_KILL_AT or DOCKYARD_PAUSE_AT acts here."""
    if not os.environ.get(KILL_AT) and not os.environ.get(PAUSE_AT):
        return
    _reached[point] += 1
    if _wanted(KILL_AT, point, _reached[point]):
        sys.stderr.write(f"dockyard: killed at {point} ({KILL_AT})\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    if _wanted(PAUSE_AT, point, _reached[point]):
        sys.stderr.write(f"dockyard: paused at {point} ({PAUSE_AT})\n")
        sys.stderr.flush()
        _requested.wait(PAUSE_SECONDS)
