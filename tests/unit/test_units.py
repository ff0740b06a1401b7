"""Sizes and durations as users write them, and back."""

from __future__ import annotations

import math

import pytest

from dockyard.units import format_duration, format_size, parse_duration, parse_size

KiB, MiB, GiB, TiB = 2**10, 2**20, 2**30, 2**40


@pytest.mark.parametrize(("written", "size"), [
    # binary, written out or Docker-style single letters (Docker reads "1g" as GiB)
    ("1KiB", KiB), ("512MiB", 512 * MiB), ("16GiB", 16 * GiB), ("2TiB", 2 * TiB),
    ("1k", KiB), ("1K", KiB), ("256m", 256 * MiB), ("1g", GiB), ("1G", GiB), ("1Gi", GiB),
    ("1.5GiB", GiB + GiB // 2), ("0.5KiB", 512),
    # decimal, when spelled with a B
    ("1KB", 1000), ("1kB", 1000), ("500MB", 500 * 10**6), ("2GB", 2 * 10**9),
    ("1TB", 10**12), ("1.5GB", 1_500_000_000),
    # plain numbers are bytes
    ("100", 100), ("100B", 100), (" 4 GiB ", 4 * GiB), (1073741824, GiB), (0, 0),
    (1.9, 1), ("0", 0),
])
def test_parse_size(written: int | float | str, size: int) -> None:
    assert parse_size(written) == size
    assert isinstance(parse_size(written), int)


@pytest.mark.parametrize(("written", "fragment"), [
    ("15 gigs", "expected a size such as 512MiB or 16GiB, got '15 gigs'"),
    ("", "expected a size"),
    ("GiB", "expected a size"),
    ("1XB", "expected a size"),
    ("1PiB", "expected a size"),
    ("-1GiB", "expected a size"),
    ("1,5GiB", "expected a size"),
    (-5, "cannot be negative"),
    (True, "got a boolean"),
    (math.inf, "expected a size"),
    (math.nan, "expected a size"),
    ("9" * 400 + "TiB", "too large"),
])
def test_parse_size_errors(written: int | float | str, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_size(written)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(("written", "seconds"), [
    ("5s", 5.0), ("1m30s", 90.0), ("250ms", 0.25), ("2h", 7200.0), ("1h2m3s", 3723.0),
    ("1.5s", 1.5), ("2m", 120.0), ("0s", 0.0), (" 10s ", 10.0), ("1s500ms", 1.5),
    (5, 5.0), (0.5, 0.5), (0, 0.0),
])
def test_parse_duration(written: int | float | str, seconds: float) -> None:
    assert parse_duration(written) == pytest.approx(seconds)
    assert isinstance(parse_duration(written), float)


@pytest.mark.parametrize(("written", "fragment"), [
    ("soon", "expected a duration such as 5s, 1m30s or 250ms, got 'soon'"),
    ("", "expected a duration"),
    ("  ", "expected a duration"),
    ("5", "expected a duration"),
    ("5 s", "expected a duration"),
    ("1m 30s", "expected a duration"),
    ("-5s", "expected a duration"),
    ("5d", "expected a duration"),
    ("1h30", "expected a duration"),
    (-1, "cannot be negative"),
    (False, "got a boolean"),
    (math.inf, "expected a duration"),
    (math.nan, "expected a duration"),
    ("9" * 400 + "h", "too long"),
])
def test_parse_duration_errors(written: int | float | str, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(written)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(("size", "text"), [
    (0, "0B"), (1, "1B"), (1023, "1023B"), (KiB, "1KiB"), (1536, "1.5KiB"),
    (512 * MiB, "512MiB"), (GiB, "1GiB"), (GiB + GiB // 2, "1.5GiB"), (16 * GiB, "16GiB"),
    (TiB, "1TiB"), (2048 * TiB, "2048TiB"),
])
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


@pytest.mark.parametrize("size", [0, 100, KiB, 1536, 256 * MiB, 3 * GiB, GiB + GiB // 2, TiB])
def test_format_size_round_trips(size: int) -> None:
    assert parse_size(format_size(size)) == size


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (0.25, "250ms"), (0.001, "1ms"), (0.999, "999ms"), (1, "1s"), (5.0, "5s"),
    (1.5, "1.5s"), (59, "59s"), (60, "1m"), (90, "1m30s"), (120.0, "2m"), (3600, "60m"),
])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_duration_never_writes_a_thousand_milliseconds() -> None:
    assert format_duration(0.9996) != "1000ms"
    assert parse_duration(format_duration(0.9996)) == pytest.approx(0.9996)


@pytest.mark.parametrize("seconds", [0, 0.25, 1, 1.5, 5, 60, 90, 3723])
def test_format_duration_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)
