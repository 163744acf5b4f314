"""The daemon side of the control socket (asyncio)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from agent_pool.control import protocol
from agent_pool.errors import AgentPoolError

Handler = Callable[[str, dict[str, Any]], Awaitable[Any]]


class ControlServer:
    def __init__(self, path: Path, handler: Handler) -> None:
        self._path = path
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()  # a socket file left by a crashed daemon (we hold the lock)
        # Create the socket private from the first instant: no window where it is 0755.
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=self._path, limit=protocol.MAX_FRAME
            )
        finally:
            os.umask(old_umask)
        self._path.chmod(0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=2)
        for task in list(self._clients):
            task.cancel()
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    writer.write(protocol.encode(protocol.error("request too large", 2)))
                    break
                if not line:
                    break
                writer.write(protocol.encode(await self._answer(line)))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if task is not None:
                self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            op, args = protocol.parse_request(line)
        except protocol.ProtocolError as exc:
            return protocol.error(str(exc), 2)
        try:
            return protocol.ok(await self._handler(op, args))
        except AgentPoolError as exc:
            return protocol.error(exc.message, exc.exit_code)
