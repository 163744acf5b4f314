"""`agent-pool logs ID`: a task's session transcript, every attempt, oldest first.

Archived attempts (`logs/archive/*.jsonl.gz`, written by log upkeep) come first and
are read like live ones.
"""

from __future__ import annotations

import gzip
import sys
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click

from agent_pool.cli.context import CliContext
from agent_pool.errors import AgentPoolError

if TYPE_CHECKING:
    from agent_pool.board import TaskRecord
    from agent_pool.pool.layout import PoolLayout
    from agent_pool.session.logfiles import TaskLog

_COPY_BLOCK: Final = 64 * 1024


@click.command("logs")
@click.argument("task_id", metavar="ID")
@click.option("--raw", is_flag=True, help="Print the stream-json log (JSONL) as it is.")
@click.pass_obj
def logs(obj: CliContext, task_id: str, raw: bool) -> None:
    """A session's transcript, readable: every attempt of task ID, oldest first."""
    from agent_pool.names import check_message_id

    check_message_id(task_id, "task id")
    record = _board_record(obj, task_id)
    board_log = Path(record.log_path) if record is not None and record.log_path else None
    attempts = find_task_logs(obj.layout, task_id, board_log)
    if not attempts:
        if record is not None:
            raise AgentPoolError(f"task {task_id!r} has no session log yet (it is {record.status})")
        raise AgentPoolError(f"no session log for task {task_id!r} in any agent's logs/ folder")
    if raw:
        _print_raw(attempts)
    else:
        _print_readable(attempts, task_id)


def find_task_logs(layout: PoolLayout, task_id: str, board_log: Path | None) -> list[TaskLog]:
    """Every attempt's log of `task_id`, archived ones first, oldest first; [] when none.

    The board's log path names the folder; without it (no daemon ever ran, or the
    board forgot the task), every agent's `logs/` folder is looked through.
    `task_id` must be a validated message id: it becomes a file name.
    """
    from agent_pool.pool.registry import all_logs_dirs
    from agent_pool.session.logfiles import task_logs

    if board_log is not None:
        folder = board_log if board_log.is_absolute() else layout.root / board_log
        found = task_logs(folder.parent, task_id)
        if found:
            return found
    for logs_dir in all_logs_dirs(layout):
        found = task_logs(logs_dir, task_id)
        if found:
            return found
    return []


def _board_record(obj: CliContext, task_id: str) -> TaskRecord | None:
    from agent_pool.board import BoardError
    from agent_pool.cli.task_cmds import open_board

    try:
        with open_board(obj) as board:
            return board.get(task_id) if board is not None else None
    except BoardError:
        return None  # an unreadable board must not hide logs that are on disk


def _print_readable(attempts: list[TaskLog], task_id: str) -> None:
    from agent_pool.session.transcript import LogEvents, render_transcript

    for index, attempt in enumerate(attempts):
        if index:
            click.echo()
        latest = " (latest)" if index == len(attempts) - 1 and len(attempts) > 1 else ""
        click.echo(f"=== attempt {attempt.number}{latest}: {attempt.path} ===")
        events = LogEvents(attempt.path)
        empty = True
        for line in render_transcript(events):
            empty = False
            click.echo(line)
        if empty:
            click.echo("(no events yet)")
        if events.skipped:
            click.echo(f"[{events.skipped} unreadable lines skipped; see --raw]")
        if events.damaged:
            click.echo("[the archive is damaged: the rest of it cannot be read]")
    _print_stderr_note(attempts[-1], task_id)


def _print_stderr_note(latest: TaskLog, task_id: str) -> None:
    from agent_pool.session.logfiles import stderr_log

    logs_dir = latest.path.parent.parent if latest.archived else latest.path.parent
    path = stderr_log(logs_dir, task_id)
    if path is None:
        return
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return  # archived (or removed) while we looked
    if size and path.parent == logs_dir:
        click.echo(f"\nstderr: {size} bytes in {path}")
    elif size:
        click.echo(f"\nstderr: archived in {path}")


def _print_raw(attempts: list[TaskLog]) -> None:
    """The logs byte for byte on stdout (JSONL, archives decompressed); headings go to
    stderr when several."""
    from agent_pool.session.logfiles import open_log

    sys.stdout.flush()
    out = sys.stdout.buffer
    for attempt in attempts:
        if len(attempts) > 1:
            click.echo(f"=== attempt {attempt.number}: {attempt.path} ===", err=True)
        last = b"\n"
        try:
            with open_log(attempt.path) as log:
                while block := log.read(_COPY_BLOCK):
                    out.write(block)
                    last = block[-1:]
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            out.flush()
            raise AgentPoolError(f"{attempt.path}: the archive is damaged ({exc})") from None
        if last != b"\n":
            out.write(b"\n")  # the next attempt's first line stays a line of its own
    out.flush()
