"""One daemon per pool: an OS file lock that dies with its holder.

`flock` is released by the kernel when the holding process exits, however it exits,
so a stale lock from a crashed daemon is simply free: no pid-file guessing. The pid
inside the file is only there to tell a second `start` who holds the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from agent_pool.errors import AgentPoolError


class AlreadyRunningError(AgentPoolError):
    def __init__(self, lock_file: Path, pid: int | None) -> None:
        holder = f"pid {pid}" if pid else "another process"
        super().__init__(f"a daemon is already running for this pool ({holder}; lock {lock_file})")
        self.pid = pid


class DaemonLock:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise AgentPoolError(f"cannot create the lock {self._path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunningError(self._path, read_holder(self._path)) from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as exc:  # a full disk: say so in one line, not a traceback
            os.close(fd)
            raise AgentPoolError(f"cannot write the lock {self._path}: {exc.strerror}") from exc
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


def read_holder(path: Path) -> int | None:
    """The pid written by the daemon holding the lock, if any and if readable."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def is_locked(path: Path) -> bool:
    """True when some process holds the lock (a daemon is running)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
