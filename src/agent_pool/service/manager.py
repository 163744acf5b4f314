"""Install, uninstall and report the service of one pool, on the current platform.

The service file is written first and stays written whatever the service manager
then says: when the manager cannot be reached (no user systemd bus in a container,
no GUI login on a Mac) the report carries the exact commands to run later.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from agent_pool.control.client import DaemonNotRunningError, request
from agent_pool.errors import AgentPoolError
from agent_pool.fsutil import write_file_atomic
from agent_pool.pool.layout import PoolLayout
from agent_pool.service.backends import Command, ServiceBackend
from agent_pool.service.commands import QUERY_TIMEOUT_S
from agent_pool.service.units import SECRETS_FILE_NAME, ServiceSpec, captured_environment

PING_TIMEOUT_S = 2.0


class ServiceFileExistsError(AgentPoolError):
    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path} already exists and differs from this pool's service file; "
            "replace it with --force"
        )
        self.path = path


class ServiceCommandError(AgentPoolError):
    """A service manager command failed; the service file is left as it was written."""

    def __init__(self, command: Command, reason: str, path: Path) -> None:
        super().__init__(f"`{shlex.join(command)}` failed: {reason} (the file {path} stays)")
        self.command = command
        self.reason = reason


class Outcome(Enum):
    NOT_STARTED = "not-started"  # --no-start
    UNREACHABLE = "unreachable"  # the manager did not answer; next_steps says what to run
    STARTED = "started"
    ALREADY_RUNNING = "already-running"  # the service was running: enabled, left as it is
    DEFERRED = "deferred"  # the daemon runs outside the service: enabled, not started


@dataclass(frozen=True)
class InstallReport:
    name: str
    path: Path
    written: bool  # False: the same file was already there
    outcome: Outcome
    ran: list[Command] = field(default_factory=list)
    next_steps: list[Command] = field(default_factory=list)
    unreachable: str | None = None
    daemon_pid: int | None = None


@dataclass(frozen=True)
class UninstallReport:
    name: str
    path: Path
    removed: bool
    ran: list[Command] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unreachable: str | None = None


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    kind: str
    path: Path
    installed: bool
    up_to_date: bool | None  # None when not installed
    unreachable: str | None
    state: str | None
    enabled: str | None
    daemon_pid: int | None
    daemon_problem: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.name,
            "kind": self.kind,
            "file": str(self.path),
            "installed": self.installed,
            "up_to_date": self.up_to_date,
            "manager": {
                "reachable": self.unreachable is None,
                "problem": self.unreachable,
                "state": self.state,
                "enabled": self.enabled,
            },
            "daemon": {
                "running": self.daemon_pid is not None,
                "pid": self.daemon_pid,
                "problem": self.daemon_problem,
            },
        }


def service_spec(
    layout: PoolLayout,
    *,
    pool_name: str,
    project_dir: Path,
    drain_grace_s: float,
    environ: Mapping[str, str],
    cwd: Path,
    python: str = sys.executable,
) -> ServiceSpec:
    """The spec of `layout`'s service, with what it needs captured from this shell."""
    if not python:
        raise AgentPoolError("cannot tell which python runs agent-pool (sys.executable is empty)")
    environment = captured_environment(environ, cwd)
    # Secrets sit beside the user's config: in AGENT_POOL_HOME when that is set, else
    # in ~/.agent-pool, which the unit names as `%h/.agent-pool` for systemd to resolve.
    secrets = (
        Path(environment["AGENT_POOL_HOME"]) / SECRETS_FILE_NAME
        if "AGENT_POOL_HOME" in environment
        else None
    )
    return ServiceSpec(
        pool_dir=layout.root.resolve(),
        pool_name=pool_name,
        python=Path(python),  # not resolved: a venv's python is a symlink that matters
        project_dir=project_dir.resolve(),
        drain_grace_s=drain_grace_s,
        environment=environment,
        secrets_file=secrets,
    )


def install(
    spec: ServiceSpec, backend: ServiceBackend, *, force: bool, start: bool
) -> InstallReport:
    """Write the service file, then (with `start`) register and start the service."""
    name = spec.name
    path = backend.file_path(name)
    content = backend.render(spec)
    existing = _read(path)
    if existing is not None and existing != content and not force:
        raise ServiceFileExistsError(path)
    written = existing != content
    try:
        if written:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_file_atomic(path, content)
        # launchd opens its log there before the daemon could create the folder.
        PoolLayout(spec.pool_dir).runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise AgentPoolError(f"cannot write {path}: {exc.strerror or exc}") from exc
    report = InstallReport(name, path, written, Outcome.NOT_STARTED)
    start_commands = backend.start_commands(name, path)
    if not start:
        return replace(report, next_steps=start_commands)
    unreachable = backend.unreachable_reason()
    if unreachable is not None:
        return replace(
            report, outcome=Outcome.UNREACHABLE, next_steps=start_commands, unreachable=unreachable
        )
    if backend.is_running(name):
        ran = _run_all(backend, backend.enable_commands(name, path), path)
        # A changed file applies only after a restart, which drains the running sessions.
        steps = backend.reload_commands(name, path) if written else []
        return replace(report, outcome=Outcome.ALREADY_RUNNING, ran=ran, next_steps=steps)
    pid = ping_daemon(PoolLayout(spec.pool_dir))[0]
    if pid is not None:
        # Started now, it would fail on the pool's lock and be restarted again and again.
        ran = _run_all(backend, backend.enable_commands(name, path), path)
        return replace(
            report, outcome=Outcome.DEFERRED, ran=ran, next_steps=start_commands, daemon_pid=pid
        )
    ran = _run_all(backend, start_commands, path)
    return replace(report, outcome=Outcome.STARTED, ran=ran)


def uninstall(spec: ServiceSpec, backend: ServiceBackend) -> UninstallReport:
    """Stop and unregister the service (best effort), then remove its file."""
    name = spec.name
    path = backend.file_path(name)
    if not path.exists() and not path.is_symlink():
        return UninstallReport(name, path, removed=False)
    ran: list[Command] = []
    warnings: list[str] = []
    unreachable = backend.unreachable_reason()
    if unreachable is None:
        commands = backend.remove_commands(name, running=backend.is_running(name))
        # Stopping waits for the daemon to drain its sessions.
        _run_best_effort(backend, commands, spec.stop_timeout_s + QUERY_TIMEOUT_S, ran, warnings)
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise AgentPoolError(f"cannot remove {path}: {exc.strerror or exc}") from exc
    backend.remove_leftovers(name)
    if unreachable is None:
        _run_best_effort(backend, backend.after_remove_commands(), QUERY_TIMEOUT_S, ran, warnings)
    return UninstallReport(
        name, path, removed=True, ran=ran, warnings=warnings, unreachable=unreachable
    )


def status(spec: ServiceSpec, backend: ServiceBackend) -> ServiceStatus:
    """The file, the service manager's view and whether the daemon answers."""
    name = spec.name
    path = backend.file_path(name)
    existing = _read(path)
    unreachable = backend.unreachable_reason()
    view = backend.view(name) if unreachable is None else None
    pid, problem = ping_daemon(PoolLayout(spec.pool_dir))
    return ServiceStatus(
        name=name,
        kind=backend.kind,
        path=path,
        installed=existing is not None,
        up_to_date=None if existing is None else existing == backend.render(spec),
        unreachable=unreachable,
        state=view.state if view else None,
        enabled=view.enabled if view else None,
        daemon_pid=pid,
        daemon_problem=problem,
    )


def ping_daemon(layout: PoolLayout) -> tuple[int | None, str | None]:
    """The pid of the pool's daemon if it answers a ping, else why it did not."""
    try:
        answer = request(layout.socket_path, "ping", timeout=PING_TIMEOUT_S)
    except DaemonNotRunningError:
        return None, None
    except AgentPoolError as exc:
        return None, exc.message
    return int(answer["pid"]), None


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AgentPoolError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _run_all(backend: ServiceBackend, commands: list[Command], path: Path) -> list[Command]:
    for command in commands:
        result = backend.run(command, QUERY_TIMEOUT_S)
        if not result.ok:
            raise ServiceCommandError(command, result.reason(), path)
    return commands


def _run_best_effort(
    backend: ServiceBackend,
    commands: list[Command],
    timeout: float,
    ran: list[Command],
    warnings: list[str],
) -> None:
    for command in commands:
        result = backend.run(command, timeout)
        ran.append(command)
        if not result.ok:
            warnings.append(f"`{shlex.join(command)}` failed: {result.reason()}")
