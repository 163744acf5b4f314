"""The `agent-pool watch` dashboard (textual).

Two worker threads feed the screen: one follows the daemon's event stream, the other
reads status and the board, whenever an event arrives (at most a few times a second)
and every couple of seconds anyway, so the screen stays true if the stream drops
events or the connection. When the daemon stops, the last view stays on screen under
a "daemon stopped" header until it comes back.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import replace
from datetime import tzinfo
from typing import Any, ClassVar, Final

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable, Footer, Input, RichLog, Static

from agent_pool.errors import AgentPoolError
from agent_pool.pool.layout import PoolLayout
from agent_pool.watch.follower import RECONNECT_SECONDS, EventFollower
from agent_pool.watch.messages import (
    ActionDone,
    SnapshotReady,
    StreamConnected,
    StreamEvent,
    StreamLost,
    TranscriptReady,
)
from agent_pool.watch.source import PoolSource, Query, Snapshot, send_action, transcript_lines
from agent_pool.watch.transcript_screen import TranscriptScreen
from agent_pool.watch.view import (
    FEED_LINES,
    EventFeed,
    ExpertRow,
    NeedsYouItem,
    TaskRow,
    dependency_lines,
    expert_rows,
    header_text,
    needs_you,
    next_status_filter,
    task_rows,
)

REFRESH_SECONDS: Final = 2.0
MIN_REFRESH_GAP: Final = 0.3  # events can come by the hundred: refresh at most ~3/s
_STATUS_STYLES: Final = {
    "active": "bold green",
    "failed": "bold red",
    "blocked": "yellow",
    "awaiting_approval": "bold magenta",
    "completed": "dim",
    "cancelled": "dim",
}
_NEEDS_STYLES: Final = {"failed": "red", "attention": "yellow", "approval": "magenta"}

EXPERT_COLUMNS: Final = ("EXPERT", "KIND", "STATE", "QUEUED", "TASK", "LAST TOOL", "TIME", "COST")
# The summary early: ids are long, and what a task is about matters more than who
# sent it (nearly always the concierge).
TASK_COLUMNS: Final = ("ID", "STATUS", "TO", "SUMMARY", "TRIES", "COST", "CREATED", "FROM")

Cells = DataTable[Text]


class _Sink:
    """Hands the follower's callbacks to the app as messages (from its thread)."""

    def __init__(self, app: WatchApp) -> None:
        self._app = app

    def connected(self, hello: dict[str, Any]) -> None:
        self._app.deliver(StreamConnected(hello))

    def event(self, event: dict[str, Any]) -> None:
        self._app.deliver(StreamEvent(event))

    def disconnected(self, reason: str) -> None:
        self._app.deliver(StreamLost(reason))


class WatchApp(App[None]):
    TITLE = "agent-pool watch"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("c", "cancel_task", "Cancel task"),
        Binding("r", "retry_task", "Retry task"),
        Binding("t", "transcript", "Transcript"),
        Binding("s", "cycle_status", "Status filter"),
        Binding("slash", "filter_text", "Filter"),
        Binding("escape", "close_filter", "Clear filter", show=False),
    ]
    CSS = """
    #header { height: 1; padding: 0 1; background: $primary; color: $text; text-style: bold; }
    #header.stopped { background: $error; }
    #main { height: 1fr; }
    #left { width: 3fr; }
    #right { width: 2fr; }
    .section { height: 1; padding: 0 1; text-style: bold; background: $boost; }
    #experts { height: auto; max-height: 12; }
    #tasks { height: 1fr; }
    #filter { display: none; }
    #filter.shown { display: block; }
    #needs-box { height: 1fr; padding: 0 1; }
    #deps { height: auto; max-height: 14; padding: 0 1; }
    #feed { height: 10; border-top: solid $secondary; }
    """

    def __init__(
        self,
        layout: PoolLayout,
        *,
        refresh_every: float = REFRESH_SECONDS,
        reconnect_every: float = RECONNECT_SECONDS,
        tz: tzinfo | None = None,
    ) -> None:
        super().__init__()
        self.layout = layout
        self.feed = EventFeed(tz=tz)
        self.snapshot: Snapshot | None = None
        self.last_status: dict[str, Any] | None = None
        self.daemon_stopped = False
        self.needs: list[NeedsYouItem] = []
        self.last_action: str | None = None
        self._tz = tz
        self._refresh_every = refresh_every
        self._follower = EventFollower(layout.socket_path, retry_every=reconnect_every)
        self._query = Query()
        self._text_filter = ""
        self._status_at = 0.0
        self._kick = threading.Event()  # "refresh now"; the poller throttles it
        self._shutting_down = threading.Event()
        self._task_rows: list[TaskRow] = []
        self._expert_rows: list[ExpertRow] = []

    # -- layout and lifecycle ----------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(Text(header_text(None, stopped=False)), id="header")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield Static("Experts", classes="section")
                yield Cells(id="experts", cursor_type="none")
                yield Static(id="tasks-title", classes="section")
                yield Input(placeholder="filter tasks: enter keeps, escape clears", id="filter")
                yield Cells(id="tasks", cursor_type="row")
            with Vertical(id="right"):
                yield Static("Needs you", classes="section")
                with VerticalScroll(id="needs-box"):
                    yield Static(id="needs")
                yield Static("Dependencies", classes="section")
                yield Static(id="deps")
        yield RichLog(id="feed", max_lines=FEED_LINES, markup=False)
        yield Footer()

    def on_mount(self) -> None:
        experts = self._table("experts")
        experts.add_columns(*EXPERT_COLUMNS)
        experts.can_focus = False
        tasks = self._table("tasks")
        tasks.add_columns(*TASK_COLUMNS)
        tasks.focus()
        self._render_tasks_title()
        self._render_deps()
        self.set_interval(1.0, self._render_experts)  # running times count on between reads
        self._poll()
        self._follow()

    def on_unmount(self) -> None:
        self._stop_workers()

    def _stop_workers(self) -> None:
        """Let both threads end: the app's exit waits for its worker threads."""
        self._shutting_down.set()
        self._kick.set()
        self._follower.stop()

    def deliver(self, message: Message) -> None:
        """Post from a worker thread; quietly dropped once the app is closing."""
        if self._shutting_down.is_set():
            return
        with contextlib.suppress(RuntimeError):  # the event loop closed meanwhile
            self.post_message(message)

    # -- workers ---------------------------------------------------------------------

    @work(thread=True, group="poll", name="status and board reader")
    def _poll(self) -> None:
        source = PoolSource(self.layout)
        try:
            while not self._shutting_down.is_set():
                self._kick.clear()
                self.deliver(SnapshotReady(source.snapshot(self._query)))
                self._shutting_down.wait(MIN_REFRESH_GAP)
                self._kick.wait(self._refresh_every)
        finally:
            source.close()

    @work(thread=True, group="events", name="event stream follower")
    def _follow(self) -> None:
        self._follower.run(_Sink(self))

    @work(thread=True, group="actions", name="cancel or retry")
    def _send(self, op: str, task_id: str) -> None:
        try:
            self.deliver(ActionDone(send_action(self.layout, op, task_id), failed=False))
        except AgentPoolError as exc:
            self.deliver(ActionDone(f"{op} {task_id}: {exc.message}", failed=True))
        self._kick.set()

    @work(thread=True, group="transcript", exclusive=True, name="transcript reader")
    def _load_transcript(self, task_id: str) -> None:
        try:
            lines = transcript_lines(self.layout, task_id)
        except AgentPoolError as exc:
            lines = [exc.message]
        except OSError as exc:
            lines = [f"cannot read the log of {task_id}: {exc.strerror or exc}"]
        self.deliver(TranscriptReady(task_id, lines))

    # -- messages from the workers -----------------------------------------------------

    @on(SnapshotReady)
    def _snapshot_ready(self, message: SnapshotReady) -> None:
        snap = message.snapshot
        self.snapshot = snap
        if snap.status is not None:
            self.last_status, self._status_at = snap.status, snap.taken_at
        self.daemon_stopped = not snap.daemon_running
        self._render_header()
        self._render_experts()
        if snap.board_problem is None:
            self._render_tasks()
        self.needs = needs_you(self.last_status, snap.failed)
        self._render_needs()
        self._render_deps()

    @on(StreamConnected)
    def _stream_connected(self, message: StreamConnected) -> None:
        pool, pid = message.hello.get("pool", "?"), message.hello.get("pid", "?")
        self._note(f"-- connected to the daemon of pool {pool} (pid {pid})")
        self._kick.set()

    @on(StreamEvent)
    def _stream_event(self, message: StreamEvent) -> None:
        line = self.feed.add(message.event, now=time.time())
        self.query_one("#feed", RichLog).write(Text(line))
        self._kick.set()

    @on(StreamLost)
    def _stream_lost(self, message: StreamLost) -> None:
        self._note(f"-- {message.reason}; trying to reconnect")
        self._kick.set()

    @on(ActionDone)
    def _action_done(self, message: ActionDone) -> None:
        self.last_action = message.text
        self._note(f"-- {message.text}")
        self.notify(message.text, severity="error" if message.failed else "information")

    @on(TranscriptReady)
    def _transcript_ready(self, message: TranscriptReady) -> None:
        if not isinstance(self.screen, TranscriptScreen):
            self.push_screen(TranscriptScreen(message.task_id, message.lines))

    def _note(self, text: str) -> None:
        self.feed.note(text)
        self.query_one("#feed", RichLog).write(Text(text, style="italic"))

    # -- user actions ----------------------------------------------------------------

    def action_cancel_task(self) -> None:
        self._act("cancel")

    def action_retry_task(self) -> None:
        self._act("retry")

    def _act(self, op: str) -> None:
        task_id = self.highlighted_task()
        if task_id is None:
            self.notify("no task is highlighted", severity="warning")
            return
        self._send(op, task_id)

    def action_transcript(self) -> None:
        task_id = self.highlighted_task()
        if task_id is None:
            self.notify("no task is highlighted", severity="warning")
            return
        self._load_transcript(task_id)

    @on(DataTable.RowSelected, "#tasks")
    def _task_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self._load_transcript(event.row_key.value)

    @on(DataTable.RowHighlighted, "#tasks")
    def _task_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value != self._query.selected:
            self._query = replace(self._query, selected=event.row_key.value)
            self._render_deps()
            self._kick.set()

    def action_cycle_status(self) -> None:
        self._query = replace(self._query, status=next_status_filter(self._query.status))
        self._render_tasks_title()
        self._kick.set()

    def action_filter_text(self) -> None:
        field = self.query_one("#filter", Input)
        field.add_class("shown")
        field.focus()

    def action_close_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.value = ""  # Input.Changed re-renders the table
        field.remove_class("shown")
        self._table("tasks").focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._text_filter = event.value
        self._render_tasks()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            event.input.remove_class("shown")
        self._table("tasks").focus()

    def highlighted_task(self) -> str | None:
        table = self._table("tasks")
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key
        return key.value

    # -- rendering ---------------------------------------------------------------------

    def _table(self, name: str) -> Cells:
        table: Cells = self.query_one(f"#{name}", DataTable)
        return table

    def _render_header(self) -> None:
        text = header_text(self.last_status, stopped=self.daemon_stopped)
        snap = self.snapshot
        if snap is not None and snap.daemon_running and snap.problem:
            text += f" · status: {snap.problem}"
        if snap is not None and snap.board_problem:
            text += f" · board: {snap.board_problem}"
        header = self.query_one("#header", Static)
        header.update(Text(text))
        header.set_class(self.daemon_stopped, "stopped")

    def _render_experts(self) -> None:
        # A stopped daemon's clocks stop with it.
        now = self._status_at if self.daemon_stopped else time.time()
        rows = expert_rows(self.last_status, fetched_at=self._status_at, now=now)
        if rows == self._expert_rows:
            return
        self._expert_rows = rows
        table = self._table("experts")
        table.clear()
        for row in rows:
            busy = row.state == "busy"
            table.add_row(
                Text(row.name),
                Text(row.kind),
                Text(row.state, style="bold green" if busy else ""),
                Text(str(row.queued)),
                Text(row.current_task),
                Text(row.last_tool),
                Text(row.elapsed),
                Text(row.cost),
                key=row.name,
            )

    def _render_tasks(self) -> None:
        snap = self.snapshot
        if snap is None or snap.query.status != self._query.status:
            return  # read for another status filter; the next snapshot is on its way
        rows = task_rows(snap.tasks, self._text_filter, tz=self._tz)
        self._render_tasks_title(len(rows))
        if rows == self._task_rows:
            return
        self._task_rows = rows
        table = self._table("tasks")
        selected = self._query.selected
        table.clear()
        for row in rows:
            flag = " !" if row.flagged else ""
            table.add_row(
                Text(row.id),
                Text(row.status + flag, style=_STATUS_STYLES.get(row.status, "")),
                Text(row.to),
                Text(row.summary),
                Text(str(row.attempts)),
                Text(row.cost),
                Text(row.created),
                Text(row.sender),
                key=row.id,
            )
        ids = [row.id for row in rows]
        if selected in ids:
            table.move_cursor(row=ids.index(selected), animate=False)
        else:
            self._query = replace(self._query, selected=ids[0] if ids else None)
            self._render_deps()

    def _render_tasks_title(self, shown: int | None = None) -> None:
        status = self._query.status or "all"
        text = f" · text {self._text_filter!r}" if self._text_filter else ""
        count = f" · {shown} shown" if shown is not None else ""
        title = f"Tasks · status {status}{text}{count}  (s: status, /: filter, enter: transcript)"
        self.query_one("#tasks-title", Static).update(Text(title))

    def _render_needs(self) -> None:
        text = Text()
        for item in self.needs:
            text.append(item.line() + "\n", style=_NEEDS_STYLES.get(item.kind, ""))
        if not self.needs:
            text.append("nothing needs you", style="dim")
        self.query_one("#needs", Static).update(text)

    def _render_deps(self) -> None:
        snap = self.snapshot
        selected = self._query.selected
        view = snap.dependency if snap is not None else None
        if view is not None and view.task_id != selected:
            view = None
        lines = dependency_lines(view) if view is not None or selected is None else []
        self.query_one("#deps", Static).update(Text("\n".join(lines) or f"{selected} …"))
