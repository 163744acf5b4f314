"""Running tasks as sessions: spawn, supervise to the end, judge, and record on the board.

Every spawn is recorded before the process starts (the task turns active with its log
path), then the process identity right after. Whatever happens to the daemon, the
board and the session log say enough for the next start-up to adopt the session or
account for it (see `reconcile`).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from agent_pool.board import TERMINAL, SessionResult, TaskBoard, TaskRecord, TaskStatus
from agent_pool.config import EffectiveAgentSettings, PoolConfig
from agent_pool.daemon.events import EventLog
from agent_pool.daemon.postoffice import NOTICES_DIR
from agent_pool.daemon.session_tools import SessionTools, read_markers, session_dir_name
from agent_pool.errors import AgentPoolError
from agent_pool.mail import Message, MessageType, new_message_id, post_message
from agent_pool.mail.routing import DAEMON_ADDRESS
from agent_pool.names import ROLE_NAMES
from agent_pool.pool.layout import PoolLayout
from agent_pool.session.argv import build_argv
from agent_pool.session.events import summarize_event
from agent_pool.session.index import IndexRow, append_index_row
from agent_pool.session.outcome import ResultEvent, judge
from agent_pool.session.process import ProcessIdentity, find_by_env, identify, is_alive
from agent_pool.session.prompt import (
    PromptBudgets,
    build_prompt,
    load_prompt_inputs,
    mark_notices_read,
)
from agent_pool.session.runner import LogTail, ProcessRunner, RunningSession, SessionSpec
from agent_pool.session.stream import read_result_event

# Between SIGTERM and SIGKILL when a session must stop (cancel, timeout, drain).
KILL_GRACE = 3.0
BACKOFF_CAP = 3600.0
MAX_HANDOFFS = 2
# Marks an answer the daemon wrote for a session that never called send_response.
FALLBACK_MARK = (
    "[agent-pool: the session ended without calling send_response; this is its final result text]"
)
# How often a running session's log is read for live events, and the longest pause
# between two checks of its timeout and stall limits.
TAIL_POLL = 0.2
MAX_CHECK = 1.0


@dataclass
class Running:
    task: TaskRecord
    session: RunningSession | None = None
    watcher: asyncio.Task[None] | None = None
    log_path: Path = field(default_factory=Path)
    # Why the daemon is stopping it, if it is: decides how the end is recorded.
    stop_reason: str | None = None
    last_tool: str | None = None  # the latest tool call seen in its output, for status
    notices: list[Path] = field(default_factory=list)  # marked read once the task completes
    session_dir: Path | None = None  # per-session scratch files, removed at the end
    token: str | None = None  # its key to the pool's tools, revoked at the end
    cancelled: bool = False
    interrupted: bool = False


class Supervisor:
    def __init__(
        self,
        layout: PoolLayout,
        board: TaskBoard,
        events: EventLog,
        *,
        config: Callable[[], PoolConfig],
        folder_of: Callable[[str], Path],
        knowledge_of: Callable[[str], tuple[Path, Path | None]],
        environ: Mapping[str, str],
        clock: Callable[[], float],
        on_change: Callable[[], None],
        on_mail: Callable[[], None],
        tools: SessionTools,
        runner: ProcessRunner | None = None,
    ) -> None:
        self._layout = layout
        self._board = board
        self._events = events
        self._config = config
        self._folder_of = folder_of
        self._knowledge_of = knowledge_of
        self._environ = dict(environ)
        self._clock = clock
        self._on_change = on_change
        self._on_mail = on_mail
        self._runner = runner or ProcessRunner()
        self._tools = tools
        self.running: dict[str, Running] = {}

    def busy_agents(self) -> set[str]:
        return {entry.task.to for entry in self.running.values()}

    # -- starting ------------------------------------------------------------------

    async def spawn(self, task: TaskRecord) -> None:
        config = self._config()
        folder = self._folder_of(task.to)
        logs = folder / "logs"
        log_path = logs / f"{task.id}.jsonl"
        now = self._clock()
        active = self._board.mark_active(task.id, now, str(log_path))
        entry = Running(task=active, log_path=log_path)
        self.running[task.id] = entry
        self._events.emit("task.started", now, id=task.id, to=task.to, attempt=active.attempts)
        try:
            # Everything from here can meet a full disk or an unwritable folder: that
            # fails this attempt with the reason (and the retry policy), never the daemon.
            session, settings = await self._start_session(entry, active, folder, config)
        except (AgentPoolError, OSError) as exc:
            self._record_end(entry, SessionResult(success=False, exit_code=None, reason=str(exc)))
            return
        entry.session = session
        identity = session.identity
        self._board.record_process(task.id, identity.pid, identity.pgid, identity.start_time)
        timeout = settings.timeout.total_seconds() if settings.timeout else None
        entry.watcher = asyncio.create_task(self._supervise(entry, timeout))

    async def _start_session(
        self, entry: Running, active: TaskRecord, folder: Path, config: PoolConfig
    ) -> tuple[RunningSession, EffectiveAgentSettings]:
        """Write what the session needs (prompt, tools, hooks) and start it."""
        logs = entry.log_path.parent
        logs.mkdir(parents=True, exist_ok=True)
        _keep_previous_attempt(entry.log_path, active.attempts - 1)
        prompt = self._prompt_for(active, folder, config, entry)
        entry.session_dir = self._layout.sessions_dir / session_dir_name(active)
        entry.session_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The exact prompt, for an operator looking at a running session.
        (entry.session_dir / "prompt.md").write_text(prompt, encoding="utf-8")
        files = self._tools.prepare(active, entry.session_dir, config)
        entry.token = files.token
        env = self._session_env(active, config)
        env["AGENT_POOL_SESSION_DIR"] = str(entry.session_dir)
        spec = SessionSpec(
            task_id=active.id,
            argv=build_argv(
                config.runner.claude_bin,
                files.settings,
                mcp_config=files.mcp_config,
                hook_settings=files.hook_settings,
            ),
            cwd=config.project_dir,
            env=env,
            stdin=prompt.encode("utf-8"),
            log_path=entry.log_path,
            stderr_path=logs / f"{active.id}.stderr.log",
        )
        return await self._runner.start(spec), files.settings

    def recover(self, task: TaskRecord, result: SessionResult) -> None:
        """Record a session that ended while no daemon watched, with the same
        bookkeeping as any other end: markers read, the requester answered if the
        session did not, the index row written and the task mail filed."""
        entry = Running(task=task, log_path=Path(task.log_path or ""))
        entry.session_dir = self._layout.sessions_dir / session_dir_name(task)
        self._record_end(entry, result)

    def adopt(self, task: TaskRecord, identity: ProcessIdentity) -> None:
        """Follow a session started by an earlier daemon (it kept running while we were down)."""
        entry = Running(task=task, log_path=Path(task.log_path or ""))
        session_dir = self._layout.sessions_dir / session_dir_name(task)
        if session_dir.is_dir():
            entry.session_dir = session_dir
            entry.token = self._tools.restore(task, session_dir, self._config())
        entry.session = self._runner.adopt(identity)
        self.running[task.id] = entry
        self._events.emit("task.adopted", self._clock(), id=task.id, to=task.to, pid=identity.pid)
        timeout = self._config().settings_for(task.to).timeout
        entry.watcher = asyncio.create_task(
            self._supervise(entry, timeout.total_seconds() if timeout else None)
        )

    def _prompt_for(
        self, task: TaskRecord, folder: Path, config: PoolConfig, entry: Running
    ) -> str:
        knowledge, overlay = self._knowledge_of(task.to)
        loaded = load_prompt_inputs(
            knowledge,
            task,
            agent=task.to,
            contracts_dir=self._layout.contracts,
            role=task.to if task.to in ROLE_NAMES else "expert",
            overlay_dir=overlay,
            inbox_dir=folder / "inbox" / NOTICES_DIR,
            budgets=PromptBudgets.from_defaults(config.defaults),
            max_mail_bytes=config.mail.max_bytes,
        )
        built = build_prompt(loaded.inputs)
        entry.notices = loaded.read_paths(built)
        if built.trimmed:
            # Knowledge outgrew its budget: the researcher should prune it.
            request_curation(folder, built.trimmed, self._clock())
            self._events.emit(
                "curation.requested", self._clock(), agent=task.to, trimmed=built.trimmed
            )
        return built.text

    def _session_env(self, task: TaskRecord, config: PoolConfig) -> dict[str, str]:
        env = dict(self._environ)
        env.update(config.runner.env)
        env.update(
            AGENT_POOL_DIR=str(self._layout.root),
            AGENT_POOL_EXPERT=task.to,
            AGENT_POOL_TASK_ID=task.id,
            AGENT_POOL_ROLE=task.to if task.to in ROLE_NAMES else "expert",
        )
        return env

    # -- watching ------------------------------------------------------------------

    async def _supervise(self, entry: Running, timeout: float | None) -> None:
        session = entry.session
        if session is None:
            return
        tail = LogTail(entry.log_path, poll_interval=TAIL_POLL)
        follower = asyncio.create_task(self._follow(entry, tail))
        try:
            exit_code = await self._wait_within_limits(entry, session, timeout)
            # Whatever the session left running in its group (a dev server, a watcher)
            # must not outlive it: nothing of a finished session stays behind.
            await session.stop(KILL_GRACE)
        finally:
            tail.finish()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(follower, KILL_GRACE)
            tail.close()
        self._record_end(entry, judge_log(entry.log_path, exit_code, entry.stop_reason))

    async def _wait_within_limits(
        self, entry: Running, session: RunningSession, timeout: float | None
    ) -> int | None:
        """Wait for the exit; stop the session on its timeout or when its output stalls."""
        loop = asyncio.get_running_loop()
        stall = self._config().defaults.stall_timeout.total_seconds()
        started = loop.time()
        deadline = started + timeout if timeout else None
        last_size, last_change = -1, started
        waiter = asyncio.ensure_future(session.wait())
        while True:
            now = loop.time()
            check = min(MAX_CHECK, stall / 4)
            if deadline is not None:
                check = min(check, max(0.0, deadline - now))
            done, _ = await asyncio.wait({waiter}, timeout=check)
            if done:
                return waiter.result()
            now = loop.time()
            size = _size(entry.log_path)
            if size != last_size:
                last_size, last_change = size, now
            if deadline is not None and now >= deadline:
                entry.stop_reason = f"timed out after {timeout:g} s"
                break
            if now - last_change >= stall:
                entry.stop_reason = f"stalled: no output for {stall:g} s"
                break
        self._events.emit(
            "session.stopping", self._clock(), id=entry.task.id, reason=entry.stop_reason
        )
        await session.stop(KILL_GRACE)
        return await waiter

    async def _follow(self, entry: Running, tail: LogTail) -> None:
        """Turn the session's stream-json into daemon events as it is written."""
        async for event in tail:
            summary = summarize_event(event)
            if summary is None:
                continue
            kind, data = summary
            if kind == "session.tool_call":
                entry.last_tool = str(data.get("tool"))
            self._events.emit(kind, self._clock(), id=entry.task.id, to=entry.task.to, **data)

    def _record_end(self, entry: Running, result: SessionResult) -> None:
        task = entry.task
        self.running.pop(task.id, None)
        self._tools.revoke(entry.token)
        markers = read_markers(entry.session_dir)
        if entry.session_dir is not None:
            shutil.rmtree(entry.session_dir, ignore_errors=True)
        if markers.denials:
            # The guard refused a write: whatever the session says, the work is not done.
            result = replace(result, success=False, reason=f"write denied: {markers.denials[0]}")
        now = self._clock()
        if entry.cancelled:
            self._events.emit("session.stopped", now, id=task.id, reason="cancelled")
            after = self._board.get(task.id) or task
        elif entry.interrupted:
            after = self._board.requeue_interrupted(task.id, now)
            self._events.emit("task.requeued", now, id=task.id, reason="daemon stopping")
        elif markers.handoff_note is not None and not markers.denials:
            after = self._hand_off(task, markers.handoff_note, result)
        else:
            after = self.finish_task(task, result)
            if result.success and not markers.responded:
                self._answer_for(task, result)
        try:
            self._after_run(entry, after, result)
        except OSError as exc:
            # The board already holds the outcome; only the bookkeeping files failed
            # (a full or read-only logs/ or inbox/). Say so, and keep scheduling.
            self._events.emit(
                "daemon.error", self._clock(), error=f"bookkeeping of {task.id}: {exc}"
            )
        finally:
            self._on_change()

    def _hand_off(self, task: TaskRecord, note: str, usage: SessionResult) -> TaskRecord:
        """The session asked for a fresh one: re-deliver the task with its note.

        The second handoff is the last: an agent that cannot finish in three sessions
        needs a person, not more sessions (each one costs money).
        """
        if task.handoffs + 1 >= MAX_HANDOFFS:
            count = task.handoffs + 1
            reason = f"handed off {count} times without finishing; last note: {note.strip()[:200]}"
            return self.finish_task(task, replace(usage, success=False, reason=reason), final=True)
        now = self._clock()
        record = self._board.mark_handoff(task.id, now, max_handoffs=MAX_HANDOFFS, usage=usage)
        self._post(
            Message(
                id=new_message_id(),
                sender=DAEMON_ADDRESS,
                to=task.to,
                type=MessageType.NOTIFY,
                body=f"Handoff note from the previous session on task {task.id}:\n\n{note}",
            )
        )
        self._events.emit(
            "task.handoff",
            now,
            id=task.id,
            handoffs=record.handoffs,
            needs_attention=record.needs_attention,
        )
        return record

    def _answer_for(self, task: TaskRecord, result: SessionResult) -> None:
        """The session never called send_response: answer with its final text, marked."""
        text = result.result_text or "(the session gave no final text)"
        self._post(
            Message(
                id=new_message_id(),
                sender=task.to,
                to=task.sender,
                type=MessageType.RESPONSE,
                in_reply_to=task.id,
                body=f"{FALLBACK_MARK}\n\n{text}",
            )
        )
        self._events.emit("task.fallback_response", self._clock(), id=task.id, to=task.sender)

    def _post(self, message: Message) -> None:
        try:
            post_message(self._layout.postoffice, message)
            # Route it before the next scheduling pass, not whenever the watcher
            # notices: a handoff note must reach the session that picks the task up.
            self._on_mail()
        except (AgentPoolError, OSError) as exc:
            self._events.emit(
                "daemon.error", self._clock(), error=f"cannot post {message.id}: {exc}"
            )

    def _after_run(self, entry: Running, task: TaskRecord, result: SessionResult) -> None:
        """Bookkeeping of one finished run (`task` as it is now on the board): the index
        row, read notices, done mail."""
        folder = self._folder_of(task.to)
        summary = result.result_text if result.success else result.reason
        append_index_row(
            folder / "logs",
            IndexRow(
                finished_at=self._clock(),
                task_id=task.id,
                sender=task.sender,
                type=str(task.type),
                status="interrupted" if entry.interrupted else str(task.status),
                attempts=task.attempts,
                turns=result.num_turns,
                cost_usd=result.cost_usd,
                duration_ms=result.duration_ms,
                summary=summary or "",
            ),
        )
        if task.status is TaskStatus.COMPLETED:
            mark_notices_read(entry.notices)  # a retry must see the same notices again
        if task.status in TERMINAL:
            # Done mail leaves the inbox, so inboxes hold only what is still to do.
            mark_notices_read([folder / "inbox" / f"{task.id}.md"])

    def finish_task(
        self, task: TaskRecord, result: SessionResult, *, final: bool = False
    ) -> TaskRecord:
        """Record a session's end on the board (retry policy included) and tell why.

        `final` fails the task at once instead of retrying it.
        """
        now = self._clock()
        defaults = self._config().defaults
        outcome = self._board.finish(
            task.id,
            result,
            now,
            max_attempts=1 if final else defaults.max_attempts,
            backoff_base=defaults.retry_backoff.total_seconds(),
            backoff_cap=BACKOFF_CAP,
        )
        record = outcome.record
        if record.status is TaskStatus.COMPLETED:
            self._events.emit("task.completed", now, id=task.id, cost_usd=result.cost_usd)
        elif record.status is TaskStatus.PENDING:
            self._events.emit(
                "task.retry",
                now,
                id=task.id,
                reason=result.reason,
                attempt=record.attempts,
                ready_at=record.ready_at,
            )
        else:
            self._events.emit(
                "task.failed",
                now,
                id=task.id,
                reason=result.reason,
                needs_attention=record.needs_attention,
            )
        if result.cost_usd:
            self._events.emit(
                "cost.updated",
                now,
                id=task.id,
                to=task.to,
                cost_usd=result.cost_usd,
                agent_cost_usd=round(self._board.cost_by_recipient().get(task.to, 0.0), 6),
                pool_cost_usd=round(self._board.total_cost(), 6),
            )
        for unblocked in outcome.unblocked:
            self._events.emit("task.unblocked", now, id=unblocked, cause=task.id)
        for cascaded in outcome.cascaded:
            self._events.emit(
                "task.failed", now, id=cascaded, reason=f"dependency {task.id} failed"
            )
        return record

    # -- stopping ------------------------------------------------------------------

    async def cancel(self, task_id: str) -> None:
        entry = self.running.get(task_id)
        if entry is None:
            return
        entry.cancelled = True
        entry.stop_reason = "cancelled"
        await self._stop(entry)

    async def interrupt_all(self) -> None:
        """Stop every session for a shutdown; their tasks go back to pending, not failed."""
        entries = list(self.running.values())
        for entry in entries:
            entry.interrupted = True
            entry.stop_reason = "daemon stopping"
        await asyncio.gather(*(self._stop(entry) for entry in entries))

    async def wait_all(self, timeout: float) -> bool:
        """Wait for running sessions to end on their own; True if all did in time."""
        watchers = [entry.watcher for entry in self.running.values() if entry.watcher]
        if not watchers:
            return not self.running
        _, pending = await asyncio.wait(watchers, timeout=timeout if timeout > 0 else None)
        return not pending and not self.running

    async def _stop(self, entry: Running) -> None:
        if entry.session is not None:
            await entry.session.stop(KILL_GRACE)
        if entry.watcher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(entry.watcher), KILL_GRACE + 5)


def judge_log(log_path: Path, exit_code: int | None, stop_reason: str | None) -> SessionResult:
    """The truthful verdict on a session, from its exit code and its log's result event."""
    event = read_result_event(log_path) if log_path.name else None
    parsed = ResultEvent.from_event(event) if event else None
    verdict = judge(exit_code, parsed, stop_reason=stop_reason)
    if parsed is None:
        return SessionResult(success=verdict.success, exit_code=exit_code, reason=verdict.reason)
    return SessionResult(
        success=verdict.success,
        exit_code=exit_code,
        reason=verdict.reason,
        result_text=parsed.result,
        cost_usd=parsed.total_cost_usd,
        input_tokens=parsed.input_tokens,
        output_tokens=parsed.output_tokens,
        num_turns=parsed.num_turns,
        duration_ms=parsed.duration_ms,
    )


def request_curation(folder: Path, trimmed: list[str], now: float) -> None:
    """Leave a note for the researcher: this agent's knowledge is over its budget."""
    note = folder / "curation-requested.md"
    lines = [
        f"- {time.strftime('%Y-%m-%d %H:%M', time.gmtime(now))} UTC: {item}" for item in trimmed
    ]
    with note.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _keep_previous_attempt(log_path: Path, attempts_so_far: int) -> None:
    """Move an earlier attempt's log aside so `<task>.jsonl` is always the latest attempt.

    Otherwise a crashed retry could be judged by the previous attempt's result event.
    """
    if log_path.exists():
        # A user's retry starts counting attempts again: never overwrite an older log.
        number = max(attempts_so_far, 1)
        aside = log_path.with_name(f"{log_path.stem}.attempt-{number}.jsonl")
        while aside.exists():
            number += 1
            aside = log_path.with_name(f"{log_path.stem}.attempt-{number}.jsonl")
        log_path.replace(aside)


def find_orphan(task_id: str, pool_dir: Path) -> ProcessIdentity | None:
    """A live session of `task_id` in this pool that no board entry recorded.

    Happens when the daemon died between spawning a process and recording its pid.
    """
    ours = set(find_by_env("AGENT_POOL_DIR", str(pool_dir)))
    for pid in find_by_env("AGENT_POOL_TASK_ID", task_id):
        if pid in ours:
            identity = identify(pid)
            if identity is not None:
                return identity
    return None


__all__ = ["Running", "Supervisor", "find_orphan", "is_alive"]
