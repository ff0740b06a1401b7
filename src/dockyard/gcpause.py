"""`gc_paused`: the cyclic garbage collector off while a pure pass builds a large structure.

Loading, checking, planning and rendering a manifest make hundreds of thousands of small
objects and free almost none of them until the pass ends; the collector would walk them again
at every generation threshold (a third of the time for 10,000 services, benchmarks/scale.py).
Reference counting still frees everything that is not a cycle. Nested uses leave the collector
as the outermost one found it."""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def gc_paused(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def paused(*args: P.args, **kwargs: P.kwargs) -> R:
        collecting = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if collecting:
                gc.enable()

    return paused
