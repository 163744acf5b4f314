"""The tools process as the daemon sees it: start it, restart it when it dies, stop it.

The daemon serves the pool tools from a child (`tools/pool_server.py`) so that the
`mcp` SDK is never loaded into the daemon. The child is tied to the daemon by a pipe
on its stdin: closing the pipe stops it, and so does the daemon's death (the kernel
closes the pipe), so no tools process outlives its daemon. Nothing here polls: the
daemon awaits the child's exit (a pidfd on Linux) and its one `ready PORT` line.

The child runs in a session of its own: a Ctrl-C at the daemon's terminal reaches
the daemon, which drains its sessions while their tools keep answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from asyncio.subprocess import Process
from collections.abc import Callable
from pathlib import Path
from typing import Final

from agent_pool.errors import AgentPoolError
from agent_pool.tools.endpoint import parse_ready_line

SERVER_MODULE: Final = "agent_pool.tools.pool_server"
READY_TIMEOUT: Final = 60.0  # the SDK import takes ~0.6 s, far more on a loaded machine
CLOSE_GRACE: Final = 5.0  # the child gives in-flight requests 2 s, then exits
_TERM_GRACE: Final = 2.0
# A child that dies sooner than this after starting is restarted after a growing
# delay (up to _MAX_BACKOFF), so a child that cannot run does not spin the daemon.
_STABLE_AFTER: Final = 10.0
_FIRST_BACKOFF: Final = 0.5
_MAX_BACKOFF: Final = 30.0
# Variables that mark a session's processes (tests and orphan search look for them).
_SESSION_ENV_PREFIX: Final = "AGENT_POOL_"

OnRestart = Callable[[int | None, int], None]  # (the dead child's exit code, new port)
OnError = Callable[[str], None]


class ToolsProcessError(AgentPoolError):
    """The tools process could not be started or did not become ready."""


class ToolsProcess:
    """One tools child at a time, on a stable port, restarted whenever it dies."""

    def __init__(
        self,
        pool_root: Path,
        *,
        on_restart: OnRestart,
        on_error: OnError,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        self._pool_root = pool_root.absolute()
        self._on_restart = on_restart
        self._on_error = on_error
        self._ready_timeout = ready_timeout
        self._proc: Process | None = None
        self._port: int | None = None
        self._started_at = 0.0
        self._watcher: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def port(self) -> int | None:
        return self._port

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self, preferred_port: int = 0) -> int:
        """Start the child; returns the port it listens on (`preferred_port` when free)."""
        if self._proc is not None:
            raise RuntimeError("the tools process is already running")
        self._proc, self._port = await self._spawn(preferred_port)
        self._watcher = asyncio.create_task(self._watch(self._proc), name="agent-pool-tools")
        return self._port

    async def close(self) -> int | None:
        """Stop the child (close its stdin, then signals if it lingers); idempotent.

        Returns its exit status (0 when it left on its own), None if none was running.
        """
        self._closing = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        proc, self._proc = self._proc, None
        return await _end(proc, CLOSE_GRACE) if proc is not None else None

    async def _watch(self, proc: Process) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            exit_code = await proc.wait()
            if self._closing:
                return
            if loop.time() - self._started_at >= _STABLE_AFTER:
                failures = 0
            while True:
                if failures:
                    await asyncio.sleep(min(_MAX_BACKOFF, _FIRST_BACKOFF * 2 ** (failures - 1)))
                failures += 1
                try:
                    proc, self._port = await self._spawn(self._port or 0)
                    break
                except (ToolsProcessError, OSError) as exc:
                    self._on_error(f"the tools process could not be restarted: {exc}")
            self._proc = proc
            self._on_restart(exit_code, self._port)

    async def _spawn(self, port: int) -> tuple[Process, int]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SESSION_ENV_PREFIX)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-P",  # a module planted in the working folder cannot replace ours
            "-m",
            SERVER_MODULE,
            "--pool",
            str(self._pool_root),
            "--port",
            str(port),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
            cwd=self._pool_root,
            start_new_session=True,
        )
        try:
            bound = await self._ready_port(proc)
        except BaseException:
            await _end(proc, 0)  # never leave a half-started child behind, even if cancelled
            raise
        self._started_at = asyncio.get_running_loop().time()
        return proc, bound

    async def _ready_port(self, proc: Process) -> int:
        assert proc.stdout is not None  # noqa: S101  # spawned with stdout=PIPE
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), self._ready_timeout)
        except TimeoutError:
            timeout = self._ready_timeout
            raise ToolsProcessError(
                f"the tools process was not ready after {timeout:g} s"
            ) from None
        port = parse_ready_line(line.decode("ascii", "replace"))
        if port is None:
            code = await _end(proc, _TERM_GRACE)
            raise ToolsProcessError(
                f"the tools process exited (status {code}) before it was ready; "
                "its error is in the daemon's output"
            )
        return port


async def _end(proc: Process, grace: float) -> int:
    """Close the child's stdin and give it `grace` seconds; then SIGTERM; then SIGKILL."""
    if proc.stdin is not None:
        proc.stdin.close()
    with contextlib.suppress(TimeoutError):
        return await asyncio.wait_for(proc.wait(), grace)
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    with contextlib.suppress(TimeoutError):
        return await asyncio.wait_for(proc.wait(), _TERM_GRACE)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    return await proc.wait()
