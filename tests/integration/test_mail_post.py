"""Posting mail to a real folder: atomic, exclusive, and tidy after failures."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest

from agent_pool.errors import DuplicateMailError
from agent_pool.fsutil import write_file_atomic
from agent_pool.mail import Message, MessageType, compose_mail, parse_mail, post_message


def task(message_id: str, body: str = "Build it.\n") -> Message:
    return Message(
        id=message_id, sender="concierge", to="backend", type=MessageType.TASK, body=body
    )


def entries(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir())


def test_post_writes_the_composed_file(tmp_path: Path) -> None:
    msg = task("t-0001", body="line\r\nline\n")
    path = post_message(tmp_path, msg)
    assert path == tmp_path / "t-0001.md"
    assert path.read_bytes() == compose_mail(msg).encode()
    assert parse_mail(path.read_bytes()) == msg
    assert entries(tmp_path) == ["t-0001.md"]


def test_second_post_of_an_id_is_refused(tmp_path: Path) -> None:
    first = post_message(tmp_path, task("t-0001", "first\n"))
    original = first.read_bytes()
    with pytest.raises(DuplicateMailError) as info:
        post_message(tmp_path, task("t-0001", "second\n"))
    assert info.value.message_id == "t-0001"
    assert info.value.path == first
    assert first.read_bytes() == original
    assert entries(tmp_path) == ["t-0001.md"]  # the temp file is gone too


def test_a_dangling_symlink_is_never_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.txt"
    (tmp_path / "t-0001.md").symlink_to(target)
    with pytest.raises(DuplicateMailError):
        post_message(tmp_path, task("t-0001"))
    assert not target.exists()
    assert entries(tmp_path) == ["t-0001.md"]


def test_no_temp_file_survives_a_failed_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    # Every fsync fails, as on a full or failing disk.
    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        post_message(tmp_path, task("t-0001"))
    assert entries(tmp_path) == []


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        post_message(tmp_path / "absent", task("t-0001"))


def test_concurrent_posts_of_distinct_ids_all_land(tmp_path: Path) -> None:
    per_thread = 25
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for n in range(per_thread):
                post_message(tmp_path, task(f"t-{thread}-{n}", f"from thread {thread}\n"))
        except BaseException as exc:  # noqa: BLE001  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    names = entries(tmp_path)
    assert len(names) == 8 * per_thread
    assert not [name for name in names if name.startswith(".")]
    assert parse_mail((tmp_path / "t-3-7.md").read_bytes()) == task("t-3-7", "from thread 3\n")


def test_racing_posts_of_one_id_let_exactly_one_win(tmp_path: Path) -> None:
    bodies = [f"version {n}\n" for n in range(8)]
    outcomes: list[str] = []
    start = threading.Barrier(len(bodies))

    def work(body: str) -> None:
        start.wait()
        try:
            post_message(tmp_path, task("t-race", body))
            outcomes.append("posted")
        except DuplicateMailError:
            outcomes.append("duplicate")

    threads = [threading.Thread(target=work, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["duplicate"] * 7 + ["posted"]
    assert parse_mail((tmp_path / "t-race.md").read_bytes()).body in bodies
    assert entries(tmp_path) == ["t-race.md"]


def test_write_file_atomic_replaces(tmp_path: Path) -> None:
    path = tmp_path / "state.md"
    write_file_atomic(path, b"one")
    write_file_atomic(path, b"two")
    assert path.read_bytes() == b"two"
    assert entries(tmp_path) == ["state.md"]


def test_write_file_atomic_replaces_a_symlink_not_its_target(tmp_path: Path) -> None:
    target = tmp_path / "target.md"
    target.write_bytes(b"keep")
    link = tmp_path / "state.md"
    link.symlink_to(target)
    write_file_atomic(link, b"new")
    assert not link.is_symlink()
    assert link.read_bytes() == b"new"
    assert target.read_bytes() == b"keep"
