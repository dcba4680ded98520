"""``pop_wait`` (wait, then pop, in one call) and the ``spin_us`` knob, on both rings."""

from __future__ import annotations

import threading
import time

import pytest

from tessera.cext import PRESS
from tessera.cext._ring_py import MAX_SPIN_US, Ring


def test_pop_wait_returns_what_is_there_without_waiting(ring_cls: type[Ring]) -> None:
    ring = ring_cls(8)
    ring.push(1, 17, PRESS, 1)
    ring.push(2, 17, PRESS, 0)
    assert ring.pop_wait(1, None) == [(1, 17, PRESS, 1)]  # None would block if empty
    assert ring.pop_wait(8, 0) == [(2, 17, PRESS, 0)]


def test_pop_wait_times_out_empty(ring_cls: type[Ring]) -> None:
    assert ring_cls(8).pop_wait(8, 0.01) == []


@pytest.mark.timeout(30)
def test_pop_wait_wakes_for_a_push_from_another_thread(ring_cls: type[Ring]) -> None:
    ring = ring_cls(8)
    t = threading.Timer(0.05, ring.push, args=(7, 5, PRESS, 1))
    t.start()
    try:
        assert ring.pop_wait(8, 20) == [(7, 5, PRESS, 1)]
    finally:
        t.join()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("stop", ["wake", "close"])
def test_pop_wait_returns_empty_on_wake_and_close(ring_cls: type[Ring], stop: str) -> None:
    ring = ring_cls(8)
    t = threading.Timer(0.05, getattr(ring, stop))
    t.start()
    try:
        assert ring.pop_wait(8, 20) == []
    finally:
        t.join()
    assert ring.pushed == 0


@pytest.mark.timeout(30)
def test_a_hot_ring_still_honours_timeout_wake_and_records(ring_cls: type[Ring]) -> None:
    # just after a take the compiled consumer polls (spin_us) before sleeping: the
    # poll must give way to the timeout, to wake() and to a push like the sleep does
    ring = ring_cls(8, spin_us=MAX_SPIN_US)
    ring.push(1, 1, PRESS, 1)
    assert ring.pop_many(8)
    assert ring.wait(0) is False
    assert ring.pop_wait(8, 0.001) == []
    ring.pop_many(8)
    t = threading.Timer(0.02, ring.wake)
    t.start()
    assert ring.wait(20) is False
    t.join()
    t = threading.Timer(0.02, ring.push, args=(2, 1, PRESS, 1))
    t.start()
    assert ring.pop_wait(8, 20) == [(2, 1, PRESS, 1)]
    t.join()


@pytest.mark.timeout(30)
def test_spinning_consumer_sees_every_record_of_a_paced_stream(ring_cls: type[Ring]) -> None:
    ring = ring_cls(64, spin_us=2000)
    n = 300

    def produce() -> None:
        for i in range(n):
            ring.push(time.monotonic_ns(), 3, PRESS, i)
            time.sleep(0.0003)

    th = threading.Thread(target=produce)
    th.start()
    got: list[int] = []
    while len(got) < n:
        batch = ring.pop_wait(64, 10)
        assert batch, "a record was pushed but pop_wait timed out"
        got.extend(r[3] for r in batch)
    th.join()
    assert got == list(range(n))


@pytest.mark.parametrize("spin_us", [-1, MAX_SPIN_US + 1])
def test_spin_out_of_range_is_rejected(ring_cls: type[Ring], spin_us: float) -> None:
    with pytest.raises(ValueError, match="spin_us"):
        ring_cls(8, spin_us=spin_us)


def test_spin_is_reported(ring_cls: type[Ring]) -> None:
    assert ring_cls(8, spin_us=0).spin_us == 0
    assert ring_cls(8, spin_us=150).spin_us == 150
    assert ring_cls(8).spin_us > 0  # the default spins (the compiled ring; the twin ignores it)
