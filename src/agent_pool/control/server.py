"""The daemon side of the control socket (asyncio)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_pool.control import protocol
from agent_pool.errors import AgentPoolError

Handler = Callable[[str, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Stream:
    """A handler's answer that turns the connection into a one-way stream.

    `hello` is sent as the response; then every chunk (whole JSON lines) as it comes.
    `close` runs however the stream ends (client gone, daemon stopping).
    """

    hello: Any
    chunks: AsyncIterator[bytes]
    close: Callable[[], None]


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
        if self._clients:
            # Streams were told to end: give them a moment to send what they hold.
            await asyncio.wait(set(self._clients), timeout=1.0)
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
                answer = await self._answer(line)
                if isinstance(answer, Stream):
                    await self._stream(answer, reader, writer)
                    break
                writer.write(protocol.encode(answer))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if task is not None:
                self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, line: bytes) -> dict[str, Any] | Stream:
        try:
            op, args = protocol.parse_request(line)
        except protocol.ProtocolError as exc:
            return protocol.error(str(exc), 2)
        try:
            data = await self._handler(op, args)
        except AgentPoolError as exc:
            return protocol.error(exc.message, exc.exit_code)
        except Exception as exc:  # noqa: BLE001 - a handler's bug must still get an answer
            # Logged with its traceback by the loop, and answered: otherwise the client
            # only sees the connection drop, and every later line on it goes unanswered.
            asyncio.get_running_loop().call_exception_handler(
                {"message": f"control request {op!r} failed", "exception": exc}
            )
            detail = " ".join(str(exc).split())
            return protocol.error(f"internal error during {op!r}: {type(exc).__name__}: {detail}")
        return data if isinstance(data, Stream) else protocol.ok(data)

    @staticmethod
    async def _stream(
        stream: Stream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Write the stream until it ends or the client hangs up.

        A slow client only ever blocks this coroutine in `drain`; the stream itself is
        bounded and counts what it had to drop.
        """
        hung_up = asyncio.ensure_future(reader.read())  # anything more, or EOF, ends it
        try:
            writer.write(protocol.encode(protocol.ok(stream.hello)))
            await writer.drain()
            chunks = aiter(stream.chunks)
            while True:
                following = asyncio.ensure_future(anext(chunks))
                await asyncio.wait({following, hung_up}, return_when=asyncio.FIRST_COMPLETED)
                if not following.done():  # the client left while the stream was quiet
                    following.cancel()
                    break
                try:
                    chunk = following.result()
                except StopAsyncIteration:
                    break
                writer.write(chunk)
                await writer.drain()
        finally:
            hung_up.cancel()
            stream.close()
