"""The dispatcher: raw button edges from the ring → debounced, rate-limited actions.

    d = Dispatcher(ring, bindings_from_config(cfg), handler=print, on_fault=log_fault)
    d.start(); ...; d.stop()

Rules, per pin, with time taken from the records' monotonic timestamps (so a
test can feed a synthetic timeline through :meth:`Dispatcher.feed` and
:meth:`Dispatcher.advance` without a thread):

- **Debounce without latency.** The first edge that changes the debounced
  level is accepted at once (a clean press fires its action immediately); any
  edge within ``debounce_ms`` after it is chatter. If the raw level at the end
  of that window differs from the accepted one (a press shorter than the
  window), the change is accepted when the window ends.
- **Tap or hold.** A press fires the button's action on its leading edge. A
  button with a ``hold_action`` (NEXT → ``pause``, NO-SHOW → ``undo_no_show``,
  a login panel's DONE → ``logout``) is either a tap or a hold, never both: released before
  ``hold_ms`` it fires its action on the release; held for ``hold_ms`` it fires
  only the hold action (holding NEXT to pause never calls a customer first).
  Only those buttons wait for the release; every other press acts at once.
- **Repeat limit.** At most one tap action per ``repeat_ms`` per button
  (a mashed kiosk button issues one ticket); presses inside the window are
  counted in ``stats["suppressed"]``.
- **Stuck button.** Held for ``stuck_ms``: exactly one ``on_fault("gpio", ...)``,
  the button is ignored until released, then one ``on_recovered("gpio", ...)``.
- **Overflow.** A rise of the ring's ``dropped`` counter → ``on_fault("ring", ...)``;
  the next drain without new drops → ``on_recovered("ring", ...)``.

Handlers are plain callables; one that raises is logged with its context and
counted, and the dispatcher carries on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from tessera.cext import EDGE, PRESS, RELEASE

if TYPE_CHECKING:
    from tessera.config import BranchConfig, GpioSection

log = logging.getLogger(__name__)

MS = 1_000_000  # ns per ms
IDLE_POLL_S = 1.0  # upper bound on a wait, so drop checks run even when idle
# Timers against edges still in flight (see Dispatcher._step): a timer fires
# GRACE_NS after its deadline (an edge reaching the ring later than that is
# "late"), after a confirming wait of CONFIRM_NS that ended within LATE_NS.
GRACE_NS = 5 * MS
CONFIRM_NS = 2 * MS
STALL_CONFIRM_NS = 20 * MS  # the confirming wait within this long after a stall
LATE_NS = 1 * MS
MAX_CONFIRM_ROUNDS = 50  # then timers run anyway (a pin chattering without pause)


class EventSource(Protocol):
    """What the dispatcher needs from a ring (``tessera.cext.Ring`` fits)."""

    def pop_many(self, max_records: int = 256) -> list[tuple[int, int, int, int]]: ...
    def wait(self, timeout: float | None = None) -> bool: ...
    def wake(self) -> None: ...
    @property
    def dropped(self) -> int: ...


class Act(StrEnum):
    """What a button does: the one vocabulary of the dispatcher, the router and the roles.

    ``ISSUE`` is a kiosk service button; ``RATE`` a satisfaction button; the rest
    are counter panel keys. ``PAUSE`` and ``LOGOUT`` are also what holding NEXT and
    a login panel's DONE do (see :func:`bindings_from_config`, the one place that
    maps a pin and a press to an action).
    """

    ISSUE = "issue"
    NEXT = "next"
    RECALL = "recall"
    TRANSFER = "transfer"
    NO_SHOW = "no_show"
    DONE = "done"
    PAUSE = "pause"
    RATE = "rate"
    LOGOUT = "logout"
    UNDO_NO_SHOW = "undo_no_show"  # holding NO-SHOW: the last no-show was wrong
    REPRINT = "reprint"  # the kiosk's staff button (``kiosk.reprint_pin``): on hold only


PANEL_KEYS = (Act.NEXT, Act.RECALL, Act.TRANSFER, Act.NO_SHOW, Act.DONE, Act.PAUSE)


@dataclass(frozen=True, slots=True)
class Binding:
    """What a pin means: ``Binding(17, Act.ISSUE, "cash")``, ``Binding(5, Act.NEXT, "c1")``."""

    pin: int
    action: Act
    target: str = ""  # service id (kiosk) or counter id (counter panel)
    arg: str | int | None = None  # kiosk priority class, or rating score (1 = lowest)
    hold_action: Act | None = None  # fired additionally when held for hold_ms


@dataclass(frozen=True, slots=True)
class ButtonAction:
    """One dispatched action, as handlers receive it."""

    action: Act
    binding: Binding
    t_ns: int  # monotonic ns of the edge (or of the hold deadline)
    held: bool = False  # True when this is the binding's hold action

    @property
    def name(self) -> str:
        """For logs and probes: ``kiosk.cash``, ``counter.c1.next``, ``counter.c1.rate.3``."""
        b = self.binding
        if self.action is Act.ISSUE:
            return f"kiosk.{b.target}" + (f".{b.arg}" if b.arg else "")
        if self.action is Act.RATE:
            return f"counter.{b.target}.rate.{b.arg}"
        if self.action is Act.REPRINT:
            return "kiosk.reprint" + (".held" if self.held else ".tap")
        return f"counter.{b.target}.{self.action.value}"


@dataclass(frozen=True, slots=True)
class Timing:
    """Debounce/hold/stuck/repeat windows in ms (from ``[gpio]`` in the config)."""

    debounce_ms: float = 30.0
    hold_ms: float = 2000.0
    stuck_ms: float = 30000.0
    repeat_ms: float = 1500.0

    @classmethod
    def from_config(cls, gpio: GpioSection) -> Timing:
        return cls(gpio.debounce_ms, gpio.hold_ms, gpio.stuck_ms, gpio.repeat_ms)


Handler = Callable[[ButtonAction], object]
DeviceCallback = Callable[[str, str], object]  # (kind, detail): kind is "gpio" or "ring"


@dataclass(slots=True)
class _Pin:
    binding: Binding
    pressed: bool = False  # debounced level
    raw: bool = False  # last raw level seen
    lockout_until: int = 0
    pressed_at: int = 0
    hold_fired: bool = False
    tap_pending: bool = False  # a button with a hold action taps on release, not on press
    stuck: bool = False
    last_action: int | None = None

    def deadline(self, hold_ns: int, stuck_ns: int) -> int | None:
        """The next time (ns) this pin needs a timer check, if any."""
        times = []
        if self.raw != self.pressed:
            times.append(self.lockout_until)
        if self.pressed and not self.stuck:
            times.append(self.pressed_at + stuck_ns)
            if self.binding.hold_action and not self.hold_fired:
                times.append(self.pressed_at + hold_ns)
        return min(times) if times else None


@dataclass
class _Stats:
    edges: int = 0
    chatter: int = 0
    actions: int = 0
    suppressed: int = 0
    handler_errors: int = 0
    unknown: int = 0
    faults: int = 0
    recoveries: int = 0
    unknown_pins: set[int] = field(default_factory=set)


class Dispatcher:
    """Drains an :class:`EventSource` on its own thread and calls ``handler`` per action."""

    def __init__(self, ring: EventSource, bindings: Iterable[Binding], handler: Handler, *,
                 timing: Timing = Timing(), on_fault: DeviceCallback | None = None,
                 on_recovered: DeviceCallback | None = None,
                 clock_ns: Callable[[], int] = time.monotonic_ns, batch: int = 256) -> None:
        self._ring = ring
        self._pins: dict[int, _Pin] = {}
        for b in bindings:
            if b.pin in self._pins:
                raise ValueError(f"pin {b.pin} bound twice ({self._pins[b.pin].binding.action} "
                                 f"and {b.action}); each pin has one action")
            self._pins[b.pin] = _Pin(b)
        self._handler = handler
        self._timing = timing
        self._debounce_ns = int(timing.debounce_ms * MS)
        self._hold_ns = int(timing.hold_ms * MS)
        self._stuck_ns = int(timing.stuck_ms * MS)
        self._repeat_ns = int(timing.repeat_ms * MS)
        self._on_fault = on_fault
        self._on_recovered = on_recovered
        self._clock_ns = clock_ns
        self._batch = batch
        self._dropped_seen = 0
        self._ring_faulted = False
        self._late_records = False  # the last drain saw a record older than GRACE_NS
        self._confirm_ns = 0  # > 0: a timer is due, the next round confirms (see _step)
        self._rounds = 0
        self._stalled_at = -STALL_CONFIRM_NS  # clock_ns of the last stall seen
        self._stats = _Stats()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ thread

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("dispatcher already started")
        self._dropped_seen = self._ring.dropped
        self._thread = threading.Thread(target=self._run, name="tessera-dispatch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread after it finishes the record in hand; safe to call twice."""
        self._stopping.set()
        self._ring.wake()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("dispatcher thread did not stop within %.1f s", timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._step()
            except Exception:  # a bug here must not silence every button
                log.exception("dispatcher loop error; continuing")
                self._stopping.wait(0.1)

    def _step(self) -> None:
        """One wait → drain → timers round.

        Edges are judged by their stamps, timers (hold, stuck, end of a debounce
        window) by the wall clock, and an edge stamped before a deadline may
        still be on its way to the ring: its gpiozero callback thread waits for
        the GIL. So a due timer fires only ``GRACE_NS`` after its deadline, and
        only after a confirming round: a wait of ``CONFIRM_NS`` without the GIL
        that brought no record, ended on time (within ``LATE_NS``) and followed
        a drain with no late record (``STALL_CONFIRM_NS`` long if the process
        stalled recently: a late wake-up or a late record). After a stall (a
        thread holding the GIL, a long handler, a busy CPU) the edges in flight
        land first, so the decisions are those of an unstalled run; the actions
        keep the deadline's ``t_ns``.
        """
        now = self._clock_ns()
        confirming = self._confirm_ns > 0
        timeout = self._confirm_ns / 1e9 if confirming else self._wait_timeout(now)
        woke_by = now + int(timeout * 1e9)
        self._ring.wait(timeout)
        self._late_records = False
        n = self.drain()
        now = self._clock_ns()
        stalled = self._late_records or now - woke_by > LATE_NS
        if stalled:
            self._stalled_at = now
        due = self._next_deadline()
        if due is None or due > now - GRACE_NS:
            self._confirm_ns, self._rounds = 0, 0
            return
        clean = confirming and n == 0 and not stalled
        if not clean and self._rounds < MAX_CONFIRM_ROUNDS:
            # just after a stall the callback threads may be slow to get the GIL
            # and a CPU back: look longer before judging
            recent = now - self._stalled_at < STALL_CONFIRM_NS
            self._confirm_ns = STALL_CONFIRM_NS if recent else CONFIRM_NS
            self._rounds += 1
            return
        self._confirm_ns, self._rounds = 0, 0
        self.advance(now - GRACE_NS)

    def _next_deadline(self) -> int | None:
        deadlines = [d for p in self._pins.values()
                     if (d := p.deadline(self._hold_ns, self._stuck_ns)) is not None]
        return min(deadlines) if deadlines else None

    def _wait_timeout(self, now: int) -> float:
        due = self._next_deadline()
        if due is None:
            return IDLE_POLL_S
        return min(max((due + GRACE_NS - now) / 1e9, 0.0), IDLE_POLL_S)

    # ------------------------------------------------------------------ processing

    def drain(self) -> int:
        """Process every record now in the ring, then check for drops; return the count."""
        n = 0
        for _ in range(1 << 16):  # bounded: producers may never pause
            batch = self._ring.pop_many(self._batch)
            if not batch:
                break
            for t_ns, pin, kind, value in batch:
                self.feed(t_ns, pin, kind, value)
            n += len(batch)
            if self._clock_ns() - batch[0][0] > GRACE_NS:
                self._late_records = True  # delivered late: more may be in flight
        self._check_drops()
        return n

    def feed(self, t_ns: int, pin: int, kind: int, value: int) -> None:
        """Process one raw record (timers up to ``t_ns`` run first)."""
        self.advance(t_ns)
        st = self._pins.get(pin)
        if st is None or kind not in (EDGE, PRESS, RELEASE):
            self._stats.unknown += 1
            if st is None and pin not in self._stats.unknown_pins:
                self._stats.unknown_pins.add(pin)
                log.warning("edge on unbound pin %d ignored", pin)
            return
        self._stats.edges += 1
        level = kind == PRESS or (kind == EDGE and value != 0)
        st.raw = level
        if t_ns < st.lockout_until:
            self._stats.chatter += 1
        elif level != st.pressed:
            self._accept(st, t_ns, level)

    def advance(self, now_ns: int) -> None:
        """Run the settle, hold and stuck timers that are due at ``now_ns``."""
        for st in self._pins.values():
            if st.raw != st.pressed and now_ns >= st.lockout_until:
                self._accept(st, st.lockout_until, st.raw)
            if not st.pressed or st.stuck:
                continue
            b = st.binding
            if b.hold_action and not st.hold_fired and now_ns >= st.pressed_at + self._hold_ns:
                st.hold_fired = True
                st.tap_pending = False  # a hold, not a tap: the tap's action never runs
                self._fire(ButtonAction(b.hold_action, b, st.pressed_at + self._hold_ns, True))
            if now_ns >= st.pressed_at + self._stuck_ns:
                st.stuck = True
                self._device("fault", "gpio", f"pin {b.pin} ({b.action} {b.target}) held for "
                             f"{self._timing.stuck_ms / 1000:g} s: stuck; ignored until released")

    def _accept(self, st: _Pin, t_ns: int, level: bool) -> None:
        st.pressed = level
        st.lockout_until = t_ns + self._debounce_ns
        b = st.binding
        if level:
            st.pressed_at = t_ns
            st.hold_fired = False
            if st.last_action is not None and t_ns - st.last_action < self._repeat_ns:
                self._stats.suppressed += 1
                return
            st.last_action = t_ns
            if b.hold_action is not None:
                st.tap_pending = True  # known on release (a tap) or at hold_ms (a hold)
            else:
                self._fire(ButtonAction(b.action, b, t_ns))
            return
        if st.tap_pending:
            st.tap_pending = False
            self._fire(ButtonAction(b.action, b, t_ns))
        if st.stuck:
            st.stuck = False
            self._device("recovered", "gpio", f"pin {b.pin} ({b.action} {b.target}) released")

    def _check_drops(self) -> None:
        dropped = self._ring.dropped
        if dropped > self._dropped_seen:
            new, self._dropped_seen = dropped - self._dropped_seen, dropped
            self._ring_faulted = True
            self._device("fault", "ring", f"{new} button edges dropped ({dropped} in total): "
                         "the ring was full; the dispatcher is not keeping up")
        elif self._ring_faulted:
            self._ring_faulted = False
            self._device("recovered", "ring", "ring drained with no new drops")

    # ------------------------------------------------------------------ callbacks

    def _fire(self, action: ButtonAction) -> None:
        self._stats.actions += 1
        try:
            self._handler(action)
        except Exception:
            self._stats.handler_errors += 1
            log.exception("handler for %r (pin %d, %s %s) raised; the dispatcher carries on",
                          action.action, action.binding.pin, action.binding.action,
                          action.binding.target)

    def _device(self, what: str, kind: str, detail: str) -> None:
        if what == "fault":
            self._stats.faults += 1
            log.warning("device fault (%s): %s", kind, detail)
            callback = self._on_fault
        else:
            self._stats.recoveries += 1
            log.info("device recovered (%s): %s", kind, detail)
            callback = self._on_recovered
        if callback is None:
            return
        try:
            callback(kind, detail)
        except Exception:
            self._stats.handler_errors += 1
            log.exception("on_%s callback raised for %s: %s", what, kind, detail)

    @property
    def stats(self) -> dict[str, int]:
        """Counters: edges, chatter, actions, suppressed, handler_errors, unknown, faults..."""
        s = self._stats
        return {"edges": s.edges, "chatter": s.chatter, "actions": s.actions,
                "suppressed": s.suppressed, "handler_errors": s.handler_errors,
                "unknown": s.unknown, "faults": s.faults, "recoveries": s.recoveries}


# --------------------------------------------------------------------------- config


def bindings_from_config(cfg: BranchConfig, device: str = "main") -> list[Binding]:
    """Every button wired to ``device``: kiosk buttons and counter panels.

    Kiosk: ``ISSUE`` (target = service, arg = priority class). Counter panels:
    ``NEXT`` (hold → ``PAUSE``), ``RECALL``, ``TRANSFER``, ``NO_SHOW`` (hold →
    ``UNDO_NO_SHOW``), ``DONE``
    (on a ``login`` panel, hold → ``LOGOUT``), ``PAUSE``, and ``RATE`` (arg = 1
    for the lowest rating button).
    """
    out: list[Binding] = []
    if cfg.kiosk.device == device:
        out.extend(Binding(kb.pin, Act.ISSUE, kb.service, kb.priority)
                   for kb in cfg.kiosk.buttons)
        if cfg.kiosk.reprint_pin is not None:
            # a hold reprints; the tap (REPRINT, not held) is ignored by the router, so a
            # customer leaning on it for a moment prints nothing
            out.append(Binding(cfg.kiosk.reprint_pin, Act.REPRINT, "kiosk",
                               hold_action=Act.REPRINT))
    for c in cfg.counters:
        p = c.panel
        if p is None or c.device != device:
            continue
        for key in PANEL_KEYS:
            pin = getattr(p, key.value)
            if pin is None:
                continue
            hold = Act.PAUSE if key is Act.NEXT else \
                Act.LOGOUT if key is Act.DONE and p.login else \
                Act.UNDO_NO_SHOW if key is Act.NO_SHOW else None
            out.append(Binding(pin, key, c.id, hold_action=hold))
        out.extend(Binding(pin, Act.RATE, c.id, j + 1) for j, pin in enumerate(p.ratings))
    return out
