"""Message ids: readable, valid, unique and in creation order."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta, timezone

from agent_pool.mail import IdGenerator, new_message_id
from agent_pool.names import is_valid_message_id

ID_SHAPE = re.compile(r"\d{8}-\d{6}-\d{6}-[0-9a-f]{6}")
NOW = datetime(2026, 11, 24, 10, 15, 0, 123456, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def fixed_suffix() -> str:
    return "3fa9c1"


def test_id_format() -> None:
    ids = IdGenerator(clock=Clock(NOW), suffix=fixed_suffix)
    assert ids.next_id() == "20261124-101500-123456-3fa9c1"


def test_default_ids_are_valid_message_ids() -> None:
    value = new_message_id()
    assert ID_SHAPE.fullmatch(value)
    assert is_valid_message_id(value)


def test_stalled_clock_bumps_microseconds() -> None:
    ids = IdGenerator(clock=Clock(NOW), suffix=fixed_suffix)
    stamps = [ids.next_id().rsplit("-", 1)[0] for _ in range(3)]
    assert stamps == ["20261124-101500-123456", "20261124-101500-123457", "20261124-101500-123458"]


def test_backward_clock_keeps_order() -> None:
    clock = Clock(NOW)
    ids = IdGenerator(clock=clock)
    first = ids.next_id()
    clock.now = NOW - timedelta(hours=1)
    second = ids.next_id()
    assert second > first
    assert second.startswith("20261124-101500-123457-")


def test_bump_carries_into_the_next_second() -> None:
    ids = IdGenerator(clock=Clock(NOW.replace(microsecond=999999)), suffix=fixed_suffix)
    ids.next_id()
    assert ids.next_id() == "20261124-101501-000000-3fa9c1"


def test_naive_and_offset_times_are_utc() -> None:
    ids = IdGenerator(suffix=fixed_suffix)
    assert ids.next_id(datetime(2026, 1, 2, 3, 4, 5)).startswith("20260102-030405-000000")
    plus_two = datetime(2026, 1, 2, 5, 4, 6, tzinfo=timezone(timedelta(hours=2)))
    assert ids.next_id(plus_two).startswith("20260102-030406-000000")


def test_order_is_creation_order() -> None:
    values = [new_message_id() for _ in range(5000)]
    assert values == sorted(values)
    assert len(set(values)) == len(values)


def test_threads_never_share_an_id() -> None:
    ids = IdGenerator(clock=Clock(NOW))  # a stalled clock forces every id through the bump
    results: list[list[str]] = [[] for _ in range(8)]

    def work(out: list[str]) -> None:
        out.extend(ids.next_id() for _ in range(500))

    threads = [threading.Thread(target=work, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps = {value.rsplit("-", 1)[0] for out in results for value in out}
    assert len(stamps) == 8 * 500
    for out in results:
        assert out == sorted(out)


def test_random_suffix_differs_between_generators() -> None:
    # Two processes with the same clock reading still produce different ids.
    first = IdGenerator(clock=Clock(NOW)).next_id()
    second = IdGenerator(clock=Clock(NOW)).next_id()
    assert first[:22] == second[:22]
    suffixes = {IdGenerator(clock=Clock(NOW)).next_id()[-6:] for _ in range(50)}
    assert len(suffixes) > 40
