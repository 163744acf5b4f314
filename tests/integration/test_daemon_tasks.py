"""Tasks through a running daemon: completion, DAG order, priorities, cap, retries, cancel."""

from __future__ import annotations

import itertools
import json

import pytest

from agent_pool.board import TaskStatus
from tests.harness import Pool, assert_groups_empty, wait_until

FAST_RETRY = '[defaults]\nretry_backoff = "100ms"\nmax_attempts = 2\n'


def test_a_task_completes_with_the_session_result_recorded(pool: Pool) -> None:
    pool.start()
    task_id = pool.submit("backend", "Add a health endpoint\nfake: text all done\nfake: cost 0.25")
    record = pool.wait_status(task_id, "completed")
    assert record.result == "all done"
    assert record.cost_usd == 0.25
    assert record.attempts == 1
    assert record.exit_code == 0
    [run] = pool.invocations()
    assert run["cwd"] == str(pool.cli.cwd)
    assert run["env"]["AGENT_POOL_TASK_ID"] == task_id
    assert run["env"]["AGENT_POOL_EXPERT"] == "backend"
    assert run["env"]["AGENT_POOL_ROLE"] == "expert"
    assert run["env"]["AGENT_POOL_DIR"] == str(pool.layout.root)
    assert "Add a health endpoint" in run["stdin"]
    argv = run["argv"]
    assert argv[1:6] == ["-p", "--output-format", "stream-json", "--verbose", "--model"]
    log = pool.layout.root / "experts" / "backend" / "logs" / f"{task_id}.jsonl"
    assert '"type": "result"' in log.read_text() or '"type":"result"' in log.read_text()
    # The board records the end first; the done mail moves to read/ right after.
    done_mail = pool.layout.root / "experts" / "backend" / "inbox" / "read" / f"{task_id}.md"
    wait_until(done_mail.is_file, 10, "the task mail to move to inbox/read/")

    shown = pool.cli.run("task", "show", task_id, "--json")
    data = json.loads(shown.out)
    assert data["id"] == task_id
    assert data["status"] == "completed"
    assert data["from"] == "concierge"
    assert data["to"] == "backend"
    assert data["result"] == "all done"
    assert data["started_at"]
    assert data["finished_at"]
    listed = json.loads(pool.cli.run("tasks", "--json").out)
    assert [task["id"] for task in listed] == [task_id]
    status = pool.status()
    assert status["cost_usd"] == 0.25
    agents = {agent["name"]: agent for agent in status["experts"]}
    assert agents["backend"]["cost_usd"] == 0.25
    assert agents["frontend"]["cost_usd"] == 0.0


def test_dependencies_run_in_order_even_when_the_dependant_arrives_first(pool: Pool) -> None:
    pool.start()
    later = pool.submit("frontend", "Use the endpoint", "--depends-on", "dep-a")
    blocked = pool.wait_status(later, "blocked")
    assert blocked.status is TaskStatus.BLOCKED
    shown = json.loads(pool.cli.run("task", "show", later, "--json").out)
    assert shown["waits_on"] == {"dep-a": "missing"}
    assert pool.status()["blocked"][0]["waits_on"] == {"dep-a": "missing"}

    pool.submit("backend", "Build the endpoint\nfake: sleep 0.3", "--id", "dep-a")
    first = pool.wait_status("dep-a", "completed")
    second = pool.wait_status(later, "completed")
    assert first.finished_at is not None
    assert second.started_at is not None
    assert second.started_at >= first.finished_at


def test_priority_order_within_one_expert_and_the_concurrency_cap(pool: Pool) -> None:
    pool.configure("[defaults]\nmax_concurrent = 1\n")
    pool.start()
    blocker = pool.post("backend", "fake: sleep 2")
    pool.wait_status(blocker, "active")
    ids = {
        level: pool.post("backend", f"{level} work", priority=level)
        for level in ("low", "normal", "urgent", "high")
    }
    other = pool.post("frontend", "elsewhere")
    for task_id in [*ids.values(), other]:
        pool.wait_status(task_id, "pending")
    assert pool.task(blocker).status is TaskStatus.ACTIVE  # type: ignore[union-attr]
    for task_id in [*ids.values(), other]:
        pool.wait_status(task_id, "completed")
    records = {level: pool.task(task_id) for level, task_id in ids.items()}
    order = sorted(records, key=lambda level: records[level].started_at or 0)  # type: ignore[union-attr]
    assert order.index("urgent") < order.index("high") < order.index("normal") < order.index("low")
    # One session at a time pool-wide: no two runs overlap.
    spans = sorted(
        (record.started_at, record.finished_at)
        for record in (pool.task(task_id) for task_id in [blocker, *ids.values(), other])
        if record is not None and record.started_at and record.finished_at
    )
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end


@pytest.mark.faults
def test_failures_retry_then_fail_with_attention_and_cascade(pool: Pool) -> None:
    pool.configure(FAST_RETRY)
    pool.start()
    broken = pool.submit("backend", "fake: exit 3")
    dependant = pool.submit("frontend", "after it", "--depends-on", broken)
    failed = pool.wait_status(broken, "failed")
    assert failed.attempts == 2
    assert failed.needs_attention
    assert failed.failure_reason == "exited with code 3"
    assert pool.runs_of(broken) == 2
    cascaded = pool.wait_status(dependant, "failed")
    assert cascaded.cascaded_from == broken
    assert pool.runs_of(dependant) == 0
    attention = pool.status()["needs_attention"]
    assert [item["id"] for item in attention] == [broken]

    retried = pool.cli.run("retry", broken)
    assert retried.code == 0, retried.err
    pool.wait_status(broken, "failed")
    assert pool.runs_of(broken) == 4


@pytest.mark.faults
def test_untruthful_sessions_are_never_completed(pool: Pool) -> None:
    pool.configure(FAST_RETRY)
    pool.start()
    cases = {
        "fake: no-result": "no result event",
        "fake: error": "API error",
        "fake: max-turns": "max turns",
        "fake: deny Write": "tool denied: Write",
    }
    ids = {pool.submit("backend", body): reason for body, reason in cases.items()}
    for task_id, reason in ids.items():
        record = pool.wait_status(task_id, "failed")
        assert record.failure_reason is not None
        assert reason in record.failure_reason
        assert record.attempts == 2
        assert pool.runs_of(task_id) == 2
        assert record.status is TaskStatus.FAILED


@pytest.mark.faults
def test_a_session_timeout_stops_the_whole_process_group(pool: Pool) -> None:
    pool.configure('[defaults]\nsession_timeout = "500ms"\nmax_attempts = 1\n')
    pool.start()
    task_id = pool.submit("backend", "fake: child\nfake: hang")
    record = pool.wait_status(task_id, "failed")
    assert record.failure_reason is not None
    assert "timed out" in record.failure_reason
    wait_until(lambda: not pool.session_processes(), 10, "the session group to be gone")
    assert_groups_empty(_groups_of(pool, task_id))


@pytest.mark.faults
def test_cancel_a_running_task_leaves_no_process_and_cascades(pool: Pool) -> None:
    pool.start()
    running = pool.submit("backend", "fake: child\nfake: ignore-sigterm\nfake: hang")
    dependant = pool.submit("frontend", "later", "--depends-on", running)
    pool.wait_status(running, "active")
    wait_until(lambda: len(pool.session_processes()) >= 2, 10, "the session and its child")
    result = pool.cli.run("cancel", running)
    assert result.code == 0, result.err
    assert dependant in result.out
    assert pool.wait_status(running, "cancelled").status is TaskStatus.CANCELLED
    assert pool.wait_status(dependant, "cancelled").cascaded_from == running
    wait_until(lambda: not pool.session_processes(), 10, "no session process left")
    assert_groups_empty(_groups_of(pool, running))


def test_cancel_of_queued_work_and_of_unknown_or_finished_tasks(pool: Pool) -> None:
    pool.configure("[defaults]\nmax_concurrent = 1\n")
    pool.start()
    # The blocker holds the only slot until it is cancelled, however slow the machine.
    blocker = pool.submit("backend", "fake: sleep 60")
    queued = pool.submit("backend", "never runs")
    pool.wait_status(blocker, "active")
    assert pool.cli.run("cancel", queued).code == 0
    assert pool.wait_status(queued, "cancelled").attempts == 0
    assert pool.cli.run("cancel", blocker).code == 0
    pool.wait_status(blocker, "cancelled")
    quick = pool.submit("backend", "fake: text done")
    pool.wait_status(quick, "completed")
    assert pool.runs_of(queued) == 0
    unknown = pool.cli.run("cancel", "no-such-task")
    assert unknown.code == 1
    assert "'no-such-task'" in unknown.err
    finished = pool.cli.run("cancel", quick)
    assert finished.code == 1
    assert "completed" in finished.err


def test_cancel_mail_posted_without_a_daemon_is_consumed_at_start(pool: Pool) -> None:
    task_id = pool.submit("backend", "queued while stopped")
    result = pool.cli.run("cancel", task_id)
    assert result.code == 0
    assert "queued as mail" in result.out
    pool.start()
    # The cancel can be routed before or after the task: either way it must not run.
    record = wait_until(
        lambda: (
            (r := pool.task(task_id)) is not None and r.status in ("cancelled", "completed") and r
        ),
        20,
        "the task to settle",
    )
    assert record.status in (TaskStatus.CANCELLED, TaskStatus.COMPLETED)


def test_submit_wait_prints_the_result(pool: Pool) -> None:
    pool.start()
    done = pool.cli.run("submit", "--to", "backend", "--wait", "fake: text the answer")
    assert done.code == 0, done.err
    task_id, answer = done.out.strip().splitlines()
    assert answer == "the answer"
    assert pool.task(task_id) is not None
    failed = pool.cli.run(
        "submit", "--to", "backend", "--wait", "fake: exit 2\n", "--priority", "high"
    )
    assert failed.code == 1


def test_submit_wait_needs_a_daemon(pool: Pool) -> None:
    result = pool.cli.run("submit", "--to", "backend", "--wait", "x")
    assert result.code == 1
    assert "not running" in result.err
    assert list(pool.layout.postoffice.glob("*.md")) == []


@pytest.mark.faults
def test_a_session_without_output_is_stopped_as_stalled(pool: Pool) -> None:
    pool.configure('[defaults]\nstall_timeout = "600ms"\nmax_attempts = 1\n')
    pool.start()
    task_id = pool.post("backend", "fake: child\nfake: hang")
    record = pool.wait_status(task_id, "failed")
    assert record.failure_reason == "stalled: no output for 0.6 s"
    wait_until(lambda: not pool.session_processes(), 10, "the stalled group to be gone")
    assert_groups_empty(_groups_of(pool, task_id))


def test_live_session_events_reach_the_daemon_log(pool: Pool) -> None:
    pool.start()
    task_id = pool.post("backend", "fake: text visible progress")
    pool.wait_status(task_id, "completed")
    log = pool.layout.daemon_log

    def kinds() -> set[str] | None:
        events = [json.loads(line) for line in log.read_text().splitlines()]
        found = {event["type"] for event in events if event.get("id") == task_id}
        return found if {"session.text", "session.result", "task.completed"} <= found else None

    wait_until(kinds, 10, "session events in the daemon log")


def _groups_of(pool: Pool, task_id: str) -> set[int]:
    """The process group of each run of a task, as the fake claude recorded it."""
    groups = {
        int(run["pgid"])
        for run in pool.invocations()
        if run["env"].get("AGENT_POOL_TASK_ID") == task_id
    }
    assert groups, f"no recorded run of {task_id}"
    return groups
