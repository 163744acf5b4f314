"""Housekeeping that keeps a long-running pool bounded: session logs and run indexes."""

from agent_pool.upkeep.index_cap import cap_index
from agent_pool.upkeep.logs import (
    AgentLogsReport,
    LogLimits,
    LogUpkeepReport,
    archive_session_logs,
    upkeep_agent_logs,
)

__all__ = [
    "AgentLogsReport",
    "LogLimits",
    "LogUpkeepReport",
    "archive_session_logs",
    "cap_index",
    "upkeep_agent_logs",
]
