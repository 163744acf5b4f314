"""What each service manager needs: where its files go and which commands drive it.

A backend only knows its manager (systemd's user instance, or launchd's per-user GUI
domain); the install, uninstall and status logic in `manager` is shared.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from agent_pool.errors import AgentPoolError
from agent_pool.service.commands import QUERY_TIMEOUT_S, Runner, run_command
from agent_pool.service.units import (
    SERVICE_NAME_PATTERN,
    ServiceSpec,
    launchd_plist,
    systemd_unit,
)

Command = list[str]

# What `systemctl --user is-system-running` prints when a user manager answers; with no
# user bus (containers, plain SSH sessions) it prints "offline".
_SYSTEMD_ANSWERING: Final = frozenset(
    {"initializing", "starting", "running", "degraded", "maintenance", "stopping"}
)
_SYSTEMD_RUNNING: Final = frozenset({"active", "activating", "reloading", "deactivating"})
# The service's own state is the first `state = ...` line of `launchctl print`.
_LAUNCHD_STATE: Final = re.compile(r"^\s*state = (\S+)\s*$", re.MULTILINE)


class UnsupportedPlatformError(AgentPoolError):
    def __init__(self, platform: str) -> None:
        super().__init__(
            f"agent-pool service supports Linux (systemd) and macOS (launchd), not {platform}; "
            "run `agent-pool start` under your own supervisor instead"
        )


@dataclass(frozen=True)
class ManagerView:
    """What the service manager says about the service."""

    state: str | None  # systemd's is-active, launchd's state; None: not loaded / unknown
    enabled: str | None = None  # systemd's is-enabled; launchd has no such notion here


class ServiceBackend(Protocol):
    @property
    def kind(self) -> str: ...  # "systemd" | "launchd"
    @property
    def manager_name(self) -> str: ...  # for messages: "the systemd user manager"
    @property
    def run(self) -> Runner: ...

    def file_path(self, name: str) -> Path: ...
    def render(self, spec: ServiceSpec) -> bytes: ...
    def unreachable_reason(self) -> str | None: ...
    def is_running(self, name: str) -> bool: ...
    def start_commands(self, name: str, path: Path) -> list[Command]: ...
    def enable_commands(self, name: str, path: Path) -> list[Command]: ...
    def reload_commands(self, name: str, path: Path) -> list[Command]: ...
    def remove_commands(self, name: str, *, running: bool) -> list[Command]: ...
    def after_remove_commands(self) -> list[Command]: ...
    def remove_leftovers(self, name: str) -> None: ...
    def view(self, name: str) -> ManagerView: ...


def backend_for(
    platform: str,
    environ: Mapping[str, str],
    run: Runner = run_command,
    uid: int | None = None,
) -> ServiceBackend:
    """The backend for `platform` (a `sys.platform` value), or one clear error."""
    home = Path(environ.get("HOME") or Path.home())
    if platform.startswith("linux"):
        configured = environ.get("XDG_CONFIG_HOME")
        # The XDG spec ignores a relative value.
        config_home = Path(configured) if configured and configured.startswith("/") else None
        return SystemdBackend(
            unit_dir=(config_home or home / ".config") / "systemd" / "user", run=run
        )
    if platform == "darwin":
        return LaunchdBackend(
            agents_dir=home / "Library" / "LaunchAgents",
            uid=os.getuid() if uid is None else uid,
            run=run,
        )
    raise UnsupportedPlatformError(platform)


@dataclass(frozen=True)
class SystemdBackend:
    unit_dir: Path
    run: Runner
    kind: str = "systemd"
    manager_name: str = "the systemd user manager"

    def file_path(self, name: str) -> Path:
        return self.unit_dir / _checked(name, ".service")

    def render(self, spec: ServiceSpec) -> bytes:
        return systemd_unit(spec).encode("utf-8")

    def unreachable_reason(self) -> str | None:
        result = self.run(["systemctl", "--user", "is-system-running"], QUERY_TIMEOUT_S)
        if result.out.strip() in _SYSTEMD_ANSWERING:
            return None
        return f"`systemctl --user is-system-running` says: {result.reason()}"

    def is_running(self, name: str) -> bool:
        return self.view(name).state in _SYSTEMD_RUNNING

    def start_commands(self, name: str, path: Path) -> list[Command]:
        return [_systemctl("daemon-reload"), _systemctl("enable", "--now", self._unit(name))]

    def enable_commands(self, name: str, path: Path) -> list[Command]:
        return [_systemctl("daemon-reload"), _systemctl("enable", self._unit(name))]

    def reload_commands(self, name: str, path: Path) -> list[Command]:
        # Restarting drains the running sessions first, so it is the user's call.
        return [_systemctl("daemon-reload"), _systemctl("restart", self._unit(name))]

    def remove_commands(self, name: str, *, running: bool) -> list[Command]:
        # Disable even a stopped unit: enabling left a link in default.target.wants.
        return [_systemctl("disable", "--now", self._unit(name))]

    def after_remove_commands(self) -> list[Command]:
        return [_systemctl("daemon-reload")]

    def remove_leftovers(self, name: str) -> None:
        # When the manager could not be reached, `disable` did not run: drop its link.
        link = self.unit_dir / "default.target.wants" / self._unit(name)
        if link.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                link.unlink()

    def view(self, name: str) -> ManagerView:
        active = self.run(_systemctl("is-active", self._unit(name)), QUERY_TIMEOUT_S)
        enabled = self.run(_systemctl("is-enabled", self._unit(name)), QUERY_TIMEOUT_S)
        return ManagerView(state=active.out.strip() or None, enabled=enabled.out.strip() or None)

    def _unit(self, name: str) -> str:
        return _checked(name, ".service")


@dataclass(frozen=True)
class LaunchdBackend:
    agents_dir: Path
    uid: int
    run: Runner
    kind: str = "launchd"
    manager_name: str = "launchd"

    def file_path(self, name: str) -> Path:
        return self.agents_dir / _checked(name, ".plist")

    def render(self, spec: ServiceSpec) -> bytes:
        return launchd_plist(spec)

    def unreachable_reason(self) -> str | None:
        # The GUI domain exists only while the user is logged in at the Mac.
        result = self.run(["launchctl", "print", self._domain], QUERY_TIMEOUT_S)
        return None if result.ok else f"`launchctl print {self._domain}` says: {result.reason()}"

    def is_running(self, name: str) -> bool:
        return self.run(["launchctl", "print", self._target(name)], QUERY_TIMEOUT_S).ok

    def start_commands(self, name: str, path: Path) -> list[Command]:
        return [["launchctl", "bootstrap", self._domain, str(path)]]

    def enable_commands(self, name: str, path: Path) -> list[Command]:
        return []  # launchd loads every agent in ~/Library/LaunchAgents at the next login

    def reload_commands(self, name: str, path: Path) -> list[Command]:
        return [
            ["launchctl", "bootout", self._target(name)],
            ["launchctl", "bootstrap", self._domain, str(path)],
        ]

    def remove_commands(self, name: str, *, running: bool) -> list[Command]:
        return [["launchctl", "bootout", self._target(name)]] if running else []

    def after_remove_commands(self) -> list[Command]:
        return []

    def remove_leftovers(self, name: str) -> None:
        return None

    def view(self, name: str) -> ManagerView:
        result = self.run(["launchctl", "print", self._target(name)], QUERY_TIMEOUT_S)
        if not result.ok:
            return ManagerView(state=None)
        found = _LAUNCHD_STATE.search(result.out)
        return ManagerView(state=found.group(1) if found else "loaded")

    @property
    def _domain(self) -> str:
        return f"gui/{self.uid}"

    def _target(self, name: str) -> str:
        return f"{self._domain}/{_checked(name, '')}"


def _systemctl(*args: str) -> Command:
    return ["systemctl", "--user", *args]


def _checked(name: str, suffix: str) -> str:
    """A service name becomes a file name only after this check."""
    if SERVICE_NAME_PATTERN.fullmatch(name) is None:
        raise ValueError(f"not a service name: {name!r}")
    return name + suffix
