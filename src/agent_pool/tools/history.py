"""History tools: an agent's own past sessions (`recall`) and its run index.

`recall` renders the stream-json logs of one task the way `agent-pool logs` does:
every attempt, oldest first, archives (`logs/archive/*.jsonl.gz`, written by log
rotation) before live logs. Logs are streamed; reading stops at the text cap, so a
huge or hostile log costs no more than the cap.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

from agent_pool.session.index import HEADER
from agent_pool.session.index import search_index as search_index_rows
from agent_pool.session.logfiles import ATTEMPT_INFIX, LOG_SUFFIX, task_logs
from agent_pool.session.transcript import LogEvents, render_transcript
from agent_pool.tools.context import ToolContext, ToolError
from agent_pool.tools.files import KIB, message_id_arg, text_arg

RECALL_MAX_BYTES: Final = 32 * KIB
QUERY_MAX_BYTES: Final = 256
SEARCH_LIMIT: Final = 50
_HINT_IDS: Final = 10


def recall(ctx: ToolContext, task_id: object) -> str:
    """The readable transcript of one of the agent's past sessions, capped."""
    ident = message_id_arg(task_id, "task_id")
    logs_dir = ctx.pool_side_dir / "logs"
    found = task_logs(logs_dir, ident)
    if not found:
        raise ToolError(f"no session log for task {ident!r} in your logs ({_known_ids(logs_dir)})")
    out = _Capped(RECALL_MAX_BYTES)
    for log in found:
        label = f"archived attempt {log.number}" if log.archived else f"attempt {log.number}"
        if not out.add(f"=== {label}: {log.path.name} ==="):
            break
        # Closing the events early (at the cap) closes the log file at once.
        with contextlib.closing(LogEvents(log.path).events()) as events:
            if not all(out.add(line) for line in render_transcript(events)):
                break
    return out.text()


def search_index(ctx: ToolContext, query: object) -> str:
    """Rows of the agent's logs/index.md that contain `query` (case-insensitive)."""
    text = text_arg(query, "query", max_bytes=QUERY_MAX_BYTES, allow_blank=True)
    rows = search_index_rows(ctx.pool_side_dir / "logs", text, limit=SEARCH_LIMIT)
    if not rows:
        return f"No row of your run index matches {text!r}."
    shown = f"the latest {SEARCH_LIMIT} shown" if len(rows) == SEARCH_LIMIT else "all shown"
    return f"{len(rows)} matching rows ({shown}):\n{HEADER}" + "\n".join(rows) + "\n"


def _known_ids(logs_dir: Path) -> str:
    try:
        entries = [
            entry
            for entry in os.scandir(logs_dir)
            if entry.name.endswith(LOG_SUFFIX) and ATTEMPT_INFIX not in entry.name
        ]
    except (FileNotFoundError, NotADirectoryError):
        return "you have no session logs yet"
    entries.sort(key=lambda entry: entry.stat().st_mtime, reverse=True)
    ids = [entry.name.removesuffix(LOG_SUFFIX) for entry in entries[:_HINT_IDS]]
    return "latest: " + ", ".join(ids) if ids else "you have no session logs yet"


class _Capped:
    """Lines up to a byte cap; the first line that does not fit ends it, with a note."""

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._size = 0
        self._lines: list[str] = []
        self.cut = False

    def add(self, line: str) -> bool:
        size = len(line.encode("utf-8")) + 1
        if self._size + size > self._cap:
            self.cut = True
            return False
        self._lines.append(line)
        self._size += size
        return True

    def text(self) -> str:
        text = "\n".join(self._lines) + "\n"
        if self.cut:
            text += (
                f"[transcript cut at {self._cap // KIB} KiB: the rest is not shown; "
                "`agent-pool logs` shows it all]\n"
            )
        return text
