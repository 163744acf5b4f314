"""Config hot reload: notice an edited pool.toml or config.toml and load it again.

The files' stat signatures are compared on every routing pass (the watcher wakes one
when the `.agent-pool` folder changes; the periodic reconcile covers a lost event), so
an unchanged config costs two `stat` calls. An invalid edit is refused with the loader's
one-line error and the running config is kept: a typo never stops a pool. A file
modified within the last `SETTLE_SECONDS` is read only once it has settled, so a file
an editor truncates and rewrites in place is never applied half-written (an empty
pool.toml is valid and would silently reset every setting).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from agent_pool.config import PoolConfig
from agent_pool.errors import ConfigError

Signature = tuple[tuple[int, int, int] | None, ...]

SETTLE_SECONDS: Final = 0.3


@dataclass(frozen=True)
class Reload:
    """What a changed file did: a new config with the keys that differ, or an error."""

    config: PoolConfig | None = None
    changed: tuple[str, ...] = ()
    error: str | None = None
    settling: bool = False  # a file is being written: check again after SETTLE_SECONDS


class ConfigWatch:
    def __init__(
        self, paths: Iterable[Path], load: Callable[[], PoolConfig], current: PoolConfig
    ) -> None:
        self._paths = tuple(paths)
        self._load = load
        self._current = current
        self._signature = self._stat_all()

    def check(self) -> Reload | None:
        """None when no file changed since the last check; otherwise what it means."""
        signature = self._stat_all()
        if signature == self._signature:
            return None
        newest = max((entry[0] for entry in signature if entry is not None), default=0)
        if time.time() - newest / 1e9 < SETTLE_SECONDS:
            return Reload(settling=True)
        self._signature = signature
        try:
            config = self._load()
        except ConfigError as exc:
            return Reload(error=exc.message)
        changed = changed_keys(self._current.model_dump(), config.model_dump())
        if not changed:
            return None  # touched or reformatted: nothing to apply
        self._current = config
        return Reload(config=config, changed=tuple(changed))

    def _stat_all(self) -> Signature:
        return tuple(_stat(path) for path in self._paths)


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of the leaves that differ (a table added or removed counts as a leaf)."""
    changed = []
    for key in sorted(set(old) | set(new)):
        path = f"{prefix}{key}"
        before, after = old.get(key), new.get(key)
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            changed += changed_keys(before, after, path + ".")
        elif before != after:
            changed.append(path)
    return changed
