"""Log upkeep on real folders: archiving by age, the archive's size cap, the index cap."""

from __future__ import annotations

import gzip
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest

from agent_pool.config.model import DefaultsSection
from agent_pool.session.index import HEADER, IndexRow, append_index_row
from agent_pool.session.logfiles import task_logs
from agent_pool.upkeep import (
    LogLimits,
    LogUpkeepReport,
    archive_session_logs,
    cap_index,
    upkeep_agent_logs,
)

# Real time: leftover temp files are judged by their ctime, which only the clock sets.
NOW = float(int(time.time()))
DAY = 86_400.0
RETENTION = timedelta(days=14)
OLD = NOW - 20 * DAY
YOUNG = NOW - 1 * DAY
NO_CAP = 1 << 40


def write(path: Path, data: bytes, mtime: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


def log_bytes(label: str, lines: int = 3) -> bytes:
    return b"".join(
        b'{"type":"assistant","n":%d,"label":"%s"}\n' % (n, label.encode()) for n in range(lines)
    )


def archive(
    logs: Path, *, keep: tuple[str, ...] = (), cap: int = NO_CAP, now: float = NOW
) -> LogUpkeepReport:
    return archive_session_logs(
        logs, retention=RETENTION, archive_max_bytes=cap, now=now, keep=keep
    )


def names(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir()) if folder.is_dir() else []


# -- archiving -----------------------------------------------------------------------


def test_logs_older_than_the_retention_are_compressed_into_the_archive(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    old = write(logs / "t-1.jsonl", log_bytes("old", 500), OLD)
    old_mtime_ns = old.stat().st_mtime_ns
    write(logs / "t-2.jsonl", log_bytes("young"), YOUNG)

    report = archive(logs)

    assert names(logs) == ["archive", "t-2.jsonl"]
    assert names(logs / "archive") == ["t-1.jsonl.gz"]
    packed = logs / "archive" / "t-1.jsonl.gz"
    assert gzip.decompress(packed.read_bytes()) == log_bytes("old", 500)
    assert packed.stat().st_mtime_ns == old_mtime_ns  # age ordering survives
    assert report.archived == 1
    assert report.archived_bytes == len(log_bytes("old", 500))
    assert report.compressed_bytes == packed.stat().st_size < report.archived_bytes
    assert report.archive_bytes_before == report.archive_bytes_after == packed.stat().st_size
    assert report.errors == ()


def test_logs_of_tasks_to_keep_stay_live_whatever_their_age(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    for name in ("t-3.jsonl", "t-3.attempt-1.jsonl", "t-3.stderr.log", "t-4.jsonl"):
        write(logs / name, log_bytes(name), OLD)

    report = archive(logs, keep=("t-3",))

    assert names(logs) == ["archive", "t-3.attempt-1.jsonl", "t-3.jsonl", "t-3.stderr.log"]
    assert names(logs / "archive") == ["t-4.jsonl.gz"]
    assert report.archived == 1


def test_every_attempt_and_the_stderr_log_are_archived_under_their_own_names(
    tmp_path: Path,
) -> None:
    logs = tmp_path / "logs"
    for name in ("t-5.attempt-1.jsonl", "t-5.attempt-2.jsonl", "t-5.jsonl", "t-5.stderr.log"):
        write(logs / name, log_bytes(name), OLD)
    write(logs / "t-6.stderr.log", b"", OLD)  # an empty stderr log holds nothing to keep

    report = archive(logs)

    assert names(logs) == ["archive"]
    assert names(logs / "archive") == [
        "t-5.attempt-1.jsonl.gz",
        "t-5.attempt-2.jsonl.gz",
        "t-5.jsonl.gz",
        "t-5.stderr.log.gz",
    ]
    for packed in (logs / "archive").iterdir():
        assert gzip.decompress(packed.read_bytes()) == log_bytes(packed.name.removesuffix(".gz"))
    assert (report.archived, report.removed_empty) == (4, 1)
    found = task_logs(logs, "t-5")
    assert [log.path.name for log in found] == [
        "t-5.attempt-1.jsonl.gz",
        "t-5.attempt-2.jsonl.gz",
        "t-5.jsonl.gz",
    ]
    assert [log.number for log in found] == [1, 2, 3]
    assert all(log.archived for log in found)


def test_a_run_cut_short_after_publishing_the_archive_is_finished(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    original = write(logs / "t-7.jsonl", log_bytes("crash"), OLD)
    packed = write(logs / "archive" / "t-7.jsonl.gz", gzip.compress(original.read_bytes()), OLD)
    packed_bytes = packed.read_bytes()
    # A temp file left by a crash mid-copy: nobody will ever finish it.
    leftover = write(logs / "archive" / ".tmp-t-8.jsonl.gz-0123abcd", b"\x1f\x8b half", OLD)

    report = archive(logs, now=NOW + 2 * 3600)  # the leftover's ctime is about NOW

    assert names(logs) == ["archive"]
    assert names(logs / "archive") == ["t-7.jsonl.gz"]
    assert packed.read_bytes() == packed_bytes  # not written again
    assert not leftover.exists()
    assert report.archived == 1
    assert report.compressed_bytes == 0


def test_a_fresh_temp_file_in_the_archive_is_left_to_its_writer(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    write(logs / "t-8.jsonl", log_bytes("x"), OLD)
    in_progress = write(logs / "archive" / ".tmp-t-9.jsonl.gz-0123abcd", b"\x1f\x8b", OLD)
    archive(logs, now=time.time())
    assert in_progress.exists()
    assert names(logs / "archive") == [".tmp-t-9.jsonl.gz-0123abcd", "t-8.jsonl.gz"]


def test_a_retried_task_never_overwrites_its_archived_logs(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    first = write(
        logs / "archive" / "t-9.jsonl.gz", gzip.compress(log_bytes("first run")), OLD - DAY
    )
    write(logs / "t-9.jsonl", log_bytes("second run"), OLD)

    report = archive(logs)

    assert names(logs / "archive") == ["t-9.attempt-1.jsonl.gz", "t-9.jsonl.gz"]
    assert gzip.decompress(first.read_bytes()) == log_bytes("first run")
    second = logs / "archive" / "t-9.attempt-1.jsonl.gz"
    assert gzip.decompress(second.read_bytes()) == log_bytes("second run")
    assert report.archived == 1
    # Readers order archives by the time each keeps: the first run comes first.
    assert [log.path for log in task_logs(logs, "t-9")] == [first, second]

    # Cut short after that copy was published: the next run only removes the original.
    write(logs / "t-9.jsonl", log_bytes("second run"), OLD)
    again = archive(logs)
    assert names(logs / "archive") == ["t-9.attempt-1.jsonl.gz", "t-9.jsonl.gz"]
    assert names(logs) == ["archive"]
    assert again.archived == 1


def test_symlinks_odd_names_and_other_files_are_left_alone(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    outside = write(tmp_path / "secret.jsonl", log_bytes("outside"), OLD)
    logs.mkdir()
    (logs / "t-10.jsonl").symlink_to(outside)
    (logs / "t-11.jsonl").mkdir()
    odd = ["index.md", "notes.txt", "bad name.jsonl", "-dash.jsonl", ".hidden.jsonl", "x.gz"]
    for name in odd:
        write(logs / name, b"{}\n", OLD)

    report = archive(logs)

    assert names(logs) == sorted([*odd, "t-10.jsonl", "t-11.jsonl"])
    assert (logs / "t-10.jsonl").is_symlink()
    assert outside.read_bytes() == log_bytes("outside")
    assert report == LogUpkeepReport()
    assert task_logs(logs, "t-10") == []  # readers do not follow it either
    assert task_logs(logs, "t-11") == []


def test_an_archive_folder_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    elsewhere = tmp_path / "elsewhere"
    precious = write(elsewhere / "t-0.jsonl.gz", b"not ours to delete", OLD)
    original = write(logs / "t-12.jsonl", log_bytes("stays"), OLD)
    (logs / "archive").symlink_to(elsewhere)

    report = archive(logs, cap=0)

    assert original.read_bytes() == log_bytes("stays")
    assert names(elsewhere) == ["t-0.jsonl.gz"]
    assert precious.read_bytes() == b"not ours to delete"
    assert report.errors == (f"{logs / 'archive'}: not a folder (a symlink or a file)",)
    (logs / "t-12.jsonl").unlink()  # nothing to archive: only the cap looks at the archive
    assert archive(logs, cap=0).errors == report.errors
    assert names(elsewhere) == ["t-0.jsonl.gz"]


def test_a_missing_folder_is_nothing_to_do(tmp_path: Path) -> None:
    assert archive(tmp_path / "nowhere") == LogUpkeepReport()
    assert cap_index(tmp_path / "nowhere", 10) == 0


# -- the archive's size cap ----------------------------------------------------------


def test_the_oldest_archives_are_deleted_until_the_archive_fits(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    archived = logs / "archive"
    for age, name in enumerate(["t-a.jsonl.gz", "t-b.jsonl.gz", "t-c.jsonl.gz", "t-d.jsonl.gz"]):
        write(archived / name, b"x" * 100, OLD - (10 - age) * DAY)  # t-a is the oldest
    foreign = write(archived / "README", b"y" * 1000, OLD - 30 * DAY)  # not an archive

    report = archive(logs, cap=250)

    assert names(archived) == ["README", "t-c.jsonl.gz", "t-d.jsonl.gz"]
    assert foreign.exists()
    assert (report.deleted, report.deleted_bytes) == (2, 200)
    assert (report.archive_bytes_before, report.archive_bytes_after) == (400, 200)


def test_an_archive_within_its_cap_is_untouched(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    write(logs / "archive" / "t-a.jsonl.gz", b"x" * 100, OLD)
    report = archive(logs, cap=100)
    assert names(logs / "archive") == ["t-a.jsonl.gz"]
    assert report.deleted == 0


# -- the index cap -------------------------------------------------------------------


def add_rows(logs: Path, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        row = IndexRow(
            finished_at=NOW + n,
            task_id=f"t-{n}",
            sender="concierge",
            type="task",
            status="completed",
            attempts=1,
            turns=2,
            cost_usd=0.01,
            duration_ms=1000,
            summary=f"run {n}",
        )
        append_index_row(logs, row)


def rows_of(logs: Path) -> list[str]:
    text = (logs / "index.md").read_text(encoding="utf-8")
    assert text.startswith(HEADER)
    return [line.split(" | ")[1] for line in text.removeprefix(HEADER).splitlines()]


def test_the_index_keeps_its_header_and_the_newest_rows(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    add_rows(logs, 10)

    assert cap_index(logs, 4) == 6

    assert rows_of(logs) == ["t-6", "t-7", "t-8", "t-9"]
    add_rows(logs, 1, start=10)  # appending goes on as before
    assert rows_of(logs) == ["t-6", "t-7", "t-8", "t-9", "t-10"]
    assert [entry.name for entry in logs.iterdir()] == ["index.md"]  # no temp left


def test_an_index_within_its_cap_is_not_rewritten(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    add_rows(logs, 4)
    before = (logs / "index.md").stat()
    assert cap_index(logs, 4) == 0
    after = (logs / "index.md").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert rows_of(logs) == ["t-0", "t-1", "t-2", "t-3"]


def test_an_index_that_is_a_symlink_is_left_alone(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    add_rows(elsewhere, 5)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "index.md").symlink_to(elsewhere / "index.md")
    assert cap_index(logs, 1) == 0
    assert len(rows_of(elsewhere)) == 5


# -- many agents at once -------------------------------------------------------------


def test_upkeep_of_every_agent_adds_up(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "logs", tmp_path / "b" / "logs"
    write(first / "t-1.jsonl", log_bytes("a"), OLD)
    write(second / "t-2.jsonl", log_bytes("b"), OLD)
    write(second / "t-3.jsonl", log_bytes("kept"), OLD)
    add_rows(second, 3)
    limits = LogLimits(retention=RETENTION, archive_max_bytes=NO_CAP, index_max_rows=1)

    report = upkeep_agent_logs(
        [first, second, tmp_path / "missing"], limits=limits, now=NOW, keep={"t-3"}
    )

    assert report.folders == 3
    assert report.logs.archived == 2
    assert report.logs.archived_bytes == len(log_bytes("a")) + len(log_bytes("b"))
    assert report.index_rows_dropped == 2
    assert report.errors == ()
    assert names(second) == ["archive", "index.md", "t-3.jsonl"]


def test_limits_come_from_the_defaults_table() -> None:
    limits = LogLimits.from_defaults(DefaultsSection())
    assert limits.retention == timedelta(days=14)
    assert limits.archive_max_bytes == 256 * 1024 * 1024
    assert limits.index_max_rows == 2000


def test_a_negative_row_cap_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_rows"):
        cap_index(tmp_path, -1)


def test_upkeep_clears_what_a_crash_left_of_an_index_rewrite(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    add_rows(logs, 2)
    leftover = write(logs / ".tmp-index.md-0123abcd", b"| half", OLD)
    limits = LogLimits(retention=RETENTION, archive_max_bytes=NO_CAP, index_max_rows=5)

    upkeep_agent_logs([logs], limits=limits, now=time.time(), keep=())
    assert leftover.exists()  # it may be a rewrite in progress
    report = upkeep_agent_logs([logs], limits=limits, now=NOW + 2 * 3600, keep=())

    assert not leftover.exists()
    assert names(logs) == ["index.md"]
    assert report.errors == ()
