"""Knowledge tools: an agent reads and keeps its own identity, state and errors.

A shared expert's identity.md, state.md and errors.md live in the user's folder
(`~/.agent-pool/experts/<name>/`) and are shared by every pool that includes it; what
it learns about *this* project goes to the pool's overlay (`shared-state/<name>/`).
So `update_state` replaces the overlay's state.md for a shared expert, and the
user-level state.md is left to curation; errors and promotion candidates are about
the expert itself and go to its user-level folder, under a lock across pools.
"""

from __future__ import annotations

import re
import sys
from typing import Final

from agent_pool.pool import starters
from agent_pool.tools.context import ToolContext, ToolError
from agent_pool.tools.files import (
    KIB,
    append_entry,
    format_entry,
    read_text,
    text_arg,
    write_marker,
    write_text_locked,
)

READ_MAX_BYTES: Final = 64 * KIB  # per file shown by read_state
ERROR_ENTRY_MAX_BYTES: Final = 4 * KIB
ERRORS_CAP_FACTOR: Final = 4  # errors.md is kept under 4x its prompt budget
PATTERN_MAX_BYTES: Final = 2 * KIB
PROMOTIONS_NAME: Final = "promotions.md"
PROMOTIONS_MAX_BYTES: Final = 64 * KIB
STATE_MARKER: Final = "state-updated"

_PROMOTIONS_HEADING: Final = (
    "# Promotion candidates of {name}\n\n"
    "_Patterns flagged by sessions (`flag_promotion`), newest last. The researcher "
    "promotes those flagged repeatedly to identity.md._\n\n"
)
_FLAGGED: Final = re.compile(r"- \d{4}-\d\d-\d\d \d\d:\d\d UTC(?: \(task [^)\n]*\))?: ([^\n]*)")


def read_state(ctx: ToolContext) -> dict[str, object]:
    """identity, state, the pool overlay's state (shared experts; else null) and errors."""
    overlay = read_text(ctx.pool_side_dir / "state.md", limit=READ_MAX_BYTES)
    return {
        "agent": ctx.agent,
        "identity": read_text(ctx.knowledge_dir / "identity.md", limit=READ_MAX_BYTES),
        "state": read_text(ctx.knowledge_dir / "state.md", limit=READ_MAX_BYTES),
        "overlay_state": overlay if ctx.is_shared else None,
        "errors": read_text(ctx.knowledge_dir / "errors.md", limit=READ_MAX_BYTES),
        "state_max_bytes": ctx.budgets.state_max_bytes,
    }


def update_state(ctx: ToolContext, content: object) -> str:
    """Replace state.md (a shared expert's: the pool overlay's) with `content`."""
    text = text_arg(content, "content", max_bytes=sys.maxsize)
    if not text.endswith("\n"):
        text += "\n"
    size = len(text.encode("utf-8"))
    budget = ctx.budgets.state_max_bytes
    if size > budget:
        raise ToolError(
            f"content is {size} bytes, over the state budget of {budget} bytes: state.md was "
            "not changed; shorten it (keep what is true now, drop history) and call again"
        )
    target = ctx.pool_side_dir / "state.md"
    write_text_locked(target, text)
    write_marker(ctx, STATE_MARKER, f"{ctx.clock().isoformat()} {size} bytes {target}\n")
    where = f"the pool overlay {target}" if ctx.is_shared else "state.md"
    return f"Replaced {where} ({size} of {budget} bytes)."


def append_error(ctx: ToolContext, entry: object) -> str:
    """Append a dated entry to errors.md, dropping the oldest entries over the cap."""
    text = text_arg(entry, "entry", max_bytes=ERROR_ENTRY_MAX_BYTES)
    cap = ERRORS_CAP_FACTOR * ctx.budgets.errors_max_bytes
    entries, dropped = append_entry(
        ctx.knowledge_dir / "errors.md",
        format_entry(ctx.clock(), text),
        cap=cap,
        heading=starters.errors_text(ctx.agent) + "\n",
    )
    reply = f"Recorded in errors.md ({len(entries)} entries)."
    if dropped:
        reply += (
            f" The {dropped} oldest {'entry was' if dropped == 1 else 'entries were'} "
            f"dropped to keep errors.md under {cap} bytes."
        )
    return reply


def flag_promotion(ctx: ToolContext, pattern: object) -> str:
    """Record `pattern` as a candidate for identity.md; say how often it was flagged."""
    text = " ".join(text_arg(pattern, "pattern", max_bytes=PATTERN_MAX_BYTES).split())
    prefix = f" (task {ctx.task_id})" if ctx.task_id else ""
    entries, _ = append_entry(
        ctx.knowledge_dir / PROMOTIONS_NAME,
        format_entry(ctx.clock(), text, prefix),
        cap=PROMOTIONS_MAX_BYTES,
        heading=_PROMOTIONS_HEADING.format(name=ctx.agent),
    )
    key = text.casefold()
    count = sum(1 for item in entries if _flagged_pattern(item) == key)
    times = "once" if count == 1 else f"{count} times"
    return (
        f"Flagged for promotion; this pattern has now been flagged {times}. "
        "The researcher promotes patterns flagged repeatedly to identity.md."
    )


def _flagged_pattern(entry: str) -> str | None:
    found = _FLAGGED.match(entry)
    return " ".join(found.group(1).split()).casefold() if found else None
