"""The prompt a session starts from: its knowledge files, then the task.

Kept deliberately plain here; the session work adds budgets, notices and contracts.
"""

from __future__ import annotations

from pathlib import Path

from agent_pool.board import TaskRecord


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        return ""


def build_prompt(task: TaskRecord, folder: Path) -> str:
    parts = []
    for name in ("identity.md", "state.md", "errors.md"):
        text = _read(folder / name)
        if text:
            parts.append(f"<{name}>\n{text}\n</{name}>")
    header = f"id: {task.id}\nfrom: {task.sender}\ntype: {task.type}\npriority: {task.priority}"
    parts.append(f"<task>\n{header}\n\n{task.body.strip()}\n</task>")
    return "\n\n".join(parts) + "\n"
