"""Ring semantics: capacity, order, overflow policy, counters, wait/wake/close."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from tessera.cext import PRESS, RELEASE
from tessera.cext._ring_py import Ring


@pytest.mark.parametrize("capacity", [0, 1, 3, 6, 1000, 1023, -4, (1 << 24) + 1, 1 << 25])
def test_capacity_not_power_of_two_is_rejected(ring_cls: type[Ring], capacity: int) -> None:
    with pytest.raises(ValueError, match="power of two"):
        ring_cls(capacity)


@pytest.mark.parametrize("capacity", [2, 4, 1024, 1 << 16])
def test_power_of_two_capacity_is_accepted(ring_cls: type[Ring], capacity: int) -> None:
    ring = ring_cls(capacity)
    assert ring.capacity == capacity
    assert len(ring) == 0


def test_fifo_order_across_wraparound(ring_cls: type[Ring]) -> None:
    ring = ring_cls(4)
    expected = []
    got = []
    for i in range(11):  # 3 in, 3 out in two batches: the indices wrap several times
        for j in range(3):
            rec = (i * 10 + j, i, PRESS, j)
            assert ring.push(*rec)
            expected.append(rec)
        got.extend(ring.pop_many(1 + i % 2))
        got.extend(ring.pop_many(3))
    assert got == expected


def test_full_ring_drops_the_new_record_and_counts_it(ring_cls: type[Ring]) -> None:
    ring = ring_cls(4)
    accepted = [ring.push(i, 5, PRESS, i) for i in range(7)]
    assert accepted == [True] * 4 + [False] * 3
    assert ring.dropped == 3
    assert [r[3] for r in ring.pop_many(10)] == [0, 1, 2, 3]  # the oldest are kept
    assert ring.push(99, 5, RELEASE, 0)
    assert ring.pop_many(10) == [(99, 5, RELEASE, 0)]
    assert ring.counters() == {"pushed": 5, "popped": 5, "dropped": 3, "high_water": 4}


def test_counters_and_high_water(ring_cls: type[Ring]) -> None:
    ring = ring_cls(8)
    for i in range(5):
        ring.push(i, 1, PRESS, 1)
    ring.pop_many(4)
    for i in range(2):
        ring.push(i, 1, PRESS, 1)
    assert (ring.pushed, ring.popped, ring.dropped, ring.high_water) == (7, 4, 0, 5)
    assert len(ring) == 3


def test_pop_many_limits(ring_cls: type[Ring]) -> None:
    ring = ring_cls(8)
    assert ring.pop_many(10) == []
    for i in range(3):
        ring.push(i, 2, PRESS, 1)
    assert ring.pop_many(0) == []
    assert ring.pop_many(-1) == []
    assert len(ring.pop_many(2)) == 2
    assert len(ring.pop_many()) == 1


def test_record_fields_keep_their_full_range(ring_cls: type[Ring]) -> None:
    ring = ring_cls(4)
    rec = ((1 << 63) - 1, -(1 << 31), (1 << 31) - 1, -1)
    assert ring.push(*rec)
    assert ring.pop_many(1) == [rec]


@pytest.mark.parametrize("bad", [(1 << 63, 0, 0, 0), (0, 1 << 31, 0, 0), (0, 0, 0, -(1 << 31) - 1)])
def test_out_of_range_field_raises_overflow(ring_cls: type[Ring], bad: tuple[int, ...]) -> None:
    ring = ring_cls(4)
    with pytest.raises(OverflowError):
        ring.push(*bad)
    assert ring.pushed == 0 and ring.dropped == 0


def test_non_number_field_raises_type_error(ring_cls: type[Ring]) -> None:
    ring = ring_cls(4)
    with pytest.raises(TypeError):
        ring.push("1", 0, 0, 0)  # type: ignore[arg-type]
    assert ring.pushed == 0


def test_float_field_is_truncated_like_a_c_int(ring_cls: type[Ring]) -> None:
    ring = ring_cls(4)
    assert ring.push(1.9, 2, 1, 0)  # type: ignore[arg-type]
    assert ring.pop_many(1) == [(1, 2, 1, 0)]


def test_push_now_uses_the_monotonic_clock(ring_cls: type[Ring]) -> None:
    ring = ring_cls(4)
    before = time.monotonic_ns()
    ring.push_now(17, PRESS, 1)
    after = time.monotonic_ns()
    [(t_ns, pin, kind, value)] = ring.pop_many(1)
    assert before <= t_ns <= after
    assert (pin, kind, value) == (17, PRESS, 1)


def test_wait_times_out_false_when_empty(ring_cls: type[Ring]) -> None:
    ring = ring_cls(4)
    assert ring.wait(0.01) is False
    assert ring.wait(0) is False
    assert ring.wait(-1) is False


def test_wait_returns_true_at_once_when_records_are_ready(ring_cls: type[Ring]) -> None:
    ring = ring_cls(4)
    ring.push(1, 1, PRESS, 1)
    assert ring.wait(None) is True
    assert ring.wait(0) is True


def test_wait_is_woken_by_a_push_from_another_thread(ring_cls: type[Ring]) -> None:
    ring = ring_cls(4)
    pusher = threading.Timer(0.05, ring.push, args=(7, 3, PRESS, 1))
    pusher.start()
    try:
        assert ring.wait(10) is True
        assert ring.pop_many(1) == [(7, 3, PRESS, 1)]
    finally:
        pusher.cancel()
        pusher.join(5)


def test_wake_interrupts_a_blocking_wait(ring_cls: type[Ring]) -> None:
    ring = ring_cls(4)
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(ring.wait(None)))
    waiter.start()
    time.sleep(0.05)
    ring.wake()
    waiter.join(10)
    assert not waiter.is_alive()
    assert result == [False]
    assert ring.wait(0.01) is False  # the wake was consumed


def test_wake_before_wait_is_not_lost(ring_cls: type[Ring]) -> None:
    ring = ring_cls(4)
    ring.wake()
    t0 = time.monotonic()
    assert ring.wait(30) is False
    assert time.monotonic() - t0 < 20  # returned at once, not at the timeout


def test_close_wakes_every_waiter_and_keeps_draining(ring_cls: type[Ring]) -> None:
    ring = ring_cls(4)
    results: list[bool] = []
    waiters = [threading.Thread(target=lambda: results.append(ring.wait(None))) for _ in range(3)]
    for w in waiters:
        w.start()
    time.sleep(0.05)
    ring.close()
    for w in waiters:
        w.join(10)
    assert results == [False, False, False]
    assert ring.closed
    assert ring.wait(None) is False  # never blocks again
    assert ring.push(1, 1, PRESS, 1)
    assert ring.pop_many(4) == [(1, 1, PRESS, 1)]


@pytest.mark.parametrize(("env", "expected"), [("1", "python"), ("", "cython")])
def test_selector_honours_tessera_pure_python(env: str, expected: str) -> None:
    code = "import tessera.cext as c; print(c.IMPLEMENTATION, c.Ring.__module__)"
    environ = {**os.environ, "TESSERA_PURE_PYTHON": env}
    out = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True,
                         text=True, check=True, timeout=60).stdout.split()
    assert out[0] == expected
    assert out[1] == {"python": "tessera.cext._ring_py", "cython": "tessera.cext._ring"}[expected]


def test_cext_imports_only_the_standard_library() -> None:
    code = ("import sys; before = set(sys.modules); import tessera.cext, tessera.cext._ring; "
            "print(' '.join(sorted(set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    foreign = [m for m in out
               if m.split(".")[0] not in sys.stdlib_module_names
               and not m.startswith(("tessera.cext", "_cython_", "cython_runtime"))
               and m not in ("tessera", "tessera._version")]  # the parent package
    assert foreign == []


def test_huge_timeout_is_clamped_not_an_error(ring_cls: type[Ring]) -> None:
    ring = ring_cls(4)
    ring.push(1, 1, PRESS, 1)
    assert ring.wait(1e300) is True
    ring.pop_many(1)
    ring.wake()
    assert ring.wait(1e300) is False
