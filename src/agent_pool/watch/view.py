"""What the dashboard shows, computed from the daemon's status and the board (pure).

The status JSON may come from an older or newer daemon, so every field is read with a
default: a missing field shows as unknown rather than breaking the screen.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, Final

from agent_pool.watch.plain import clip, format_event, shorten

if TYPE_CHECKING:
    from agent_pool.board import TaskRecord

FEED_LINES: Final = 200
TASK_ROWS: Final = 500
REASON_CHARS: Final = 160  # a failure reason can be a whole stderr tail
# The order `s` cycles through; None shows every status.
STATUS_FILTERS: Final[tuple[str | None, ...]] = (
    None,
    "active",
    "pending",
    "blocked",
    "failed",
    "completed",
    "cancelled",
    "awaiting_approval",
)
_HEADER_COUNTS: Final = ("active", "pending", "blocked", "failed", "completed", "cancelled")


def next_status_filter(current: str | None) -> str | None:
    index = STATUS_FILTERS.index(current) if current in STATUS_FILTERS else -1
    return STATUS_FILTERS[(index + 1) % len(STATUS_FILTERS)]


def format_elapsed(seconds: float | None) -> str:
    """A compact duration: 42s, 3m05s, 1h02m, 2d03h ("" when unknown)."""
    if seconds is None:
        return ""
    whole = max(int(seconds), 0)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def _money(value: object) -> str:
    return f"${value:.4f}" if isinstance(value, int | float) else "$?"


# -- header ------------------------------------------------------------------------


def header_text(status: Mapping[str, Any] | None, *, stopped: bool) -> str:
    """The one line at the top: pool, daemon state, pid, cost, task counts.

    `stopped` means the daemon no longer answers; `status` is then the last one seen.
    """
    if status is None:
        return "daemon stopped: waiting for it to start" if stopped else "connecting…"
    state = "DAEMON STOPPED (last view kept; reconnecting)" if stopped else status.get("state", "?")
    counts = status.get("tasks") or {}
    tallies = " ".join(f"{name} {counts.get(name, 0)}" for name in _HEADER_COUNTS)
    return (
        f"pool {status.get('pool', '?')} · {state} · pid {status.get('pid', '?')} · "
        f"cost today {_money(status.get('cost_today_usd'))} / total "
        f"{_money(status.get('cost_usd'))} · {tallies}"
    )


# -- experts -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExpertRow:
    name: str
    kind: str
    state: str
    queued: int
    current_task: str
    last_tool: str
    elapsed: str
    cost: str


def expert_rows(
    status: Mapping[str, Any] | None, *, fetched_at: float, now: float
) -> list[ExpertRow]:
    """One row per expert; a running session's time counts on from when status was read."""
    rows = []
    for expert in (status or {}).get("experts") or []:
        running = expert.get("running_s")
        elapsed = None
        if isinstance(running, int | float) and expert.get("current_task"):
            elapsed = running + max(now - fetched_at, 0.0)
        rows.append(
            ExpertRow(
                name=str(expert.get("name", "?")),
                kind=str(expert.get("kind", "")),
                state=str(expert.get("state", "?")),
                queued=int(expert.get("queued") or 0),
                current_task=str(expert.get("current_task") or ""),
                last_tool=clip(str(expert.get("last_tool") or ""), 40),
                elapsed=format_elapsed(elapsed),
                cost=_money(expert.get("cost_usd", 0.0)),
            )
        )
    return rows


# -- needs you -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NeedsYouItem:
    kind: str  # "approval", "failed", "attention", "dead letter"
    ref: str  # a task id, an approval id or a dead-letter file name
    text: str

    def line(self) -> str:
        return (
            f"{self.kind:<11} {self.ref}: {self.text}" if self.ref else f"{self.kind}: {self.text}"
        )


def needs_you(
    status: Mapping[str, Any] | None, failed: Iterable[TaskRecord] = ()
) -> list[NeedsYouItem]:
    """Everything waiting for the user: approvals, failures, attention flags, dead mail."""
    status = status or {}
    items = [
        NeedsYouItem("approval", str(approval.get("id", "")), _approval_text(approval))
        for approval in status.get("approvals") or []
        if isinstance(approval, Mapping)
    ]
    seen: set[str] = set()
    for entry in status.get("needs_attention") or []:
        task_id = str(entry.get("id", "?"))
        seen.add(task_id)
        kind = "failed" if entry.get("status") == "failed" else "attention"
        reason = entry.get("reason") or f"{entry.get('status', '?')}, flagged for attention"
        items.append(
            NeedsYouItem(
                kind, task_id, f"{clip(str(reason), REASON_CHARS)} (to {entry.get('to', '?')})"
            )
        )
    for task in failed:
        if task.id not in seen:
            seen.add(task.id)
            reason = clip(task.failure_reason or "failed", REASON_CHARS)
            items.append(NeedsYouItem("failed", task.id, f"{reason} (to {task.to})"))
    items.extend(_dead_letter_items(status))
    return items


def _approval_text(approval: Mapping[str, Any]) -> str:
    summary = approval.get("summary") or approval.get("reason")
    if summary:
        return clip(str(summary), REASON_CHARS)
    rest = {key: value for key, value in approval.items() if key != "id"}
    return shorten(rest, REASON_CHARS)


def _dead_letter_items(status: Mapping[str, Any]) -> list[NeedsYouItem]:
    count = status.get("dead_letters") or 0
    recent = [letter for letter in status.get("dead_letter_recent") or [] if letter]
    items = [
        NeedsYouItem(
            "dead letter",
            str(letter.get("file", "?")),
            clip(str(letter.get("reason") or "?"), REASON_CHARS),
        )
        for letter in recent
    ]
    if isinstance(count, int) and count > len(recent):
        more = count - len(recent)
        what = "more dead letters" if recent else "dead letters"
        items.append(NeedsYouItem("dead letter", "", f"{more} {what} in dead-letter/"))
    return items


# -- tasks ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskRow:
    id: str
    status: str
    to: str
    sender: str
    attempts: int
    cost: str
    created: str
    summary: str
    flagged: bool


def task_rows(
    tasks: Iterable[TaskRecord], text: str = "", *, tz: tzinfo | None = None
) -> list[TaskRow]:
    """The table's rows, in the given order, keeping those that match `text`.

    `text` matches, case-insensitively, anywhere in the id, status, recipient, sender,
    the body's first line or the failure reason.
    """
    needle = text.strip().lower()
    rows = []
    for task in tasks:
        summary = _first_line(task.body)
        if needle and needle not in _haystack(task, summary):
            continue
        rows.append(
            TaskRow(
                id=task.id,
                status=str(task.status),
                to=task.to,
                sender=task.sender,
                attempts=task.attempts,
                cost=_money(task.cost_usd),
                created=datetime.fromtimestamp(task.created_at, tz).strftime("%m-%d %H:%M:%S"),
                summary=clip(summary, 40),
                flagged=task.needs_attention,
            )
        )
    return rows


def _haystack(task: TaskRecord, summary: str) -> str:
    parts = (task.id, str(task.status), task.to, task.sender, summary, task.failure_reason or "")
    return "\n".join(parts).lower()


def _first_line(body: str) -> str:
    return next((line.strip() for line in body.splitlines() if line.strip()), "")


# -- dependencies ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DependencyView:
    """A task, what it depends on and what depends on it, each with its status."""

    task_id: str
    status: str
    depends_on: tuple[tuple[str, str], ...]
    dependants: tuple[tuple[str, str], ...]


def dependency_view(
    task: TaskRecord,
    dependency_status: Mapping[str, str | None],
    candidates: Iterable[TaskRecord],
) -> DependencyView:
    """`dependency_status` maps each of the task's dependencies to its status (None:
    not on the board); dependants are looked for among `candidates`."""
    depends_on = tuple((dep, dependency_status.get(dep) or "missing") for dep in task.depends_on)
    dependants: dict[str, str] = {}
    for other in candidates:
        if task.id in other.depends_on:
            dependants.setdefault(other.id, str(other.status))
    return DependencyView(task.id, str(task.status), depends_on, tuple(dependants.items()))


def dependency_lines(view: DependencyView | None) -> list[str]:
    if view is None:
        return ["(highlight a task)"]
    lines = [f"{view.task_id} ({view.status})", "depends on:"]
    lines += [f"  {dep}  {status}" for dep, status in view.depends_on] or ["  nothing"]
    lines.append("needed by:")
    lines += [f"  {dep}  {status}" for dep, status in view.dependants] or ["  nothing"]
    return lines


# -- event feed ------------------------------------------------------------------------


class EventFeed:
    """The latest `limit` event lines, oldest first."""

    def __init__(self, limit: int = FEED_LINES, *, tz: tzinfo | None = None) -> None:
        self._lines: deque[str] = deque(maxlen=limit)
        self._tz = tz

    def add(self, event: Mapping[str, Any], *, now: float | None = None) -> str:
        line = format_event(event, now=now, tz=self._tz)
        self._lines.append(line)
        return line

    def note(self, text: str) -> None:
        """A line of the dashboard's own (connected, stopped), not from the daemon."""
        self._lines.append(text)

    @property
    def lines(self) -> Sequence[str]:
        return tuple(self._lines)
