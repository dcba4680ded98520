"""The in-process bus: order, filtering, isolation from slow or broken subscribers."""

from __future__ import annotations

import threading
import time
from typing import Any

from tessera.bus import Bus


def _env(seq: int, type_: str = "ticket.called") -> dict[str, Any]:
    return {"v": 1, "type": type_, "seq": seq, "data": {"number": f"A{seq:03d}"}}


def test_delivers_in_publish_order_with_prefix_filter() -> None:
    bus = Bus()
    got: list[int] = []
    feedback: list[int] = []
    bus.subscribe(lambda e: got.append(e["seq"]))
    bus.subscribe(lambda e: feedback.append(e["seq"]), type_prefix="feedback.")
    for i in range(1, 201):
        bus.publish(_env(i, "feedback.rated" if i % 10 == 0 else "ticket.called"))
    assert bus.drain(5)
    bus.stop()
    assert got == list(range(1, 201))
    assert feedback == list(range(10, 201, 10))


def test_slow_subscriber_does_not_block_publisher() -> None:
    bus = Bus()
    release = threading.Event()
    seen: list[int] = []

    def slow(e: dict[str, Any]) -> None:
        release.wait(5)
        seen.append(e["seq"])

    bus.subscribe(slow)
    t0 = time.monotonic()
    for i in range(50):
        bus.publish(_env(i))
    publish_s = time.monotonic() - t0
    release.set()
    assert bus.drain(5)
    bus.stop()
    assert seen == list(range(50))
    assert publish_s < 2.0  # the publisher never waited for the 5 s subscriber


def test_broken_subscriber_is_isolated_and_counted() -> None:
    bus = Bus()
    good: list[int] = []

    def broken(e: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    bus.subscribe(broken)
    bus.subscribe(lambda e: good.append(e["seq"]))
    for i in range(3):
        bus.publish(_env(i))
    assert bus.drain(5)
    bus.stop()
    assert good == [0, 1, 2]
    assert bus.errors == 3


def test_bounded_queue_drops_and_counts_when_full() -> None:
    bus = Bus(maxsize=2, put_timeout_s=0.01)
    gate = threading.Event()

    def blocked(_env: dict[str, Any]) -> None:
        gate.wait(5)

    bus.subscribe(blocked)
    for i in range(10):
        bus.publish(_env(i))
    assert bus.dropped > 0
    assert bus.published + bus.dropped == 10
    gate.set()
    bus.stop()


def test_unsubscribe_and_stop_are_idempotent() -> None:
    bus = Bus()
    got: list[int] = []
    unsub = bus.subscribe(lambda e: got.append(e["seq"]))
    bus.publish(_env(1))
    assert bus.drain(5)
    unsub()
    bus.publish(_env(2))
    assert bus.drain(5)
    bus.stop()
    bus.stop()
    bus.publish(_env(3))  # after stop: dropped, never raises
    assert got == [1]
    assert bus.dropped == 1
