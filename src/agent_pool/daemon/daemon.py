"""The daemon: startup → main loop → shutdown.

One asyncio loop does everything that changes state (routing, scheduling, recording
session ends), so the board has a single writer and no locks are needed. Other threads
(the file watcher) only set a flag and wake the loop. Signal handlers only set
`should_exit` (and `force_exit` on the second signal), as in uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shutil
import signal
import sqlite3
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

from agent_pool.board import CancelOutcome, TaskBoard, TaskStatus
from agent_pool.config import PoolConfig, load_config
from agent_pool.control.server import ControlServer, Stream
from agent_pool.daemon.dead_letters import dead_letter_summary, redeliver_for
from agent_pool.daemon.events import EventLog
from agent_pool.daemon.housekeeping import run_upkeep
from agent_pool.daemon.lock import DaemonLock
from agent_pool.daemon.postoffice import SETTLE_SECONDS, PostOffice, RouteReport
from agent_pool.daemon.reload import SETTLE_SECONDS as CONFIG_SETTLE_SECONDS
from agent_pool.daemon.reload import ConfigWatch, Reload
from agent_pool.daemon.session_tools import SessionTools, session_dir_name
from agent_pool.daemon.supervisor import Supervisor, find_orphan, judge_log
from agent_pool.daemon.watcher import FolderWatcher
from agent_pool.errors import AgentPoolError, UsageError
from agent_pool.mail import MessageType
from agent_pool.names import check_message_id
from agent_pool.pool.layout import HomeLayout, PoolLayout
from agent_pool.pool.registry import AgentKind, PoolRegistry, agent_folder, scan_registry
from agent_pool.session.process import ProcessIdentity, is_alive
from agent_pool.session.stream import read_result_event

# When the watcher is dead, scan this often instead of waiting for the reconcile period.
FALLBACK_POLL = 1.0
# After the board refused a write (full disk), try again this much later.
BOARD_RETRY_SECONDS = 5.0


class Daemon:
    def __init__(
        self,
        layout: PoolLayout,
        home: HomeLayout,
        environ: Mapping[str, str],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.layout = layout
        self.home = home
        self.environ = dict(environ)
        self.clock = clock
        self.config: PoolConfig = load_config(layout, home, self.environ)
        self._config_watch = ConfigWatch(
            (layout.pool_toml, home.config_toml),
            lambda: load_config(layout, home, self.environ),
            self.config,
        )
        self.should_exit = False
        self.force_exit = False
        self.started = asyncio.Event()
        self._wake = asyncio.Event()
        self._force = asyncio.Event()
        self._mail_hint = True
        self._next_reconcile = 0.0
        self._lock = DaemonLock(layout.lock_file)
        self._registry: PoolRegistry | None = None
        self._known_agents: set[str] | None = None  # names at the last routing pass
        self._config_recheck_at: float | None = None  # a config file is still being written
        self._registry_stale = True
        self._background: set[asyncio.Future[Any]] = set()
        self._next_upkeep = 0.0  # at start-up, then every [daemon] upkeep_interval
        self._upkeep: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------

    async def run(self) -> None:
        self._lock.acquire()
        try:
            await self.startup()
            try:
                await self.main_loop()
            finally:
                await self.shutdown()
        finally:
            self._lock.release()

    async def startup(self) -> None:
        layout = self.layout
        for folder in (layout.postoffice, layout.dead_letter, layout.runtime_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.events = EventLog(layout.daemon_log, max_bytes=self.config.daemon.log_max_bytes)
        self.board = TaskBoard.open(layout.board_db, archive=layout.board_archive_db)
        self._sweep_session_dirs()
        self.tools = SessionTools(
            layout, self.home, registry=self._current_registry, events=self.events, clock=self.clock
        )
        self.supervisor = Supervisor(
            layout,
            self.board,
            self.events,
            config=lambda: self.config,
            folder_of=self._folder_of,
            knowledge_of=self._knowledge_of,
            environ=self.environ,
            clock=self.clock,
            on_change=self._wake.set,
            on_mail=self._hint,
            tools=self.tools,
        )
        self.postoffice = PostOffice(
            layout,
            self.board,
            inbox_of=lambda name: self._folder_of(name) / "inbox",
            max_bytes=self.config.mail.max_bytes,
            emit=self.events.emit,
        )
        self._reconcile_sessions()
        # Who exists at start-up; anyone new from here on is announced (and gets mail
        # that died waiting for them, which also covers mail dead-lettered before).
        self._known_agents = set(self._scan_registry().names())
        for letter in redeliver_for(self.layout, sorted(self._known_agents)):
            self.events.emit(
                "mail.redelivered", self.clock(), file=letter.file, reason=letter.reason
            )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop)
        # Before the socket: the loop stays free while the tools process loads the SDK,
        # and a request answered then would find mail not yet routed.
        if not await self.tools.start() and self.supervisor.running:
            self.events.emit(
                "tools.port_changed", self.clock(), adopted=list(self.supervisor.running)
            )
        self.control = ControlServer(layout.socket_path, self._handle)
        await self.control.start()

        def hint_from_thread() -> None:
            loop.call_soon_threadsafe(self._hint)

        self.watcher = FolderWatcher()
        self.watcher.add(layout.postoffice, hint_from_thread)

        # pool.toml edits and expert folders coming and going: a routing pass re-reads
        # the config and rescans the registry.
        def topology_from_thread() -> None:
            loop.call_soon_threadsafe(self._topology_hint)

        self.watcher.add(layout.root, topology_from_thread, deletions=True)
        self.watcher.add(layout.experts_dir, topology_from_thread, deletions=True)
        self.watcher.add(self.home.root, topology_from_thread)
        self.watcher.start()
        self.events.emit("daemon.started", self.clock(), pid=os.getpid(), pool=self.config.name)
        self.started.set()

    async def main_loop(self) -> None:
        while not self.should_exit:
            self._wake.clear()
            now = self.clock()
            try:
                if self._mail_hint or now >= self._next_reconcile:
                    self._route(now)
                await self._schedule()
            except sqlite3.OperationalError as exc:
                # A full disk or an unwritable board: nothing was committed (SQLite rolls
                # back), the mail stays in the postoffice. Say so and try again later
                # instead of dying and crash-looping under a service manager.
                self.events.emit("daemon.error", now, error=f"task board: {exc}")
                self._mail_hint = False
                self._next_reconcile = now + BOARD_RETRY_SECONDS
            if self.should_exit:
                break
            if now >= self._next_upkeep and self._upkeep is None:
                self._next_upkeep = math.inf  # set again when this run ends
                self._upkeep = asyncio.create_task(self._run_upkeep())
            timeout = self._sleep_time(self.clock())
            if self._wake.is_set():
                await asyncio.sleep(0)  # let sockets and session ends in before the next turn
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def shutdown(self) -> None:
        now = self.clock()
        self.events.emit("daemon.draining", now, running=len(self.supervisor.running))
        grace = 0.0 if self.force_exit else self.config.daemon.drain_grace.total_seconds()
        if self.supervisor.running and grace > 0:
            drained = asyncio.create_task(self.supervisor.wait_all(grace))
            forced = asyncio.create_task(self._force.wait())
            await asyncio.wait({drained, forced}, return_when=asyncio.FIRST_COMPLETED)
            for task in (drained, forced):
                task.cancel()
        await self.supervisor.interrupt_all()
        if self._upkeep is not None:
            self._upkeep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._upkeep
        self.watcher.stop()
        await self.tools.close()
        self.events.emit("daemon.stopped", self.clock())
        self.events.end_streams()  # subscribers get everything up to here, then EOF
        await self.control.close()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        self.board.close()
        self.events.close()

    def request_stop(self, *, now: bool = False) -> None:
        if self.should_exit or now:
            self.force_exit = True
            self._force.set()
        self.should_exit = True
        self._wake.set()

    # -- routing and scheduling ----------------------------------------------------

    def _topology_hint(self) -> None:
        """Config or expert folders may have changed: rescan at the next routing pass."""
        self._registry_stale = True
        self._hint()

    def _hint(self) -> None:
        self._mail_hint = True
        self._wake.set()

    def _route(self, now: float) -> None:
        full_scan = now >= self._next_reconcile
        self._mail_hint = False
        reload = self._config_watch.check()
        if reload is not None:
            self._apply_reload(reload, now)
        self._next_reconcile = now + self.config.daemon.reconcile_interval.total_seconds()
        if self._config_recheck_at is not None:
            self._next_reconcile = min(self._next_reconcile, self._config_recheck_at)
            self._config_recheck_at = None
        # Listing the experts folder for every mail adds up in a burst: rescan only when
        # the watcher saw a change there, the config changed, or at a periodic reconcile.
        if self._registry is None or self._registry_stale or reload is not None or full_scan:
            self._registry_stale = False
            self._registry = self._scan_registry()
            self._notice_agents(self._registry, now)
        report = self.postoffice.route_all(self._registry, now)
        self._announce_tasks(report, now)
        if report.deferred:
            self._next_reconcile = min(self._next_reconcile, now + SETTLE_SECONDS)
        if report.more:
            self._hint()  # continue after this loop turn has scheduled and served others
        for message, path in report.cancels:
            try:
                outcome = self._cancel_on_board(message.cancels or "", source=message.id)
            except AgentPoolError as exc:
                self.postoffice.dead_letter(path, exc.message, now, report, message.id)
                continue
            path.unlink(missing_ok=True)
            if outcome.previous is TaskStatus.ACTIVE:
                self._spawn_background(self.supervisor.cancel(message.cancels or ""))

    def _apply_reload(self, reload: Reload, now: float) -> None:
        if reload.settling:
            self._config_recheck_at = now + CONFIG_SETTLE_SECONDS
            return
        if reload.config is None:
            self.events.emit("config.rejected", now, error=reload.error)
            return
        self.config = reload.config
        self.postoffice.max_bytes = reload.config.mail.max_bytes
        self.events.set_max_bytes(reload.config.daemon.log_max_bytes)
        self.events.emit("config.reloaded", now, changed=list(reload.changed))

    def _notice_agents(self, registry: PoolRegistry, now: float) -> None:
        """Announce experts that appeared or vanished, and give new ones their dead mail."""
        names = set(registry.names())
        before, self._known_agents = self._known_agents or set(), names
        added = sorted(names - before)
        for name in added:
            self.events.emit("expert.added", now, name=name, kind=str(registry.resolve(name)))
        for letter in redeliver_for(self.layout, added):
            self.events.emit("mail.redelivered", now, file=letter.file, reason=letter.reason)
        removed = sorted(before - names)
        if removed:
            queued = self.board.queued_by_recipient()
            for name in removed:
                self.events.emit("expert.removed", now, name=name, queued=queued.get(name, 0))

    def _announce_tasks(self, report: RouteReport, now: float) -> None:
        """One event per new task, saying where it stands on the board."""
        for message in report.queued:
            if message.type not in (MessageType.TASK, MessageType.QUESTION):
                continue
            record = self.board.get(message.id)
            if record is None:
                continue
            if record.status is TaskStatus.PENDING:
                self.events.emit(
                    "task.queued", now, id=record.id, to=record.to, priority=str(record.priority)
                )
            elif record.status is TaskStatus.BLOCKED:
                waits = dict(self.board.waits_on(record.id))
                self.events.emit("task.blocked", now, id=record.id, to=record.to, waits_on=waits)
            elif record.status is TaskStatus.CANCELLED:
                self.events.emit("task.cancelled", now, id=record.id, by="dependency", cascaded=[])
            elif record.status is TaskStatus.FAILED:
                self.events.emit(
                    "task.failed",
                    now,
                    id=record.id,
                    reason=record.failure_reason,
                    needs_attention=record.needs_attention,
                )

    async def _schedule(self) -> None:
        if self.should_exit:
            return
        registry = self._registry or self._scan_registry()
        busy = self.supervisor.busy_agents()
        room = self.config.defaults.max_concurrent - len(self.supervisor.running)
        if room <= 0:
            return
        idle = [name for name in registry.names() if name not in busy]
        for task in self.board.next_ready(idle, self.clock(), room):
            await self.supervisor.spawn(task)

    async def _run_upkeep(self) -> None:
        try:
            report = await run_upkeep(self.layout, self.board, self.config, self.clock)
            self.events.emit("upkeep.done", self.clock(), **report.to_event())
        except (OSError, AgentPoolError, sqlite3.Error) as exc:
            self.events.emit("daemon.error", self.clock(), error=f"upkeep: {exc}")
        finally:
            self._upkeep = None
            interval = self.config.daemon.upkeep_interval.total_seconds()
            self._next_upkeep = self.clock() + interval
            self._wake.set()

    def _sleep_time(self, now: float) -> float:
        deadline = min(self._next_reconcile, self._next_upkeep)
        if not self.watcher.alive:
            deadline = min(deadline, now + FALLBACK_POLL)
        retry_at = self.board.next_wakeup(now)
        if retry_at is not None:
            deadline = min(deadline, retry_at)
        return max(0.0, deadline - now)

    def _current_registry(self) -> PoolRegistry:
        return self._registry or self._scan_registry()

    def _scan_registry(self) -> PoolRegistry:
        return scan_registry(
            self.layout,
            declared_experts=self.config.experts.keys(),
            shared_experts=self.config.shared.include,
        )

    def _knowledge_of(self, name: str) -> tuple[Path, Path | None]:
        """Where an agent's knowledge lives, and a shared expert's pool overlay."""
        registry = self._registry or self._scan_registry()
        if registry.kind_of(name) is AgentKind.SHARED_EXPERT:
            return self.home.shared_expert_dir(name), self.layout.shared_overlay(name)
        return self._folder_of(name), None

    def _folder_of(self, name: str) -> Path:
        registry = self._registry or self._scan_registry()
        return agent_folder(self.layout, registry, name)

    # -- crash recovery ------------------------------------------------------------

    def _sweep_session_dirs(self) -> None:
        """Remove scratch folders that a crash left behind, except those of sessions
        that may still be running (they are adopted below and still use theirs)."""
        keep = {session_dir_name(task) for task in self.board.active_tasks()}
        self.layout.sessions_dir.mkdir(mode=0o700, exist_ok=True)
        for child in self.layout.sessions_dir.iterdir():
            if child.name not in keep:
                shutil.rmtree(child, ignore_errors=True)

    def _reconcile_sessions(self) -> None:
        """Account for every task an earlier daemon left active.

        A session still running is adopted rather than killed: it costs money, its log
        is intact, and the result it reaches is as good as a fresh one. A session that
        ended while no daemon watched is judged from its log; one that left no result
        was interrupted and goes back to the queue without counting as a failure.
        """
        for task in self.board.active_tasks():
            now = self.clock()
            identity = None
            if task.pid is not None and task.pgid is not None and task.proc_start_time is not None:
                identity = ProcessIdentity(task.pid, task.pgid, task.proc_start_time)
                if not is_alive(identity):
                    identity = None
            else:
                identity = find_orphan(task.id, self.layout.root)
                if identity is not None:
                    self.board.record_process(
                        task.id, identity.pid, identity.pgid, identity.start_time
                    )
            if identity is not None:
                self.supervisor.adopt(task, identity)
                continue
            log_path = Path(task.log_path or "")
            if not log_path.name or read_result_event(log_path) is None:
                self.board.requeue_interrupted(task.id, now)
                self.events.emit("task.requeued", now, id=task.id, reason="interrupted by a crash")
                continue
            # It ended while no daemon watched: its exit code is lost, its log is not.
            self.events.emit("task.recovered", now, id=task.id)
            self.supervisor.recover(task, judge_log(log_path, None, None))

    # -- control -------------------------------------------------------------------

    async def _handle(self, op: str, args: dict[str, Any]) -> Any:
        if op == "ping":
            return {"pid": os.getpid()}
        if op == "status":
            return self.status()
        if op == "stop":
            self.request_stop(now=bool(args.get("now")))
            return {"pid": os.getpid(), "state": "draining"}
        if op == "subscribe":
            return self._subscribe(args)
        task_id = args.get("id")
        if not isinstance(task_id, str):
            raise UsageError(f"{op} needs an 'id' string")
        check_message_id(task_id, "task id")  # one clear error, before the board sees it
        if op == "cancel":
            return await self.cancel_task(task_id, source="control")
        record = self.board.retry(task_id, self.clock())
        self.events.emit("task.retried", self.clock(), id=task_id, by="control")
        self._wake.set()
        return record.to_json()

    def _subscribe(self, args: dict[str, Any]) -> Stream:
        since = args.get("since")
        if since is not None and (isinstance(since, bool) or not isinstance(since, int)):
            raise UsageError("subscribe: 'since' must be an event sequence number (integer)")
        subscription = self.events.subscribe(since)
        hello = {"pid": os.getpid(), "seq": self.events.last_seq, "pool": self.config.name}
        return Stream(
            hello=hello,
            chunks=subscription.batches(),
            close=lambda: self.events.unsubscribe(subscription),
        )

    async def cancel_task(self, task_id: str, *, source: str) -> dict[str, Any]:
        outcome = self._cancel_on_board(task_id, source=source)
        if outcome.previous is TaskStatus.ACTIVE:
            await self.supervisor.cancel(task_id)
        return {"id": task_id, "previous": str(outcome.previous), "cascaded": outcome.cascaded}

    def _cancel_on_board(self, task_id: str, *, source: str) -> CancelOutcome:
        """Cancel on the board at once, so nothing can start it; the caller stops a session."""
        now = self.clock()
        outcome = self.board.cancel(task_id, now)
        self.events.emit("task.cancelled", now, id=task_id, by=source, cascaded=outcome.cascaded)
        self._wake.set()
        return outcome

    def _spawn_background(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Future[Any]) -> None:
        self._background.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self.events.emit("daemon.error", self.clock(), error=str(error))

    def status(self) -> dict[str, Any]:
        registry = self._registry or self._scan_registry()
        queued = self.board.queued_by_recipient()
        running = {entry.task.to: entry for entry in self.supervisor.running.values()}
        costs = self.board.cost_by_recipient()
        tokens = self.board.tokens_by_recipient()
        now = self.clock()
        experts = []
        for name in registry.names():
            entry = running.get(name)
            experts.append(
                {
                    "name": name,
                    "kind": str(registry.resolve(name)),
                    "state": "busy" if entry else "idle",
                    "queued": queued.get(name, 0),
                    "current_task": entry.task.id if entry else None,
                    "last_tool": entry.last_tool if entry else None,
                    "running_s": round(now - (entry.task.started_at or now), 1) if entry else None,
                    "cost_usd": round(costs.get(name, 0.0), 6),
                    "input_tokens": tokens.get(name, (0, 0))[0],
                    "output_tokens": tokens.get(name, (0, 0))[1],
                }
            )
        counts = self.board.counts()
        dead_count, dead_recent = dead_letter_summary(self.layout)
        blocked = [
            {"id": task.id, "to": task.to, "waits_on": dict(self.board.waits_on(task.id))}
            for task in self.board.list_tasks(status=TaskStatus.BLOCKED, limit=50)
        ]
        return {
            "pool": self.config.name,
            "pid": os.getpid(),
            "state": "draining" if self.should_exit else "running",
            "experts": experts,
            "tasks": {str(status): count for status, count in counts.items()},
            "blocked": blocked,
            "needs_attention": [
                {
                    "id": task.id,
                    "to": task.to,
                    "status": str(task.status),
                    "reason": task.failure_reason,
                }
                for task in self.board.needs_attention()
            ],
            "approvals": [],
            "dead_letters": dead_count,
            "dead_letter_recent": [letter.to_json() for letter in dead_recent],
            "cost_usd": round(self.board.total_cost(), 6),
            "cost_today_usd": round(self.board.cost_today(), 6),
            "tokens": {
                "input": sum(pair[0] for pair in tokens.values()),
                "output": sum(pair[1] for pair in tokens.values()),
            },
            "archived_tasks": self.board.archived_count(),
        }
