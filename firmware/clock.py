"""One injectable clock for all of Tessera.

Wall time on a Pi, virtual time in the simulator and tests, so a whole day
replays in seconds through the same code.

    >>> clock = VirtualClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    >>> clock.advance(90)
    >>> clock.now().isoformat()
    '2026-03-02T08:01:30+00:00'
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """What every component asks for the time."""

    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for timeouts)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class VirtualClock:
    """A clock that moves only when told to (or when someone sleeps on it).

    ``sleep`` advances virtual time at once, so single-threaded simulations run
    as fast as the CPU allows. Thread-safe.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock start must be timezone-aware")
        self._now = start.astimezone(UTC)
        self._mono = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("use set() to move a virtual clock backwards")
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self._mono += seconds

    def set(self, when: datetime) -> None:
        """Jump wall time (forwards or backwards); monotonic time is unaffected."""
        if when.tzinfo is None:
            raise ValueError("set() needs a timezone-aware datetime")
        with self._lock:
            self._now = when.astimezone(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)
