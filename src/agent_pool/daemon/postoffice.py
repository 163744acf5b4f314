"""The postoffice: turn mail files into deliveries, board entries and dead letters.

Crash safety comes from ordering. A batch of mail is first recorded on the board in one
transaction; only after the commit are files linked into inboxes and removed from the
postoffice. A crash in between leaves the file in the postoffice, and the next scan
finds the board already knows it (an identical re-post) and just finishes the move.
Nothing is deleted before it is safely somewhere else.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from agent_pool.board import TERMINAL, DependencyCycleError, RecordOutcome, TaskBoard
from agent_pool.errors import MailError
from agent_pool.fsutil import fsync_dir, write_file_atomic
from agent_pool.mail import Message, MessageType, compose_mail, parse_mail
from agent_pool.mail.routing import Action, decide
from agent_pool.names import is_valid_message_id
from agent_pool.pool.layout import PoolLayout
from agent_pool.pool.registry import PoolRegistry

Emit = Callable[..., object]

NOTICES_DIR = "notices"  # inbox/notices/: notify mail, shown in the agent's next prompt
READ_DIR = "read"  # inbox/read/ (and notices/read/): mail whose task has ended
# Mail that does not parse but was written this recently may still be being written by
# a writer that does not post atomically (`cat > postoffice/x.md`): look again later
# instead of dead-lettering half a message.
SETTLE_SECONDS = 2.0


@dataclass
class RouteReport:
    queued: list[Message] = field(default_factory=list)  # new tasks and questions
    delivered: list[Message] = field(default_factory=list)  # responses, notices, handoffs
    # Cancel mail stays in the postoffice until the daemon applies it (or dead-letters it).
    cancels: list[tuple[Message, Path]] = field(default_factory=list)
    dead_letters: int = 0
    duplicates: int = 0
    deferred: int = 0  # unparseable but fresh: retried after SETTLE_SECONDS
    more: bool = False  # the pass stopped at its limit; more mail is waiting


@dataclass
class _Pending:
    """A file decided in phase one, acted on after the board commit."""

    path: Path
    message: Message
    action: Action
    duplicate: bool  # an identical re-post: finish any interrupted move, report nothing new
    finished: bool = False  # a re-post of a task that already ended: file it as read
    inbox: Path | None = None  # where it was linked (set by `_deliver`)


class PostOffice:
    def __init__(
        self,
        layout: PoolLayout,
        board: TaskBoard,
        *,
        inbox_of: Callable[[str], Path],
        max_bytes: int,
        emit: Emit,
    ) -> None:
        self._layout = layout
        self._board = board
        self._inbox_of = inbox_of
        self.max_bytes = max_bytes  # settable: a config reload changes the limit
        self._emit = emit

    def route_all(self, registry: PoolRegistry, now: float, limit: int = 500) -> RouteReport:
        """Route up to `limit` mail files, oldest name first; `report.more` if some remain.

        The limit keeps one pass short, so the daemon stays responsive (control socket,
        session ends) while it works through a large backlog.
        """
        report = RouteReport()
        try:
            names = sorted(
                entry.name
                for entry in os.scandir(self._layout.postoffice)
                if not entry.name.startswith(".")  # a writer's temp file, not mail yet
            )
        except FileNotFoundError:
            self._layout.postoffice.mkdir(parents=True, exist_ok=True)
            return report
        report.more = len(names) > limit
        accepted: list[_Pending] = []
        with self._board.transaction():
            for name in names[:limit]:
                entry_path = self._layout.postoffice / name
                pending = self._accept(entry_path, registry, now, report)
                if pending is not None:
                    accepted.append(pending)
        # Link every file into its inbox, make each inbox durable once (not once per
        # mail: a burst lands in a few inboxes), and only then remove the originals.
        delivered = [item for item in accepted if self._deliver(item)]
        for inbox in {item.inbox for item in delivered if item.inbox is not None}:
            fsync_dir(inbox)
        for item in delivered:
            self._complete(item, now, report)
        return report

    def _accept(
        self, path: Path, registry: PoolRegistry, now: float, report: RouteReport
    ) -> _Pending | None:
        """Phase one: parse, decide and record; bad mail is dead-lettered here."""
        message = self._parse_or_reject(path, now, report)
        if message is None:
            return None
        decision = decide(message, registry)
        problem = decision.reason if decision.action is Action.DEAD_LETTER else None
        outcome = None
        if problem is None:
            digest = hashlib.sha256(compose_mail(message).encode("utf-8")).hexdigest()
            try:
                outcome = self._board.record_message(message, digest, now)
            except DependencyCycleError as exc:
                problem = str(exc)
        if outcome is RecordOutcome.CONFLICT:
            problem = f"id {message.id!r} was already used by a different message"
        if problem is not None:
            self.dead_letter(path, problem, now, report, message.id)
            return None
        duplicate = outcome is RecordOutcome.IDENTICAL
        finished = False
        if duplicate:
            report.duplicates += 1
            self._emit("mail.duplicate", now, id=message.id, file=path.name)
            # A task can run (its body is on the board) while its inbox could not take
            # the file; once delivered late, a finished one is filed as done at once.
            record = self._board.get(message.id)
            finished = record is not None and record.status in TERMINAL
        return _Pending(path, message, decision.action, duplicate, finished=finished)

    def _parse_or_reject(self, path: Path, now: float, report: RouteReport) -> Message | None:
        try:
            info = path.lstat()
            return self._read(path, info)
        except FileNotFoundError:
            return None  # taken by someone else meanwhile (another scan, the writer)
        except MailError as exc:
            if stat.S_ISREG(info.st_mode) and now - info.st_mtime < SETTLE_SECONDS:
                report.deferred += 1
            else:
                self.dead_letter(path, exc.problem, now, report)
            return None

    def _read(self, path: Path, info: os.stat_result) -> Message:
        if stat.S_ISLNK(info.st_mode):
            raise MailError("is a symbolic link; mail must be a regular file")
        if not stat.S_ISREG(info.st_mode):
            raise MailError("is not a regular file")
        if not path.name.endswith(".md"):
            raise MailError("not a mail file: mail files are named <id>.md")
        if info.st_size > self.max_bytes:
            raise MailError(f"mail is {info.st_size} bytes, the limit is {self.max_bytes}")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise
            raise MailError(f"cannot read: {exc.strerror}") from exc
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(self.max_bytes + 1)
        return parse_mail(data, max_bytes=self.max_bytes)

    def _deliver(self, item: _Pending) -> bool:
        """Phase two: link the file into its inbox (cancels stay); False if it vanished."""
        message = item.message
        if item.action is Action.CONSUME_CANCEL:
            return True
        inbox = self._inbox_of(message.to)
        if message.type is MessageType.NOTIFY:
            # Notices get their own folder: building a prompt lists only them, not the
            # whole queue of task mail (which made every spawn cost O(queue length)).
            inbox = inbox / NOTICES_DIR
        if item.finished:
            inbox = inbox / READ_DIR
        try:
            inbox.mkdir(parents=True, exist_ok=True)
            os.link(item.path, inbox / f"{message.id}.md")
        except FileExistsError:
            pass  # delivered before a crash; the board says it is the same message
        except FileNotFoundError:
            return False
        except OSError as exc:
            # Unwritable or full inbox: the mail stays in the postoffice (the board
            # knows it, so the next pass finishes the move) and the daemon goes on.
            self._emit(
                "daemon.error",
                time.time(),
                error=f"cannot deliver {item.path.name} into {inbox}: {exc.strerror or exc}",
            )
            return False
        item.inbox = inbox
        return True

    def _complete(self, item: _Pending, now: float, report: RouteReport) -> None:
        """Phase three, after the inboxes are durable: remove the original and report."""
        message = item.message
        if item.action is Action.CONSUME_CANCEL:
            if item.duplicate:
                item.path.unlink(missing_ok=True)
            else:
                report.cancels.append((message, item.path))
            return
        item.path.unlink(missing_ok=True)
        if item.duplicate:
            return
        if item.action is Action.DELIVER_AND_QUEUE:
            report.queued.append(message)
            self._emit(
                "mail.queued", now, id=message.id, to=message.to, mail_type=str(message.type)
            )
        else:
            report.delivered.append(message)
            self._emit(
                "mail.delivered", now, id=message.id, to=message.to, mail_type=str(message.type)
            )

    def dead_letter(
        self,
        path: Path,
        reason: str,
        now: float,
        report: RouteReport,
        message_id: str | None = None,
    ) -> None:
        """Move `path` into dead-letter/ beside a `.reason` file; never overwrite one."""
        folder = self._layout.dead_letter
        base = message_id if message_id and is_valid_message_id(message_id) else path.name
        one_line = " ".join(reason.split())
        try:
            folder.mkdir(parents=True, exist_ok=True)
            target = _free_name(folder, base)
            path.rename(target)
        except FileNotFoundError:
            return
        except OSError as exc:
            # The mail stays where it is, to be dead-lettered once the folder takes it.
            self._emit(
                "daemon.error",
                now,
                error=f"cannot move {path.name} into {folder}: {exc.strerror or exc} "
                f"(it would be dead-lettered: {one_line})",
            )
            return
        try:
            write_file_atomic(_reason_of(target), (one_line + "\n").encode())
            fsync_dir(folder)
        except OSError as exc:
            self._emit(
                "daemon.error",
                now,
                error=f"cannot write the reason for {target.name}: {exc.strerror or exc}",
            )
        report.dead_letters += 1
        self._emit("mail.dead_letter", now, file=path.name, moved_to=target.name, reason=one_line)


def _free_name(folder: Path, base: str) -> Path:
    candidate = folder / base
    counter = 1
    while candidate.is_symlink() or candidate.exists() or _reason_of(candidate).exists():
        candidate = folder / f"{base}.{counter}"
        counter += 1
    return candidate


def _reason_of(path: Path) -> Path:
    return path.with_name(path.name + ".reason")
