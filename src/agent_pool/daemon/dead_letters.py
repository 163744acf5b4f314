"""Reading the dead-letter folder: counts and reasons for `status`, and redelivery.

Each dead letter sits beside `<name>.reason` (one line; written by the postoffice).
Mail that died only because its recipient (or sender) did not exist yet is sent back
to the postoffice when an expert of that name appears, so creating the missing expert
is all a user has to do.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from agent_pool.pool.layout import PoolLayout

REASON_SUFFIX: Final = ".reason"
MAX_REASON_BYTES: Final = 4096


@dataclass(frozen=True)
class DeadLetter:
    file: str
    reason: str
    mtime: float

    def to_json(self) -> dict[str, object]:
        return {"file": self.file, "reason": self.reason, "time": round(self.mtime, 3)}


def dead_letter_summary(layout: PoolLayout, limit: int = 20) -> tuple[int, list[DeadLetter]]:
    """How many dead letters there are, and the newest `limit` with their reasons: one
    listing, and reason files read only for the ones shown (status calls this often)."""
    entries = _entries(layout)
    newest = sorted(entries, key=lambda entry: entry[1], reverse=True)[:limit]
    return len(entries), [_letter(layout, name, mtime) for name, mtime in newest]


def unknown_name_prefixes(name: str) -> tuple[str, str]:
    """How the router words a dead letter for a missing recipient or sender `name`."""
    return f"unknown recipient {name!r}", f"unknown sender {name!r}"


def redeliver_for(layout: PoolLayout, names: Iterable[str]) -> list[DeadLetter]:
    """Move mail that died for want of any of `names` back into the postoffice."""
    prefixes = tuple(prefix for name in names for prefix in unknown_name_prefixes(name))
    if not prefixes:
        return []
    moved = []
    for letter in _all(layout):
        if not letter.reason.startswith(prefixes):
            continue
        source = layout.dead_letter / letter.file
        stem = letter.file if letter.file.endswith(".md") else letter.file + ".md"
        target = _free_name(layout.postoffice, stem)
        try:
            source.rename(target)
        except FileNotFoundError:
            continue
        (layout.dead_letter / (letter.file + REASON_SUFFIX)).unlink(missing_ok=True)
        moved.append(letter)
    return moved


def _all(layout: PoolLayout) -> list[DeadLetter]:
    return [_letter(layout, name, mtime) for name, mtime in _entries(layout)]


def _entries(layout: PoolLayout) -> list[tuple[str, float]]:
    """(name, mtime) of every dead letter, reason files and temp files left out."""
    found = []
    try:
        entries = list(os.scandir(layout.dead_letter))
    except FileNotFoundError:
        return []
    for entry in entries:
        if entry.name.endswith(REASON_SUFFIX) or entry.name.startswith("."):
            continue
        try:
            found.append((entry.name, entry.stat(follow_symlinks=False).st_mtime))
        except FileNotFoundError:
            continue
    return found


def _letter(layout: PoolLayout, name: str, mtime: float) -> DeadLetter:
    return DeadLetter(name, _reason(layout.dead_letter, name), mtime)


def _reason(folder: Path, name: str) -> str:
    try:
        with (folder / (name + REASON_SUFFIX)).open("rb") as handle:
            raw = handle.read(MAX_REASON_BYTES)
    except OSError:
        return "(no reason recorded)"
    return " ".join(raw.decode("utf-8", "replace").split()) or "(no reason recorded)"


def _free_name(folder: Path, name: str) -> Path:
    candidate = folder / name
    counter = 1
    while candidate.exists() or candidate.is_symlink():
        candidate = folder / f"{name.removesuffix('.md')}.{counter}.md"
        counter += 1
    return candidate
