"""What a session gets besides its prompt: the pool's tools and its hooks.

The tools are served over loopback HTTP by a child of the daemon, the tools process
(measured: a stdio MCP server started per session costs ~0.7 s, the SDK import alone
~0.6 s; a running endpoint answers a new session in ~40 ms). The child, not the daemon,
loads the `mcp` SDK (~33 MB). Each session gets its own bearer token, which names its
role, agent and task: its grant file is written before the session starts and deleted
when it ends (`tools/grants.py`), so no session can act as another or outlive itself.
Hooks come as a `--settings` file.

After the session, the markers that the tools and hooks leave in the session folder
say what happened: a response sent, a handoff asked for, writes denied.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from agent_pool.board import TaskRecord
from agent_pool.config import EffectiveAgentSettings, PoolConfig
from agent_pool.daemon.events import EventLog
from agent_pool.errors import AgentPoolError
from agent_pool.hooks.report import (
    DENIALS_LOG,
    HANDOFF_MARKER,
    REQUIRE_STATE_MARKER,
    RESPONDED_MARKER,
)
from agent_pool.hooks.settings import write_hook_settings
from agent_pool.mail import MessageType
from agent_pool.pool.layout import HomeLayout, PoolLayout
from agent_pool.pool.registry import PoolRegistry
from agent_pool.tools.context import ToolBudgets, ToolContext, agent_context
from agent_pool.tools.endpoint import tools_url
from agent_pool.tools.grants import SessionGrant, revoke_grant, sweep_grants, write_grant
from agent_pool.tools.registry import SERVER_NAME, allowed_tool_names
from agent_pool.tools.server_process import ToolsProcess


@dataclass(frozen=True)
class SessionFiles:
    token: str
    mcp_config: Path
    hook_settings: Path
    settings: EffectiveAgentSettings  # with the pool's tools added to the allowed ones


@dataclass(frozen=True)
class SessionMarkers:
    responded: bool
    handoff_note: str | None
    denials: list[str]


class SessionTools:
    def __init__(
        self,
        layout: PoolLayout,
        home: HomeLayout,
        *,
        registry: Callable[[], PoolRegistry],
        events: EventLog | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._layout = layout
        self._home = home
        self._registry = registry
        self._events = events
        self._clock = clock
        self._live: set[str] = set()  # tokens of the sessions running now
        self._process = ToolsProcess(
            layout.root, on_restart=self._restarted, on_error=self._restart_failed
        )

    async def start(self) -> bool:
        """Start the tools process; True if the previous daemon's port could be reused.

        Sessions adopted after a crash still hold the old URL in their MCP config, so
        the endpoint comes back on the same port whenever that port is free. Grants
        of sessions that are not running any more are deleted first (adopted sessions
        had theirs written again by `restore`).
        """
        sweep_grants(self._layout, self._live)
        previous = _read_port(self._layout.tools_port_file)
        port = await self._process.start(previous or 0)
        self._layout.tools_port_file.write_text(f"{port}\n", encoding="ascii")
        return port == previous

    def restore(self, task: TaskRecord, session_dir: Path, config: PoolConfig) -> str | None:
        """Accept again the token of a session adopted after a crash; returns it."""
        try:
            data = json.loads((session_dir / "mcp.json").read_text(encoding="utf-8"))
            header = data["mcpServers"][SERVER_NAME]["headers"]["Authorization"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        token = str(header).removeprefix("Bearer ")
        try:
            self._grant(token, self._context_for(task, session_dir, config))
        except (AgentPoolError, OSError):
            return None  # e.g. its agent is gone: the session runs on without the tools
        return token

    async def close(self) -> None:
        await self._process.close()

    @property
    def url(self) -> str:
        port = self._process.port
        if port is None:
            raise RuntimeError("the tools endpoint is not running")
        return tools_url(port)

    def prepare(self, task: TaskRecord, session_dir: Path, config: PoolConfig) -> SessionFiles:
        context = self._context_for(task, session_dir, config)
        token = secrets.token_urlsafe(32)
        self._grant(token, context)
        if task.type is MessageType.TASK:
            # The Stop hook insists, once, that a task session leaves its state current.
            (session_dir / REQUIRE_STATE_MARKER).touch()
        mcp_config = session_dir / "mcp.json"
        server = {"type": "http", "url": self.url, "headers": {"Authorization": f"Bearer {token}"}}
        _write_private(mcp_config, {"mcpServers": {SERVER_NAME: server}})
        declared = config.experts.get(task.to)
        hook_settings = write_hook_settings(
            session_dir,
            python=sys.executable,
            pool_dir=self._layout.root,
            project_dir=config.project_dir,
            owns=declared.owns if declared else (),
        )
        base = config.settings_for(task.to)
        tools = (*base.allowed_tools, *allowed_tool_names(context.role))
        return SessionFiles(token, mcp_config, hook_settings, replace(base, allowed_tools=tools))

    def _context_for(self, task: TaskRecord, session_dir: Path, config: PoolConfig) -> ToolContext:
        """Who a session's token speaks for: its agent, role, task and scratch folder."""
        return agent_context(
            self._layout,
            self._home,
            self._registry(),
            task.to,
            budgets=ToolBudgets.from_config(config),
            task_id=task.id,
            task_sender=task.sender,
            session_dir=session_dir,
        )

    def _grant(self, token: str, context: ToolContext) -> None:
        write_grant(self._layout, token, SessionGrant.of(self._layout, context, self._home))
        self._live.add(token)

    def revoke(self, token: str | None) -> None:
        if token is not None:
            revoke_grant(self._layout, token)
            self._live.discard(token)

    def _restarted(self, exit_code: int | None, port: int) -> None:
        previous = _read_port(self._layout.tools_port_file)
        try:
            self._layout.tools_port_file.write_text(f"{port}\n", encoding="ascii")
        except OSError as exc:
            self._emit("daemon.error", error=f"cannot record the tools port: {exc}")
        self._emit("tools.restarted", exit_code=exit_code, port=port, previous_port=previous)

    def _restart_failed(self, message: str) -> None:
        self._emit("daemon.error", error=message)

    def _emit(self, type_: str, **data: object) -> None:
        if self._events is not None:
            self._events.emit(type_, self._clock(), **data)


def read_markers(session_dir: Path | None) -> SessionMarkers:
    if session_dir is None:
        return SessionMarkers(responded=False, handoff_note=None, denials=[])
    handoff = session_dir / HANDOFF_MARKER
    denials = []
    try:
        for line in (session_dir / DENIALS_LOG).read_text(encoding="utf-8").splitlines():
            try:
                denials.append(str(json.loads(line).get("reason") or "denied"))
            except (ValueError, AttributeError):
                denials.append("denied (unreadable record)")
    except FileNotFoundError:
        pass
    return SessionMarkers(
        responded=(session_dir / RESPONDED_MARKER).exists(),
        handoff_note=handoff.read_text(encoding="utf-8") if handoff.exists() else None,
        denials=denials,
    )


def _read_port(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else None


def session_dir_name(task: TaskRecord) -> str:
    return f"{task.id}-{task.attempts}"


def _write_private(path: Path, data: object) -> None:
    # The file holds the session's token: readable by this user only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
