"""Run one hook: parse Claude Code's stdin JSON, decide, leave records, pick the exit code.

Shared by `python -m agent_pool.hooks` (what session settings run: it starts fast)
and the `agent-pool hook` click commands. Each returns (exit code, stderr text) and
never prints: a hook's stdout is read by Claude Code as a structured answer.

Malformed input (not a JSON object, or no tool name) is allowed and recorded rather
than blocked: Claude Code never sends it, the tool's own permissions still apply,
and blocking would fail every write of the session. A write tool with no usable
path is denied by the guard.
"""

# ruff: noqa: PTH109, PTH117, PTH118
# `os.path` on purpose: `pathlib` would add milliseconds to every hooked tool call.

from __future__ import annotations

import json
import os

from agent_pool.hooks.guard import check_write
from agent_pool.hooks.report import (
    DENIALS_LOG,
    EXIT_ALLOW,
    EXIT_BLOCK,
    HOOKS_LOG,
    append_record,
    mark_reminded,
    stop_decision,
    timestamp,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

PRE_TOOL_USE = "pre-tool-use"
STOP = "stop"


def run_pre_tool_use(
    stdin: bytes,
    *,
    pool_dir: str,
    project_dir: str,
    session_dir: str,
    owns: Sequence[str],
    now: float,
) -> tuple[int, str]:
    """Check one write tool call; on denial also append it to `denials.jsonl`."""
    hook_input, problem = _parse(stdin)
    tool_name = hook_input.get("tool_name")
    if problem is None and not isinstance(tool_name, str):
        problem = "no tool_name"
    if problem is not None or not isinstance(tool_name, str):
        _record(session_dir, PRE_TOOL_USE, "allow", f"malformed hook input: {problem}", now)
        return EXIT_ALLOW, ""
    raw_input = hook_input.get("tool_input")
    tool_input: dict[str, object] = raw_input if isinstance(raw_input, dict) else {}
    path = tool_input.get("file_path", tool_input.get("notebook_path"))
    reason = check_write(
        tool_name,
        tool_input,
        cwd=_session_cwd(hook_input, project_dir),
        pool_dir=pool_dir,
        project_dir=project_dir,
        owns=owns,
    )
    details = {"tool": tool_name, "path": path if isinstance(path, str) else None}
    if reason is None:
        _record(session_dir, PRE_TOOL_USE, "allow", "", now, **details)
        return EXIT_ALLOW, ""
    _record(session_dir, PRE_TOOL_USE, "deny", reason, now, **details)
    append_record(
        os.path.join(session_dir, DENIALS_LOG),
        {"event": PRE_TOOL_USE, **details, "reason": reason, "time": timestamp(now)},
    )
    return EXIT_BLOCK, reason


def run_stop(stdin: bytes, *, session_dir: str, now: float) -> tuple[int, str]:
    """Let the session stop, or send it back once to report (exit 2 with a reminder)."""
    hook_input, problem = _parse(stdin)
    if problem is not None:
        # Without the input we cannot see `stop_hook_active`: sending back could loop.
        _record(session_dir, STOP, "allow", f"malformed hook input: {problem}", now)
        return EXIT_ALLOW, ""
    code, reason = stop_decision(hook_input, session_dir=session_dir)
    if code == EXIT_BLOCK:
        mark_reminded(session_dir)
    _record(session_dir, STOP, "block" if code == EXIT_BLOCK else "allow", reason, now)
    return code, reason


def _parse(stdin: bytes) -> tuple[dict[str, object], str | None]:
    """The hook input object, or ({}, what is wrong with it)."""
    try:
        value = json.loads(stdin)
    except (ValueError, RecursionError) as exc:
        return {}, f"not JSON ({type(exc).__name__})"
    if not isinstance(value, dict):
        return {}, f"a JSON {type(value).__name__}, not an object"
    return value, None


def _session_cwd(hook_input: dict[str, object], project_dir: str) -> str:
    # Claude Code resolves a relative path against its own cwd, which the input names.
    cwd = hook_input.get("cwd")
    if isinstance(cwd, str) and os.path.isabs(cwd):
        return cwd
    try:
        return os.getcwd()
    except OSError:
        return project_dir


def _record(
    session_dir: str, event: str, decision: str, reason: str, now: float, **details: object
) -> None:
    append_record(
        os.path.join(session_dir, HOOKS_LOG),
        {
            "event": event,
            "decision": decision,
            **details,
            "reason": reason,
            "time": timestamp(now),
        },
    )
