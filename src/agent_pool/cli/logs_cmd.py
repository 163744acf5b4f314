"""`agent-pool logs ID`: a task's session transcript, every attempt, oldest first."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click

from agent_pool.cli.context import CliContext
from agent_pool.errors import AgentPoolError

if TYPE_CHECKING:
    from agent_pool.board import TaskRecord
    from agent_pool.pool.layout import PoolLayout

_ATTEMPT_INFIX: Final = ".attempt-"
_LOG_SUFFIX: Final = ".jsonl"


@dataclass(frozen=True, slots=True)
class AttemptLog:
    number: int
    path: Path


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
        _print_readable(attempts)


def find_task_logs(layout: PoolLayout, task_id: str, board_log: Path | None) -> list[AttemptLog]:
    """Every attempt's log of `task_id`, oldest first; [] when there is none.

    The board's log path names the folder; without it (no daemon ever ran, or the
    board forgot the task), every agent's `logs/` folder is looked through.
    `task_id` must be a validated message id: it becomes a file name.
    """
    if board_log is not None:
        folder = board_log if board_log.is_absolute() else layout.root / board_log
        found = _attempts_in(folder.parent, task_id)
        if found:
            return found
    for logs_dir in _all_logs_dirs(layout):
        found = _attempts_in(logs_dir, task_id)
        if found:
            return found
    return []


def _attempts_in(logs_dir: Path, task_id: str) -> list[AttemptLog]:
    # Ids are [A-Za-z0-9._-] only: nothing in them is special to glob.
    earlier: list[AttemptLog] = []
    prefix = task_id + _ATTEMPT_INFIX
    for path in logs_dir.glob(f"{prefix}*{_LOG_SUFFIX}"):
        number = path.name[len(prefix) : -len(_LOG_SUFFIX)]
        if number.isdigit() and path.is_file():
            earlier.append(AttemptLog(int(number), path))
    earlier.sort(key=lambda attempt: attempt.number)
    latest = logs_dir / f"{task_id}{_LOG_SUFFIX}"
    if latest.is_file():
        # `<id>.jsonl` is always the newest attempt; older ones were moved aside.
        earlier.append(AttemptLog(earlier[-1].number + 1 if earlier else 1, latest))
    return earlier


def _all_logs_dirs(layout: PoolLayout) -> list[Path]:
    from agent_pool.names import ROLE_NAMES, is_valid_name
    from agent_pool.pool.registry import expert_folders

    folders = [layout.logs(role) for role in sorted(ROLE_NAMES)]
    folders += [layout.expert_dir(name) / "logs" for name in sorted(expert_folders(layout))]
    try:
        shared = sorted(entry.name for entry in os.scandir(layout.shared_state_dir))
    except (FileNotFoundError, NotADirectoryError):
        shared = []
    folders += [layout.shared_overlay(name) / "logs" for name in shared if is_valid_name(name)]
    return folders


def _board_record(obj: CliContext, task_id: str) -> TaskRecord | None:
    from agent_pool.board import BoardError
    from agent_pool.cli.task_cmds import open_board

    try:
        with open_board(obj) as board:
            return board.get(task_id) if board is not None else None
    except BoardError:
        return None  # an unreadable board must not hide logs that are on disk


def _print_readable(attempts: list[AttemptLog]) -> None:
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
    stderr_log = attempts[-1].path.with_suffix(".stderr.log")
    size = stderr_log.stat().st_size if stderr_log.is_file() else 0
    if size:
        click.echo(f"\nstderr: {size} bytes in {stderr_log}")


def _print_raw(attempts: list[AttemptLog]) -> None:
    """The logs byte for byte on stdout (JSONL); headings go to stderr when several."""
    sys.stdout.flush()
    out = sys.stdout.buffer
    for attempt in attempts:
        if len(attempts) > 1:
            click.echo(f"=== attempt {attempt.number}: {attempt.path} ===", err=True)
        with attempt.path.open("rb") as log:
            shutil.copyfileobj(log, out)
            if log.tell():
                log.seek(-1, os.SEEK_END)
                if log.read(1) != b"\n":
                    out.write(b"\n")  # the next attempt's first line stays a line of its own
    out.flush()
