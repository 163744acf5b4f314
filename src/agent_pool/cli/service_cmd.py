"""`agent-pool service install | uninstall | status`: the daemon as a user service."""

from __future__ import annotations

import json
import shlex
import sys
from typing import TYPE_CHECKING

import click

from agent_pool.cli.context import CliContext
from agent_pool.errors import AgentPoolError

if TYPE_CHECKING:
    from agent_pool.service.backends import Command, ServiceBackend
    from agent_pool.service.manager import ServiceStatus
    from agent_pool.service.units import ServiceSpec


@click.group()
def service() -> None:
    """Run the pool's daemon as a user service (systemd on Linux, launchd on macOS)."""


@service.command()
@click.option("--force", is_flag=True, help="Replace a different service file already there.")
@click.option("--no-start", is_flag=True, help="Only write the file; start nothing.")
@click.option("--print", "print_only", is_flag=True, help="Print the file; write nothing.")
@click.pass_obj
def install(obj: CliContext, force: bool, no_start: bool, print_only: bool) -> None:
    """Write this pool's service file, then enable and start it."""
    from agent_pool.service import manager
    from agent_pool.service.manager import Outcome

    spec, backend = _spec(obj), _backend(obj)
    if print_only:
        click.echo(backend.render(spec).decode("utf-8"), nl=False)
        return
    report = manager.install(spec, backend, force=force, start=not no_start)
    if report.written:
        click.echo(f"wrote {report.path}")
    else:
        click.echo(f"{report.path} is already up to date")
    if report.outcome is Outcome.NOT_STARTED:
        _echo_commands("not started (--no-start); to start it, run:", report.next_steps)
    elif report.outcome is Outcome.UNREACHABLE:
        _echo_commands(
            f"to start it once {backend.manager_name} is reachable, run:", report.next_steps
        )
        raise AgentPoolError(
            f"{backend.manager_name} is not reachable ({report.unreachable}); "
            f"{report.name} is written but not started"
        )
    elif report.outcome is Outcome.STARTED:
        click.echo(f"started {report.name}; check it with `agent-pool service status`")
    elif report.outcome is Outcome.ALREADY_RUNNING:
        click.echo(f"{report.name} is already running")
        _echo_commands(
            "it keeps its old settings until restarted (which drains running sessions):",
            report.next_steps,
        )
    else:
        _echo_commands(
            f"the pool's daemon already runs outside the service (pid {report.daemon_pid}), "
            f"so {report.name} was not started; stop the daemon with `agent-pool stop`, "
            "then run:",
            report.next_steps,
        )


@service.command()
@click.pass_obj
def uninstall(obj: CliContext) -> None:
    """Stop and disable the service, and remove its file."""
    from agent_pool.service import manager

    backend = _backend(obj)
    report = manager.uninstall(_spec(obj), backend)
    if not report.removed:
        click.echo(f"{report.name} is not installed (no {report.path}); nothing to do")
        return
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    if report.unreachable is not None:
        click.echo(
            f"{backend.manager_name} is not reachable ({report.unreachable}): nothing was stopped"
        )
    click.echo(f"removed {report.path}")


@service.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def status(obj: CliContext, as_json: bool) -> None:
    """Show the service file, the manager's view and the daemon."""
    from agent_pool.service import manager

    backend = _backend(obj)
    report = manager.status(_spec(obj), backend)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
        return
    click.echo(format_status(report))


def format_status(report: ServiceStatus) -> str:
    file_state = "installed" if report.installed else "not installed"
    if report.up_to_date is False:
        file_state += ", out of date: `agent-pool service install --force` rewrites it"
    if report.unreachable is not None:
        manager = f"not reachable ({report.unreachable})"
    else:
        manager = ", ".join(
            value for value in (report.state or "not loaded", report.enabled) if value
        )
    if report.daemon_pid is not None:
        daemon = f"running (pid {report.daemon_pid})"
    elif report.daemon_problem is not None:
        daemon = f"not answering: {report.daemon_problem}"
    else:
        daemon = "not running"
    rows = {"file": f"{report.path} ({file_state})", report.kind: manager, "daemon": daemon}
    width = max(len(label) for label in rows) + 2
    lines = [f"service {report.name}"]
    lines.extend(f"  {label + ':':<{width}}{value}" for label, value in rows.items())
    return "\n".join(lines)


def _spec(obj: CliContext) -> ServiceSpec:
    from agent_pool.service.manager import service_spec

    config = obj.config
    return service_spec(
        obj.layout,
        pool_name=config.name,
        project_dir=config.project_dir,
        drain_grace_s=config.daemon.drain_grace.total_seconds(),
        environ=obj.environ,
        cwd=obj.cwd,
    )


def _backend(obj: CliContext) -> ServiceBackend:
    from agent_pool.service.backends import backend_for

    return backend_for(sys.platform, obj.environ)


def _echo_commands(heading: str, commands: list[Command]) -> None:
    if commands:
        click.echo(heading)
        for command in commands:
            click.echo(f"  {shlex.join(command)}")
