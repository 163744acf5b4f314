"""`python -P -m agent_pool.tools.pool_server --pool DIR [--port N]`: the tools process.

The daemon starts this as its child so that the `mcp` SDK (with starlette and uvicorn,
~33 MB) lives here and not in the daemon. It serves every role's tools over loopback
HTTP, resolving each request's bearer token from the grant files the daemon writes
(`tools/grants.py`), so it needs nothing else from the daemon.

Its contract with the daemon:
- it binds `--port` when that port is free (the port sessions already hold in their
  MCP config), else any free port, and then writes one line, `ready PORT`, on stdout;
- stdin is a pipe from the daemon that never carries data: when it closes (the daemon
  stopping, or dying), this process stops serving and exits. It waits on that pipe,
  so it costs no CPU while idle;
- SIGINT is ignored (the daemon decides when the tools stop); SIGTERM ends it at once.

Errors before serving are one line on stderr and exit status 2 (bad arguments) or 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final, NoReturn

from agent_pool.errors import AgentPoolError
from agent_pool.pool.layout import PoolLayout
from agent_pool.tools.endpoint import HOST, ready_line
from agent_pool.tools.grants import GrantResolver
from agent_pool.tools.http import HttpServerHandle, build_http_app, serve_http

if TYPE_CHECKING:
    from starlette.types import ASGIApp

# After a crash the previous tools process may still be closing the preferred port.
_PORT_RETRY_SECONDS: Final = 2.0
_PORT_RETRY_STEP: Final = 0.1
_PROG: Final = "python -m agent_pool.tools.pool_server"


class StdinError(AgentPoolError):
    """Stdin is not a pipe: nothing could tell this process when to stop."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{_PROG}: error: {message}\n")  # one line, no usage block


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(prog=_PROG, description="Serve the pool's MCP tools.")
    parser.add_argument("--pool", required=True, type=Path, help="the pool's .agent-pool folder")
    parser.add_argument("--port", type=int, default=0, help="preferred port (0: any)")
    args = parser.parse_args(argv)
    if not 0 <= args.port < 65536:
        parser.error(f"--port {args.port}: not a port number")
    pool = Path(args.pool)
    if not pool.is_absolute() or not pool.is_dir():
        parser.error(f"--pool {pool}: not an absolute path to a folder")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        asyncio.run(serve(PoolLayout(pool), args.port))
    except (AgentPoolError, OSError) as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 1
    return 0


async def serve(layout: PoolLayout, preferred_port: int) -> None:
    """Serve until stdin closes."""
    closed = await _watch_stdin()
    handle = await _bind(build_http_app(GrantResolver(layout).resolve), preferred_port)
    try:
        sys.stdout.write(ready_line(handle.port))
        sys.stdout.flush()
        # Nobody reads our stdout after that line: stray output must not fill the pipe.
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        await closed
    finally:
        await handle.shutdown()


async def _bind(app: ASGIApp, preferred: int) -> HttpServerHandle:
    if preferred:
        deadline = time.monotonic() + _PORT_RETRY_SECONDS
        while True:
            try:
                return await serve_http(app, HOST, preferred)
            except OSError:
                if time.monotonic() >= deadline:
                    break
                await asyncio.sleep(_PORT_RETRY_STEP)  # only at start-up, and bounded
    return await serve_http(app, HOST, 0)


async def _watch_stdin() -> asyncio.Future[None]:
    """A future done once stdin reaches end of file (the daemon closed it, or died)."""
    loop = asyncio.get_running_loop()
    closed: asyncio.Future[None] = loop.create_future()

    class _Watch(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            if not closed.done():
                closed.set_result(None)

    try:
        await loop.connect_read_pipe(_Watch, sys.stdin)
    except ValueError:
        message = "stdin must be a pipe (the daemon stops this process by closing it)"
        raise StdinError(message) from None
    return closed


if __name__ == "__main__":
    sys.exit(main())
