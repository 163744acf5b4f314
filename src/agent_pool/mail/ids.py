"""Message ids that are readable, sortable by creation time and unique.

An id looks like `20261124-101500-123456-3fa9c1`: the UTC date and time to the
microsecond, then 6 random hex digits. Within one generator the time part strictly
increases (a stalled or backward clock is bumped past the last id), so string order
is creation order; the random part keeps ids from different processes apart.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _random_suffix() -> str:
    return secrets.token_hex(3)


class IdGenerator:
    """Hands out strictly increasing ids; safe to share between threads."""

    def __init__(
        self,
        clock: Callable[[], datetime] = _utc_now,
        suffix: Callable[[], str] = _random_suffix,
    ) -> None:
        self._clock = clock
        self._suffix = suffix
        self._lock = threading.Lock()
        self._last = -1  # microseconds since the epoch of the last id handed out

    def next_id(self, now: datetime | None = None) -> str:
        """A new id for `now` (default: the clock); naive datetimes are taken as UTC."""
        moment = self._clock() if now is None else now
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        micros = (moment - _EPOCH) // _MICROSECOND
        with self._lock:
            micros = max(micros, self._last + 1)
            self._last = micros
        stamp = _EPOCH + micros * _MICROSECOND
        return f"{stamp:%Y%m%d-%H%M%S}-{stamp.microsecond:06d}-{self._suffix()}"


# One generator per process, so ids from any caller stay in order. Its only state is
# guarded by its lock.
_DEFAULT: Final = IdGenerator()


def new_message_id(now: datetime | None = None) -> str:
    """A new, unique, sortable message id from the process-wide generator."""
    return _DEFAULT.next_id(now)
