"""Every pin factory Tessera supports stamps a button edge with the factory's own time of
the edge (converted once to CLOCK_MONOTONIC ns), or, without one, with ``push_now``."""

from __future__ import annotations

import sys
import threading
import types
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from tessera.cext import PRESS, RELEASE
from tessera.cext._ring_py import Ring
from tessera.drivers.gpio import (
    EDGE_TIME_SOURCES,
    PIN_FACTORIES,
    ButtonPanel,
    EdgeFeed,
    edge_clock,
    monotonic_ticks_to_ns,
)


def test_every_known_factory_says_where_its_edge_time_comes_from() -> None:
    assert set(EDGE_TIME_SOURCES) == set(PIN_FACTORIES)


def test_mock_factory_edges_carry_the_mock_pins_change_time(
        ring_cls: type[Ring], monkeypatch: pytest.MonkeyPatch) -> None:
    import gpiozero.pins.mock as mock

    factory = MockFactory()
    ring = ring_cls(16)
    try:
        with ButtonPanel(ring, [17], pin_factory=factory) as panel:
            assert panel.stamps == "factory"
            # MockPin stamps a change with its module's monotonic(): pin it down
            monkeypatch.setattr(mock, "monotonic", lambda: 1234.5)
            factory.pin(17).drive_low()
            monkeypatch.setattr(mock, "monotonic", lambda: 1234.625)
            factory.pin(17).drive_high()
    finally:
        factory.close()
    assert ring.pop_many(8) == [(1_234_500_000_000, 17, PRESS, 1),
                                (1_234_625_000_000, 17, RELEASE, 0)]


def test_lgpio_ticks_convert_to_the_kernels_nanoseconds() -> None:
    # lgpio hands gpiozero the kernel's CLOCK_MONOTONIC edge time in ns; LGPIOPin
    # divides by 1e9. 14 days, 6 h, 56 min, 7.890123456 s of uptime, back to the ns:
    assert monotonic_ticks_to_ns(1_234_567_890_123_456 / 1e9) == 1_234_567_890_123_456
    assert monotonic_ticks_to_ns(5_000_000_123 / 1e9) == 5_000_000_123
    assert monotonic_ticks_to_ns(0.0) == 0


@pytest.fixture
def lgpio_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    """gpiozero's real ``gpiozero.pins.lgpio``, imported over a stand-in ``lgpio`` (the C
    library is not installed here; only its constants are read at import)."""
    stub = types.ModuleType("lgpio")
    stub.__dict__["__getattr__"] = lambda name: 0
    monkeypatch.setitem(sys.modules, "lgpio", stub)
    monkeypatch.delitem(sys.modules, "gpiozero.pins.lgpio", raising=False)
    import gpiozero.pins.lgpio as lg

    yield lg
    sys.modules.pop("gpiozero.pins.lgpio", None)
    import gpiozero.pins

    gpiozero.pins.__dict__.pop("lgpio", None)  # the next import finds lgpio missing again


def test_an_lgpio_alert_reaches_the_ring_with_its_kernel_timestamp(
        ring_cls: type[Ring], lgpio_module: Any) -> None:
    factory = object.__new__(lgpio_module.LGPIOFactory)  # no /dev/gpiochip here
    clock = edge_clock(factory)
    assert clock is monotonic_ticks_to_ns
    ring = ring_cls(8)
    feed = EdgeFeed(ring.push, clock, 22, active_low=True)
    pin = object.__new__(lgpio_module.LGPIOPin)
    pin._when_changed_lock = threading.RLock()
    pin._when_changed = weakref.ref(feed)
    # lgpio's alert callback: (chip, gpio, level, timestamp ns) → gpiozero's pin layer
    pin._call_when_changed(0, 22, 0, 1_234_567_890_123_456)
    pin._call_when_changed(0, 22, 1, 1_234_567_990_123_456)
    assert ring.pop_many(8) == [(1_234_567_890_123_456, 22, PRESS, 1),
                                (1_234_567_990_123_456, 22, RELEASE, 0)]


class _FarClockFactory(MockFactory):  # type: ignore[misc]
    """A factory whose ticks are not CLOCK_MONOTONIC seconds (as pigpio's are not)."""

    @staticmethod
    def ticks() -> float:
        return 3.5e9


def test_a_factory_without_monotonic_ticks_falls_back_to_push_now(
        ring_cls: type[Ring]) -> None:
    factory = _FarClockFactory()
    ring = ring_cls(8)
    try:
        with ButtonPanel(ring, [5], pin_factory=factory) as panel:
            assert panel.stamps == "callback"
            import time

            before = time.monotonic_ns()
            factory.pin(5).drive_low()
            after = time.monotonic_ns()
    finally:
        factory.close()
    [(t, pin, kind, value)] = ring.pop_many(8)
    assert (pin, kind, value) == (5, PRESS, 1)
    assert before <= t <= after  # stamped by push_now when the callback ran


def test_pigpio_ticks_are_not_used() -> None:
    # pigpiod's tick: 32-bit µs on the daemon's host, wrapping every 71.6 min; its
    # factory is neither a local nor a mock one
    class PiGPIOFactory:
        def ticks(self) -> int:
            return 123_456_789

    assert edge_clock(PiGPIOFactory()) is None


def test_factory_stamps_can_be_switched_off_for_comparison(ring_cls: type[Ring]) -> None:
    factory = MockFactory()
    try:
        with ButtonPanel(ring_cls(8), [5], pin_factory=factory,
                         factory_stamps=False) as panel:
            assert panel.stamps == "callback"
    finally:
        factory.close()


def test_the_drivers_doctests_run() -> None:
    import doctest

    import tessera.drivers.gpio

    result = doctest.testmod(tessera.drivers.gpio)
    assert result.attempted >= 1 and result.failed == 0
