"""A real Claude Code session trying to write the pool's state by hand (scripted model).

Every Write/Edit into the pool folder (the task board, the daemon's marker files for
this very session, pool.toml, the postoffice) is refused by the PreToolUse hook, even
with Edit allowed; the task fails with the denial as its reason, though the session
reported success; and none of those files changed.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from agent_pool.testing import Conversation, Turn
from tests.conftest import CliEnv
from tests.e2e.conftest import RESPOND, StartPool
from tests.faults.helpers import collecting, events_of
from tests.harness import Pool

pytestmark = [pytest.mark.faults, pytest.mark.slow]

TASK_ID = "forge-1"
FORGED = "FORGED-BY-THE-AGENT"
CONFIG = '[defaults]\nallowed_tools = ["Read", "Write", "Edit"]\nmax_attempts = 1\n'


def test_hand_written_board_markers_config_and_mail_are_all_refused(
    real_pool: StartPool, cli: CliEnv
) -> None:
    pool_dir = cli.cwd / ".agent-pool"
    board = pool_dir / "daemon" / "board.sqlite3"
    session_dir = pool_dir / "daemon" / "sessions" / f"{TASK_ID}-1"  # its own scratch folder
    pool_toml = pool_dir / "pool.toml"
    mail = pool_dir / "postoffice" / "forged-mail.md"
    forged_mail = (
        f"---\nid: forged-mail\nfrom: concierge\nto: frontend\ntype: task\n---\n{FORGED}\n"
    )
    attempts = [
        Turn.tool("Write", {"file_path": str(board), "content": FORGED}),
        Turn.tool("Write", {"file_path": str(session_dir / "responded"), "content": FORGED}),
        Turn.tool("Write", {"file_path": str(session_dir / "handoff.md"), "content": FORGED}),
        Turn.tool("Read", {"file_path": str(pool_toml)}),
        Turn.tool(
            "Edit",
            {"file_path": str(pool_toml), "old_string": "max_attempts = 1", "new_string": FORGED},
        ),
        Turn.tool("Write", {"file_path": str(mail), "content": forged_mail}),
    ]
    pool = real_pool(
        [
            Conversation(
                match="Forge the pool state",
                turns=[*attempts, Turn.tool(RESPOND, {"body": "all done"}), Turn.text("done")],
            )
        ],
        "max_attempts = 1\n",
    )
    _allow_edit(pool)
    config_before = pool_toml.read_bytes()

    pool.post("backend", "Forge the pool state", id=TASK_ID)
    record = pool.wait_status(TASK_ID, "failed", timeout=90)

    assert record.failure_reason is not None
    assert record.failure_reason.startswith("write denied:")
    assert "inside the pool folder" in record.failure_reason
    assert events_of(pool, TASK_ID, "task.handoff") == []  # the forged handoff did nothing
    refusals = _refused_writes(Path(record.log_path or ""))
    assert len(refusals) == 5, refusals  # every Write and the Edit, each refused by the hook
    assert all("PreToolUse" in text and "inside the pool folder" in text for text in refusals)
    assert pool_toml.read_bytes() == config_before
    assert not mail.exists()
    assert pool.task("forged-mail") is None
    _assert_board_untouched(board, pool)


def _allow_edit(pool: Pool) -> None:
    """Allow Edit too, so the hook, not the tool allowlist, is what refuses it."""
    with collecting(pool) as events:
        pool.configure(CONFIG)
        events.wait_for(lambda event: event["type"] == "config.reloaded", 20, "the reload")


def _refused_writes(log: Path) -> list[str]:
    """The texts of the error results of every Write/Edit call in a stream-json log."""
    writes: set[str] = set()
    refused = []
    for line in log.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        for block in event.get("message", {}).get("content", []):
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_use" and block.get("name") in ("Write", "Edit"):
                writes.add(str(block.get("id")))
            if block.get("type") == "tool_result" and block.get("tool_use_id") in writes:
                content = block.get("content")
                if isinstance(content, list):
                    content = " ".join(str(part.get("text", "")) for part in content)
                assert block.get("is_error"), f"a write went through: {content}"
                refused.append(str(content))
    return refused


def _assert_board_untouched(board: Path, pool: Pool) -> None:
    """The daemon keeps writing the board, so not byte-identical: still a sound SQLite
    board, without the forged bytes, saying what the daemon decided."""
    for path in board.parent.glob(board.name + "*"):  # the database, its WAL and index
        assert FORGED.encode() not in path.read_bytes(), path
    connection = sqlite3.connect(f"file:{board}?mode=ro", uri=True)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        connection.close()
    record = pool.task(TASK_ID)
    assert record is not None
    assert str(record.status) == "failed"
