"""Pure-Python twin of the compiled ring buffer (``_ring.pyx``), same behaviour and API.

Used where the extension cannot be built for debugging, and forced with
``TESSERA_PURE_PYTHON=1``. It preallocates its slots too, but CPython cannot
promise "no allocation per push" (the tuple of a record is allocated), and
``wait`` holds a ``threading.Condition`` instead of a pthread one.
"""

from __future__ import annotations

import threading
import time

MAX_CAPACITY = 1 << 24
DEFAULT_SPIN_US = 200.0  # the compiled ring's; the twin never spins (it would hold the GIL)
MAX_SPIN_US = 100000.0

Record = tuple[int, int, int, int]

_INT64 = (-(1 << 63), (1 << 63) - 1)
_INT32 = (-(1 << 31), (1 << 31) - 1)


def _field(value: int, bounds: tuple[int, int], name: str) -> int:
    # Mirror the compiled ring's C conversion: ints as they are, floats
    # truncated, anything else TypeError, out of range OverflowError.
    if not isinstance(value, int):
        if not isinstance(value, float):
            raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        value = int(value)
    if not bounds[0] <= value <= bounds[1]:
        raise OverflowError(f"{name} {value} does not fit the record field")
    return value


class Ring:
    """Fixed-capacity ring of ``(t_ns, pin, kind, value)`` records.

        ring = Ring(1024); ring.push(time.monotonic_ns(), 17, 1, 1); ring.pop_many(64)
    """

    __slots__ = ("_buf", "_capacity", "_closed", "_cond", "_dropped", "_head", "_high_water",
                 "_lock", "_mask", "_spin_us", "_tail", "_waiters", "_woken")

    def __init__(self, capacity: int = 1024, *, spin_us: float = DEFAULT_SPIN_US) -> None:
        if capacity < 2 or capacity > MAX_CAPACITY or capacity & (capacity - 1):
            raise ValueError(f"ring capacity {capacity} must be a power of two between 2 and "
                             f"{MAX_CAPACITY}, e.g. 1024")
        if not 0 <= spin_us <= MAX_SPIN_US:
            raise ValueError(f"spin_us {spin_us} must be between 0 (never spin) and "
                             f"{MAX_SPIN_US:g}")
        self._spin_us = float(spin_us)
        self._capacity = capacity
        self._mask = capacity - 1
        self._buf: list[Record | None] = [None] * capacity
        self._head = 0  # total popped
        self._tail = 0  # total pushed
        self._dropped = 0
        self._high_water = 0
        self._waiters = 0
        self._woken = False
        self._closed = False
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)

    def push(self, t_ns: int, pin: int, kind: int, value: int) -> bool:
        """Append a record; False (and ``dropped`` += 1) when the ring is full. Never blocks."""
        rec = (_field(t_ns, _INT64, "t_ns"), _field(pin, _INT32, "pin"),
               _field(kind, _INT32, "kind"), _field(value, _INT32, "value"))
        with self._lock:
            n = self._tail - self._head
            if n >= self._capacity:
                self._dropped += 1
                return False
            self._buf[self._tail & self._mask] = rec
            self._tail += 1
            if n + 1 > self._high_water:
                self._high_water = n + 1
            if self._waiters:
                self._cond.notify()
            return True

    def push_now(self, pin: int, kind: int, value: int) -> bool:
        """``push`` stamped with ``time.monotonic_ns()``."""
        return self.push(time.monotonic_ns(), pin, kind, value)

    def pop_many(self, max_records: int = 256) -> list[Record]:
        """Remove and return up to ``max_records`` oldest records, oldest first."""
        with self._lock:
            n = min(self._tail - self._head, max(max_records, 0))
            buf, mask, head = self._buf, self._mask, self._head
            out = [buf[(head + i) & mask] for i in range(n)]
            self._head = head + n
        return out  # type: ignore[return-value]  # slots in [head, tail) are never None

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep until records are ready (True), or timeout/wake/close (False)."""
        # clamped like the compiled ring's (whose ns arithmetic would overflow)
        deadline = None if timeout is None else time.monotonic() + min(max(timeout, 0.0), 1e8)
        with self._lock:
            self._waiters += 1
            try:
                while self._tail == self._head and not self._woken and not self._closed:
                    if deadline is None:
                        self._cond.wait()
                    else:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(min(left, threading.TIMEOUT_MAX))
            finally:
                self._waiters -= 1
                self._woken = False
            return self._tail != self._head

    def pop_wait(self, max_records: int = 256, timeout: float | None = None) -> list[Record]:
        """``pop_many``; when the ring is empty, first ``wait(timeout)``. ``[]`` on
        timeout, wake or close."""
        if self._tail == self._head and not self.wait(timeout):
            return []
        return self.pop_many(max_records)

    def wake(self) -> None:
        """Make the current (or next) ``wait`` return at once, e.g. to stop a consumer."""
        with self._lock:
            self._woken = True
            self._cond.notify_all()

    def close(self) -> None:
        """Wake every waiter; later ``wait`` calls never block. ``push``/``pop_many`` still work."""
        with self._lock:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        return self._tail - self._head

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def spin_us(self) -> float:
        """Accepted for the compiled ring's API; the twin sleeps at once."""
        return self._spin_us

    @property
    def pushed(self) -> int:
        return self._tail

    @property
    def popped(self) -> int:
        return self._head

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def high_water(self) -> int:
        return self._high_water

    def counters(self) -> dict[str, int]:
        """Snapshot of pushed, popped, dropped, high_water (taken under the lock)."""
        with self._lock:
            return {"pushed": self._tail, "popped": self._head, "dropped": self._dropped,
                    "high_water": self._high_water}
