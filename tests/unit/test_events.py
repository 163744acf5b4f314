"""The event log: numbering, the catalog, replay and bounded subscriber buffers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from agent_pool.daemon.events import MISSED, EventLog, Subscription


def _log(tmp_path: Path) -> EventLog:
    return EventLog(tmp_path / "daemon.log", max_bytes=1 << 20)


async def _drain(subscription: Subscription) -> list[dict[str, object]]:
    """Everything the subscription holds right now (it must be closed first)."""
    lines: list[dict[str, object]] = []
    async for chunk in subscription.batches():
        lines += [json.loads(line) for line in chunk.splitlines()]
    return lines


def test_events_are_numbered_in_order_and_logged_as_json_lines(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.emit("task.queued", 1.0, id="a", to="x", priority="normal")
    log.emit("task.started", 2.0, id="a", to="x", attempt=1)
    log.close()
    records = [json.loads(line) for line in (tmp_path / "daemon.log").read_text().splitlines()]
    assert [(r["seq"], r["type"], r["id"]) for r in records] == [
        (1, "task.queued", "a"),
        (2, "task.started", "a"),
    ]


def test_a_type_missing_from_the_catalog_is_refused(tmp_path: Path) -> None:
    log = _log(tmp_path)
    with pytest.raises(ValueError, match="not in the catalog"):
        log.emit("task.exploded", 1.0)
    assert log.last_seq == 0
    log.close()


def test_data_cannot_overwrite_the_fixed_fields(tmp_path: Path) -> None:
    log = _log(tmp_path)
    subscription = log.subscribe()
    log.emit("daemon.error", 1.0, seq=99, type="forged", error="e")
    log.end_streams()
    (event,) = asyncio.run(_drain(subscription))
    assert event["seq"] == 1
    assert event["type"] == "daemon.error"
    log.close()


def test_a_subscriber_gets_every_event_after_it_subscribed_in_order(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.emit("task.queued", 1.0, id="before", to="x", priority="normal")
    subscription = log.subscribe()
    for number in range(50):
        log.emit("task.queued", 2.0, id=f"t{number}", to="x", priority="normal")
    log.end_streams()
    events = asyncio.run(_drain(subscription))
    assert [event["id"] for event in events] == [f"t{number}" for number in range(50)]
    assert [event["seq"] for event in events] == list(range(2, 52))
    log.close()


def test_a_slow_subscriber_is_told_how_many_events_it_missed(tmp_path: Path) -> None:
    log = _log(tmp_path)
    subscription = log.subscribe(capacity=10)
    for number in range(25):
        log.emit("task.queued", 1.0, id=f"t{number}", to="x", priority="normal")
    log.emit("task.started", 2.0, id="last", to="x", attempt=1)  # dropped too: still full
    log.end_streams()
    events = asyncio.run(_drain(subscription))
    assert [event.get("id") for event in events[:10]] == [f"t{number}" for number in range(10)]
    assert events[10] == {"type": MISSED, "missed": 16}
    assert len(events) == 11
    log.close()


def test_after_a_gap_the_notice_comes_before_the_next_delivered_event(tmp_path: Path) -> None:
    log = _log(tmp_path)
    subscription = log.subscribe(capacity=3)

    async def scenario() -> list[dict[str, object]]:
        batches = subscription.batches()
        for number in range(5):  # 3 kept, 2 dropped
            log.emit("task.queued", 1.0, id=f"t{number}", to="x", priority="normal")
        first = await anext(batches)
        log.emit("task.started", 2.0, id="next", to="x", attempt=1)
        second = await anext(batches)
        return [json.loads(line) for line in (first + second).splitlines()]

    events = asyncio.run(scenario())
    assert [event.get("id") for event in events] == ["t0", "t1", "t2", None, "next"]
    assert events[3] == {"type": MISSED, "missed": 2}
    log.close()


def test_since_replays_recent_events_and_counts_what_is_no_longer_held(tmp_path: Path) -> None:
    log = _log(tmp_path)
    for number in range(5):
        log.emit("task.queued", 1.0, id=f"t{number}", to="x", priority="normal")
    replay = log.subscribe(since=3)
    log.end_streams()
    assert [event["seq"] for event in asyncio.run(_drain(replay))] == [4, 5]
    log.close()


def test_since_older_than_the_ring_reports_the_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("agent_pool.daemon.events.RECENT_EVENTS", 3)
    log = _log(tmp_path)
    for number in range(10):
        log.emit("task.queued", 1.0, id=f"t{number}", to="x", priority="normal")
    replay = log.subscribe(since=2)
    log.end_streams()
    events = asyncio.run(_drain(replay))
    assert events[0] == {"type": MISSED, "missed": 5}  # seq 3..7 are gone
    assert [event["seq"] for event in events[1:]] == [8, 9, 10]
    log.close()


def test_an_unsubscribed_stream_receives_nothing_more(tmp_path: Path) -> None:
    log = _log(tmp_path)
    subscription = log.subscribe()
    log.emit("task.queued", 1.0, id="a", to="x", priority="normal")
    log.unsubscribe(subscription)
    log.emit("task.queued", 1.0, id="b", to="x", priority="normal")
    assert [event["id"] for event in asyncio.run(_drain(subscription))] == ["a"]
    log.close()


def test_the_log_rotates_past_its_size_and_keeps_three_old_files(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "daemon.log", max_bytes=400)
    for number in range(60):
        log.emit("task.queued", 1.0, id=f"t{number:02d}", to="x", priority="normal")
    log.close()
    files = sorted(path.name for path in tmp_path.iterdir())
    assert files == ["daemon.log", "daemon.log.1", "daemon.log.2", "daemon.log.3"]
    for path in tmp_path.iterdir():
        assert path.stat().st_size <= 400
        lines = path.read_text().splitlines()
        assert all(json.loads(line)["type"] == "task.queued" for line in lines)
    newest = [json.loads(line)["id"] for line in (tmp_path / "daemon.log").read_text().splitlines()]
    assert newest[-1] == "t59"
    older = [
        json.loads(line)["seq"] for line in (tmp_path / "daemon.log.1").read_text().splitlines()
    ]
    assert older[-1] + 1 == json.loads((tmp_path / "daemon.log").read_text().splitlines()[0])["seq"]


def test_a_reloaded_size_limit_applies_to_the_next_write(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "daemon.log", max_bytes=1 << 20)
    log.emit("task.queued", 1.0, id="a", to="x", priority="normal")
    log.set_max_bytes(10)
    log.emit("task.queued", 1.0, id="b", to="x", priority="normal")
    log.close()
    assert json.loads((tmp_path / "daemon.log.1").read_text())["id"] == "a"
    assert json.loads((tmp_path / "daemon.log").read_text())["id"] == "b"
