"""Routing under hostile input and load: dead letters with reasons, exactly-once delivery."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from agent_pool.mail import Message, MessageType, compose_mail, post_message
from tests.harness import Pool, wait_until

GOOD = "---\nid: {id}\nfrom: concierge\nto: backend\ntype: task\n---\nfake: text ok\n"


def _corpus(pool: Pool, tmp: Path) -> dict[str, str]:
    """Write every kind of bad mail into the postoffice.

    Returns the expected dead-letter name (the id when the mail had a readable one,
    else the file name) -> a fragment of the expected reason.
    """
    office = pool.layout.postoffice
    cases = {
        "bad-yaml.md": ("---\nid: [unclosed\nfrom: concierge\n---\nbody\n", "line"),
        "missing-to.md": ("---\nid: m1\nfrom: concierge\ntype: task\n---\nbody\n", "'to'"),
        "unknown-key.md": (
            GOOD.replace("type: task", "type: task\nprio: high").format(id="m2"),
            "prio",
        ),
        "unknown-type.md": (GOOD.replace("type: task", "type: chore").format(id="m3"), "chore"),
        "nobody.md": (
            GOOD.replace("to: backend", "to: nobody").format(id="m4"),
            "unknown recipient",
        ),
        "traversal-to.md": (GOOD.replace("to: backend", "to: ../../etc").format(id="m5"), "'to'"),
        "traversal-id.md": (GOOD.format(id="../../escape"), "'id'"),
        "empty.md": ("", "empty"),
        "huge.md": (GOOD.format(id="m6") + "x" * (5 * 1024 * 1024), "limit"),
        "no-front-matter.md": ("just text\n", "front matter"),
        "cycle-b.md": (
            GOOD.replace("type: task", "type: task\ndepends-on: [cyc-a]").format(id="cyc-b"),
            "cycle",
        ),
        "notes.txt": ("hello", "not a mail file"),
    }
    written = {}
    # cyc-a waits on cyc-b; cyc-b (routed after it, by name) closes the cycle.
    (office / "cyc-a.md").write_text(
        GOOD.replace("type: task", "type: task\ndepends-on: [cyc-b]").format(id="cyc-a")
    )
    named_by_id = {"nobody.md": "m4", "cycle-b.md": "cyc-b"}
    for name, (text, reason) in cases.items():
        (office / name).write_text(text, encoding="utf-8")
        written[named_by_id.get(name, name)] = reason
    (office / "binary.md").write_bytes(bytes(range(256)) * 4)
    written["binary.md"] = "text"
    target = tmp / "elsewhere.md"
    target.write_text(GOOD.format(id="m7"))
    (office / "link.md").symlink_to(target)
    written["link.md"] = "symbolic link"
    (office / "folder.md").mkdir()
    written["folder.md"] = "regular file"
    os.mkfifo(office / "pipe.md")
    written["pipe.md"] = "regular file"
    return written


@pytest.mark.faults
def test_every_bad_mail_is_dead_lettered_with_a_reason_and_good_mail_flows(
    pool: Pool, tmp_path: Path
) -> None:
    pool.start()
    expected = _corpus(pool, tmp_path)
    good = pool.post("backend", "fake: text fine")
    # A different message reusing an id that is already on the board.
    dup_first = pool.post("frontend", "first version")
    pool.wait_status(dup_first, "completed")
    (pool.layout.postoffice / "dup.md").write_text(
        GOOD.replace("fake: text ok", "second version").format(id=dup_first)
    )
    expected[dup_first] = "already used"

    assert pool.wait_status(good, "completed").result == "fine"
    dead = pool.layout.dead_letter
    wait_until(lambda: not any(pool.layout.postoffice.iterdir()), 20, "an empty postoffice")

    def reasons_so_far() -> dict[str, str]:
        return {
            path.name.removesuffix(".reason"): path.read_text() for path in dead.glob("*.reason")
        }

    # A dead letter is moved first and its reason written next: wait for the last one.
    wait_until(lambda: set(expected) <= set(reasons_so_far()), 20, "every reason file")
    reasons = reasons_so_far()
    for name, fragment in expected.items():
        assert name in reasons, f"{name} was not dead-lettered; have {sorted(reasons)}"
        text = reasons[name]
        assert fragment in text, (name, text)
        assert text.count("\n") == 1
    assert pool.task("cyc-a").status == "blocked"  # type: ignore[union-attr]
    assert sorted(reasons) == sorted(expected)
    assert pool.status()["dead_letters"] == len(expected)
    assert (tmp_path / "elsewhere.md").exists()  # the symlink's target is untouched


def test_an_identical_repost_is_dropped_without_a_dead_letter(pool: Pool) -> None:
    pool.start()
    message = Message(
        id="same-1", sender="concierge", to="backend", type=MessageType.TASK, body="fake: text once"
    )
    post_message(pool.layout.postoffice, message)
    pool.wait_status("same-1", "completed")
    (pool.layout.postoffice / "again.md").write_text(compose_mail(message))
    wait_until(lambda: not any(pool.layout.postoffice.iterdir()), 20, "the re-post to be taken")
    assert list(pool.layout.dead_letter.iterdir()) == []
    assert pool.runs_of("same-1") == 1


@pytest.mark.faults
def test_ten_concurrent_submitters_deliver_exactly_once(pool: Pool) -> None:
    pool.start()

    def submitter(n: int) -> None:
        for k in range(100):
            post_message(
                pool.layout.postoffice,
                Message(
                    id=f"n-{n}-{k}",
                    sender="frontend",
                    to="backend",
                    type=MessageType.NOTIFY,
                    body=f"note {k}",
                ),
            )

    threads = [threading.Thread(target=submitter, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    inbox = pool.layout.root / "experts" / "backend" / "inbox" / "notices"
    wait_until(lambda: len(list(inbox.glob("n-*.md"))) == 1000, 30, "1000 deliveries")
    wait_until(lambda: not any(pool.layout.postoffice.iterdir()), 10, "an empty postoffice")
    assert list(pool.layout.dead_letter.iterdir()) == []
    expected = sorted(f"n-{n}-{k}" for n in range(10) for k in range(100))
    assert sorted(p.stem for p in inbox.glob("n-*.md")) == expected
    # Exactly once: one delivery each (a file name alone could hide a second one).
    log = pool.layout.daemon_log

    def deliveries() -> list[str] | None:
        events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        found = [e["id"] for e in events if e["type"] == "mail.delivered"]
        return found if len(found) >= len(expected) else None

    delivered = wait_until(deliveries, 10, "every delivery event")
    assert sorted(delivered) == expected
