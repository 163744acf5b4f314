"""Duration and byte-size parsing: the forms people write, and the mistakes they make."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agent_pool.config.units import (
    describe_value,
    format_duration,
    parse_byte_size,
    parse_duration,
    parse_timeout,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, timedelta(0)),
        (45, timedelta(seconds=45)),
        (1.5, timedelta(seconds=1.5)),
        ("45", timedelta(seconds=45)),
        ("0", timedelta(0)),
        ("45s", timedelta(seconds=45)),
        ("10m", timedelta(minutes=10)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("500ms", timedelta(milliseconds=500)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("1.1h", timedelta(seconds=3960)),
        ("1d2h3m4s5ms", timedelta(days=1, hours=2, minutes=3, seconds=4, milliseconds=5)),
        (" 10m ", timedelta(minutes=10)),
        (timedelta(seconds=3), timedelta(seconds=3)),
    ],
)
def test_parse_duration_accepts(value: object, expected: timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("10x", "use a number of seconds or forms like 45s, 10m, 1h30m, 2d"),
        ("10 minutes", "use a number of seconds"),
        ("", "empty"),
        ("   ", "empty"),
        ("m", "use a number of seconds"),
        ("30m1h", "use a number of seconds"),
        ("1h1h", "use a number of seconds"),
        ("-5s", "must not be negative"),
        (-5, "must not be negative"),
        (-0.5, "must not be negative"),
        (float("inf"), "finite"),
        (float("nan"), "finite"),
        (True, "got boolean true"),
        (False, "got boolean false"),
        ([10], "got an array"),
        ({"s": 1}, "got a table"),
        (None, "expected a duration"),
        ("99999999999999d", "too large"),
        (10**20, "too large"),
        (timedelta(seconds=-1), "must not be negative"),
    ],
)
def test_parse_duration_rejects(value: object, fragment: str) -> None:
    with pytest.raises(ValueError, match="duration") as caught:
        parse_duration(value)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("none", None),
        ("None", None),
        (0, None),
        ("0", None),
        ("0s", None),
        ("30m", timedelta(minutes=30)),
        (90, timedelta(seconds=90)),
    ],
)
def test_parse_timeout(value: object, expected: timedelta | None) -> None:
    assert parse_timeout(value) == expected


def test_parse_timeout_still_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="invalid duration 'never'"):
        parse_timeout("never")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (512, 512),
        ("512", 512),
        ("512B", 512),
        ("16KiB", 16 * 1024),
        ("16KB", 16_000),
        ("16kb", 16_000),
        ("16 KiB", 16 * 1024),
        ("10MiB", 10 * 1024 * 1024),
        ("10MB", 10_000_000),
        ("1GiB", 1024**3),
        ("1GB", 10**9),
        ("2TiB", 2 * 1024**4),
        ("1.5KiB", 1536),
        ("0.5MB", 500_000),
    ],
)
def test_parse_byte_size_accepts(value: object, expected: int) -> None:
    assert parse_byte_size(value) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("16XB", "forms like 512B, 16KiB"),
        ("16k", "forms like 512B, 16KiB"),
        ("KiB", "forms like 512B, 16KiB"),
        ("", "forms like 512B, 16KiB"),
        ("-1", "must not be negative"),
        (-1, "must not be negative"),
        ("1.5B", "not a whole number of bytes"),
        (True, "got boolean true"),
        (1.5, "got float 1.5"),
        (["1"], "got an array"),
    ],
)
def test_parse_byte_size_rejects(value: object, fragment: str) -> None:
    with pytest.raises(ValueError, match="byte size") as caught:
        parse_byte_size(value)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(0), "0s"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(days=2, seconds=5), "2d5s"),
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(seconds=-45), "-45s"),
    ],
)
def test_format_duration(value: timedelta, expected: str) -> None:
    assert format_duration(value) == expected


@pytest.mark.parametrize("text", ["0s", "45s", "10m", "1h30m", "2d", "500ms", "1d2h3m4s5ms"])
def test_format_duration_round_trips(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


def test_describe_value_truncates_long_strings() -> None:
    shown = describe_value("x" * 500)
    assert shown.startswith("string 'xxx")
    assert len(shown) < 60


def test_an_integer_duration_beyond_any_float_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="too large"):
        parse_duration(10**400)
