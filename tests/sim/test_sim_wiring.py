"""``tessera.wiring`` on the simulated bus: the assembly ``tessera run`` uses opens one
``tessera-sim`` factory per device (by config or by ``GPIOZERO_PIN_FACTORY``), each
joining the bus as that device; ``sim=True`` stays on gpiozero's MockFactory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from gpiozero.pins.mock import MockFactory
from sim_helpers import until

from tessera.clock import SystemClock
from tessera.config import BranchConfig, load_config
from tessera.demo.hardware import derived_config, sim_wiring
from tessera.sim.gpio import SimFactory
from tessera.sim.hardware import SimHardware
from tessera.wiring import build_branch

DEVICES = ["main", "sim-c3", "sim-c4", "sim-c5", "sim-c6"]


@pytest.fixture
def hardware(bank_config_path: Path, tmp_path: Path,
             sock_dir: Path) -> Iterator[tuple[SimHardware, BranchConfig]]:
    base = load_config(bank_config_path)
    out = tmp_path / "sim"
    with SimHardware(sim_wiring(derived_config(base, out=out)), out,
                     socket_path=sock_dir / "bus.sock") as hw:
        cfg = derived_config(base, out=out, printer_url=hw.printer.path,
                             board_url=hw.board.path, always_open=True)
        rep = msgspec.structs.replace
        yield hw, rep(cfg, voice=rep(cfg.voice, enabled=False), kiosk=rep(cfg.kiosk, checkin=""))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["config", "env"])
def test_one_sim_factory_per_device(hardware: tuple[SimHardware, BranchConfig], how: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    hw, cfg = hardware
    monkeypatch.setenv("TESSERA_SIM_SOCKET", str(hw.bus.path))
    monkeypatch.setenv("TESSERA_DEVICE", "elsewhere")  # the wiring names each device itself
    if how == "env":
        monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "tessera-sim")
        cfg = msgspec.structs.replace(cfg, gpio=msgspec.structs.replace(cfg.gpio,
                                                                         pin_factory=""))
    branch = build_branch(cfg, SystemClock(), roles=("all",))
    try:
        assert sorted(branch.factories) == DEVICES
        assert all(isinstance(f, SimFactory) and f.device == d
                   for d, f in branch.factories.items())
        assert {d: len(pids) for d, pids in hw.bus.connected().items()} == dict.fromkeys(
            DEVICES, 1)
        handled = branch.router.handled
        reply = hw.handle({"op": "press", "name": "counter-c3.next", "duration_ms": 40})
        assert reply["ok"] and reply["listening"] and reply["device"] == "sim-c3"
        assert branch.router.wait_for(handled + 1, 10)
        lit = until(lambda: hw.state()["lamps"]["kiosk.ready"]["lit"], 5)
        assert lit  # the kiosk's printer answered: its ready lamp is on, on the bus
    finally:
        branch.close()
    assert until(lambda: not hw.bus.connected(), 5)  # every factory closed with the branch


@pytest.mark.timeout(60)
def test_sim_true_stays_on_mock_pins(hardware: tuple[SimHardware, BranchConfig]) -> None:
    hw, cfg = hardware
    branch = build_branch(cfg, SystemClock(), roles=("all",), sim=True)
    try:
        assert sorted(branch.factories) == DEVICES
        assert all(type(f) is MockFactory for f in branch.factories.values())
        assert hw.bus.connected() == {}
    finally:
        branch.close()
