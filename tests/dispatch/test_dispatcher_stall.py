"""Edges with known factory timestamps through a dispatcher stalled by a thread holding the
GIL for ~100 ms: the decisions are those of the unstalled run, on both rings."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from tessera.bench.dispatch_stall import (
    BINDINGS,
    EXPECTED,
    PLAN_SORTED,
    STALL_AT_MS,
    STALL_MS,
    TIMING,
    Decision,
    hold_gil,
    replay,
)
from tessera.cext import PRESS, RELEASE
from tessera.cext._ring_py import Ring
from tessera.dispatch import ButtonAction, Dispatcher

END_MS = 900.0


def _run(ring_cls: type[Ring], *, stall: bool) -> tuple[list[Decision],
                                                         list[tuple[int, int, int]]]:
    """PLAN pushed at its times by a callback-like thread that stamps each edge with
    its true time (as lgpio's kernel timestamp or the simulator's would be), however
    late the thread itself gets to run."""
    ring = ring_cls(1024)
    got: list[Decision] = []

    def on_action(a: ButtonAction) -> None:
        got.append(("action", a.action.value, a.binding.pin, a.held))

    def device(what: str) -> Callable[[str, str], None]:
        return lambda kind, detail: got.append((what, kind, int(detail.split()[1]), False))

    d = Dispatcher(ring, BINDINGS, on_action, timing=TIMING,
                   on_fault=device("fault"), on_recovered=device("recovered"))
    t0 = time.monotonic_ns() + 50_000_000
    edges = [(t0 + int(ms * 1e6), pin, PRESS if level == 0 else RELEASE)
             for ms, pin, level in PLAN_SORTED]

    def callbacks() -> None:
        for t, pin, kind in edges:
            while (left := t - time.monotonic_ns()) > 0:
                time.sleep(left / 1e9)
            ring.push(t, pin, kind, 1 if kind == PRESS else 0)

    def stall_gil() -> None:
        time.sleep(max(0.0, (t0 + STALL_AT_MS * 1e6 - time.monotonic_ns()) / 1e9))
        hold_gil(STALL_MS / 1000)

    threads = [threading.Thread(target=callbacks)]
    if stall:
        threads.append(threading.Thread(target=stall_gil))
    d.start()
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(max(0.0, (t0 + END_MS * 1e6 - time.monotonic_ns()) / 1e9))
    finally:
        d.stop()
    return got, edges


@pytest.mark.timeout(60)
def test_a_stall_does_not_change_the_decisions(ring_cls: type[Ring]) -> None:
    calm, calm_edges = _run(ring_cls, stall=False)
    stalled, edges = _run(ring_cls, stall=True)
    assert replay(edges) == list(EXPECTED)  # the plan means what the test says
    # the release 10 ms before NEXT's hold deadline lands during the stall, after
    # the deadline passed on the wall clock: a tap (next), no pause; the bounces inside the stall
    # are chatter; the mashed kiosk press is still suppressed
    assert stalled == list(EXPECTED)
    assert calm == list(EXPECTED)
    assert calm_edges != edges  # two runs, two timelines, same decisions


def test_the_hold_deadline_is_the_actions_time_not_when_it_fired(ring_cls: type[Ring]) -> None:
    ring = ring_cls(8)
    seen: list[ButtonAction] = []
    d = Dispatcher(ring, BINDINGS, seen.append, timing=TIMING)
    d.feed(1_000_000_000, 5, PRESS, 1)
    d.advance(5_000_000_000)  # however late the timers run
    assert [(a.action.value, a.t_ns) for a in seen] == [
        ("pause", 1_000_000_000 + int(TIMING.hold_ms * 1e6))]
