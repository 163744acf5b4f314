"""Expert sessions: the `claude` command line, its process group, and its output."""

from agent_pool.session.argv import build_argv
from agent_pool.session.outcome import ResultEvent, Verdict, judge
from agent_pool.session.process import (
    ProcessIdentity,
    find_by_env,
    group_members,
    identify,
    is_alive,
    signal_group,
)
from agent_pool.session.runner import (
    KILL_WAIT,
    LogTail,
    ProcessRunner,
    RunningSession,
    SessionSpec,
    SessionStartError,
)
from agent_pool.session.stream import (
    MAX_LINE_BYTES,
    Event,
    LineFramer,
    parse_event,
    read_result_event,
)

__all__ = [
    "KILL_WAIT",
    "MAX_LINE_BYTES",
    "Event",
    "LineFramer",
    "LogTail",
    "ProcessIdentity",
    "ProcessRunner",
    "ResultEvent",
    "RunningSession",
    "SessionSpec",
    "SessionStartError",
    "Verdict",
    "build_argv",
    "find_by_env",
    "group_members",
    "identify",
    "is_alive",
    "judge",
    "parse_event",
    "read_result_event",
    "signal_group",
]
