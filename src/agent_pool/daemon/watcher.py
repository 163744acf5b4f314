"""A wake-up hint when mail lands in the postoffice (watchdog; inotify on Linux).

The watcher is only a hint: the daemon's full scan is the source of truth, run at
start-up, periodically, and whenever this watcher has died, so a lost event can delay
mail by at most one reconcile interval and never strand it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver


class _Hint(FileSystemEventHandler):
    def __init__(self, on_hint: Callable[[], None]) -> None:
        self._on_hint = on_hint

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in ("created", "moved", "closed", "modified"):
            return
        path = event.dest_path or event.src_path
        name = Path(os.fsdecode(path)).name
        if not name.startswith("."):  # writers' temp files are not mail yet
            self._on_hint()


class MailWatcher:
    def __init__(self, folder: Path, on_hint: Callable[[], None]) -> None:
        self._folder = folder
        self._on_hint = on_hint
        self._observer: BaseObserver | None = None

    def start(self) -> None:
        observer = Observer()
        observer.schedule(_Hint(self._on_hint), str(self._folder), recursive=False)
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
