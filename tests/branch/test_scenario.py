"""The day's script: arrival profile, determinism, and staff behaviour against fake hands."""

from __future__ import annotations

import statistics

from hypothesis import given, settings
from hypothesis import strategies as st

from tessera.sim.scenario import (
    KioskKey,
    Scenario,
    ScenarioSpec,
    StaffDesk,
    generate_arrivals,
    hourly_profile,
)

BUTTONS = [KioskKey(0, "cash", None), KioskKey(1, "accounts", None), KioskKey(2, "cash", "vip")]
DESKS = [StaffDesk("c1", ("next", "recall", "transfer", "no_show", "done", "pause"),
                   ratings=3, transfer_targets=2, mean_service_s=240)]


def _spec(customers: int = 2000, minutes: float = 480) -> ScenarioSpec:
    return ScenarioSpec(start_hour=9.0, minutes=minutes, customers=customers, buttons=BUTTONS,
                        counters=DESKS)


def test_profile_has_two_peaks_and_a_lunch_valley() -> None:
    assert hourly_profile(10.0) > hourly_profile(12.5) < hourly_profile(14.5)
    assert hourly_profile(10.0) > hourly_profile(8.0)


def test_arrivals_follow_profile_and_total() -> None:
    import random

    arrivals = generate_arrivals(_spec(), random.Random(3))
    assert 1800 < len(arrivals) < 2200
    per_hour = [0] * 8
    for a in arrivals:
        per_hour[int(a.at_s // 3600)] += 1
    # 10:00-11:00 (index 1) busier than 12:00-13:00 (index 3), 14:00-15:00 busier again
    assert per_hour[1] > per_hour[3] < per_hour[5]
    assert all(a.button in (0, 1, 2) for a in arrivals)
    times = [a.at_s for a in arrivals]
    assert times == sorted(times)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), customers=st.integers(0, 300),
       minutes=st.floats(1, 600))
def test_arrivals_stay_in_span_and_are_deterministic(seed: int, customers: int,
                                                     minutes: float) -> None:
    import random

    spec = _spec(customers, minutes)
    a = generate_arrivals(spec, random.Random(seed))
    b = generate_arrivals(spec, random.Random(seed))
    assert a == b
    assert all(0 <= x.at_s < minutes * 60 for x in a)


class FakeHands:
    """Serves from an in-memory queue; records what the staff pressed."""

    def __init__(self) -> None:
        self.queue: list[str] = []
        self.current: dict[str, str | None] = {}
        self.presses: list[tuple[str, str]] = []
        self.t = 0.0
        self.n = 0

    def advance_to(self, t_s: float) -> None:
        assert t_s >= self.t
        self.t = t_s

    def take_ticket(self, button: int) -> None:
        self.n += 1
        self.queue.append(f"T{self.n}")

    def scan(self, code: str) -> None:
        pass

    def staff(self, counter: str, key: str) -> None:
        self.presses.append((counter, key))
        if key == "next":
            self.current[counter] = self.queue.pop(0) if self.queue else None
        elif key in ("done", "no_show"):
            self.current[counter] = None

    def rate(self, counter: str, score: int) -> None:
        self.presses.append((counter, f"rate.{score}"))

    def current_of(self, counter: str) -> str | None:
        return self.current.get(counter)


def test_staff_serve_with_lognormal_times_and_time_moves_forward() -> None:
    hands = FakeHands()
    sc = Scenario.generate(_spec(customers=80, minutes=240), seed=5)
    hands.current = {}
    stats = sc.run(_Adapter(hands))
    assert stats.arrivals == len(sc.arrivals)
    assert stats.calls > 30
    keys = {k for _, k in hands.presses}
    assert {"next", "done"} <= keys
    assert stats.done + stats.no_shows + stats.transfers <= stats.calls
    times = [sc._service_time(DESKS[0]) for _ in range(4000)]
    assert 200 < statistics.mean(times) < 280  # lognormal around the 240 s mean
    assert statistics.median(times) < statistics.mean(times)  # right-skewed


class _Adapter:
    def __init__(self, h: FakeHands) -> None:
        self.h = h

    def advance_to(self, t_s: float) -> None:
        self.h.advance_to(t_s)

    def take_ticket(self, button: int) -> None:
        self.h.take_ticket(button)

    def scan(self, code: str) -> None:
        self.h.scan(code)

    def staff(self, counter: str, key: str) -> None:
        self.h.staff(counter, key)

    def rate(self, counter: str, score: int) -> None:
        self.h.rate(counter, score)

    def current(self, counter: str) -> str | None:
        return self.h.current_of(counter)
