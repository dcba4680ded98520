"""Dispatcher under generated bounce noise: one action per real press, holds, stuck."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from dispatch_helpers import Recorder
from hypothesis import given, settings
from hypothesis import strategies as st

from tessera.cext import EDGE, PRESS, RELEASE, implementations
from tessera.dispatch import Act, Binding, Dispatcher, Timing

MS = 1_000_000
TIMING = Timing(debounce_ms=30, hold_ms=2000, stuck_ms=6000, repeat_ms=150)
NEXT = Binding(5, Act.NEXT, "c1", hold_action=Act.PAUSE)
KIOSK = Binding(17, Act.ISSUE, "cash")

# press lengths well clear of the thresholds: (short, long enough to hold, stuck)
LENGTHS_MS = {"tap": (40, 1900), "hold": (2100, 5900), "stuck": (6100, 9000)}


@dataclass(frozen=True)
class Press:
    gap_ms: int  # quiet time before the press
    kind: str  # tap / hold / stuck
    length_ms: int
    press_bounce: tuple[int, ...]  # chatter offsets (ms) after the leading edge, < 30
    release_bounce: tuple[int, ...]


bounce = st.lists(st.integers(1, 28), max_size=9, unique=True).map(lambda xs: tuple(sorted(xs)))


@st.composite
def presses(draw: st.DrawFn) -> Press:
    kind = draw(st.sampled_from(sorted(LENGTHS_MS)))
    lo, hi = LENGTHS_MS[kind]
    return Press(draw(st.integers(200, 3000)), kind, draw(st.integers(lo, hi)),
                 draw(bounce), draw(bounce))


def edges(pin: int, plan: list[Press], style: int) -> list[tuple[int, int, int, int]]:
    """Raw records for a pin: leading edge, chatter that settles on the new level."""
    out: list[tuple[int, int, int, int]] = []
    t = 10_000 * MS
    for p in plan:
        t += p.gap_ms * MS
        for level, start, chatter in ((1, t, p.press_bounce),
                                      (0, t + p.length_ms * MS, p.release_bounce)):
            levels = [level] + [1 - level if i % 2 == 0 else level for i in range(len(chatter))]
            if len(chatter) % 2:  # an odd burst would end on the wrong level: add the settle
                chatter = (*chatter, 29)
                levels.append(level)
            for off, lv in zip((0, *chatter), levels, strict=True):
                if style == 0:
                    out.append((start + off * MS, pin, EDGE, lv))
                else:
                    out.append((start + off * MS, pin, PRESS if lv else RELEASE, lv))
        t += p.length_ms * MS
    return out


@pytest.mark.timeout(120)
@settings(max_examples=60, deadline=None)
@given(next_plan=st.lists(presses(), min_size=1, max_size=8),
       kiosk_plan=st.lists(presses(), min_size=1, max_size=8), style=st.integers(0, 1))
def test_one_action_per_real_press_under_bounce(next_plan: list[Press], kiosk_plan: list[Press],
                                                style: int) -> None:
    rec = Recorder()
    d = Dispatcher(implementations()["cython"](16), [NEXT, KIOSK], rec.handler, timing=TIMING,
                   on_fault=rec.on_fault, on_recovered=rec.on_recovered)
    timeline = sorted(edges(5, next_plan, style) + edges(17, kiosk_plan, 1 - style))
    for t_ns, pin, kind, value in timeline:
        d.feed(t_ns, pin, kind, value)
    d.advance(timeline[-1][0] + 60_000 * MS)

    def count(pin: int, name: str) -> int:
        return sum(1 for a in rec.actions if a.binding.pin == pin and a.action == name)

    # NEXT is a tap or a hold, never both; the kiosk button (no hold action) always taps
    assert count(5, "next") == sum(p.kind == "tap" for p in next_plan)
    assert count(17, "issue") == len(kiosk_plan)
    assert count(5, "pause") == sum(p.kind in ("hold", "stuck") for p in next_plan)
    stuck = sum(p.kind == "stuck" for p in next_plan + kiosk_plan)
    assert len(rec.faults) == stuck and len(rec.recoveries) == stuck
    assert all(k == "gpio" for k, _ in rec.faults + rec.recoveries)
    # zero added latency: a kiosk tap is stamped with its press's first edge, a NEXT tap
    # (which must wait to tell a tap from a hold) with its release's first edge
    presses_at = {t for t, pin, kind, value in timeline
                  if pin == 17 and (kind == PRESS or value == 1)}
    releases_at = {t for t, pin, kind, value in timeline
                   if pin == 5 and (kind == RELEASE or (kind == EDGE and value == 0))}
    assert all(a.t_ns in presses_at for a in rec.actions if a.binding.pin == 17)
    assert all(a.t_ns in releases_at for a in rec.actions if a.binding.pin == 5 and not a.held)
