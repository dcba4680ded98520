"""A lamp driven from several threads (a blink, and a timer that turns it off) never
raises: gpiozero alone races in blink() vs off() ("cannot join thread before it is
started"), seen in the full-day test."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tessera.drivers.gpio import GpioLamp


@pytest.mark.timeout(60)
def test_concurrent_blink_and_off_never_raise(mock_pins: Any) -> None:
    lamp = GpioLamp(21, pin_factory=mock_pins)
    errors: list[BaseException] = []
    hook = threading.excepthook
    threading.excepthook = lambda args: errors.append(  # type: ignore[assignment]
        args.exc_value or RuntimeError("no exception"))
    try:
        for _ in range(300):
            offs = [threading.Thread(target=lamp.off) for _ in range(3)]
            for t in offs:
                t.start()
            lamp.blink(0.001, 0.001)
            for t in offs:
                t.join(5)
        lamp.off()
        assert not lamp.is_lit
    finally:
        threading.excepthook = hook
        lamp.close()
    assert errors == []


def test_a_late_off_after_close_is_ignored(mock_pins: Any) -> None:
    """The rating LED's confirmation timer may fire after the branch closed its pins."""
    lamp = GpioLamp(20, pin_factory=mock_pins)
    lamp.blink(0.01, 0.01)
    lamp.close()
    lamp.off()  # must not raise GPIODeviceClosed
    lamp.on()
    lamp.blink()
