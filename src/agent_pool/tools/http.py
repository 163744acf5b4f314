"""The pool tools over streamable HTTP on 127.0.0.1 (served by the tools process).

A session's MCP config names `http://127.0.0.1:PORT/mcp` with an
`Authorization: Bearer <token>` header; the daemon makes one token per session and
revokes it when the session ends (the tools process resolves tokens from the grant
files of `tools/grants.py`). The token says who calls (role, agent, task):
every HTTP request is checked before any MCP code sees it, and a missing, unknown
or revoked token gets 401. The token's role picks the MCP server (one per role,
each offering that role's tools), and every tool call resolves its ToolContext from
the same token again.

Stateless mode with JSON responses: a request is self-contained, so the server keeps
nothing per session (no session ids to expire, nothing to clean up on revoke).

Serving the app is `serve_http`: uvicorn inside the caller's event loop, on a socket
bound up front (so port 0 works and a bind error is raised at once), with signal
handling left to the host process.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Final

import uvicorn
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from agent_pool.errors import AgentPoolError
from agent_pool.tools.context import ROLES, ToolContext
from agent_pool.tools.endpoint import MCP_PATH
from agent_pool.tools.server import bearer_token, build_server

# Called on the event loop and from tool worker threads: must be quick and thread-safe.
TokenResolver = Callable[[str], ToolContext | None]
_GRACEFUL_SHUTDOWN: Final = 2.0  # seconds in-flight requests get at shutdown


class HttpServerError(AgentPoolError):
    """The MCP HTTP server could not start or stopped unexpectedly."""


def build_http_app(resolve_token: TokenResolver) -> Starlette:
    """The ASGI app serving every role's tools at `/mcp`, for bearer tokens only."""

    def context_for(token: str | None) -> ToolContext | None:
        return resolve_token(token) if token else None

    managers: dict[str, StreamableHTTPSessionManager] = {}
    for role in ROLES:
        server = build_server(role, context_for)
        # Creates the server's session manager (with DNS-rebinding protection for
        # 127.0.0.1); the gate below calls it directly instead of using this app.
        server.streamable_http_app(stateless_http=True, json_response=True, host="127.0.0.1")
        managers[role] = server.session_manager

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for manager in managers.values():
                await stack.enter_async_context(manager.run())
            yield

    gate = _TokenGate(context_for, managers)
    return Starlette(routes=[Route(MCP_PATH, endpoint=gate)], lifespan=lifespan)


class _TokenGate:
    """Refuses requests without a valid token; hands the rest to the token's role server."""

    def __init__(
        self,
        context_for: Callable[[str | None], ToolContext | None],
        managers: Mapping[str, StreamableHTTPSessionManager],
    ) -> None:
        self._context_for = context_for
        self._managers = managers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = self._context_for(bearer_token(Headers(scope=scope)))
        if ctx is None:
            refusal = JSONResponse(
                {
                    "error": "invalid_token",
                    "error_description": "missing, unknown or revoked token",
                },
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="agent-pool", error="invalid_token"'},
            )
            await refusal(scope, receive, send)
            return
        await self._managers[ctx.role].handle_request(scope, receive, send)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn as a task of someone else's loop: it reports readiness, owns no signals."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()
        self.exit_requested = asyncio.Event()

    def request_exit(self) -> None:
        self.should_exit = True
        self.exit_requested.set()

    async def main_loop(self) -> None:
        # uvicorn's own loop wakes every 0.1 s (to refresh its Date header); an idle
        # tools process must not wake at all, so this one just waits to be told to stop.
        await self.on_tick(0)
        await self.exit_requested.wait()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the host process handles (or ignores) SIGINT and SIGTERM itself

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@dataclass
class HttpServerHandle:
    """A running server: where it listens, and how to stop it."""

    host: str
    port: int
    _server: _EmbeddedServer
    _task: asyncio.Task[None]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{MCP_PATH}"

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Stop accepting, let in-flight requests finish (bounded), then stop; idempotent."""
        self._server.request_exit()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            self._server.force_exit = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def serve_http(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> HttpServerHandle:
    """Start serving `app` in the running loop; returns once it accepts connections.

    `port=0` picks a free port (see `handle.port`). Raises OSError when the address
    cannot be bound, HttpServerError when the app fails to start.
    """
    sock = _listening_socket(host, port)
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=int(_GRACEFUL_SHUTDOWN),
    )
    server = _EmbeddedServer(config)
    task = asyncio.create_task(_serve(server, sock), name=f"agent-pool-mcp-http-{port}")
    ready = asyncio.create_task(server.ready.wait())
    try:
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ready.cancel()
        if not server.ready.is_set():
            server.request_exit()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if not server.ready.is_set():
        raise HttpServerError("the MCP HTTP server stopped before it was ready")
    return HttpServerHandle(host, sock.getsockname()[1], server, task)


def _listening_socket(host: str, port: int) -> socket.socket:
    # Created with proto=IPPROTO_TCP, as asyncio itself would: asyncio sets TCP_NODELAY
    # only on connections of such sockets, and without it every keep-alive request
    # waits ~40 ms for a delayed ACK.
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen()
    except BaseException:
        sock.close()
        raise
    return sock


async def _serve(server: _EmbeddedServer, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:
        # uvicorn exits the process when the app's start-up fails: not ours to exit.
        raise HttpServerError(f"the MCP HTTP server failed to start (status {exc.code})") from None
    finally:
        sock.close()
