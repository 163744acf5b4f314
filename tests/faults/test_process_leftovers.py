"""Stop, cancel, timeout and daemon crash leave no process behind (QUALITY.md).

Every session here starts a grandchild in its process group. A stubborn one also
ignores SIGTERM (both processes do: the ignored disposition is inherited), so only the
daemon's escalation to SIGKILL of the whole group can end it; each way of stopping is
tried with it once (each escalation costs the 3 s grace). Checked by process group,
zombies included. The timeout case of a session the daemon started is in
test_session_faults.py. The daemon's own helper, its tools server, must not outlive it
either (the harness checks that after every test too).
"""

from __future__ import annotations

import pytest

from agent_pool.board import TaskStatus
from tests.faults.helpers import assert_nothing_left, events_of
from tests.harness import Pool, helpers_of, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]

STUBBORN = "fake: ignore-sigterm\nfake: child\nfake: hang"
PLAIN = "fake: child\nfake: hang"


def _running(pool: Pool, body: str) -> str:
    task_id = pool.post("backend", body)
    pool.wait_status(task_id, "active")
    # The session and its grandchild, both started.
    wait_until(lambda: len(pool.session_processes()) >= 2, 10, "the session and its child")
    return task_id


@pytest.mark.parametrize(
    ("now", "body"), [(False, PLAIN), (True, STUBBORN)], ids=["drain", "now-stubborn"]
)
def test_stopping_the_daemon_kills_every_session_group(pool: Pool, now: bool, body: str) -> None:
    pool.configure('[daemon]\ndrain_grace = "200ms"\n')
    pool.start()
    task_id = _running(pool, body)
    assert pool.stop(now=now) == 0
    assert_nothing_left(pool, task_id)
    record = pool.task(task_id)
    assert record is not None
    # Interrupted by the pool, not by its own fault: it waits for the next start.
    assert record.status is TaskStatus.PENDING
    assert events_of(pool, task_id, "task.requeued")


def test_cancel_kills_the_whole_stubborn_group(pool: Pool) -> None:
    pool.start()
    task_id = _running(pool, STUBBORN)
    assert pool.cli.run("cancel", task_id).code == 0
    pool.wait_status(task_id, "cancelled")
    assert_nothing_left(pool, task_id)


def test_after_a_daemon_crash_the_adopted_group_is_still_killed_on_cancel(pool: Pool) -> None:
    """The restarted daemon is not the session's parent: it must still stop it all."""
    pool.start()
    task_id = _running(pool, STUBBORN)
    pool.kill()
    assert len(pool.session_processes()) >= 2, "a crash must not take the sessions along"
    pool.start()
    wait_until(lambda: events_of(pool, task_id, "task.adopted"), 10, "the session adopted")
    assert pool.cli.run("cancel", task_id).code == 0
    pool.wait_status(task_id, "cancelled")
    assert_nothing_left(pool, task_id)


def test_after_a_daemon_crash_the_adopted_group_still_times_out(pool: Pool) -> None:
    pool.configure('[defaults]\nsession_timeout = "2s"\nmax_attempts = 1\n')
    pool.start()
    task_id = _running(pool, PLAIN)
    pool.kill()
    pool.start()
    record = pool.wait_status(task_id, "failed", timeout=30)
    assert record.failure_reason is not None
    assert record.failure_reason.startswith("timed out")
    assert_nothing_left(pool, task_id)


def test_after_a_daemon_crash_stopping_the_new_daemon_kills_adopted_groups(pool: Pool) -> None:
    pool.start()
    task_id = _running(pool, PLAIN)
    pool.kill()
    pool.start()
    wait_until(lambda: events_of(pool, task_id, "task.adopted"), 10, "the session adopted")
    assert pool.stop(now=True) == 0
    assert_nothing_left(pool, task_id)


def test_a_killed_daemon_takes_its_tools_server_along(pool: Pool) -> None:
    """The daemon's helper (its tools server) must not outlive a SIGKILL of the daemon."""
    pool.start()
    wait_until(lambda: helpers_of(pool), 30, "the daemon's tools server")
    pool.kill()
    wait_until(lambda: not helpers_of(pool), 10, "the tools server to follow its daemon")
