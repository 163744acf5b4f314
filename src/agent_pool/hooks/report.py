"""The Stop hook's decision, and the JSONL records every hook leaves for the daemon.

A session must report back through `mcp__agent-pool__send_response`. If it tries to
stop without having done so, the hook sends it back once with a short reminder;
after that it always lets the session end (the daemon then answers the requester
with the session's final result text), so a stubborn model can never loop.
"""

# ruff: noqa: PTH110, PTH118
# `os.path` on purpose: `pathlib` would add milliseconds to every hooked tool call.

from __future__ import annotations

import json
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Final

    StrPath = str | os.PathLike[str]

# Marker files in the session folder. The send_response tool writes RESPONDED; the
# signal_handoff tool writes HANDOFF; this hook writes REMINDED when it sends back.
RESPONDED_MARKER: Final = "responded"
HANDOFF_MARKER: Final = "handoff.md"
REMINDED_MARKER: Final = "stop-reminded"
# Records for the daemon: every hook decision, and every denied tool call.
HOOKS_LOG: Final = "hooks.jsonl"
DENIALS_LOG: Final = "denials.jsonl"

EXIT_ALLOW: Final = 0
# Claude Code's "block": the tool call does not run, or the session does not stop,
# and stderr goes back to the model.
EXIT_BLOCK: Final = 2

# Written by the daemon for task sessions: they must also leave their state current.
REQUIRE_STATE_MARKER: Final = "require-state"
STATE_UPDATED_MARKER: Final = "state-updated"  # written by the update_state tool
STATE_REMINDER: Final = (
    "You have not updated your knowledge: call mcp__agent-pool__update_state with what is "
    "true now (what you changed, what you learned) before you finish."
)
STOP_REMINDER: Final = (
    "You have not reported back: call mcp__agent-pool__send_response with your answer "
    "now (and mcp__agent-pool__update_state if you learned something worth keeping)."
)

_APPEND_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


def stop_decision(hook_input: Mapping[str, object], *, session_dir: StrPath) -> tuple[int, str]:
    """(exit code, stderr) for a Stop hook: (2, reminder) sends the session back once.

    A session stops when it handed off, or when it responded and (for a task, whose
    session folder holds the `require-state` marker) updated its state. One that was
    already sent back (`stop_hook_active`, or our own marker should that flag ever be
    missing) stops too: the daemon then answers for it.
    """
    folder = os.fspath(session_dir)
    if _has_marker(folder, HANDOFF_MARKER):
        return EXIT_ALLOW, ""
    responded = _has_marker(folder, RESPONDED_MARKER)
    state_due = _has_marker(folder, REQUIRE_STATE_MARKER) and not _has_marker(
        folder, STATE_UPDATED_MARKER
    )
    if responded and not state_due:
        return EXIT_ALLOW, ""
    # Anything but a plain `false` (or no flag) counts as active: never risk a loop.
    if hook_input.get("stop_hook_active", False) is not False:
        return EXIT_ALLOW, ""
    if _has_marker(folder, REMINDED_MARKER):
        return EXIT_ALLOW, ""
    return EXIT_BLOCK, STATE_REMINDER if responded else STOP_REMINDER


def mark_reminded(session_dir: StrPath) -> None:
    """Remember that this session was sent back once (best effort)."""
    try:
        fd = os.open(os.path.join(session_dir, REMINDED_MARKER), _APPEND_FLAGS, 0o644)
    except OSError:
        return
    os.close(fd)


def append_record(path: StrPath, record: Mapping[str, object]) -> bool:
    """Append `record` as one JSON line; False if it could not be written.

    One `write` on an O_APPEND descriptor: hooks of parallel tool calls may append
    to the same file at once, and whole lines never interleave.
    """
    # ASCII-only JSON: a path with undecodable bytes (lone surrogates) stays valid.
    line = json.dumps(record, separators=(",", ":")) + "\n"
    try:
        fd = os.open(path, _APPEND_FLAGS, 0o644)
    except OSError:
        return False
    try:
        os.write(fd, line.encode("ascii"))
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def timestamp(now: float) -> str:
    """`now` as ISO 8601 UTC with milliseconds, the board's format (no `datetime` import)."""
    whole = int(now)
    millis = int((now - whole) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}+00:00"


def _has_marker(folder: str, name: str) -> bool:
    return os.path.exists(os.path.join(folder, name))
