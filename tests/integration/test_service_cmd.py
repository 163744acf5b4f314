"""`agent-pool service`: the CLI against real files and daemons, the service managers
through the injectable runner, and a daemon started the way its service starts it.

No test needs a user systemd: the CLI tests put a stand-in `systemctl` on PATH that
answers like one in a container (no user bus), and the install/uninstall logic for a
reachable manager is driven through `Runner`, which records what would have run.
"""

from __future__ import annotations

import json
import os
import plistlib
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from agent_pool.control.client import request, wait_until_answering
from agent_pool.errors import AgentPoolError
from agent_pool.pool.layout import PoolLayout
from agent_pool.service.backends import UnsupportedPlatformError, backend_for
from agent_pool.service.commands import CommandResult
from agent_pool.service.manager import (
    Outcome,
    ServiceCommandError,
    install,
    service_spec,
    status,
    uninstall,
)
from agent_pool.service.units import ServiceSpec, service_name
from tests.harness import Pool

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the CLI picks systemd on Linux"
)

# A `systemctl` as found in a container: there, but with no user bus to talk to.
FAKE_SYSTEMCTL = """#!/bin/sh
printf '%s\\n' "$*" >> "$FAKE_SYSTEMCTL_LOG"
if [ "$2" = "is-system-running" ]; then echo offline; exit 1; fi
echo "Failed to connect to bus: No medium found" >&2
exit 1
"""


@dataclass
class ServiceEnv:
    pool: Pool
    unit_dir: Path
    systemctl_log: Path

    @property
    def unit_file(self) -> Path:
        return self.unit_dir / f"{service_name(self.pool.layout.root.resolve(), 'project')}.service"

    def systemctl_calls(self) -> list[str]:
        if not self.systemctl_log.exists():
            return []
        return self.systemctl_log.read_text(encoding="utf-8").splitlines()


@pytest.fixture
def service_env(pool: Pool, tmp_path: Path) -> ServiceEnv:
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    systemctl = bin_dir / "systemctl"
    systemctl.write_text(FAKE_SYSTEMCTL, encoding="utf-8")
    systemctl.chmod(0o755)
    log = tmp_path / "systemctl.log"
    env = pool.cli.env
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', os.defpath)}"
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    env["FAKE_SYSTEMCTL_LOG"] = str(log)
    return ServiceEnv(pool, tmp_path / "xdg" / "systemd" / "user", log)


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("agent-pool: error: ")
    return lines[0]


# -- the CLI ------------------------------------------------------------------------------


@linux_only
def test_install_no_start_writes_the_unit_and_runs_nothing(service_env: ServiceEnv) -> None:
    cli = service_env.pool.cli
    installed = cli.run("service", "install", "--no-start")
    assert installed.code == 0, installed.err

    unit = service_env.unit_file
    assert f"wrote {unit}" in installed.out
    assert f"systemctl --user enable --now {unit.name}" in installed.out
    text = unit.read_text(encoding="utf-8")
    assert text == cli.run("service", "install", "--print").out
    assert f"--pool {service_env.pool.layout.root} start" in text
    assert f"WorkingDirectory={cli.cwd}" in text
    assert f'Environment="AGENT_POOL_CLAUDE_BIN={cli.env["AGENT_POOL_CLAUDE_BIN"]}"' in text
    assert service_env.systemctl_calls() == []
    # launchd would open its log in daemon/ before the daemon runs; it exists for both.
    assert service_env.pool.layout.runtime_dir.is_dir()

    again = cli.run("service", "install", "--no-start")
    assert again.code == 0, again.err
    assert "already up to date" in again.out


@linux_only
def test_install_refuses_to_overwrite_a_different_file(service_env: ServiceEnv) -> None:
    cli = service_env.pool.cli
    assert cli.run("service", "install", "--no-start").code == 0
    unit = service_env.unit_file
    unit.write_text("[Service]\nExecStart=/bin/true\n", encoding="utf-8")

    refused = cli.run("service", "install", "--no-start")
    assert refused.code == 1
    assert "--force" in one_error_line(refused.err)
    assert unit.read_text(encoding="utf-8") == "[Service]\nExecStart=/bin/true\n"

    forced = cli.run("service", "install", "--no-start", "--force")
    assert forced.code == 0, forced.err
    assert unit.read_text(encoding="utf-8") == cli.run("service", "install", "--print").out


@linux_only
def test_print_writes_nothing(service_env: ServiceEnv) -> None:
    printed = service_env.pool.cli.run("service", "install", "--print")
    assert printed.code == 0, printed.err
    assert printed.out.startswith("# Written by `agent-pool service install`")
    assert "\nKillMode=process\n" in printed.out
    assert not service_env.unit_dir.parent.exists()
    assert service_env.systemctl_calls() == []


@linux_only
def test_install_without_a_user_manager_keeps_the_file_and_says_what_to_run(
    service_env: ServiceEnv,
) -> None:
    result = service_env.pool.cli.run("service", "install")
    assert result.code == 1
    error = one_error_line(result.err)
    assert "the systemd user manager is not reachable" in error
    assert "offline" in error
    unit = service_env.unit_file
    assert unit.is_file()
    assert "systemctl --user daemon-reload\n" in result.out
    assert f"systemctl --user enable --now {unit.name}\n" in result.out
    # It asked whether a manager answers, and tried nothing once none did.
    assert service_env.systemctl_calls() == ["--user is-system-running"]


@linux_only
def test_uninstall_removes_the_unit(service_env: ServiceEnv) -> None:
    cli = service_env.pool.cli
    assert cli.run("service", "install", "--no-start").code == 0
    assert service_env.unit_file.exists()

    removed = cli.run("service", "uninstall")
    assert removed.code == 0, removed.err
    assert f"removed {service_env.unit_file}" in removed.out
    assert not service_env.unit_file.exists()

    again = cli.run("service", "uninstall")
    assert again.code == 0, again.err
    assert "not installed" in again.out


@linux_only
def test_status_reports_the_file_the_manager_and_the_daemon(service_env: ServiceEnv) -> None:
    pool = service_env.pool

    def report() -> dict[str, object]:
        result = pool.cli.run("service", "status", "--json")
        assert result.code == 0, result.err
        data: dict[str, object] = json.loads(result.out)
        return data

    before = report()
    assert before["service"] == service_env.unit_file.stem
    assert before["kind"] == "systemd"
    assert before["file"] == str(service_env.unit_file)
    assert before["installed"] is False
    assert before["up_to_date"] is None
    assert before["manager"] == {
        "reachable": False,
        "problem": "`systemctl --user is-system-running` says: offline",
        "state": None,
        "enabled": None,
    }
    assert before["daemon"] == {"running": False, "pid": None, "problem": None}

    assert pool.cli.run("service", "install", "--no-start").code == 0
    pid = pool.start()
    running = report()
    assert running["installed"] is True
    assert running["up_to_date"] is True
    assert running["daemon"] == {"running": True, "pid": pid, "problem": None}
    human = pool.cli.run("service", "status")
    assert f"daemon:  running (pid {pid})" in human.out

    assert pool.stop() == 0
    service_env.unit_file.write_text("edited by hand\n", encoding="utf-8")
    stopped = report()
    assert stopped["up_to_date"] is False
    assert stopped["daemon"] == {"running": False, "pid": None, "problem": None}
    assert "out of date" in pool.cli.run("service", "status").out


def test_outside_a_pool_the_error_is_one_line(tmp_path: Path, pool: Pool) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = pool.cli.run("service", "status", cwd=elsewhere)
    assert result.code == 2
    assert "no pool found" in one_error_line(result.err)


# -- install and uninstall against a reachable manager (the runner stands in) -------------


@dataclass
class ScriptedManager:
    """Answers for `systemctl --user` or `launchctl` like a reachable manager, and
    records what was run; anything without a scripted answer succeeds silently."""

    answers: dict[tuple[str, ...], CommandResult] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)

    def __call__(self, argv: Sequence[str], timeout: float) -> CommandResult:
        self.calls.append(list(argv))
        return self.answers.get(tuple(argv), CommandResult(0))


def reachable_systemd(unit: str, active: str = "inactive") -> ScriptedManager:
    return ScriptedManager(
        {
            ("systemctl", "--user", "is-system-running"): CommandResult(0, "running\n"),
            ("systemctl", "--user", "is-active", unit): CommandResult(
                0 if active == "active" else 3, f"{active}\n"
            ),
            ("systemctl", "--user", "is-enabled", unit): CommandResult(0, "enabled\n"),
        }
    )


def make_spec(tmp_path: Path) -> ServiceSpec:
    project = tmp_path / "project"
    return service_spec(
        PoolLayout(project / ".agent-pool"),
        pool_name="project",
        project_dir=project,
        drain_grace_s=30,
        environ={"PATH": "/usr/bin:/bin"},
        cwd=project,
    )


def test_install_on_a_reachable_systemd_enables_and_starts(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    unit = f"{spec.name}.service"
    manager = reachable_systemd(unit)
    backend = backend_for("linux", {"HOME": str(tmp_path / "home")}, run=manager)

    report = install(spec, backend, force=False, start=True)

    assert report.outcome is Outcome.STARTED
    path = tmp_path / "home" / ".config" / "systemd" / "user" / unit
    assert report.path == path
    assert path.read_text(encoding="utf-8").startswith("# Written by")
    assert manager.calls == [
        ["systemctl", "--user", "is-system-running"],
        ["systemctl", "--user", "is-active", unit],
        ["systemctl", "--user", "is-enabled", unit],
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", unit],
    ]


def test_a_running_service_is_left_running_when_its_file_changes(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    unit = f"{spec.name}.service"
    manager = reachable_systemd(unit, active="active")
    backend = backend_for("linux", {"HOME": str(tmp_path)}, run=manager)

    report = install(spec, backend, force=False, start=True)

    assert report.outcome is Outcome.ALREADY_RUNNING
    assert report.ran == [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", unit],
    ]
    # Restarting would drain paid work: it is offered, never run.
    assert ["systemctl", "--user", "restart", unit] in report.next_steps
    assert not any("--now" in call or "restart" in call for call in manager.calls)


def test_install_does_not_start_a_second_daemon_beside_a_running_one(pool: Pool) -> None:
    pid = pool.start()
    spec = service_spec(
        pool.layout,
        pool_name="project",
        project_dir=pool.cli.cwd,
        drain_grace_s=30,
        environ=pool.cli.env,
        cwd=pool.cli.cwd,
    )
    unit = f"{spec.name}.service"
    manager = reachable_systemd(unit)
    backend = backend_for("linux", {"HOME": str(pool.cli.cwd.parent)}, run=manager)

    report = install(spec, backend, force=False, start=True)

    assert report.outcome is Outcome.DEFERRED
    assert report.daemon_pid == pid
    assert manager.calls[-1] == ["systemctl", "--user", "enable", unit]
    assert report.next_steps[-1] == ["systemctl", "--user", "enable", "--now", unit]


def test_a_failing_manager_command_is_one_line_and_the_file_stays(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    unit = f"{spec.name}.service"
    manager = reachable_systemd(unit)
    manager.answers[("systemctl", "--user", "enable", "--now", unit)] = CommandResult(
        1, "", "Failed to enable unit: Unit file is masked.\n"
    )
    backend = backend_for("linux", {"HOME": str(tmp_path)}, run=manager)

    with pytest.raises(ServiceCommandError) as caught:
        install(spec, backend, force=False, start=True)

    message = caught.value.message
    assert "\n" not in message
    assert f"`systemctl --user enable --now {unit}` failed: Failed to enable unit" in message
    assert backend.file_path(spec.name).is_file()


def test_uninstall_on_a_reachable_systemd_disables_then_removes(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    unit = f"{spec.name}.service"
    backend = backend_for("linux", {"HOME": str(tmp_path)}, run=reachable_systemd(unit))
    install(spec, backend, force=False, start=False)
    manager = reachable_systemd(unit, active="active")
    backend = backend_for("linux", {"HOME": str(tmp_path)}, run=manager)

    report = uninstall(spec, backend)

    assert report.removed
    assert not backend.file_path(spec.name).exists()
    assert report.ran == [
        ["systemctl", "--user", "disable", "--now", unit],
        ["systemctl", "--user", "daemon-reload"],
    ]
    assert report.warnings == []


def test_uninstall_without_a_manager_still_drops_the_enable_link(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    unreachable = ScriptedManager(
        {("systemctl", "--user", "is-system-running"): CommandResult(1, "offline\n")}
    )
    backend = backend_for("linux", {"HOME": str(tmp_path)}, run=unreachable)
    install(spec, backend, force=False, start=False)
    unit_file = backend.file_path(spec.name)
    wants = unit_file.parent / "default.target.wants"
    wants.mkdir()
    (wants / unit_file.name).symlink_to(unit_file)  # what `enable` made earlier

    report = uninstall(spec, backend)

    assert report.removed
    assert report.unreachable is not None
    assert not unit_file.exists()
    assert not (wants / unit_file.name).is_symlink()
    assert unreachable.calls == [["systemctl", "--user", "is-system-running"]]


def test_launchd_bootstraps_reports_and_boots_out_the_agent(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    target = f"gui/501/{spec.name}"
    not_loaded = CommandResult(113, "", f"Could not find service {spec.name!r}\n")
    manager = ScriptedManager({("launchctl", "print", target): not_loaded})
    backend = backend_for("darwin", {"HOME": str(tmp_path)}, run=manager, uid=501)

    report = install(spec, backend, force=False, start=True)

    plist = tmp_path / "Library" / "LaunchAgents" / f"{spec.name}.plist"
    assert report.outcome is Outcome.STARTED
    assert report.path == plist
    assert plistlib.loads(plist.read_bytes())["Label"] == spec.name
    assert report.ran == [["launchctl", "bootstrap", "gui/501", str(plist)]]

    loaded = CommandResult(
        0, f"{target} = {{\n\tactive count = 1\n\tstate = running\n\tpid = 4242\n"
    )
    manager.answers[("launchctl", "print", target)] = loaded
    seen = status(spec, backend)
    assert seen.installed
    assert seen.state == "running"

    removed = uninstall(spec, backend)
    assert removed.ran == [["launchctl", "bootout", target]]
    assert not plist.exists()


def test_other_platforms_get_one_clear_error() -> None:
    with pytest.raises(UnsupportedPlatformError) as caught:
        backend_for("win32", {"HOME": "/home/me"})
    assert isinstance(caught.value, AgentPoolError)
    assert caught.value.message.startswith(
        "agent-pool service supports Linux (systemd) and macOS (launchd), not win32"
    )


# -- the daemon as the service runs it ------------------------------------------------------


def test_a_daemon_with_no_terminal_never_waits_on_one(pool: Pool, tmp_path: Path) -> None:
    spec = service_spec(
        pool.layout,
        pool_name="project",
        project_dir=pool.cli.cwd,
        drain_grace_s=30,
        environ=pool.cli.env,
        cwd=pool.cli.cwd,
    )
    # What systemd gives it: the unit's variables and a home, no input, no terminal.
    env = {"HOME": pool.cli.env["HOME"], **spec.environment}
    output = tmp_path / "service.out"
    with output.open("wb") as log:
        pool.daemon = subprocess.Popen(
            spec.argv,
            cwd=spec.project_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    daemon = pool.daemon
    pid = wait_until_answering(pool.layout.socket_path, timeout=20, exited=daemon.poll)
    assert pid == daemon.pid
    assert psutil.Process(pid).terminal() is None
    assert os.getsid(pid) == pid

    task = pool.post("backend", "fake: text served without a terminal")
    record = pool.wait_status(task, "completed")
    assert record.status == "completed"
    assert request(pool.layout.socket_path, "ping")["pid"] == pid

    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0, output.read_text(encoding="utf-8", errors="replace")
    pool.daemon = None
