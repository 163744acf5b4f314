"""Wake-up hints when folders change (watchdog; inotify on Linux).

The watcher is only a hint: the daemon's full scan is the source of truth, run at
start-up, periodically, and whenever this watcher has died, so a lost event can delay
mail (or a config edit, or a new expert folder) by at most one reconcile interval and
never strand it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

_WRITES = frozenset({"created", "moved", "closed", "modified"})


class _Hint(FileSystemEventHandler):
    def __init__(self, on_hint: Callable[[], None], kinds: frozenset[str]) -> None:
        self._on_hint = on_hint
        self._kinds = kinds

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in self._kinds:
            return
        path = event.dest_path or event.src_path
        name = Path(os.fsdecode(path)).name
        if not name.startswith("."):  # writers' temp files are not mail (or config) yet
            self._on_hint()


@dataclass(frozen=True)
class _Watch:
    folder: Path
    on_hint: Callable[[], None]
    kinds: frozenset[str]


class FolderWatcher:
    """One observer thread for several folders (each non-recursive)."""

    def __init__(self) -> None:
        self._watches: list[_Watch] = []
        self._observer: BaseObserver | None = None

    def add(self, folder: Path, on_hint: Callable[[], None], *, deletions: bool = False) -> None:
        """Watch `folder`; deletions too when they matter (the postoffice deletes every
        routed mail, and those must not wake the daemon again)."""
        kinds = _WRITES | {"deleted"} if deletions else _WRITES
        self._watches.append(_Watch(folder, on_hint, kinds))

    def start(self) -> None:
        observer = Observer()
        for watch in self._watches:
            if watch.folder.is_dir():  # an absent one is covered by the periodic scan
                handler = _Hint(watch.on_hint, watch.kinds)
                observer.schedule(handler, str(watch.folder), recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer

    @property
    def alive(self) -> bool:
        return self._observer is not None and self._observer.is_alive()

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
