"""Sizes and durations as users write them ("15GiB", "300s") and as dockyard uses them."""

from __future__ import annotations

import math
import re

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(i?)([bB]?)\s*$")
_POWER = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_size(value: int | float | str) -> int:
    """Bytes from 1073741824, "1GiB", "1G" (binary, like Docker), "1GB" (decimal) or "512MiB"."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 512MiB or 16GiB, got a boolean")
    if not isinstance(value, int | float | str):  # a list or mapping in the manifest
        raise ValueError("expected a size such as 512MiB or 16GiB, got a list or mapping")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"expected a size such as 512MiB or 16GiB, got {value!r}")
        if value < 0:
            raise ValueError("a size cannot be negative")
        return int(value)
    match = _SIZE.match(value)
    if not match:
        raise ValueError(f"expected a size such as 512MiB or 16GiB, got {value!r}")
    number, unit, binary, byte = match.groups()
    # Docker reads "1g" as GiB; we follow it, and read an explicit "GB" as decimal.
    base = 1000 if (byte and not binary and unit) else 1024
    size = float(number) * base ** _POWER[unit.lower()]
    if not math.isfinite(size):
        raise ValueError(f"size {value!r} is too large")
    return int(size)


def parse_duration(value: int | float | str) -> float:
    """Seconds from 5, "5s", "1m30s", "250ms" or "2h"."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 5s or 2m, got a boolean")
    if not isinstance(value, int | float | str):  # a list or mapping in the manifest
        raise ValueError("expected a duration such as 5s or 2m, got a list or mapping")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"expected a duration such as 5s, 1m30s or 250ms, got {value!r}")
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    text = value.strip()
    if not text or _DURATION.sub("", text):
        raise ValueError(f"expected a duration such as 5s, 1m30s or 250ms, got {value!r}")
    seconds = sum(float(n) * _SECONDS[u] for n, u in _DURATION.findall(text))
    if not math.isfinite(seconds):
        raise ValueError(f"duration {value!r} is too long")
    return seconds


def format_size(n: int) -> str:
    """1610612736 -> "1.5GiB"; whole numbers lose their decimals."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            text = f"{n:.1f}".rstrip("0").rstrip(".") if unit != "B" else str(n)
            return f"{text}{unit}"
        n = n / 1024  # type: ignore[assignment]
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    """Compose-style duration: 5.0 -> "5s", 0.25 -> "250ms", 90 -> "1m30s"."""
    if seconds != 0 and round(seconds * 1000) < 1000:  # never "1000ms"
        return f"{round(seconds * 1000)}ms"
    whole = int(seconds)
    if whole != seconds:
        return f"{seconds:g}s"
    minutes, secs = divmod(whole, 60)
    if minutes and secs:
        return f"{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"
