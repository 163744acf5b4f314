"""Folders the daemon cannot write: an inbox, dead-letter/, an expert's logs/, the postoffice.

Target: one clear error line naming the folder (in an event, or the task's failure
reason), the daemon stays up, other work goes on, and nothing is lost: the mail waits
and is delivered once the folder takes files again.

Root ignores mode bits, so a folder is made unwritable with the immutable attribute
(chattr +i: no new entry, not even for root, on the same mount) or, for logs/, a
read-only tmpfs. A mount over an inbox or dead-letter/ would not do: the daemon moves
mail there by hard link or rename, which fails across mounts (EXDEV) before any
permission is checked. A test marked xfail(strict) pins down a daemon bug (its reason
says where); remove the marker with the fix.
"""

from __future__ import annotations

import pytest

from agent_pool.daemon.supervisor import FALLBACK_MARK
from tests.faults.conftest import Mounts
from tests.faults.helpers import (
    TWO_TRIES,
    answers_to,
    assert_nothing_left,
    collecting,
    daemon_alive,
    events_of,
    wait_for_event_naming,
    wait_status_alive,
)
from tests.harness import Pool, wait_until

pytestmark = pytest.mark.faults

# A short periodic scan, so mail that waited is picked up soon after the folder heals.
RESCAN = '[daemon]\nreconcile_interval = "1s"\n'

POSTOFFICE_BUG = (
    "supervisor.py Supervisor._answer_for/_post: when the postoffice refuses the fallback "
    "answer, the error is reported (daemon.error) but the answer is dropped for good: the "
    "task is already completed on the board and nothing posts it again"
)


def test_an_unwritable_inbox_is_reported_and_its_mail_waits(mounts: Mounts, pool: Pool) -> None:
    pool.configure(RESCAN)
    inbox = pool.layout.inbox("backend")
    pool.start()
    with collecting(pool) as collector:
        mounts.immutable(inbox)
        waiting = pool.post("backend", "fake: text delivered late")
        other = pool.post("frontend", "fake: text fine")
        wait_for_event_naming(pool, collector, str(inbox))
    assert wait_status_alive(pool, other, "completed").result == "fine"
    assert pool.status()["state"] == "running"
    mounts.immutable(inbox, on=False)
    assert wait_status_alive(pool, waiting, "completed").result == "delivered late"
    done_mail = inbox / "read" / f"{waiting}.md"
    wait_until(done_mail.is_file, 10, "the mail delivered, then filed as done")


def test_an_unwritable_dead_letter_folder_is_reported_and_the_bad_mail_waits(
    mounts: Mounts, pool: Pool
) -> None:
    pool.configure(RESCAN)
    dead = pool.layout.dead_letter
    pool.start()
    with collecting(pool) as collector:
        mounts.immutable(dead)
        bad = pool.post("nobody-yet", "for an expert that does not exist")
        good = pool.post("backend", "fake: text fine")
        wait_for_event_naming(pool, collector, str(dead))
    assert wait_status_alive(pool, good, "completed").result == "fine"
    assert (pool.layout.postoffice / f"{bad}.md").exists()  # not lost: still waiting
    mounts.immutable(dead, on=False)
    reason = dead / f"{bad}.reason"  # named by its id
    wait_until(reason.exists, 20, "the bad mail dead-lettered once the folder heals")
    assert "unknown recipient 'nobody-yet'" in reason.read_text()
    daemon_alive(pool)


def test_a_read_only_logs_folder_fails_that_task_with_a_clear_reason(
    mounts: Mounts, pool: Pool
) -> None:
    logs = pool.layout.logs("backend")
    mounts.tmpfs(logs, size="1m", read_only=True)
    pool.configure(TWO_TRIES)
    pool.start()
    task_id = pool.post("backend", "fake: text never written")
    other = pool.post("frontend", "fake: text fine")
    record = wait_status_alive(pool, task_id, "failed")
    assert record.failure_reason is not None
    assert str(logs) in record.failure_reason
    assert "Read-only file system" in record.failure_reason
    assert len(record.failure_reason.splitlines()) == 1
    assert record.attempts == 2
    assert events_of(pool, task_id, "task.completed") == []
    assert wait_status_alive(pool, other, "completed").result == "fine"
    assert pool.status()["state"] == "running"


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=POSTOFFICE_BUG)
def test_an_unwritable_postoffice_delays_the_answer_but_does_not_lose_it(
    mounts: Mounts, pool: Pool
) -> None:
    pool.configure(RESCAN)
    pool.start()
    task_id = pool.post("backend", "fake: sleep 0.5\nfake: text the answer")
    pool.wait_status(task_id, "active")
    with collecting(pool) as collector:
        mounts.immutable(pool.layout.postoffice)
        wait_status_alive(pool, task_id, "completed")
        # The session never called send_response: the daemon answers for it, and must
        # say why it cannot.
        wait_for_event_naming(pool, collector, str(pool.layout.postoffice))
    mounts.immutable(pool.layout.postoffice, on=False)
    [answer] = wait_until(lambda: answers_to(pool, task_id), 5, "the answer, once possible")
    assert answer.startswith(FALLBACK_MARK)
    assert_nothing_left(pool, task_id)
