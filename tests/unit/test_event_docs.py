"""docs/events.md and the code agree on every event type."""

from __future__ import annotations

import re
from pathlib import Path

from agent_pool.daemon.event_catalog import EVENT_TYPES

ROOT = Path(__file__).resolve().parents[2]


def test_every_catalogued_event_is_documented_and_nothing_else() -> None:
    text = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", text, flags=re.MULTILINE))
    assert documented == set(EVENT_TYPES)


def test_every_event_the_daemon_emits_is_in_the_catalog() -> None:
    source = "\n".join(
        path.read_text(encoding="utf-8") for path in (ROOT / "src" / "agent_pool").rglob("*.py")
    )
    emitted = set(re.findall(r"emit\(\s*\"([a-z_.]+)\"", source))
    assert emitted, "the scan found no emit calls: the pattern is out of date"
    assert emitted <= set(EVENT_TYPES), emitted - set(EVENT_TYPES)
