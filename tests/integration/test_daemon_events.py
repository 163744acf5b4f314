"""The subscribe stream of a real daemon: typed events, in order, to the end."""

from __future__ import annotations

import json
import socket

from agent_pool.control import protocol
from tests.harness import EventCollector, Pool, wait_until


def _types_for(events: list[dict[str, object]], task_id: str) -> list[object]:
    return [event["type"] for event in events if event.get("id") == task_id]


def test_a_task_is_streamed_from_queued_to_completed_in_order(pool: Pool) -> None:
    pool.start()
    stream = EventCollector(pool)
    try:
        task = pool.post("backend", "do it\nfake: cost 0.25")
        stream.wait_for(lambda e: e["type"] == "task.completed" and e["id"] == task)
        stream.wait_for(lambda e: e["type"] == "cost.updated" and e["id"] == task)
        types = _types_for(stream.events, task)
        assert types[:3] == ["mail.queued", "task.queued", "task.started"]
        assert types.index("task.completed") < types.index("cost.updated")
        assert "session.result" in types
        cost = stream.of_type("cost.updated")[0]
        assert cost["cost_usd"] == 0.25
        assert cost["to"] == "backend"
        assert cost["pool_cost_usd"] >= 0.25
        seqs = [event["seq"] for event in stream.events]
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == len(seqs)
        assert seqs[0] > stream.hello["seq"]
    finally:
        stream.close()


def test_blocked_and_unblocked_tasks_are_announced(pool: Pool) -> None:
    pool.start()
    stream = EventCollector(pool)
    try:
        first = pool.post("backend", "first\nfake: sleep 0.3")
        second = pool.post("frontend", "second", depends_on=(first,))
        blocked = stream.wait_for(lambda e: e["type"] == "task.blocked" and e["id"] == second)
        assert blocked["waits_on"] in ({first: "pending"}, {first: "active"})
        unblocked = stream.wait_for(lambda e: e["type"] == "task.unblocked" and e["id"] == second)
        assert unblocked["cause"] == first
        stream.wait_for(lambda e: e["type"] == "task.completed" and e["id"] == second)
    finally:
        stream.close()


def test_failure_retry_and_dead_letters_are_announced(pool: Pool) -> None:
    pool.configure('[defaults]\nmax_attempts = 2\nretry_backoff = "0s"\n')
    pool.start()
    stream = EventCollector(pool)
    try:
        task = pool.post("backend", "fail\nfake: exit 3")
        retry = stream.wait_for(lambda e: e["type"] == "task.retry" and e["id"] == task)
        assert retry["attempt"] == 1
        failed = stream.wait_for(lambda e: e["type"] == "task.failed" and e["id"] == task)
        assert failed["needs_attention"] is True
        (pool.layout.postoffice / "junk.md").write_text("no front matter", encoding="utf-8")
        dead = stream.wait_for(lambda e: e["type"] == "mail.dead_letter", timeout=10)
        assert dead["file"] == "junk.md"
        assert dead["reason"]
    finally:
        stream.close()


def test_the_stream_ends_with_draining_and_stopped_when_the_daemon_stops(pool: Pool) -> None:
    pool.start()
    stream = EventCollector(pool)
    pool.stop()
    assert stream.ended.wait(10)
    types = [event["type"] for event in stream.events]
    assert types[-2:] == ["daemon.draining", "daemon.stopped"]
    stream.close()


def test_since_replays_what_a_reconnecting_subscriber_missed(pool: Pool) -> None:
    pool.start()
    first = EventCollector(pool)
    task = pool.post("backend", "hello")
    done = first.wait_for(lambda e: e["type"] == "task.completed" and e["id"] == task)
    first.close()
    again = EventCollector(pool, since=done["seq"] - 1)
    try:
        replayed = again.wait_for(lambda e: e.get("seq") == done["seq"])
        assert replayed["type"] == "task.completed"
        assert not [event for event in again.events if event.get("seq", 0) < done["seq"]]
    finally:
        again.close()


def test_a_bad_since_is_one_clear_error(pool: Pool) -> None:
    pool.start()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(pool.layout.socket_path))
        sock.sendall(protocol.encode({"op": "subscribe", "since": "yesterday"}))
        answer = json.loads(sock.makefile("rb").readline())
    assert answer == {
        "ok": False,
        "error": "subscribe: 'since' must be an event sequence number (integer)",
        "code": 2,
    }


def test_a_subscriber_that_hangs_up_is_forgotten_and_the_daemon_goes_on(pool: Pool) -> None:
    pool.start()
    for _ in range(5):
        stream = EventCollector(pool)
        stream.close()
    task = pool.post("backend", "still fine")
    pool.wait_status(task, "completed")
    wait_until(lambda: pool.status()["state"] == "running", 5, "status to answer")


def test_cancel_and_retry_refuse_an_invalid_id_with_one_clear_error(pool: Pool) -> None:
    pool.start()
    for op in ("cancel", "retry"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(pool.layout.socket_path))
            sock.sendall(protocol.encode({"op": op, "id": "../../etc/passwd"}))
            answer = json.loads(sock.makefile("rb").readline())
        assert answer["ok"] is False
        assert answer["code"] == 2
        assert answer["error"].startswith("invalid task id '../../etc/passwd'")
    assert pool.status()["state"] == "running"
