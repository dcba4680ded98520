"""The dispatcher thread: real ring, real clock, timers without edges, clean stop."""

from __future__ import annotations

import time

import pytest
from dispatch_helpers import Recorder, wait_until

from tessera.cext import PRESS, RELEASE
from tessera.cext._ring_py import Ring
from tessera.dispatch import Act, Binding, ButtonAction, Dispatcher, Timing

NEXT = Binding(5, Act.NEXT, "c1", hold_action=Act.PAUSE)
KIOSK = Binding(17, Act.ISSUE, "cash")
FAST = Timing(debounce_ms=5, hold_ms=60, stuck_ms=300, repeat_ms=10)


@pytest.mark.timeout(60)
def test_thread_dispatches_holds_and_stuck_without_further_edges(
        ring_cls: type[Ring], recorder: Recorder) -> None:
    ring = ring_cls(64)
    d = Dispatcher(ring, [NEXT, KIOSK], recorder.handler, timing=FAST,
                   on_fault=recorder.on_fault, on_recovered=recorder.on_recovered)
    d.start()
    try:
        ring.push(time.monotonic_ns(), 5, PRESS, 1)
        # hold (60 ms) and stuck (300 ms) fire from the wait timeouts alone
        assert wait_until(lambda: len(recorder.faults) == 1)
        assert recorder.names() == ["pause"]  # a hold, not a tap
        ring.push(time.monotonic_ns(), 5, RELEASE, 0)
        assert wait_until(lambda: len(recorder.recoveries) == 1)
        ring.push(time.monotonic_ns(), 17, PRESS, 1)
        assert wait_until(lambda: recorder.names() == ["pause", "issue"])
    finally:
        d.stop()
    assert not d.running
    assert [k for k, _ in recorder.faults] == ["gpio"]


@pytest.mark.timeout(60)
def test_raising_handler_does_not_kill_the_thread(ring_cls: type[Ring]) -> None:
    ring = ring_cls(64)
    seen: list[int] = []

    def handler(action: ButtonAction) -> None:
        seen.append(action.t_ns)
        raise ValueError("boom")

    d = Dispatcher(ring, [KIOSK], handler, timing=Timing(debounce_ms=5, repeat_ms=10))
    base = time.monotonic_ns() - 1_000_000_000  # a past timeline, strictly increasing
    d.start()
    try:
        for k in range(3):
            t = base + k * 100_000_000
            ring.push(t, 17, PRESS, 1)
            ring.push(t + 20_000_000, 17, RELEASE, 0)
            assert wait_until(lambda k=k: len(seen) == k + 1)  # type: ignore[misc]
        assert d.running
        assert d.stats["handler_errors"] == 3
    finally:
        d.stop()


@pytest.mark.timeout(60)
def test_stop_is_prompt_and_idempotent(ring_cls: type[Ring], recorder: Recorder) -> None:
    d = Dispatcher(ring_cls(8), [KIOSK], recorder.handler)
    d.start()
    assert wait_until(lambda: d.running)
    t0 = time.monotonic()
    d.stop()
    d.stop()
    assert not d.running
    assert time.monotonic() - t0 < 5  # woken through the ring, not by the idle poll timeout
    with pytest.raises(RuntimeError):
        d.start()
