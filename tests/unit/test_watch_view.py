"""The dashboard's view-model and the `--plain` lines: status and board rows in, text out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from agent_pool.board import TaskRecord, TaskStatus
from agent_pool.mail.message import MessageType, Priority
from agent_pool.watch.plain import format_event, shorten
from agent_pool.watch.view import (
    STATUS_FILTERS,
    EventFeed,
    dependency_lines,
    dependency_view,
    expert_rows,
    format_elapsed,
    header_text,
    needs_you,
    next_status_filter,
    task_rows,
)

NOON = datetime(2026, 11, 3, 12, 0, 5, tzinfo=UTC).timestamp()


def record(task_id: str, **changes: Any) -> TaskRecord:
    base = TaskRecord(
        id=task_id,
        sender="concierge",
        to="backend",
        type=MessageType.TASK,
        priority=Priority.NORMAL,
        seq=1,
        depends_on=(),
        contracts=(),
        body="Add a /health endpoint\n\nwith tests",
        status=TaskStatus.PENDING,
        attempts=0,
        created_at=NOON,
        ready_at=NOON,
        started_at=None,
        finished_at=None,
        exit_code=None,
        pid=None,
        pgid=None,
        proc_start_time=None,
        log_path=None,
        result=None,
        failure_reason=None,
        needs_attention=False,
        cascaded_from=None,
        cost_usd=0.0,
        input_tokens=0,
        output_tokens=0,
        num_turns=0,
        duration_ms=0,
        handoffs=0,
    )
    return replace(base, **changes)


STATUS: dict[str, Any] = {
    "pool": "demo",
    "pid": 4242,
    "state": "running",
    "experts": [
        {
            "name": "backend",
            "kind": "expert",
            "state": "busy",
            "queued": 2,
            "current_task": "t-1",
            "last_tool": "Bash",
            "running_s": 61.0,
            "cost_usd": 0.5,
        },
        {
            "name": "frontend",
            "kind": "expert",
            "state": "idle",
            "queued": 0,
            "current_task": None,
            "last_tool": None,
            "running_s": None,
            "cost_usd": 0.0,
        },
    ],
    "tasks": {"pending": 3, "active": 1, "failed": 1, "completed": 7},
    "needs_attention": [{"id": "t-9", "to": "backend", "status": "failed", "reason": "exit 1"}],
    "approvals": [],
    "dead_letters": 3,
    "dead_letter_recent": [{"file": "junk.md", "reason": "no front matter"}],
    "cost_usd": 1.25,
    "cost_today_usd": 0.75,
}


# -- plain lines ---------------------------------------------------------------------


def test_an_event_is_one_line_of_time_type_and_fields() -> None:
    event = {"seq": 7, "time": NOON, "type": "task.started", "id": "t-1", "to": "backend"}
    line = format_event(event, tz=UTC)
    assert line.startswith("12:00:05  task.started")
    assert line.endswith("id=t-1 to=backend")
    assert "seq" not in line


def test_long_and_nested_values_are_shortened_to_one_line() -> None:
    event = {
        "time": NOON,
        "type": "session.tool_call",
        "input": {"command": "x" * 500},
        "reason": "line one\nline two",
    }
    line = format_event(event, tz=UTC)
    assert "\n" not in line
    assert len(line) < 200
    assert "…" in line
    assert 'reason="line one line two"' in line


def test_a_missed_notice_says_how_many_events_were_lost() -> None:
    line = format_event({"type": "stream.missed", "missed": 12}, now=NOON, tz=UTC)
    assert line.startswith("12:00:05  stream.missed")
    assert "missed 12 events" in line
    assert "missed 1 event " in format_event({"type": "stream.missed", "missed": 1}, now=NOON)


@pytest.mark.parametrize(
    ("value", "shown"),
    [("plain", "plain"), ("", '""'), (None, "null"), (True, "true"), (3, "3"), (0.25, "0.25")],
)
def test_values_are_shown_compactly(value: object, shown: str) -> None:
    assert shorten(value) == shown


# -- header and experts ------------------------------------------------------------------


def test_the_header_shows_pool_state_pid_costs_and_counts() -> None:
    text = header_text(STATUS, stopped=False)
    for part in ("pool demo", "running", "pid 4242", "today $0.7500", "$1.2500", "pending 3"):
        assert part in text
    assert "blocked 0" in text


def test_a_stopped_daemon_is_said_clearly_and_an_old_daemon_lacks_only_today() -> None:
    assert "DAEMON STOPPED" in header_text(STATUS, stopped=True)
    assert "stopped" in header_text(None, stopped=True)
    older = {key: value for key, value in STATUS.items() if key != "cost_today_usd"}
    assert "today $?" in header_text(older, stopped=False)


def test_a_busy_expert_shows_its_task_tool_and_a_running_clock() -> None:
    busy, idle = expert_rows(STATUS, fetched_at=100.0, now=110.0)
    assert (busy.name, busy.state, busy.current_task, busy.last_tool) == (
        "backend",
        "busy",
        "t-1",
        "Bash",
    )
    assert busy.elapsed == "1m11s"  # 61 s at the read, 10 s since
    assert (idle.state, idle.current_task, idle.elapsed) == ("idle", "", "")


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, ""), (0, "0s"), (59.9, "59s"), (65, "1m05s"), (3720, "1h02m"), (183600, "2d03h")],
)
def test_elapsed_times_are_compact(seconds: float | None, shown: str) -> None:
    assert format_elapsed(seconds) == shown


# -- needs you ---------------------------------------------------------------------------


def test_needs_you_lists_failures_board_failures_and_dead_letters_with_reasons() -> None:
    board_failed = [
        record("t-9", status=TaskStatus.FAILED, failure_reason="exit 1"),
        record("t-8", status=TaskStatus.FAILED, failure_reason="dependency t-9 failed"),
    ]
    items = needs_you(STATUS, board_failed)
    assert [(item.kind, item.ref) for item in items] == [
        ("failed", "t-9"),
        ("failed", "t-8"),
        ("dead letter", "junk.md"),
        ("dead letter", ""),
    ]
    assert "no front matter" in items[2].line()
    assert "2 more dead letters" in items[3].text


def test_approvals_come_first_and_attention_is_told_from_failure() -> None:
    status = {
        "approvals": [{"id": "a-1", "summary": "architect plan: 4 tasks"}],
        "needs_attention": [{"id": "t-2", "to": "x", "status": "pending", "reason": None}],
        "dead_letters": 0,
    }
    items = needs_you(status)
    assert [(item.kind, item.ref) for item in items] == [("approval", "a-1"), ("attention", "t-2")]
    assert "architect plan" in items[0].text
    assert needs_you(None) == []


# -- tasks and dependencies ----------------------------------------------------------------


def test_task_rows_keep_order_and_filter_by_text_anywhere() -> None:
    tasks = [
        record("t-2", to="frontend", body="Style the page"),
        record("t-1", status=TaskStatus.FAILED, failure_reason="Timeout after 30m"),
    ]
    assert [row.id for row in task_rows(tasks)] == ["t-2", "t-1"]
    assert [row.id for row in task_rows(tasks, "FRONT")] == ["t-2"]
    assert [row.id for row in task_rows(tasks, "timeout")] == ["t-1"]
    assert [row.id for row in task_rows(tasks, "health")] == ["t-1"]
    assert task_rows(tasks, "nothing like it") == []
    row = task_rows(tasks, tz=UTC)[1]
    assert (row.status, row.summary, row.created) == (
        "failed",
        "Add a /health endpoint",
        "11-03 12:00:05",
    )


def test_the_status_filter_cycles_through_every_status_and_back_to_all() -> None:
    seen = [next_status_filter(None)]
    while seen[-1] is not None:
        seen.append(next_status_filter(seen[-1]))
    assert seen[:-1] == list(STATUS_FILTERS[1:])
    assert {status.value for status in TaskStatus} == set(STATUS_FILTERS[1:])


def test_the_dependency_view_shows_both_directions_with_statuses() -> None:
    task = record("t-2", status=TaskStatus.BLOCKED, depends_on=("t-1", "t-0", "t-gone"))
    candidates = [
        record("t-3", depends_on=("t-2",), status=TaskStatus.BLOCKED),
        record("t-4", depends_on=("t-1",)),
        task,
    ]
    view = dependency_view(task, {"t-1": "active", "t-0": "completed", "t-gone": None}, candidates)
    assert view.depends_on == (("t-1", "active"), ("t-0", "completed"), ("t-gone", "missing"))
    assert view.dependants == (("t-3", "blocked"),)
    lines = dependency_lines(view)
    assert lines[0] == "t-2 (blocked)"
    assert "  t-gone  missing" in lines
    assert lines[-1] == "  t-3  blocked"
    alone = dependency_lines(dependency_view(record("t-5"), {}, []))
    assert alone.count("  nothing") == 2


def test_the_event_feed_keeps_only_the_latest_lines() -> None:
    feed = EventFeed(limit=3, tz=UTC)
    for seq in range(5):
        feed.add({"seq": seq, "time": NOON, "type": "task.queued", "id": f"t-{seq}"})
    feed.note("-- the daemon stopped")
    assert len(feed.lines) == 3
    assert feed.lines[0].endswith("id=t-3")
    assert feed.lines[-1] == "-- the daemon stopped"
