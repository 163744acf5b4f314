"""Finding, identifying and signalling session processes (and their process groups).

A pid alone is not an identity: after a process exits the kernel hands its pid to
someone else. A session is known by (pid, start time), so a restarted daemon never
waits on, or kills, a stranger that inherited a recorded pid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

import psutil

# Start times come from the system clock plus the process's age since boot; a tolerance
# absorbs re-reads of the boot time (it is whole seconds and shifts with clock steps).
# Recycling the same pid within a second would take tens of thousands of forks.
_START_TIME_TOLERANCE: Final = 1.0


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    pid: int
    pgid: int
    start_time: float  # seconds since the epoch; 0.0 = unknown (matches no process)


def identify(pid: int) -> ProcessIdentity | None:
    """The identity of a live process, or None if there is no such process."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return ProcessIdentity(pid, os.getpgid(pid), proc.create_time())
    except (psutil.NoSuchProcess, ProcessLookupError):
        return None
    except (psutil.AccessDenied, PermissionError):
        return None  # not inspectable by us, so not a session we started


def is_alive(identity: ProcessIdentity) -> bool:
    """True if this very process (same pid and start time) runs and is not a zombie."""
    if identity.start_time <= 0:
        return False
    try:
        proc = psutil.Process(identity.pid)
        if abs(proc.create_time() - identity.start_time) >= _START_TIME_TOLERANCE:
            return False  # the pid now belongs to another process
        return proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to every process of a group; False if the group no longer exists."""
    # killpg(0) and killpg(1) would hit our own group or everything: never a session.
    if pgid <= 1:
        raise ValueError(f"refusing to signal process group {pgid}")
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        # Not ours to signal: the group id was recycled by another user's processes.
        return False
    return True


def group_members(pgid: int) -> list[int]:
    """Pids of the live (non-zombie) processes in a process group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []  # the common case after a session ends: one syscall, no process scan
    except PermissionError:
        pass  # someone else's group of that number: the scan below sorts it out
    members: list[int] = []
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) != pgid:
                continue
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                members.append(pid)
        except psutil.AccessDenied:
            members.append(pid)  # in the group but not inspectable: count it as alive
        except (ProcessLookupError, PermissionError, psutil.NoSuchProcess):
            continue
    return members


def find_by_env(key: str, value: str) -> list[int]:
    """Pids of processes whose environment holds `key=value` (other than this one).

    How a restarted daemon finds sessions it spawned but crashed before recording:
    every session carries its task id in `AGENT_POOL_TASK_ID`.
    """
    found: list[int] = []
    me = os.getpid()
    # ad_value: processes we may not inspect (AccessDenied) or zombies report None.
    for proc in psutil.process_iter(["environ"], ad_value=None):
        environ = proc.info.get("environ")
        if proc.pid != me and isinstance(environ, dict) and environ.get(key) == value:
            found.append(proc.pid)
    return found
