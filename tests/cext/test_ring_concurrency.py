"""Several producers, one consumer: nothing lost, nothing twice, order kept per producer."""

from __future__ import annotations

import itertools
import threading
import tracemalloc

import pytest

from tessera.cext import PRESS, _ring, implementations
from tessera.cext._ring import _test_push_nogil_threads
from tessera.cext._ring_py import Ring as PyRing

Ring = PyRing | _ring.Ring  # the tests run on both

PRODUCERS = 4
# 100 k pushes per producer on the compiled ring (the figure); the pure
# twin is ~20x slower under the GIL, so it gets a smaller run of the same test.
PUSHES = {"cython": 100_000, "python": 20_000}


def _consume(ring: Ring, done: threading.Event, sink: list[tuple[int, int, int, int]]) -> None:
    while True:
        finished = done.is_set()  # read before draining, so the final drain is complete
        ring.wait(0.01)
        batch = ring.pop_many(4096)
        sink.extend(batch)
        if finished and not batch:
            return


def _check_delivery(got: list[tuple[int, int, int, int]], producers: int, per_producer: int,
                    ring: Ring, accepted: list[int]) -> None:
    by_producer: dict[int, list[int]] = {p: [] for p in range(producers)}
    for _t, pin, _kind, seq in got:
        by_producer[pin].append(seq)
    for p, seqs in by_producer.items():
        assert seqs == sorted(seqs), f"producer {p}: order not preserved"
        assert len(set(seqs)) == len(seqs), f"producer {p}: a record was delivered twice"
        assert len(seqs) == accepted[p]
        assert all(0 <= s < per_producer for s in seqs)
    total = producers * per_producer
    assert len(got) + ring.dropped == total  # every record popped or counted as dropped
    assert ring.pushed == len(got) == ring.popped
    assert ring.high_water <= ring.capacity


@pytest.mark.timeout(120)
def test_four_python_producers_one_consumer(impl: str, ring_cls: type[Ring]) -> None:
    per = PUSHES[impl]
    ring = ring_cls(64)
    got: list[tuple[int, int, int, int]] = []
    done = threading.Event()
    accepted = [0] * PRODUCERS

    def produce(p: int) -> None:
        push = ring.push
        n = 0
        for seq in range(per):
            n += push(seq, p, PRESS, seq)
        accepted[p] = n

    consumer = threading.Thread(target=_consume, args=(ring, done, got))
    producers = [threading.Thread(target=produce, args=(p,)) for p in range(PRODUCERS)]
    consumer.start()
    for t in producers:
        t.start()
    for t in producers:
        t.join(100)
    done.set()
    ring.wake()
    consumer.join(100)
    assert not consumer.is_alive()
    _check_delivery(got, PRODUCERS, per, ring, accepted)
    assert ring.dropped > 0 or ring.high_water > 1  # the small ring was actually contended


@pytest.mark.timeout(120)
def test_native_nogil_push_path_from_pthreads() -> None:
    """ring_push_nogil from 4 native threads (no GIL) while Python pops concurrently."""
    ring = _ring.Ring(256)
    got: list[tuple[int, int, int, int]] = []
    done = threading.Event()
    consumer = threading.Thread(target=_consume, args=(ring, done, got))
    consumer.start()
    accepted = _test_push_nogil_threads(ring, PRODUCERS, 100_000)
    done.set()
    ring.wake()
    consumer.join(100)
    assert not consumer.is_alive()
    _check_delivery(got, PRODUCERS, 100_000, ring, accepted)


def test_native_push_path_without_consumer_fills_then_drops() -> None:
    ring = _ring.Ring(1024)
    accepted = _test_push_nogil_threads(ring, 2, 1000)
    assert sum(accepted) == 1024
    assert ring.dropped == 2 * 1000 - 1024
    got = ring.pop_many(2048)
    assert len(got) == 1024
    assert {pin for _t, pin, _k, _v in got} <= {0, 1}
    assert all(kind == PRESS for _t, _p, kind, _v in got)


def _bytes_allocated_by_pushes(ring: Ring, n: int) -> tuple[int, int]:
    """(bytes still held, peak extra bytes) while pushing ``n`` records and polling ``wait``."""
    push, wait = ring.push, ring.wait
    t_ns, pin, kind, value = 123_456_789_012, 17, PRESS, 1  # objects made before tracing
    loop = itertools.repeat(None, n)  # unlike range(), yields no new int objects
    for _ in range(10):  # warm up any lazily created caches
        push(t_ns, pin, kind, value)
        wait(0)
    ring.pop_many(ring.capacity)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        for _ in loop:
            push(t_ns, pin, kind, value)  # the ring fills up and then drops: both paths
            wait(0)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return after - before, peak - before


def test_compiled_push_and_wait_do_not_allocate() -> None:
    ring = implementations()["cython"](1024)
    held, peak = _bytes_allocated_by_pushes(ring, 20_000)
    assert (held, peak) == (0, 0)
    assert len(ring) == 1024 and ring.dropped > 10_000


class _AllocatingRing:
    """A ring-shaped fake that allocates per push: proves the probe can fail."""

    capacity = 1024

    def __init__(self) -> None:
        self.kept: list[bytearray] = []

    def push(self, t_ns: int, pin: int, kind: int, value: int) -> bool:
        self.kept.append(bytearray(16))
        return True

    def wait(self, timeout: float | None = None) -> bool:
        return True

    def pop_many(self, max_records: int = 256) -> list[tuple[int, int, int, int]]:
        return []


def test_allocation_probe_detects_an_allocating_push() -> None:
    held, peak = _bytes_allocated_by_pushes(_AllocatingRing(), 1000)  # type: ignore[arg-type]
    assert held >= 1000 * 16 and peak >= held
