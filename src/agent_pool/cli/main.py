"""Entry point: the command group, and the one place errors become exit codes."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from agent_pool import __version__
from agent_pool.cli.context import CliContext
from agent_pool.errors import EXIT_FAILURE, AgentPoolError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(
    __version__, "--version", prog_name="agent-pool", message="%(prog)s %(version)s"
)
@click.option(
    "--pool",
    "pool_option",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The pool's .agent-pool folder (default: $AGENT_POOL_DIR, else found from the cwd).",
)
@click.pass_context
def cli(ctx: click.Context, pool_option: Path | None) -> None:
    """agent-pool: a supervisor for a pool of headless Claude Code experts."""
    ctx.obj = CliContext(pool_option=pool_option)


def _register_commands() -> None:
    from agent_pool.cli import (
        daemon_cmds,
        demo_cmd,
        doctor_cmd,
        hook_cmd,
        inbox_cmds,
        init_cmd,
        logs_cmd,
        mcp_cmd,
        service_cmd,
        submit_cmd,
        task_cmds,
        watch_cmd,
    )

    for command in (
        init_cmd.init,
        daemon_cmds.start,
        daemon_cmds.stop,
        daemon_cmds.status,
        watch_cmd.watch,
        submit_cmd.submit,
        task_cmds.tasks,
        task_cmds.task,
        task_cmds.cancel,
        task_cmds.retry,
        doctor_cmd.doctor,
        inbox_cmds.ask,
        inbox_cmds.inbox,
        logs_cmd.logs,
        mcp_cmd.mcp,
        hook_cmd.hook,
        demo_cmd.demo,
        service_cmd.service,
    ):
        cli.add_command(command)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every failure is one line on stderr and a documented exit code."""
    try:
        # Outside standalone mode click returns the code of `Exit` instead of raising it.
        returned = cli.main(args=argv, prog_name="agent-pool", standalone_mode=False)
        if isinstance(returned, int) and returned != 0:
            sys.exit(returned)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except click.Abort:
        _fail("aborted", EXIT_FAILURE)
    except AgentPoolError as exc:
        _fail(exc.message, exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    sys.exit(0)


def _fail(message: str, code: int) -> None:
    # One line, whatever the message: newlines inside it would break `2>` log parsing.
    click.echo(f"agent-pool: error: {' '.join(message.split())}", err=True)
    sys.exit(code)
