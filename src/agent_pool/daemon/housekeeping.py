"""Periodic upkeep so nothing on disk grows without bound in a weeks-long run.

Once at start-up and then every `[daemon] upkeep_interval`: old session logs are
compressed into each agent's `logs/archive/` and the archive and index are capped (in a
worker thread: it is file work, and the loop must keep serving), then old finished
tasks move to the board archive in small batches on the loop (the board has a single
writer, and short batches keep the daemon responsive).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from agent_pool.board import TaskBoard
from agent_pool.config import PoolConfig
from agent_pool.pool.layout import PoolLayout
from agent_pool.pool.registry import all_logs_dirs
from agent_pool.upkeep.logs import AgentLogsReport, LogLimits, upkeep_agent_logs

BATCH: Final = 500


@dataclass(frozen=True)
class UpkeepReport:
    logs: AgentLogsReport
    tasks_archived: int
    archive_pruned: int

    def to_event(self) -> dict[str, Any]:
        return {
            "logs_archived": self.logs.logs.archived,
            "logs_deleted": self.logs.logs.deleted,
            "index_rows_dropped": self.logs.index_rows_dropped,
            "tasks_archived": self.tasks_archived,
            "archive_pruned": self.archive_pruned,
            "errors": list(self.logs.errors)[:10],
        }


async def run_upkeep(
    layout: PoolLayout, board: TaskBoard, config: PoolConfig, clock: Callable[[], float]
) -> UpkeepReport:
    now = clock()
    # Logs of tasks that may still run again stay live: their next attempt moves them.
    keep = board.unfinished_ids()
    logs = await asyncio.to_thread(
        upkeep_agent_logs,
        all_logs_dirs(layout),
        limits=LogLimits.from_defaults(config.defaults),
        now=now,
        keep=keep,
    )
    before = clock() - config.daemon.board_retention.total_seconds()
    archived = 0
    while True:
        moved = board.archive_finished(layout.board_archive_db, before=before, limit=BATCH)
        archived += moved
        if moved < BATCH:
            break
        await asyncio.sleep(0)  # let sockets and session ends in between batches
    pruned = 0
    while True:
        removed = board.prune_archive(config.daemon.board_archive_max_tasks, limit=BATCH)
        pruned += removed
        if removed < BATCH:
            break
        await asyncio.sleep(0)
    return UpkeepReport(logs=logs, tasks_archived=archived, archive_pruned=pruned)
