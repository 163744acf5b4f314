"""Checks shared by the fault-injection tests: what a run left behind, what was said."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent_pool.board import TaskRecord
from agent_pool.mail import parse_mail
from tests.harness import (
    EventCollector,
    Pool,
    assert_groups_empty,
    wait_until,
    zombie_children,
)

# Quick retries, so a test sees the whole policy (two attempts) in well under a second.
TWO_TRIES = '[defaults]\nretry_backoff = "100ms"\nmax_attempts = 2\n'


def run_groups(pool: Pool, task_id: str) -> set[int]:
    """The process group of every run of `task_id`, as the fake claude recorded it."""
    return {
        int(run["pgid"])
        for run in pool.invocations()
        if (run.get("env") or {}).get("AGENT_POOL_TASK_ID") == task_id
    }


def assert_nothing_left(pool: Pool, task_id: str) -> None:
    """No process of any run of the task is left, not even a zombie; the daemon (if it
    runs) has reaped every child."""
    groups = run_groups(pool, task_id)
    assert groups, f"no recorded run of {task_id}"
    assert_groups_empty(groups)
    if pool.daemon is not None and pool.daemon.poll() is None:
        assert zombie_children(pool.daemon.pid) == []


def daemon_events(pool: Pool) -> list[dict[str, Any]]:
    """Every event in the daemon log (and its rotated files), oldest first."""
    logs = sorted(pool.layout.runtime_dir.glob("daemon.log*"), reverse=True)
    events = []
    for log in logs:
        text = log.read_text(encoding="utf-8")
        complete = text[: text.rfind("\n") + 1]  # the daemon may be writing the last line
        events += [json.loads(line) for line in complete.splitlines() if line.strip()]
    return events


def events_of(pool: Pool, task_id: str, type_: str) -> list[dict[str, Any]]:
    return [e for e in daemon_events(pool) if e.get("type") == type_ and e.get("id") == task_id]


def wait_event(pool: Pool, task_id: str, type_: str, timeout: float = 20.0) -> dict[str, Any]:
    found = wait_until(lambda: events_of(pool, task_id, type_), timeout, f"{type_} of {task_id}")
    return found[-1]


def answers_to(pool: Pool, task_id: str, recipient: str = "concierge") -> list[str]:
    """Bodies of the response mail `recipient` got for `task_id` (inbox, read or not)."""
    inbox: Path = pool.layout.inbox(recipient)
    bodies = []
    for path in inbox.rglob("*.md"):
        message = parse_mail(path.read_bytes())
        if message.in_reply_to == task_id:
            bodies.append(message.body)
    return bodies


def daemon_alive(pool: Pool) -> None:
    """Fail at once, with its last words, if the daemon process has exited."""
    daemon = pool.daemon
    assert daemon is not None, "no daemon was started"
    code = daemon.poll()
    if code is not None:
        tail = pool.output[-1].read_text(encoding="utf-8", errors="replace")[-1500:]
        raise AssertionError(f"the daemon exited with code {code}; its output ends:\n{tail}")


def wait_for_event_naming(
    pool: Pool, collector: EventCollector, *needles: str, timeout: float = 20.0
) -> dict[str, Any]:
    """The first event whose text names any of `needles`; fails fast if the daemon dies.

    The event must keep its message to one line.
    """

    def found() -> dict[str, Any] | None:
        daemon_alive(pool)
        for event in list(collector.events):
            text = json.dumps(event)
            if any(needle in text for needle in needles):
                return event
        return None

    event = wait_until(found, timeout, f"an event naming one of {needles}")
    lines = [value for value in event.values() if isinstance(value, str) and "\n" in value]
    assert not lines, f"the error must be one line: {event}"
    return event


@contextlib.contextmanager
def collecting(pool: Pool) -> Iterator[EventCollector]:
    """Live events of the running daemon (in memory: they arrive even when the daemon
    log cannot be written), with the stream closed completely afterwards."""
    collector = EventCollector(pool)
    try:
        yield collector
    finally:
        collector.close()
        # EventStream.close (control/client.py) leaves its makefile open; the socket is
        # then finalised unclosed later, in whichever test happens to run (a warning).
        collector._stream._file.close()


def wait_status_alive(
    pool: Pool, task_id: str, *statuses: str, timeout: float = 30.0
) -> TaskRecord:
    """`pool.wait_status`, but failing at once (with its last words) if the daemon dies."""

    def reached() -> TaskRecord | None:
        daemon_alive(pool)
        record = pool.task(task_id)
        return record if record is not None and record.status in statuses else None

    return wait_until(reached, timeout, f"{task_id} to be {'/'.join(statuses)}")
