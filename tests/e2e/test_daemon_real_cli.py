"""The daemon driving the real Claude Code CLI against the scripted model server.

Every spawn flag, the stream-json parsing and the verdicts are exercised for real.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_pool.board import TaskStatus
from agent_pool.testing import Conversation, Turn
from tests.conftest import CliEnv
from tests.e2e.conftest import RESPOND, UPDATE_STATE, StartPool, report
from tests.harness import wait_until

RETRY_FAST = 'retry_backoff = "100ms"\nmax_attempts = 2\n'


def test_a_task_completes_from_a_scripted_text_answer(real_pool: StartPool) -> None:
    pool = real_pool(
        [
            Conversation(
                match="What is six times seven",
                turns=[report("42"), Turn.text("answered: 42")],
            )
        ],
        "",
    )
    task_id = pool.post("backend", "What is six times seven?")
    record = pool.wait_status(task_id, "completed", timeout=60)
    assert record.result == "answered: 42"
    inbox = json.loads(pool.cli.run("inbox", "--json").out)
    assert [(m["in_reply_to"], m["body"].strip()) for m in inbox] == [(task_id, "42")]
    assert record.exit_code == 0
    assert record.num_turns >= 1
    log = Path(record.log_path or "")
    assert '"subtype":"init"' in log.read_text().replace(" ", "")


def test_a_write_lands_in_the_project(real_pool: StartPool, cli: CliEnv) -> None:
    target = cli.cwd / "notes" / "hello.txt"
    pool = real_pool(
        [
            Conversation(
                match="Write the greeting",
                turns=[
                    Turn.tool(
                        "Write", {"file_path": str(target), "content": "hello from backend\n"}
                    ),
                    report("wrote notes/hello.txt"),
                    Turn.text("written"),
                ],
            )
        ],
        "",
    )
    task_id = pool.post("backend", "Write the greeting file")
    record = pool.wait_status(task_id, "completed", timeout=60)
    assert record.result == "written"
    assert target.read_text() == "hello from backend\n"


@pytest.mark.parametrize(
    ("turns", "defaults", "reason"),
    [
        ([Turn.error(status=500, message="overloaded")], RETRY_FAST, "API error"),
        (
            [Turn.tool("Read", {"file_path": "/etc/hostname"}), Turn.text("never")],
            RETRY_FAST + "max_turns = 1\n",
            "max turns",
        ),
        (
            [Turn.tool("Bash", {"command": "touch /tmp/agent-pool-denied"}), Turn.text("ok")],
            RETRY_FAST,
            "tool denied: Bash",
        ),
    ],
    ids=["api-error", "max-turns", "denied-tool"],
)
@pytest.mark.faults
def test_failures_are_retried_and_never_completed(
    real_pool: StartPool, turns: list[Turn], defaults: str, reason: str
) -> None:
    pool = real_pool([Conversation(match="Do the thing", turns=turns)], defaults)
    task_id = pool.post("backend", "Do the thing")
    record = pool.wait_status(task_id, "failed", timeout=90)
    assert record.failure_reason is not None
    assert reason in record.failure_reason
    assert record.attempts == 2
    assert record.status is TaskStatus.FAILED


@pytest.mark.faults
def test_a_hanging_session_is_stopped_by_the_stall_timeout(real_pool: StartPool) -> None:
    pool = real_pool(
        [Conversation(match="Think forever", turns=[Turn.hang()])],
        'stall_timeout = "2s"\nmax_attempts = 1\n',
    )
    task_id = pool.post("backend", "Think forever")
    record = pool.wait_status(task_id, "failed", timeout=60)
    assert record.failure_reason is not None
    assert record.failure_reason.startswith("stalled")
    wait_until(lambda: not pool.session_processes(), 15, "no claude process left")


@pytest.mark.faults
def test_a_daemon_restart_mid_session_adopts_the_real_session(real_pool: StartPool) -> None:
    pool = real_pool(
        [
            Conversation(
                match="Slow answer",
                turns=[
                    Turn.tool(RESPOND, {"body": "slow but sure"}, delay_s=4.0),
                    Turn.tool(UPDATE_STATE, {"content": "# State\n\n- slow but sure\n"}),
                    Turn.text("worth the wait"),
                ],
            )
        ],
        "",
    )
    task_id = pool.post("backend", "Slow answer please")
    pool.wait_status(task_id, "active", timeout=30)
    wait_until(pool.session_processes, 15, "the claude process")
    pool.kill()
    pool.start()
    record = pool.wait_status(task_id, "completed", timeout=60)
    assert record.result == "worth the wait"
    assert record.attempts == 1
