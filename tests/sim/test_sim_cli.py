"""``tessera sim`` control commands as processes: bad input names what is valid (exit 2),
no simulator is a clear message (exit 1, bounded), and the emulator commands without a
STATE still start an emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sim_helpers import Procs, tessera

from tessera.config import load_config
from tessera.demo.hardware import config_toml, derived_config

ROOT = Path(__file__).resolve().parents[2]
BANK = ROOT / "examples" / "bank.toml"


@pytest.fixture
def hardware(procs: Procs, sim_env: dict[str, str], tmp_path: Path) -> Iterator[Path]:
    """A running ``tessera sim hardware`` on bank.toml (no firmware); yields its --out."""
    out = tmp_path / "out"
    ready = tmp_path / "hw.ready"
    proc = procs.start("sim", "hardware", "--config", str(BANK), "--out", str(out),
                       "--ready-file", str(ready), env=sim_env, log=tmp_path / "hw.log")
    procs.wait_file(proc, ready)
    yield out
    assert procs.stop(proc) == 0


@pytest.mark.timeout(90)
def test_bad_control_input_names_the_valid_ones(hardware: Path, sim_env: dict[str, str],
                                                tmp_path: Path) -> None:
    cases = [
        (("press", "kiosk.cassh"), "kiosk has kiosk.cash, kiosk.accounts, kiosk.loans, "
                                   "kiosk.wealth, kiosk.cash-priority"),
        (("press", "counter-c9.next"), "valid groups: kiosk, counter-c1, counter-c2, "
                                       "counter-c3"),
        (("hold", "pi-9:5", "1"), "unknown device 'pi-9'; valid: main, sim-c3, sim-c4"),
        (("printer", "jammed"), "valid: ok, near-end, paper-out, cover-open, offline, silent"),
        (("board", "off"), "unknown board state 'off'; valid: ok, silent, power-cycle"),
        (("hold", "counter-c1.next", "0"), "seconds: 0 must be more than 0"),
    ]
    for args, says in cases:
        r = tessera("sim", *args, env=sim_env)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert says in r.stderr, (args, r.stderr)
    # a scenario naming an unknown button is refused before any step runs
    plan = tmp_path / "plan.jsonl"
    plan.write_text('{"at": 0, "printer": "paper-out"}\n{"at": 0.1, "press": "kiosk.nope"}\n',
                    encoding="utf-8")
    r = tessera("sim", "scenario", str(plan), env=sim_env)
    assert r.returncode == 2 and "step 2: unknown button 'kiosk.nope'" in r.stderr, r.stderr
    state = json.loads(tessera("sim", "state", env=sim_env).stdout)
    assert state["printer"]["state"] == "online"  # untouched
    # nothing listens yet: the press happens, but says it went nowhere
    r = tessera("sim", "press", "kiosk.cash", "--duration-ms", "20", env=sim_env)
    assert r.returncode == 1 and "no firmware has that pin open" in r.stderr, r.stderr
    r = tessera("sim", "board", "silent", env=sim_env)
    assert r.returncode == 0 and r.stdout.strip() == "board: silent"
    state = json.loads(tessera("sim", "state", env=sim_env).stdout)
    assert state["board"]["answers"] is False
    assert state["devices"]["main"]["buttons"]["kiosk.cash"] == {"pin": 17, "level": 0,
                                                                 "listening": False}
    assert state["config"] == str(hardware / "branch.toml")
    log = [json.loads(line) for line in (hardware / "events.jsonl").read_text().splitlines()]
    assert [e["level"] for e in log if e["kind"] == "input"] == [0, None]
    assert [(e["kind"], e.get("state")) for e in log if e["kind"] == "board-line"] == \
        [("board-line", "silent")]


@pytest.mark.timeout(60)
def test_a_second_simulator_on_the_same_socket_is_refused(hardware: Path,
                                                          sim_env: dict[str, str],
                                                          tmp_path: Path) -> None:
    r = tessera("sim", "hardware", "--config", str(BANK), "--out", str(tmp_path / "two"),
                "--duration", "1", env=sim_env)
    assert r.returncode == 1 and "another simulator is already running" in r.stderr, r.stderr


@pytest.mark.timeout(90)
def test_without_a_simulator_every_command_says_so_and_exits(
        sim_env: dict[str, str], tmp_path: Path, bank_config_path: Path) -> None:
    message = "the GPIO simulator is not running: nothing answers on "
    for args in (("press", "kiosk.cash"), ("state",), ("printer", "ok")):
        r = tessera("sim", *args, env=sim_env, timeout_s=20)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert message + sim_env["TESSERA_SIM_SOCKET"] in r.stderr
        assert "tessera sim hardware --config FILE" in r.stderr
    # the firmware on the simulated bus without a simulator: a message, not a hang
    cfg = derived_config(load_config(bank_config_path), out=tmp_path / "fw",
                         printer_url="/dev/null", board_url="")
    on_config = tmp_path / "sim.toml"
    on_config.write_text(config_toml(cfg), encoding="utf-8")
    plain = tmp_path / "plain.toml"
    plain.write_text(config_toml(cfg).replace('pin_factory = "tessera-sim"', 'pin_factory = ""'),
                     encoding="utf-8")
    for config, extra in ((on_config, {}), (plain, {"GPIOZERO_PIN_FACTORY": "tessera-sim"})):
        r = tessera("run", "all", "--config", str(config), env={**sim_env, **extra},
                    timeout_s=30)
        assert r.returncode == 1, (config, r.stdout, r.stderr)
        assert "tessera run: " + message in r.stderr, r.stdout + r.stderr
        assert "Traceback" not in r.stdout + r.stderr


@pytest.mark.timeout(60)
def test_emulators_without_a_state_start_as_before(sim_env: dict[str, str],
                                                   tmp_path: Path) -> None:
    r = tessera("sim", "printer", "--out", str(tmp_path / "t"), "--duration", "0.3",
                env=sim_env)
    assert r.returncode == 0 and r.stdout.startswith("/dev/pts/"), r.stdout + r.stderr
    r = tessera("sim", "board", "--duration", "0.3", env=sim_env)
    assert r.returncode == 0 and r.stdout.startswith("/dev/pts/"), r.stdout + r.stderr
