"""Bounded session logs: old logs move to `logs/archive/` compressed, the archive is
capped in size, and `logs/index.md` in rows.

Archiving a log is crash-safe and idempotent: the compressed copy is published whole
(`gzcopy.compress_to`) before the original is unlinked, so a crash leaves the
original, the archive, or both; when both are there the next run sees that the
archive holds the same bytes and only removes the original. An archive never
replaces another one: a task retried after its logs were archived writes the same
names again, and those later logs go under a free attempt number (readers order
archives by the modification time each keeps from its log).

Only regular files whose names are session logs of a valid task id are touched;
symlinks, dotfiles and anything else are left alone. Everything that goes wrong with
one file is reported and the run goes on: upkeep runs unattended for weeks.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Final

from agent_pool.session.logfiles import (
    ARCHIVE_DIR,
    ARCHIVE_SUFFIX,
    ATTEMPT_INFIX,
    SessionLogName,
    archive_name,
    parse_session_log_name,
)
from agent_pool.upkeep.gzcopy import TEMP_PREFIX, compress_to, same_content
from agent_pool.upkeep.index_cap import INDEX_TEMP_PREFIX, cap_index

if TYPE_CHECKING:
    from agent_pool.config.model import DefaultsSection

# A temp file untouched this long is left over from a crash mid-copy.
STALE_TEMP_SECONDS: Final = 3600.0
_READ_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class LogUpkeepReport:
    """What one upkeep run did to session logs (sums over folders when combined)."""

    archived: int = 0  # logs now only in the archive
    archived_bytes: int = 0  # their size before compression
    compressed_bytes: int = 0  # the size of the archives written for them
    removed_empty: int = 0  # empty stderr logs removed: nothing to keep
    deleted: int = 0  # archives deleted to stay within the size cap
    deleted_bytes: int = 0
    archive_bytes_before: int = 0  # the archive folder before the cap was applied
    archive_bytes_after: int = 0  # ... and after
    errors: tuple[str, ...] = ()  # one line per file that could not be handled

    def __add__(self, other: LogUpkeepReport) -> LogUpkeepReport:
        sums = {
            item.name: getattr(self, item.name) + getattr(other, item.name) for item in fields(self)
        }
        return LogUpkeepReport(**sums)


@dataclass(frozen=True, slots=True, kw_only=True)
class LogLimits:
    """How long logs stay live, and how large the archive and the index may grow."""

    retention: timedelta
    archive_max_bytes: int
    index_max_rows: int

    @classmethod
    def from_defaults(cls, defaults: DefaultsSection) -> LogLimits:
        return cls(
            retention=defaults.log_retention,
            archive_max_bytes=defaults.log_archive_max_bytes,
            index_max_rows=defaults.index_max_rows,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentLogsReport:
    """One upkeep pass over many agents' `logs/` folders."""

    folders: int
    logs: LogUpkeepReport
    index_rows_dropped: int
    errors: tuple[str, ...]  # the logs' errors and the indexes'


def upkeep_agent_logs(
    logs_dirs: Iterable[Path], *, limits: LogLimits, now: float, keep: Collection[str]
) -> AgentLogsReport:
    """Archive, cap and trim every folder in `logs_dirs`; never raises for one folder.

    `keep`: ids of tasks whose logs must stay where they are (the active ones).
    """
    total = LogUpkeepReport()
    dropped = 0
    errors: list[str] = []
    folders = 0
    for logs_dir in logs_dirs:
        folders += 1
        report = archive_session_logs(
            logs_dir,
            retention=limits.retention,
            archive_max_bytes=limits.archive_max_bytes,
            now=now,
            keep=keep,
        )
        total += report
        errors += report.errors
        try:
            _remove_stale_temps(logs_dir, INDEX_TEMP_PREFIX, now)
            dropped += cap_index(logs_dir, limits.index_max_rows)
        except OSError as exc:
            errors.append(_describe(logs_dir / "index.md", exc))
    return AgentLogsReport(
        folders=folders, logs=total, index_rows_dropped=dropped, errors=tuple(errors)
    )


def archive_session_logs(
    logs_dir: Path,
    *,
    retention: timedelta,
    archive_max_bytes: int,
    now: float,
    keep: Collection[str],
) -> LogUpkeepReport:
    """Compress logs last changed before `now - retention` into `logs_dir/archive/`,
    then delete the oldest archives while the archive is over `archive_max_bytes`.

    Logs of tasks in `keep` stay. Problems with single files are in the report's
    `errors`; this raises no OSError.
    """
    run = _Run(logs_dir, logs_dir / ARCHIVE_DIR)
    cutoff = now - retention.total_seconds()
    try:
        entries = sorted(os.scandir(logs_dir), key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return LogUpkeepReport()
    except OSError as exc:
        return LogUpkeepReport(errors=(_describe(logs_dir, exc),))
    archive_ready = False
    for entry in entries:
        parsed = parse_session_log_name(entry.name)
        if parsed is None or any(task in keep for task in parsed.task_ids):
            continue
        info = _regular_stat(entry)
        if info is None or info.st_mtime >= cutoff:
            continue
        if not archive_ready:
            try:
                _prepare_archive(run.archive_dir)
            except OSError as exc:
                run.errors.append(_describe(run.archive_dir, exc))
                return run.report()  # no archive to write to, nor to cap
            archive_ready = True
        try:
            run.archive(entry.name, parsed)
        except FileNotFoundError:
            continue  # gone meanwhile: nothing left to archive
        except OSError as exc:
            run.errors.append(_describe(logs_dir / entry.name, exc))
    try:
        _remove_stale_temps(run.archive_dir, TEMP_PREFIX, now)
    except OSError as exc:
        run.errors.append(_describe(run.archive_dir, exc))
    run.apply_cap(archive_max_bytes)
    return run.report()


@dataclass
class _Run:
    logs_dir: Path
    archive_dir: Path
    archived: int = 0
    archived_bytes: int = 0
    compressed_bytes: int = 0
    removed_empty: int = 0
    deleted: int = 0
    deleted_bytes: int = 0
    archive_bytes_before: int = 0
    archive_bytes_after: int = 0
    errors: list[str] = field(default_factory=list)

    def archive(self, name: str, parsed: SessionLogName) -> None:
        """Archive one log, `name` being a session log name (validated by parsing)."""
        source_path = self.logs_dir / name
        with _open_regular(source_path) as source:
            opened = os.fstat(source.fileno())
            if parsed.kind == "stderr" and opened.st_size == 0:
                if _unlink_if_unchanged(source_path, opened):
                    self.removed_empty += 1
                return
            target = self.archive_dir / archive_name(name)
            if target.exists() or target.is_symlink():
                if any(same_content(source, copy) for copy in self._copies_of(target, parsed)):
                    # A crash after the archive was published: finish the job.
                    self._count(_unlink_if_unchanged(source_path, opened), opened.st_size, 0)
                    return
                target = self._free_name(parsed)
            written = compress_to(source, target)
            if _changed(os.fstat(source.fileno()), opened):
                # Still being written after all: this copy may miss the end.
                target.unlink()
                return
            self._count(_unlink_if_unchanged(source_path, opened), opened.st_size, written)

    def _count(self, unlinked: bool, size: int, written: int) -> None:
        self.compressed_bytes += written
        if unlinked:
            self.archived += 1
            self.archived_bytes += size

    def _copies_of(self, target: Path, parsed: SessionLogName) -> Iterator[Path]:
        """`target` and the archives of the same task and kind under a free name."""
        if _is_regular(target):
            yield target
        for _, path in self._numbered(parsed):
            if path != target and _is_regular(path):
                yield path

    def _free_name(self, parsed: SessionLogName) -> Path:
        numbers = [number for number, _ in self._numbered(parsed)]
        number = max([parsed.attempt or 0, *numbers]) + 1
        return self.archive_dir / archive_name(
            f"{parsed.task_id}{ATTEMPT_INFIX}{number}{parsed.suffix}"
        )

    def _numbered(self, parsed: SessionLogName) -> list[tuple[int, Path]]:
        # Ids are [A-Za-z0-9._-] only: nothing in them is special to glob.
        prefix = f"{parsed.task_id}{ATTEMPT_INFIX}"
        suffix = f"{parsed.suffix}{ARCHIVE_SUFFIX}"
        found = []
        for path in self.archive_dir.glob(f"{prefix}*{suffix}"):
            number = path.name[len(prefix) : -len(suffix)]
            if number.isdigit():
                found.append((int(number), path))
        return found

    def apply_cap(self, max_bytes: int) -> None:
        """Delete the oldest archives until the archive folder is within `max_bytes`."""
        try:
            archives = _archives(self.archive_dir)
        except FileNotFoundError:
            return
        except OSError as exc:
            self.errors.append(_describe(self.archive_dir, exc))
            return
        total = sum(size for _, _, size in archives)
        self.archive_bytes_before = total
        for _, name, size in sorted(archives):
            if total <= max_bytes:
                break
            try:
                (self.archive_dir / name).unlink()
            except FileNotFoundError:
                pass  # gone meanwhile: it no longer counts either way
            except OSError as exc:
                self.errors.append(_describe(self.archive_dir / name, exc))
                continue
            else:
                self.deleted += 1
                self.deleted_bytes += size
            total -= size
        self.archive_bytes_after = total

    def report(self) -> LogUpkeepReport:
        return LogUpkeepReport(
            archived=self.archived,
            archived_bytes=self.archived_bytes,
            compressed_bytes=self.compressed_bytes,
            removed_empty=self.removed_empty,
            deleted=self.deleted,
            deleted_bytes=self.deleted_bytes,
            archive_bytes_before=self.archive_bytes_before,
            archive_bytes_after=self.archive_bytes_after,
            errors=tuple(self.errors),
        )


def _prepare_archive(archive_dir: Path) -> None:
    """Create archive/: a real folder, never a symlink."""
    with contextlib.suppress(FileExistsError):
        archive_dir.mkdir()
    if not stat.S_ISDIR(archive_dir.lstat().st_mode):
        raise NotADirectoryError(0, "not a folder (a symlink or a file)", str(archive_dir))


def _remove_stale_temps(folder: Path, prefix: str, now: float) -> None:
    """Remove temp files (`prefix`...) a crash left in `folder`, if it is a real folder."""
    try:
        if not stat.S_ISDIR(folder.lstat().st_mode):
            return
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        with contextlib.suppress(FileNotFoundError):
            info = entry.stat(follow_symlinks=False)
            # ctime, which no one can set back: a copy in progress has a recent one.
            if stat.S_ISREG(info.st_mode) and info.st_ctime < now - STALE_TEMP_SECONDS:
                Path(entry.path).unlink()


def _archives(archive_dir: Path) -> list[tuple[int, str, int]]:
    """(mtime, name, size) of every archived session log; names are validated.

    Raises NotADirectoryError when archive/ is a symlink: never delete through one.
    """
    if not stat.S_ISDIR(archive_dir.lstat().st_mode):
        raise NotADirectoryError(0, "not a folder (a symlink or a file)", str(archive_dir))
    found = []
    for entry in os.scandir(archive_dir):
        if not entry.name.endswith(ARCHIVE_SUFFIX):
            continue
        if parse_session_log_name(entry.name.removesuffix(ARCHIVE_SUFFIX)) is None:
            continue
        info = _regular_stat(entry)
        if info is not None:
            found.append((info.st_mtime_ns, entry.name, info.st_size))
    return found


@contextlib.contextmanager
def _open_regular(path: Path) -> Iterator[BinaryIO]:
    with os.fdopen(os.open(path, _READ_FLAGS), "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise FileNotFoundError(0, "not a regular file", str(path))
        yield file


def _unlink_if_unchanged(path: Path, opened: os.stat_result) -> bool:
    """Unlink `path` if it is still the file that was read; whether it was.

    The supervisor may have put a new log under the same name meanwhile (a retried
    task): that one is not ours to remove.
    """
    try:
        now = path.lstat()
    except FileNotFoundError:
        return True  # someone finished the job: the archive holds it
    if _changed(now, opened) or (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino):
        return False
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return True


def _changed(now: os.stat_result, before: os.stat_result) -> bool:
    return (now.st_size, now.st_mtime_ns) != (before.st_size, before.st_mtime_ns)


def _regular_stat(entry: os.DirEntry[str]) -> os.stat_result | None:
    try:
        info = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None
    return info if stat.S_ISREG(info.st_mode) else None


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except FileNotFoundError:
        return False


def _describe(path: Path, exc: OSError) -> str:
    where = os.fsdecode(exc.filename) if exc.filename is not None else path
    return f"{where}: {exc.strerror or exc}"
