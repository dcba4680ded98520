"""The ``tessera-sim`` pin factory against the bus, over a real Unix socket: edges in order
with the simulator's timestamps, outputs reported, pins that behave like a Pi's, devices
kept apart, and clear errors for what does not exist."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from gpiozero import LED, DigitalInputDevice
from sim_helpers import until

from tessera.cext import PRESS, RELEASE, Ring
from tessera.drivers.errors import DeviceError
from tessera.drivers.gpio import ButtonPanel, make_pin_factory
from tessera.sim.bus import BusError, GpioBus
from tessera.sim.gpio import SimBusRefused, SimFactory, SimulatorNotRunning


@pytest.fixture
def bus(sock_dir: Path) -> Iterator[GpioBus]:
    events: list[dict[str, Any]] = []
    with GpioBus(sock_dir / "bus.sock", devices=["main", "pi-2"],
                 on_event=events.append) as b:
        b.events = events  # type: ignore[attr-defined]
        yield b


@pytest.fixture
def factories(bus: GpioBus) -> Iterator[dict[str, SimFactory]]:
    made: dict[str, SimFactory] = {}

    def make(device: str) -> SimFactory:
        made[device] = SimFactory(device=device, socket_path=bus.path)
        return made[device]

    made["main"] = make("main")
    yield made
    for f in made.values():
        f.close()


class Edges(list[tuple[float, int]]):
    """(ticks, state) of every edge a pin's ``when_changed`` saw."""

    def __call__(self, ticks: float, state: int) -> None:
        self.append((ticks, int(state)))


def _input(factory: SimFactory, pin: int, pull: str = "up") -> tuple[Any, Edges]:
    """A pin opened as gpiozero's input devices open it, recording its edges (the
    recorder is returned: gpiozero keeps only a weak reference to a callback)."""
    got = Edges()
    p = factory.pin(pin)
    p.function = "input"
    p.pull = pull
    p.edges = "both"
    p.when_changed = got
    return p, got


@pytest.mark.timeout(30)
def test_edges_arrive_in_order_with_the_simulators_timestamps(
        bus: GpioBus, factories: dict[str, SimFactory]) -> None:
    pin, got = _input(factories["main"], 17)
    assert bus.wait_listening("main", 17, 5)
    sent = [bus.drive("main", 17, 0 if i % 2 == 0 else None) for i in range(200)]  # no gaps
    assert until(lambda: len(got) == 200, 10), len(got)
    assert [s for _, s in got] == [0, 1] * 100  # every edge, in order
    assert [t for t, _ in got] == sent  # ticks are the simulator's stamps, exactly
    assert all(a < b for a, b in itertools.pairwise(sent))  # strictly monotonic
    assert sent[-1] <= time.monotonic()  # one CLOCK_MONOTONIC for both ends
    assert pin.state == 1  # released: the pull-up holds it high


@pytest.mark.timeout(30)
def test_presses_with_bounce_reach_the_ring_through_the_button_driver(
        bus: GpioBus, factories: dict[str, SimFactory]) -> None:
    ring = Ring(256)
    with ButtonPanel(ring, [17, 27], pin_factory=factories["main"]):
        assert bus.wait_listening("main", 27, 5)
        for _ in range(5):
            bus.press("main", 27, duration_s=0.01, bounce=3)
        records: list[tuple[int, int, int, int]] = []
        until(lambda: records.extend(ring.pop_many(256)) or len(records) >= 70, 5)  # type: ignore[func-returns-value]
    kinds = [(pin, kind) for _, pin, kind, _ in records]
    # 5 presses x (3 bounces x 2 edges + the settling edge) at each end, nothing lost
    assert kinds == [(27, PRESS), (27, RELEASE)] * 35
    stamps = [t for t, *_ in records]
    assert stamps == sorted(stamps)


@pytest.mark.timeout(30)
def test_outputs_are_reported_with_timestamps(bus: GpioBus,
                                              factories: dict[str, SimFactory]) -> None:
    led = LED(4, pin_factory=factories["main"])
    before = time.monotonic()
    for on in (True, False, True):
        led.on() if on else led.off()
    assert until(lambda: [e["state"] for e in bus.events  # type: ignore[attr-defined]
                          if e["kind"] == "output" and e["pin"] == 4] == [1, 0, 1], 5)
    outs = [e for e in bus.events if e["kind"] == "output"]  # type: ignore[attr-defined]
    assert all(before <= e["t"] <= e["t_rx"] for e in outs)  # firmware stamp, then receipt
    assert [e["t"] for e in outs] == sorted(e["t"] for e in outs)
    view = bus.outputs("main")[4]
    assert (view.function, view.state, view.changes) == ("output", 1, 3)
    led.close()
    assert until(lambda: 4 not in bus.outputs("main"), 5)  # closed: back to an input


@pytest.mark.timeout(30)
def test_buttons_to_ground_read_like_real_pins(bus: GpioBus,
                                               factories: dict[str, SimFactory]) -> None:
    f = factories["main"]
    bus.drive("pi-2", 22, 0)  # held down before that Pi's firmware starts (a stuck button)
    factories["pi-2"] = SimFactory(device="pi-2", socket_path=bus.path)
    up = DigitalInputDevice(17, pull_up=True, bounce_time=None, pin_factory=f)
    down = DigitalInputDevice(27, pull_up=False, bounce_time=None, pin_factory=f)
    stuck = DigitalInputDevice(22, pull_up=True, bounce_time=None,
                               pin_factory=factories["pi-2"])
    assert bus.wait_listening("main", 17, 5) and bus.wait_listening("main", 27, 5)
    # idle: the pull-up holds the pin high (inactive); with a pull-down it reads low
    assert (up.pin.state, up.is_active, bus.level("main", 17)) == (1, False, 1)
    assert (down.pin.state, bus.level("main", 27)) == (0, 0)
    assert stuck.is_active and stuck.pin.state == 0
    bus.drive("main", 17, 0)
    assert until(lambda: up.is_active, 5) and up.pin.state == 0
    bus.drive("main", 17, None)
    assert until(lambda: not up.is_active, 5) and up.pin.state == 1
    # a button to GND on a pulled-down pin changes nothing: low is low
    bus.press("main", 27, duration_s=0.02)
    assert down.pin.state == 0 and not down.is_active
    for d in (up, down, stuck):
        d.close()


@pytest.mark.timeout(30)
def test_two_devices_on_one_bus_are_kept_apart(bus: GpioBus,
                                               factories: dict[str, SimFactory]) -> None:
    other = SimFactory(device="pi-2", socket_path=bus.path)
    factories["pi-2"] = other
    main_pin, main_got = _input(factories["main"], 17)
    _, pi2_got = _input(other, 17)
    assert bus.wait_listening("main", 17, 5) and bus.wait_listening("pi-2", 17, 5)
    assert sorted(bus.connected()) == ["main", "pi-2"]
    bus.press("pi-2", 17, duration_s=0.01)
    assert until(lambda: len(pi2_got) == 2, 5)
    time.sleep(0.05)
    assert main_got == [] and main_pin.state == 1
    led = LED(4, pin_factory=other)
    led.on()
    assert until(lambda: getattr(bus.outputs("pi-2").get(4), "state", 0) == 1, 5)
    assert 4 not in bus.outputs("main")
    led.close()


def test_unknown_device_or_pin_is_refused_naming_the_valid_ones(bus: GpioBus) -> None:
    with pytest.raises(SimBusRefused, match="unknown device 'pi-9'; this simulator has "
                                            "main, pi-2"):
        SimFactory(device="pi-9", socket_path=bus.path)
    with pytest.raises(BusError, match="unknown device 'pi-9'; valid: main, pi-2"):
        bus.drive("pi-9", 17, 0)
    with pytest.raises(BusError, match="pin 40 is not a BCM GPIO number; valid: 0-27"):
        bus.press("main", 40)


@pytest.mark.timeout(30)
def test_no_simulator_is_a_clear_device_error_without_a_hang(sock_dir: Path) -> None:
    missing = sock_dir / "nobody.sock"
    with pytest.raises(SimulatorNotRunning) as e:
        SimFactory(socket_path=missing)
    assert isinstance(e.value, DeviceError)
    assert str(missing) in str(e.value)
    assert "tessera sim hardware --config FILE" in str(e.value)
    # through the drivers' factory table (what tessera run uses): not re-worded
    with pytest.raises(SimulatorNotRunning, match="tessera sim hardware"):
        make_pin_factory("", env={"GPIOZERO_PIN_FACTORY": "tessera-sim",
                                  "TESSERA_SIM_SOCKET": str(missing)}, device="main")
    # a stale socket (bound, nobody listening) and a peer that never answers: both bounded
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock_dir / "stale.sock"))
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mute.bind(str(sock_dir / "mute.sock"))
    mute.listen(1)
    try:
        with pytest.raises(SimulatorNotRunning):
            SimFactory(socket_path=sock_dir / "stale.sock")
        t0 = time.monotonic()
        with pytest.raises(SimulatorNotRunning, match="no welcome"):
            SimFactory(socket_path=sock_dir / "mute.sock", timeout_s=0.5)
        assert time.monotonic() - t0 < 5
    finally:
        stale.close()
        mute.close()


@pytest.mark.timeout(30)
def test_a_dead_simulator_never_blocks_the_firmware(bus: GpioBus,
                                                    factories: dict[str, SimFactory]) -> None:
    led = LED(4, pin_factory=factories["main"])
    bus.stop()
    assert until(lambda: factories["main"].lost, 5)
    t0 = time.monotonic()
    for _ in range(100):
        led.toggle()  # reports go nowhere, quickly
    assert time.monotonic() - t0 < 2
    led.close()


@pytest.mark.timeout(60)
def test_gpiozero_loads_the_factory_by_its_entry_point_name(bus: GpioBus) -> None:
    [ep] = [e for e in entry_points(group="gpiozero_pin_factories") if e.name == "tessera-sim"]
    assert ep.load() is SimFactory
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "tessera-sim", "TESSERA_DEVICE": "pi-2",
           "TESSERA_SIM_SOCKET": str(bus.path)}
    code = ("from gpiozero import LED, Device\n"
            "led = LED(4); led.on()\n"
            "print(type(Device.pin_factory).__name__, Device.pin_factory.device)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["SimFactory", "pi-2"]  # TESSERA_DEVICE said which Pi
    assert [e["state"] for e in bus.events  # type: ignore[attr-defined]
            if e["kind"] == "output" and e["device"] == "pi-2"] == [1]


@pytest.mark.timeout(30)
def test_concurrent_presses_on_one_pin_do_not_interleave(
        bus: GpioBus, factories: dict[str, SimFactory]) -> None:
    _, got = _input(factories["main"], 17)
    assert bus.wait_listening("main", 17, 5)
    threads = [threading.Thread(target=bus.press, args=("main", 17),
                                kwargs={"duration_s": 0.01}) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert until(lambda: len(got) == 8, 5)
    assert [s for _, s in got] == [0, 1] * 4
