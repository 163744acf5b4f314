"""Sessions that misbehave: each is caught, retried per policy, never called a success.

QUALITY.md: an expert session that crashes, hangs, exits non-zero, is denied a tool
or exceeds max turns is detected from its structured output, retried per policy and
never reported as success; and nothing of it is left running (checked by process
group, zombies included).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import psutil
import pytest

from tests.faults.helpers import (
    TWO_TRIES,
    answers_to,
    assert_nothing_left,
    events_of,
    run_groups,
    wait_event,
)
from tests.harness import Pool

pytestmark = pytest.mark.faults

# Directive(s) -> a fragment of the failure reason. The reason of each comes from the
# session's own stream-json (result subtype, denials, API status) or its exit status.
MISBEHAVIOUR = {
    "crash": ("fake: crash", "killed by signal SIGABRT"),
    "exit-non-zero": ("fake: exit 7", "exited with code 7"),
    "max-turns": ("fake: max-turns", "exceeded max turns"),
    "tool-denied": ("fake: deny Bash", "tool denied: Bash"),
    "api-error": ("fake: error", "API error (status 500)"),
    "no-result": ("fake: no-result", "no result event"),
    "spew-then-crash": ("fake: spew 3000000\nfake: crash", "killed by signal SIGABRT"),
    "huge-line-then-exit": ("fake: long-line 2000000\nfake: exit 3", "exited with code 3"),
}


@pytest.mark.parametrize("case", list(MISBEHAVIOUR))
def test_a_misbehaving_session_is_retried_then_failed_never_completed(
    pool: Pool, case: str
) -> None:
    directives, reason = MISBEHAVIOUR[case]
    pool.configure(TWO_TRIES)
    pool.start()
    task_id = pool.post("backend", f"Do the work\n{directives}")
    record = pool.wait_status(task_id, "failed")
    assert record.failure_reason is not None
    assert reason in record.failure_reason, record.failure_reason
    assert record.attempts == 2
    assert record.needs_attention
    assert pool.runs_of(task_id) == 2  # the policy: one retry, then it needs a person
    [retry] = events_of(pool, task_id, "task.retry")
    assert reason in retry["reason"]
    wait_event(pool, task_id, "task.failed")
    assert events_of(pool, task_id, "task.completed") == []
    assert answers_to(pool, task_id) == []  # no answer on its behalf: it did not succeed
    assert_nothing_left(pool, task_id)
    assert pool.status()["state"] == "running"


def test_a_flood_of_output_is_followed_and_judged_by_its_result(pool: Pool) -> None:
    """Megabytes of output and a line over the framing cap neither stall the daemon
    nor hide the result event that ends them."""
    pool.start()
    task_id = pool.post(
        "backend", "fake: spew 5000000\nfake: long-line 2000000\nfake: text after the flood"
    )
    record = pool.wait_status(task_id, "completed")
    assert record.result == "after the flood"
    assert pool.runs_of(task_id) == 1
    log = Path(record.log_path or "")
    assert log.stat().st_size > 7_000_000  # the whole flood reached the log
    assert_nothing_left(pool, task_id)


def test_a_hanging_session_times_out_on_every_attempt(pool: Pool) -> None:
    pool.configure(TWO_TRIES + 'session_timeout = "400ms"\n')
    pool.start()
    task_id = pool.post("backend", "fake: hang")
    record = pool.wait_status(task_id, "failed")
    assert record.failure_reason == "timed out after 0.4 s"
    assert record.attempts == 2
    assert pool.runs_of(task_id) == 2
    assert len(events_of(pool, task_id, "session.stopping")) == 2
    assert events_of(pool, task_id, "task.completed") == []
    assert_nothing_left(pool, task_id)


@pytest.mark.slow
def test_a_session_ignoring_sigterm_is_killed_with_its_whole_group(pool: Pool) -> None:
    """Leader and grandchild both ignore SIGTERM: the timeout ends in SIGKILL of the group."""
    pool.configure('[defaults]\nsession_timeout = "300ms"\nmax_attempts = 1\n')
    pool.start()
    task_id = pool.post("backend", "fake: ignore-sigterm\nfake: child\nfake: hang")
    record = pool.wait_status(task_id, "failed", timeout=30)
    assert record.failure_reason == "timed out after 0.3 s"
    # The leader ignored SIGTERM, so only the escalation to SIGKILL can have ended it.
    assert record.exit_code == -signal.SIGKILL
    grandchild = _fake_child_pid(Path(record.log_path or ""))
    [group] = run_groups(pool, task_id)
    assert grandchild != group  # a process of its own, in the session's group
    assert_nothing_left(pool, task_id)
    assert not psutil.pid_exists(grandchild)


def _fake_child_pid(log: Path) -> int:
    for line in log.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event.get("subtype") == "fake_child":
            return int(event["pid"])
    raise AssertionError(f"no fake_child event in {log}")
