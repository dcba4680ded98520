"""GPIO panels: gpiozero buttons that only push edges into the ring, and status lamps.

    panel = ButtonPanel(ring, [17, 27], pin_factory=make_pin_factory("mock"))
    lamps = make_lamps({"ready": 4, "printer_fault": 15}, pin_factory=factory)
    lamps["ready"].on()

Buttons are gpiozero ``DigitalInputDevice``s with ``bounce_time=None``, not
``Button``s: a ``Button`` starts a hold-timer thread per pin (72 idle threads
on a 12-counter panel Pi), and debounce, hold and stuck detection live in
``tessera.dispatch`` so they behave the same on every pin
factory and in the simulator. A button callback is ``partial(ring.push_now,
pin, kind, value)``: on the compiled ring that is one C call (stamped with
CLOCK_MONOTONIC, the clock of ``time.monotonic_ns()``), no Python frame.
The firmware sees only the ports below, never gpiozero types.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Iterable, Mapping
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


class EdgeSink(Protocol):
    """Where button edges go (``tessera.cext.Ring`` fits)."""

    def push_now(self, pin: int, kind: int, value: int) -> bool: ...


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
    """

    def __init__(self, sink: EdgeSink, pins: Iterable[int], *, pin_factory: Any = None,
                 pull_up: bool = True) -> None:
        from gpiozero import DigitalInputDevice  # imported here: nothing heavy at import time

        self._buttons: dict[int, Any] = {}
        try:
            for pin in pins:
                if pin in self._buttons:
                    raise ValueError(f"pin {pin} listed twice")
                btn = DigitalInputDevice(pin, pull_up=pull_up, bounce_time=None,
                                         pin_factory=pin_factory)
                self._buttons[pin] = btn
                # only a push: no logic, no logging, no allocation in the callback
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
