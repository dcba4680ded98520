"""Dispatcher rules on synthetic timelines (feed/advance, no thread)."""

from __future__ import annotations

import logging

import pytest
from dispatch_helpers import Recorder

from tessera.cext import EDGE, PRESS, RELEASE, implementations
from tessera.dispatch import Act, Binding, ButtonAction, Dispatcher, Timing

MS = 1_000_000
T0 = 1_000_000 * MS
NEXT = Binding(5, Act.NEXT, "c1", hold_action=Act.PAUSE)
KIOSK = Binding(17, Act.ISSUE, "cash")
TIMING = Timing(debounce_ms=30, hold_ms=2000, stuck_ms=10000, repeat_ms=500)


def make(rec: Recorder, timing: Timing = TIMING, ring_capacity: int = 64) -> Dispatcher:
    ring = implementations()["cython"](ring_capacity)
    return Dispatcher(ring, [NEXT, KIOSK], rec.handler, timing=timing,
                      on_fault=rec.on_fault, on_recovered=rec.on_recovered)


def press(d: Dispatcher, pin: int, t_ms: float) -> None:
    d.feed(T0 + int(t_ms * MS), pin, PRESS, 1)


def release(d: Dispatcher, pin: int, t_ms: float) -> None:
    d.feed(T0 + int(t_ms * MS), pin, RELEASE, 0)


def test_clean_press_fires_on_the_leading_edge(recorder: Recorder) -> None:
    d = make(recorder)
    press(d, 17, 0)
    assert recorder.actions == [ButtonAction(Act.ISSUE, KIOSK, T0)]  # before any release
    release(d, 17, 120)
    d.advance(T0 + 60_000 * MS)
    assert recorder.names() == ["issue"]


def test_chatter_inside_the_window_is_ignored(recorder: Recorder) -> None:
    d = make(recorder)
    for i, t in enumerate([0, 2, 5, 9, 14, 22, 29]):  # bouncy press, ends pressed
        d.feed(T0 + t * MS, 17, EDGE, 1 - i % 2)
    release(d, 17, 300)
    for i, t in enumerate([301, 303, 320]):  # bouncy release, ends released
        d.feed(T0 + t * MS, 17, EDGE, (i + 1) % 2)
    d.advance(T0 + 1000 * MS)
    assert recorder.names() == ["issue"]
    assert d.stats["chatter"] == 9


def test_press_shorter_than_the_window_settles_at_its_end(recorder: Recorder) -> None:
    d = make(recorder)
    press(d, 17, 0)
    release(d, 17, 10)  # inside the lockout: remembered, applied at 30 ms
    press(d, 17, 600)  # a new, separate press
    assert recorder.names() == ["issue", "issue"]
    assert recorder.actions[1].t_ns == T0 + 600 * MS


def test_repeat_limit_allows_one_action_per_window(recorder: Recorder) -> None:
    d = make(recorder)
    for k in range(10):  # mashed: a clean press every 100 ms
        press(d, 17, k * 100)
        release(d, 17, k * 100 + 50)
    press(d, 17, 1100)
    assert [a.t_ns for a in recorder.actions] == [T0, T0 + 500 * MS, T0 + 1100 * MS]
    assert d.stats["suppressed"] == 8


def test_a_hold_fires_only_the_hold_action(recorder: Recorder) -> None:
    """Holding NEXT to pause never calls a customer first (issue 15)."""
    d = make(recorder)
    press(d, 5, 0)
    d.advance(T0 + 1999 * MS)
    assert recorder.names() == []  # tap or hold: not known yet
    d.advance(T0 + 2000 * MS)
    assert recorder.names() == ["pause"]
    assert recorder.actions[0].held and recorder.actions[0].t_ns == T0 + 2000 * MS
    d.advance(T0 + 5000 * MS)
    release(d, 5, 5000)
    assert recorder.names() == ["pause"]


def test_hold_is_detected_when_the_release_arrives_late_in_a_batch(recorder: Recorder) -> None:
    d = make(recorder)
    press(d, 5, 0)
    release(d, 5, 2500)  # no advance in between: the release's timestamp runs the timer
    assert recorder.names() == ["pause"]


def test_short_press_has_no_hold(recorder: Recorder) -> None:
    d = make(recorder)
    press(d, 5, 0)
    release(d, 5, 1500)
    assert recorder.names() == ["next"]  # the tap acts on its release
    assert recorder.actions[0].t_ns == T0 + 1500 * MS and not recorder.actions[0].held
    d.advance(T0 + 20_000 * MS)
    assert recorder.names() == ["next"]


def test_stuck_button_faults_once_is_ignored_then_recovers_once(recorder: Recorder) -> None:
    d = make(recorder)
    press(d, 17, 0)
    for t in range(0, 30_000, 250):
        d.advance(T0 + t * MS)
    assert len(recorder.faults) == 1
    kind, detail = recorder.faults[0]
    assert kind == "gpio" and "pin 17" in detail and "stuck" in detail
    for t in range(30_000, 30_200, 10):  # chatter while stuck: ignored
        d.feed(T0 + t * MS, 17, EDGE, 1)
    assert recorder.names() == ["issue"]
    release(d, 17, 31_000)
    assert recorder.recoveries == [("gpio", recorder.recoveries[0][1])]
    assert "pin 17" in recorder.recoveries[0][1]
    press(d, 17, 32_000)  # works again
    assert recorder.names() == ["issue", "issue"]
    assert len(recorder.faults) == 1 and len(recorder.recoveries) == 1


def test_handler_exception_is_logged_and_dispatch_continues(
        recorder: Recorder, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def flaky(action: ButtonAction) -> None:
        calls.append(action.action)
        if len(calls) == 1:
            raise RuntimeError("printer on fire")

    d = Dispatcher(implementations()["cython"](8), [KIOSK], flaky, timing=TIMING)
    with caplog.at_level(logging.ERROR, logger="tessera.dispatch"):
        press(d, 17, 0)
        release(d, 17, 100)
        press(d, 17, 1000)
    assert calls == ["issue", "issue"]
    assert d.stats["handler_errors"] == 1
    assert "printer on fire" in caplog.text and "pin 17" in caplog.text


def test_unbound_pin_and_unknown_kind_are_ignored(recorder: Recorder) -> None:
    d = make(recorder)
    d.feed(T0, 3, PRESS, 1)
    d.feed(T0, 17, 99, 1)
    assert recorder.actions == []
    assert d.stats["unknown"] == 2


def test_a_pin_bound_twice_is_rejected(recorder: Recorder) -> None:
    with pytest.raises(ValueError, match="pin 17 bound twice"):
        Dispatcher(implementations()["cython"](8), [KIOSK, Binding(17, Act.NEXT, "c1")],
                   recorder.handler)


@pytest.mark.parametrize("impl", sorted(implementations()))
def test_ring_overflow_becomes_a_fault_then_a_recovery(recorder: Recorder, impl: str) -> None:
    ring = implementations()[impl](4)
    d = Dispatcher(ring, [KIOSK], recorder.handler, timing=TIMING,
                   on_fault=recorder.on_fault, on_recovered=recorder.on_recovered)
    for k in range(6):  # 12 edges into 4 slots: 8 dropped
        ring.push(T0 + k * 1000 * MS, 17, PRESS, 1)
        ring.push(T0 + k * 1000 * MS + 100 * MS, 17, RELEASE, 0)
    assert d.drain() == 4
    assert [k for k, _ in recorder.faults] == ["ring"]
    assert "8 button edges dropped" in recorder.faults[0][1]
    assert recorder.names() == ["issue", "issue"]  # what was kept still dispatches
    d.drain()
    assert [k for k, _ in recorder.recoveries] == ["ring"]
    d.drain()
    assert len(recorder.faults) == 1 and len(recorder.recoveries) == 1
