"""A simulated branch day: customers arrive, take tickets, get served, rate.

The scenario decides *what* people do and *when* (virtual time); a ``Hands``
object does it on the hardware (presses mock GPIO pins, types a booking code
into the scanner input) so every byte goes through the real drivers.

    sc = Scenario.generate(ScenarioSpec(start_hour=9.0, minutes=60, customers=200,
                                        buttons=[KioskKey(0, "cash", None)],
                                        counters=[StaffDesk("c1", ("next", "done"))]),
                           seed=7)
    sc.run(hands)          # hands: see ``Hands``

Arrivals follow an hourly profile with a morning and an afternoon peak and a
lunch-time valley (a non-homogeneous Poisson process, thinned). Service times
are lognormal around each service's default. Staff call, recall once before
a no-show, sometimes transfer, sometimes pause; about half the customers rate.
"""

from __future__ import annotations

import heapq
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol


def hourly_profile(hour: float) -> float:
    """Relative arrival rate at local ``hour`` (peaks ~10:00 and ~14:30, valley ~12:30)."""
    morning = 1.0 * math.exp(-((hour - 10.0) ** 2) / (2 * 0.9**2))
    afternoon = 0.8 * math.exp(-((hour - 14.5) ** 2) / (2 * 1.0**2))
    return 0.25 + morning + afternoon


@dataclass(frozen=True)
class KioskKey:
    """One kiosk button: its index in ``kiosk.buttons``, service and priority class."""

    index: int
    service: str
    priority: str | None


@dataclass(frozen=True)
class StaffDesk:
    """One staffed counter: its id, the keys its panel has, and what it serves."""

    counter: str
    keys: tuple[str, ...]
    ratings: int = 0
    transfer_targets: int = 0
    mean_service_s: float = 300.0


@dataclass(frozen=True)
class ScenarioSpec:
    start_hour: float
    minutes: float
    customers: int
    buttons: Sequence[KioskKey]
    counters: Sequence[StaffDesk]
    service_mean_s: dict[str, float] = field(default_factory=dict)
    service_share: dict[str, float] = field(default_factory=dict)
    bookings: Sequence[tuple[str, float]] = ()  # (booking code, slot in s from the start)
    p_priority: float = 0.08
    p_appointment_no_show: float = 0.1  # booked but never came
    p_no_show: float = 0.04
    p_transfer: float = 0.05
    p_pause: float = 0.01
    p_rate: float = 0.6
    service_sigma: float = 0.5
    walk_s: tuple[float, float] = (15.0, 60.0)  # called → at the counter
    gap_s: tuple[float, float] = (20.0, 60.0)  # done → teller presses NEXT again
    idle_poll_s: tuple[float, float] = (20.0, 60.0)  # empty queue → try again


@dataclass(frozen=True)
class Arrival:
    at_s: float
    button: int | None  # kiosk button index, None for an appointment check-in
    booking: str | None = None


class Hands(Protocol):
    """What the scenario does to the branch's hardware (and what it can see)."""

    def advance_to(self, t_s: float) -> None:
        """Move virtual time to ``t_s`` seconds after the scenario start."""

    def take_ticket(self, button: int) -> None:
        """A customer presses kiosk button ``button``."""

    def scan(self, code: str) -> None:
        """A customer scans (or types) a booking code at the kiosk."""

    def staff(self, counter: str, key: str) -> None:
        """A teller presses ``key`` (next, recall, transfer, no_show, done, pause)."""

    def rate(self, counter: str, score: int) -> None:
        """A customer presses the rating button ``score`` (1 = lowest) at ``counter``."""

    def current(self, counter: str) -> str | None:
        """The ticket number the counter is serving now, if any."""


@dataclass
class Stats:
    arrivals: int = 0
    check_ins: int = 0
    calls: int = 0
    empty_calls: int = 0
    no_shows: int = 0
    transfers: int = 0
    done: int = 0
    ratings: int = 0
    pauses: int = 0
    steps: int = 0
    leftovers: int = 0


Action = Callable[["Hands"], None]


class Scenario:
    """A day's script: arrivals plus staff behaviour, run against ``Hands``."""

    def __init__(self, spec: ScenarioSpec, arrivals: list[Arrival], seed: int) -> None:
        self.spec = spec
        self.arrivals = arrivals
        self.rng = random.Random(seed ^ 0x5EED)
        self.stats = Stats()
        self._heap: list[tuple[float, int, Action]] = []
        self._n = 0
        self.now_s = 0.0

    @classmethod
    def generate(cls, spec: ScenarioSpec, seed: int) -> Scenario:
        return cls(spec, generate_arrivals(spec, random.Random(seed)), seed)

    @property
    def span_s(self) -> float:
        return self.spec.minutes * 60.0

    # ------------------------------------------------------------------ running

    def run(self, hands: Hands, *, stop: threading.Event | None = None,
            on_step: Callable[[float], None] | None = None,
            pace: Callable[[float], None] | None = None) -> Stats:
        """Play the day to its end (or until ``stop`` is set).

        ``pace(t_s)`` is called before each step (to slow the run to a chosen
        speed); ``on_step(t_s)`` after it (progress, live view).
        """
        for a in self.arrivals:
            self._at(a.at_s, self._arrive(a))
        for i, desk in enumerate(self.spec.counters):
            self._at(5.0 + 3.0 * i, self._call(desk))
        while self._heap and not (stop is not None and stop.is_set()):
            t, _, action = heapq.heappop(self._heap)
            if t > self.span_s:
                break
            if pace is not None:
                pace(t)
            self.now_s = t
            hands.advance_to(t)
            action(hands)
            self.stats.steps += 1
            if on_step is not None:
                on_step(t)
        hands.advance_to(self.span_s)
        return self.stats

    def _at(self, t: float, action: Action) -> None:
        self._n += 1
        heapq.heappush(self._heap, (t, self._n, action))

    # ------------------------------------------------------------------ customers

    def _arrive(self, a: Arrival) -> Action:
        def act(h: Hands) -> None:
            if a.booking is not None:
                self.stats.check_ins += 1
                h.scan(a.booking)
            elif a.button is not None:
                self.stats.arrivals += 1
                h.take_ticket(a.button)
        return act

    # ------------------------------------------------------------------ staff

    def _call(self, desk: StaffDesk) -> Action:
        def act(h: Hands) -> None:
            if h.current(desk.counter) is not None:
                # a ticket still open here (a refused transfer...): the teller closes it
                h.staff(desk.counter, "done")
                self.stats.leftovers += 1
            h.staff(desk.counter, "next")
            number = h.current(desk.counter)
            if number is None:
                self.stats.empty_calls += 1
                self._at(self.now_s + self.rng.uniform(*self.spec.idle_poll_s), self._call(desk))
                return
            self.stats.calls += 1
            walk = self.rng.uniform(*self.spec.walk_s)
            if self.rng.random() < self.spec.p_no_show:
                self._at(self.now_s + walk + 60, self._recall(desk))
            else:
                self._at(self.now_s + walk + self._service_time(desk), self._finish(desk))
        return act

    def _recall(self, desk: StaffDesk) -> Action:
        def act(h: Hands) -> None:
            if "recall" in desk.keys:
                h.staff(desk.counter, "recall")
            self._at(self.now_s + 60, self._no_show(desk))
        return act

    def _no_show(self, desk: StaffDesk) -> Action:
        def act(h: Hands) -> None:
            if "no_show" in desk.keys:
                h.staff(desk.counter, "no_show")
                self.stats.no_shows += 1
            else:  # no NO-SHOW key: the teller closes the ticket with DONE
                h.staff(desk.counter, "done")
            self._at(self.now_s + self.rng.uniform(5, 20), self._call(desk))
        return act

    def _finish(self, desk: StaffDesk) -> Action:
        def act(h: Hands) -> None:
            if (desk.transfer_targets and "transfer" in desk.keys
                    and self.rng.random() < self.spec.p_transfer):
                # TRANSFER selects a target (each press moves to the next), DONE commits
                for _ in range(self.rng.randint(1, desk.transfer_targets)):
                    h.staff(desk.counter, "transfer")
                self.stats.transfers += 1
                h.staff(desk.counter, "done")
            else:
                h.staff(desk.counter, "done")
                self.stats.done += 1
                if desk.ratings and self.rng.random() < self.spec.p_rate:
                    self._at(self.now_s + self.rng.uniform(2, 15), self._rate(desk))
            if self.rng.random() < self.spec.p_pause:
                self._at(self.now_s + 20, self._pause(desk))
            else:
                self._at(self.now_s + self.rng.uniform(*self.spec.gap_s), self._call(desk))
        return act

    def _rate(self, desk: StaffDesk) -> Action:
        def act(h: Hands) -> None:
            # satisfied customers are the majority; the lowest score is rare
            weights = [1.0] + [2.0] * (desk.ratings - 2) + [6.0]
            score = self.rng.choices(range(1, desk.ratings + 1), weights=weights)[0]
            h.rate(desk.counter, score)
            self.stats.ratings += 1
        return act

    def _pause(self, desk: StaffDesk) -> Action:
        def act(h: Hands) -> None:
            h.staff(desk.counter, "pause")
            self.stats.pauses += 1
            # NEXT on a paused counter resumes it and calls
            self._at(self.now_s + self.rng.uniform(300, 900), self._call(desk))
        return act

    def _service_time(self, desk: StaffDesk) -> float:
        mean = desk.mean_service_s
        sigma = self.spec.service_sigma
        mu = math.log(mean) - sigma**2 / 2  # so that E[X] = mean
        return min(self.rng.lognormvariate(mu, sigma), mean * 6)


def generate_arrivals(spec: ScenarioSpec, rng: random.Random) -> list[Arrival]:
    """Arrival times by ``hourly_profile``, scaled so about ``spec.customers`` arrive."""
    span = spec.minutes * 60.0
    if not spec.buttons or spec.customers <= 0 or span <= 0:
        return []
    grid = [spec.start_hour + (i + 0.5) / 60 for i in range(int(spec.minutes) or 1)]
    mass = sum(hourly_profile(h) for h in grid) / 60.0  # profile integrated over the span (hours)
    scale = spec.customers / mass  # customers per profile-hour
    peak = scale * max(hourly_profile(h) for h in grid) / 3600.0  # per second, bounds the rate
    services = sorted({b.service for b in spec.buttons})
    shares = [spec.service_share.get(s, 1.0) for s in services]
    out: list[Arrival] = []
    t = 0.0
    while True:
        t += rng.expovariate(peak)
        if t >= span:
            break
        rate = scale * hourly_profile(spec.start_hour + t / 3600.0) / 3600.0
        if rng.random() > rate / peak:
            continue
        service = rng.choices(services, weights=shares)[0]
        keys = [b for b in spec.buttons if b.service == service]
        plain = [b for b in keys if b.priority is None] or keys
        prio = [b for b in keys if b.priority is not None]
        pick = rng.choice(prio) if prio and rng.random() < spec.p_priority else rng.choice(plain)
        out.append(Arrival(t, pick.index))
    for code, slot in spec.bookings:
        if rng.random() < spec.p_appointment_no_show:
            continue
        at = slot - rng.uniform(0, 600)  # people come a little early for an appointment
        if 0 <= at < span:
            out.append(Arrival(at, None, code))
    out.sort(key=lambda a: a.at_s)
    return out


def plan_bookings(spec: ScenarioSpec, services: Sequence[str], rng: random.Random,
                  share: float = 0.04) -> list[tuple[str, str, float]]:
    """Appointments for the day: (code, service, slot seconds from start), ~``share`` of
    the customers, slots on the quarter hour from 30 min after opening."""
    n = int(spec.customers * share)
    span = spec.minutes * 60.0
    slots = [s * 900.0 for s in range(2, int(span // 900))]
    if not slots or not services:
        return []
    return [(f"BK{rng.randrange(10**6):06d}{i:03d}", rng.choice(list(services)),
             rng.choice(slots)) for i in range(n)]


def press_pin(pin: object, *, hold_s: float = 0.0, settle_s: float = 0.0015) -> None:
    """Press a mock active-low button: drive low, hold, release, stay released.

    ``pin`` is a gpiozero ``MockPin``. The dispatcher debounces with real
    monotonic time, so both the hold and the quiet gap after the release are
    real sleeps of at least ``settle_s`` (longer than the debounce window: a
    press that starts inside the previous release's window is chatter).
    """
    pin.drive_low()  # type: ignore[attr-defined]
    time.sleep(max(hold_s, settle_s))
    pin.drive_high()  # type: ignore[attr-defined]
    time.sleep(settle_s)
