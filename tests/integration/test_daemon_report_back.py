"""Report-back guarantees with the fast fake: fallback answers, handoffs, denied writes."""

from __future__ import annotations

import json

from agent_pool.board import TaskStatus
from agent_pool.daemon.supervisor import FALLBACK_MARK
from tests.harness import Pool, wait_until


def _inbox(pool: Pool) -> list[dict[str, object]]:
    listed: list[dict[str, object]] = json.loads(pool.cli.run("inbox", "--json").out)
    return listed


def test_a_session_that_never_responds_is_answered_with_its_final_text(pool: Pool) -> None:
    pool.start()
    task_id = pool.post("backend", "fake: text the final words")
    pool.wait_status(task_id, "completed")
    [answer] = wait_until(
        lambda: [m for m in _inbox(pool) if m["in_reply_to"] == task_id], 10, "the fallback"
    )
    assert answer["from"] == "backend"
    body = str(answer["body"])
    assert body.startswith(FALLBACK_MARK)
    assert body.rstrip().endswith("the final words")


def test_a_session_that_responds_gets_no_second_answer(pool: Pool) -> None:
    pool.start()
    task_id = pool.post("backend", "fake: respond my real answer")
    pool.wait_status(task_id, "completed")
    wait_until(lambda: [m for m in _inbox(pool) if m["in_reply_to"] == task_id], 10, "answer")
    # Give a wrongly posted fallback every chance to be routed before checking.
    follow = pool.post("backend", "fake: respond done too")
    pool.wait_status(follow, "completed")
    wait_until(lambda: [m for m in _inbox(pool) if m["in_reply_to"] == follow], 10, "answer")
    answers = [m for m in _inbox(pool) if m["in_reply_to"] == task_id]
    assert [str(m["body"]).strip() for m in answers] == ["my real answer"]


def test_a_handoff_redelivers_the_task_with_its_note_then_needs_attention(pool: Pool) -> None:
    pool.start()
    task_id = pool.post("backend", "long job\nfake: handoff parsed half the files")
    record = pool.wait_status(task_id, "failed", timeout=30)
    assert record.needs_attention
    assert record.failure_reason is not None
    assert "handed off 2 times" in record.failure_reason
    runs = [run for run in pool.invocations() if run["env"]["AGENT_POOL_TASK_ID"] == task_id]
    assert len(runs) == 2
    handed = f"Handoff note from the previous session on task {task_id}"
    assert handed not in runs[0]["stdin"]
    assert handed in runs[1]["stdin"]  # the note reached the fresh session
    assert [item["id"] for item in pool.status()["needs_attention"]] == [task_id]


def test_a_denied_write_fails_the_task_with_the_reason(pool: Pool) -> None:
    pool.configure("[defaults]\nmax_attempts = 1\n")
    pool.start()
    task_id = pool.post("backend", "fake: sleep 0.2\nfake: text all good")
    pool.wait_status(task_id, "active")
    # What the PreToolUse hook leaves when it refuses a write.
    sessions = wait_until(lambda: list(pool.layout.sessions_dir.iterdir()), 10, "session dir")
    (sessions[0] / "denials.jsonl").write_text(
        json.dumps({"event": "pre-tool-use", "tool": "Write", "reason": "outside api/**"}) + "\n"
    )
    record = pool.wait_status(task_id, "failed")
    assert record.failure_reason == "write denied: outside api/**"
    assert record.status is TaskStatus.FAILED


def test_sessions_get_the_pool_tools_and_hooks(pool: Pool) -> None:
    pool.configure('[experts.backend]\nowns = ["api/**"]\n')
    pool.start()
    task_id = pool.post("backend", "fake: text ok")
    pool.wait_status(task_id, "completed")
    [run] = [run for run in pool.invocations() if run["env"]["AGENT_POOL_TASK_ID"] == task_id]
    argv = run["argv"]
    allowed = argv[argv.index("--allowedTools") + 1].split(",")
    assert "mcp__agent-pool__send_response" in allowed
    assert "mcp__agent-pool__update_state" in allowed
    assert "Write" in allowed
    assert "--mcp-config" in argv
    assert "--settings" in argv
    assert "--strict-mcp-config" in argv
    assert run["env"]["AGENT_POOL_SESSION_DIR"].startswith(str(pool.layout.sessions_dir))
