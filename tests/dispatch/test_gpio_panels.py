"""GPIO end to end through gpiozero MockFactory pins: pin → ring → dispatcher → handler."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from dispatch_helpers import Recorder, wait_until

from tessera.cext import PRESS, RELEASE
from tessera.cext._ring_py import Ring
from tessera.config import PIN_FACTORIES as CONFIG_PIN_FACTORIES
from tessera.config import load_config
from tessera.dispatch import Act, Binding, Dispatcher, Timing, bindings_from_config
from tessera.drivers.errors import ConfigError, DeviceError
from tessera.drivers.gpio import (
    PIN_FACTORIES,
    ButtonPanel,
    make_lamps,
    make_pin_factory,
)

FAST = Timing(debounce_ms=5, hold_ms=80, stuck_ms=5000, repeat_ms=10)


def test_callbacks_only_push_press_and_release(ring_cls: type[Ring], mock_pins: Any) -> None:
    ring = ring_cls(16)
    with ButtonPanel(ring, [17, 27], pin_factory=mock_pins) as panel:
        assert panel.pins == (17, 27)
        mock_pins.pin(27).drive_low()
        assert panel.is_pressed(27)
        mock_pins.pin(27).drive_high()
    got = ring.pop_many(10)
    assert [(pin, kind, value) for _t, pin, kind, value in got] == [(27, PRESS, 1),
                                                                     (27, RELEASE, 0)]
    assert got[0][0] <= got[1][0]


def test_a_panel_starts_no_thread_per_button(ring_cls: type[Ring], mock_pins: Any) -> None:
    # a gpiozero Button runs a hold-timer thread per pin; hold lives in the dispatcher,
    # so a 12-counter panel Pi must not carry 70+ idle threads (memory, start-up time)
    before = threading.active_count()
    with ButtonPanel(ring_cls(16), range(2, 26), pin_factory=mock_pins) as panel:
        assert len(panel.pins) == 24
        assert threading.active_count() == before
        mock_pins.pin(5).drive_low()
        assert panel.is_pressed(5) and not panel.is_pressed(6)


@pytest.mark.timeout(60)
def test_kiosk_pin_driven_low_reaches_the_handler_as_its_action(
        ring_cls: type[Ring], mock_pins: Any, bank_config_path: Path, recorder: Recorder) -> None:
    cfg = load_config(bank_config_path)
    bindings = bindings_from_config(cfg)
    ring = ring_cls(cfg.gpio.ring_capacity)
    d = Dispatcher(ring, bindings, recorder.handler, timing=FAST,
                   on_fault=recorder.on_fault, on_recovered=recorder.on_recovered)
    panel = ButtonPanel(ring, [b.pin for b in bindings], pin_factory=mock_pins)
    d.start()
    try:
        mock_pins.pin(23).drive_low()  # kiosk: wealth, VIP
        assert wait_until(lambda: len(recorder.actions) == 1)
        mock_pins.pin(23).drive_high()
        a = recorder.actions[0]
        assert (a.action, a.binding.target, a.binding.arg) == ("issue", "wealth", "vip")
        mock_pins.pin(5).drive_low()  # counter c1 NEXT, held past hold_ms → pause only
        assert wait_until(lambda: recorder.names() == ["issue", "pause"])
        mock_pins.pin(5).drive_high()
        mock_pins.pin(16).drive_low()  # c1's third rating button
        assert wait_until(lambda: len(recorder.actions) == 3)
        mock_pins.pin(16).drive_high()
        rate = recorder.actions[2]
        assert (rate.action, rate.binding.target, rate.binding.arg) == ("rate", "c1", 3)
    finally:
        d.stop()
        panel.close()
    assert recorder.faults == []


def test_bindings_from_the_bank_example(bank_config_path: Path) -> None:
    cfg = load_config(bank_config_path)
    by_pin = {b.pin: b for b in bindings_from_config(cfg)}
    assert by_pin[17] == Binding(17, Act.ISSUE, "cash")
    assert by_pin[24] == Binding(24, Act.ISSUE, "cash", "priority")
    assert by_pin[5] == Binding(5, Act.NEXT, "c1", hold_action=Act.PAUSE)
    assert by_pin[25] == Binding(25, Act.NO_SHOW, "c2", hold_action=Act.UNDO_NO_SHOW)
    assert [by_pin[p].arg for p in (20, 21, 16)] == [1, 2, 3]
    assert len(by_pin) == 5 + 8 + 7  # kiosk, c1 (5 keys + 3 ratings), c2 (4 + 3)
    assert bindings_from_config(cfg, device="elsewhere") == []


def test_lamps_drive_their_pins(mock_pins: Any) -> None:
    lamps = make_lamps({"ready": 4, "printer_fault": 15, "closed": None}, pin_factory=mock_pins)
    assert sorted(lamps) == ["printer_fault", "ready"]
    lamps["ready"].on()
    assert lamps["ready"].is_lit and mock_pins.pin(4).state
    assert not mock_pins.pin(15).state
    lamps["ready"].off()
    assert not mock_pins.pin(4).state
    for lamp in lamps.values():
        lamp.close()


def test_unknown_pin_factory_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as e:
        make_pin_factory("gpiod")
    assert "gpio.pin_factory: unknown pin factory 'gpiod'" in str(e.value)
    for name in PIN_FACTORIES:
        assert name in str(e.value)


def test_pin_factory_from_the_environment() -> None:
    assert make_pin_factory("", env={}) is None  # gpiozero picks its default
    factory = make_pin_factory("", env={"GPIOZERO_PIN_FACTORY": "mock"})
    try:
        assert type(factory).__name__ == "MockFactory"
    finally:
        factory.close()
    with pytest.raises(ConfigError, match="GPIOZERO_PIN_FACTORY: unknown pin factory 'nope'"):
        make_pin_factory("", env={"GPIOZERO_PIN_FACTORY": "nope"})


def test_missing_factory_library_is_a_device_error() -> None:
    pytest.importorskip("gpiozero")
    try:
        import lgpio  # noqa: F401
    except ImportError:
        with pytest.raises(DeviceError, match="tessera\\[pi\\]"):
            make_pin_factory("lgpio")
    else:  # pragma: no cover - on a Pi the library exists
        pytest.skip("lgpio installed")


def test_config_and_driver_agree_on_factory_names() -> None:
    assert set(CONFIG_PIN_FACTORIES) == set(PIN_FACTORIES)
