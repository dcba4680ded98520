"""GPIO panels: gpiozero buttons that only push edges into the ring, and status lamps.

    panel = ButtonPanel(ring, [17, 27], pin_factory=make_pin_factory("mock"))
    lamps = make_lamps({"ready": 4, "printer_fault": 15}, pin_factory=factory)
    lamps["ready"].on()

Buttons are gpiozero ``DigitalInputDevice``s with ``bounce_time=None``, not
``Button``s: a ``Button`` starts a hold-timer thread per pin (72 idle threads
on a 12-counter panel Pi), and debounce, hold and stuck detection live in
``tessera.dispatch`` so they behave the same on every pin
factory and in the simulator.

Each edge is stamped with the time the pin factory says it happened, not when
Python got round to it: gpiozero's pin layer calls ``Pin.when_changed(ticks,
state)`` with the factory's ``ticks``, and :func:`edge_clock` converts them once
to CLOCK_MONOTONIC ns (the dispatcher's clock, ``time.monotonic_ns()``):

=============  ==============================================================
factory        what ``ticks`` is (see ``EDGE_TIME_SOURCES``)
=============  ==============================================================
lgpio          the kernel's edge timestamp (CLOCK_MONOTONIC ns, sent as s)
tessera-sim    the simulator's CLOCK_MONOTONIC time of the drive
mock           MockPin's CLOCK_MONOTONIC time of the change (``drive_low()``)
rpigpio        ``monotonic()`` read by RPi.GPIO's Python callback thread
native         ``monotonic()`` read by gpiozero's polling thread
pigpio         none usable: pigpiod's 32-bit µs tick, wrapping, maybe another
               host, so edges fall back to ``push_now`` (stamped in the callback)
=============  ==============================================================

The firmware sees only the ports below, never gpiozero types.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any, Protocol

from tessera.cext import PRESS, RELEASE
from tessera.drivers.errors import ConfigError, DeviceError

# config name -> (module, class); the names gpiozero's GPIOZERO_PIN_FACTORY accepts
PIN_FACTORIES: dict[str, tuple[str, str]] = {
    "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory"),
    "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory"),
    "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory"),
    "native": ("gpiozero.pins.native", "NativeFactory"),
    "mock": ("gpiozero.pins.mock", "MockFactory"),
    # the simulated bus (``tessera sim hardware``): one factory per device (Pi);
    # registered as gpiozero's entry point ``tessera-sim`` too
    "tessera-sim": ("tessera.sim.gpio", "SimFactory"),
}
DEVICE_FACTORIES = ("tessera-sim",)  # factories that take ``device=`` (which Pi they are)
PIN_FACTORY_ENV = "GPIOZERO_PIN_FACTORY"


# how each factory's ticks relate to CLOCK_MONOTONIC (the table in the module docstring)
EDGE_TIME_SOURCES: dict[str, str] = {
    "lgpio": "kernel edge timestamp",
    "tessera-sim": "simulator's drive time",
    "mock": "MockPin change time",
    "rpigpio": "Python callback thread's monotonic()",
    "native": "polling thread's monotonic()",
    "pigpio": "none: push_now in the callback",
}
TICKS_SANITY_S = 1.0  # a factory whose ticks() is further than this from monotonic() is
# not on CLOCK_MONOTONIC after all (a subclass that overrides ticks): push_now instead

TickClock = Callable[[float], int]


class EdgeSink(Protocol):
    """Where button edges go (``tessera.cext.Ring`` fits)."""

    def push(self, t_ns: int, pin: int, kind: int, value: int) -> bool: ...
    def push_now(self, pin: int, kind: int, value: int) -> bool: ...


def monotonic_ticks_to_ns(ticks: float) -> int:
    """Ticks in seconds of CLOCK_MONOTONIC (gpiozero's local and mock factories, the
    simulated bus) → ``time.monotonic_ns()`` units.

    lgpio reports the kernel's edge timestamp in ns; gpiozero's ``LGPIOPin`` divides it
    by 1e9 before ``_call_when_changed``. Through a double the round trip is exact up
    to ~2 million s (23 days) of uptime, within 1 ns at a month, 6 ns at a year and
    ~100 ns at ten years (measured), far inside any debounce window:

    >>> monotonic_ticks_to_ns(5_000_000_123 / 1e9)
    5000000123
    """
    return round(ticks * 1e9)


def edge_clock(factory: Any) -> TickClock | None:
    """How to turn ``factory``'s edge ``ticks`` into monotonic ns, or None when its ticks
    are not on CLOCK_MONOTONIC (pigpio, unknown factories): then stamp with ``push_now``."""
    from gpiozero.pins.local import LocalPiFactory
    from gpiozero.pins.mock import MockFactory

    if not isinstance(factory, MockFactory | LocalPiFactory):
        return None
    try:
        if abs(float(factory.ticks()) - time.monotonic()) > TICKS_SANITY_S:
            return None
    except Exception:  # a factory whose ticks() fails cannot stamp edges either
        return None
    return monotonic_ticks_to_ns


class EdgeFeed:
    """``Pin.when_changed(ticks, state)`` → one ring record stamped with the edge's time."""

    __slots__ = ("__weakref__", "_active_low", "_clock", "_pin", "_push")

    def __init__(self, push: Callable[[int, int, int, int], bool], clock: TickClock,
                 pin: int, active_low: bool) -> None:
        self._push, self._clock, self._pin, self._active_low = push, clock, pin, active_low

    def __call__(self, ticks: float | None, state: int) -> None:
        # only a push: no logic, no logging (gpiozero's callback thread)
        active = not state if self._active_low else bool(state)
        t_ns = time.monotonic_ns() if ticks is None else self._clock(ticks)
        self._push(t_ns, self._pin, PRESS if active else RELEASE, 1 if active else 0)


class Lamp(Protocol):
    """A status lamp (ready, printer fault, closed...)."""

    def on(self) -> None: ...
    def off(self) -> None: ...
    def blink(self, on_time: float = 0.5, off_time: float = 0.5) -> None: ...
    @property
    def is_lit(self) -> bool: ...
    def close(self) -> None: ...


def make_pin_factory(name: str = "", *, env: Mapping[str, str] | None = None,
                     device: str | None = None) -> Any:
    """A gpiozero pin factory by name (``""``: ``$GPIOZERO_PIN_FACTORY``, else None = default).

    ``device`` tells a simulated-bus factory which Pi it is (else it reads
    ``$TESSERA_DEVICE``); real factories ignore it. Raises ConfigError naming the
    valid factories for an unknown name, and DeviceError when the factory's
    library, hardware or simulator is missing.
    """
    environ = os.environ if env is None else env
    source = "gpio.pin_factory"
    if not name:
        name, source = environ.get(PIN_FACTORY_ENV, "").strip(), PIN_FACTORY_ENV
    if not name:
        return None
    key = name.lower()
    if key not in PIN_FACTORIES:
        raise ConfigError([f"{source}: unknown pin factory {name!r}; valid: "
                           + ", ".join(PIN_FACTORIES)])
    module, cls = PIN_FACTORIES[key]
    try:
        factory_cls = getattr(importlib.import_module(module), cls)
    except ImportError as e:
        raise DeviceError(f"pin factory {key!r} needs a library that is not installed ({e}); "
                          "on a Pi 4/5 install tessera[pi] (lgpio), or use 'mock' off the Pi"
                          ) from None
    try:
        if key in DEVICE_FACTORIES:
            return factory_cls(device=device, env=environ)
        return factory_cls()
    except DeviceError:
        raise  # already says what to fix (e.g. how to start the simulator)
    except Exception as e:  # gpiozero raises assorted errors when the hardware is absent
        raise DeviceError(f"pin factory {key!r} could not start ({type(e).__name__}: {e}); "
                          "is this a Raspberry Pi with GPIO access?") from None


class ButtonPanel:
    """Active-low buttons (to ground, internal pull-up) whose edges go into ``sink``.

        panel = ButtonPanel(ring, [5, 6, 13], pin_factory=factory); ...; panel.close()

    ``stamps`` says how edges are stamped: ``"factory"`` (the pin factory's time of
    the edge, see the module docstring) or ``"callback"`` (``push_now`` when the
    callback runs: factories without a usable edge time, or ``factory_stamps=False``,
    which only the benchmark's comparison uses).
    """

    def __init__(self, sink: EdgeSink, pins: Iterable[int], *, pin_factory: Any = None,
                 pull_up: bool = True, factory_stamps: bool = True) -> None:
        from gpiozero import DigitalInputDevice  # imported here: nothing heavy at import time

        self._buttons: dict[int, Any] = {}
        self._feeds: list[EdgeFeed] = []  # Pin.when_changed keeps only a weak reference
        self.stamps = "callback"
        try:
            for pin in pins:
                if pin in self._buttons:
                    raise ValueError(f"pin {pin} listed twice")
                btn = DigitalInputDevice(pin, pull_up=pull_up, bounce_time=None,
                                         pin_factory=pin_factory)
                self._buttons[pin] = btn
                clock = edge_clock(btn.pin_factory) if factory_stamps else None
                if clock is not None:
                    # the pin layer's (ticks, state), before gpiozero's device events
                    # (which drop ticks); replaces the device's own pin handler
                    feed = EdgeFeed(sink.push, clock, pin, active_low=pull_up)
                    self._feeds.append(feed)
                    btn.pin.when_changed = feed
                    self.stamps = "factory"
                else:
                    # no factory time: one C call on the compiled ring, no Python frame
                    btn.when_activated = partial(sink.push_now, pin, PRESS, 1)
                    btn.when_deactivated = partial(sink.push_now, pin, RELEASE, 0)
        except Exception as e:
            self.close()
            if isinstance(e, ValueError):
                raise
            raise DeviceError(f"cannot open button GPIO pins: {e}") from e

    @property
    def pins(self) -> tuple[int, ...]:
        return tuple(self._buttons)

    def is_pressed(self, pin: int) -> bool:
        return bool(self._buttons[pin].is_active)

    def close(self) -> None:
        for btn in self._buttons.values():
            btn.close()
        self._buttons.clear()
        self._feeds.clear()

    def __enter__(self) -> ButtonPanel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class GpioLamp:
    """A gpiozero LED behind the :class:`Lamp` port: ``GpioLamp(4, pin_factory=f).on()``."""

    def __init__(self, pin: int, *, pin_factory: Any = None) -> None:
        from gpiozero import LED

        try:
            self._led = LED(pin, pin_factory=pin_factory)
        except Exception as e:
            raise DeviceError(f"cannot open lamp GPIO pin {pin}: {e}") from e
        # gpiozero's blink() assigns its thread before starting it; an off() from
        # another thread (a confirmation-blink timer) in between joins an unstarted
        # thread and raises. One lock per lamp serialises the calls.
        self._lock = threading.Lock()
        self._closed = False  # a late timer (confirmation blink) may still call off()

    def on(self) -> None:
        with self._lock:
            if not self._closed:
                self._led.on()

    def off(self) -> None:
        with self._lock:
            if not self._closed:
                self._led.off()

    def blink(self, on_time: float = 0.5, off_time: float = 0.5) -> None:
        with self._lock:
            if not self._closed:
                self._led.blink(on_time=on_time, off_time=off_time)

    @property
    def is_lit(self) -> bool:
        return bool(self._led.is_lit)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._led.close()


def make_lamps(pins: Mapping[str, int | None], *, pin_factory: Any = None) -> dict[str, Lamp]:
    """One lamp per named pin (``None`` pins are skipped): ``{"ready": GpioLamp, ...}``."""
    lamps: dict[str, Lamp] = {}
    try:
        for name, pin in pins.items():
            if pin is not None:
                lamps[name] = GpioLamp(pin, pin_factory=pin_factory)
    except Exception:
        for lamp in lamps.values():
            lamp.close()
        raise
    return lamps
