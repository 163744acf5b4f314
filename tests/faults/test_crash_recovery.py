"""What a restarted daemon owes a session that ended while no daemon watched it.

The task itself is recovered from the session's log (tests/integration/
test_daemon_crash.py). Its bookkeeping must follow as after any other run: the answer
on its behalf when it sent none, the index row, the done mail filed in inbox/read/.
"""

from __future__ import annotations

import pytest

from agent_pool.daemon.supervisor import FALLBACK_MARK
from tests.faults.helpers import answers_to
from tests.harness import Pool, wait_until

pytestmark = pytest.mark.faults


def test_a_session_that_ended_while_the_daemon_was_down_is_still_answered(pool: Pool) -> None:
    pool.start()
    task_id = pool.post("backend", "fake: sleep 0.3\nfake: text done while down")
    pool.wait_status(task_id, "active")
    wait_until(lambda: pool.runs_of(task_id) == 1, 10, "the session to start")
    pool.kill()
    wait_until(lambda: not pool.session_processes(), 10, "the session to end on its own")
    pool.start()
    pool.wait_status(task_id, "completed")
    [answer] = wait_until(lambda: answers_to(pool, task_id), 5, "the answer on its behalf")
    assert answer.startswith(FALLBACK_MARK)
    assert answer.rstrip().endswith("done while down")
    backend = pool.layout.expert_dir("backend")
    assert task_id in (backend / "logs" / "index.md").read_text()
    wait_until((backend / "inbox" / "read" / f"{task_id}.md").is_file, 10, "the done mail filed")
    assert pool.runs_of(task_id) == 1
