"""The shipped firmware, unmodified, on the simulated bus: ``tessera sim hardware`` and
``tessera run all`` as two processes, driven only through ``tessera sim`` commands."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from sim_helpers import Procs, tessera, until

from tessera.roles.kiosk import REFUSAL_LAMP_S

ROOT = Path(__file__).resolve().parents[2]
BANK = ROOT / "examples" / "bank.toml"


def _state(env: dict[str, str]) -> dict[str, Any]:
    r = tessera("sim", "state", env=env)
    assert r.returncode == 0, r.stderr
    state: dict[str, Any] = json.loads(r.stdout)
    return state


def _ok(*args: str, env: dict[str, str]) -> str:
    r = tessera("sim", *args, env=env)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout


@pytest.mark.timeout(120)
def test_press_to_ticket_board_voice_and_fault_lamp(procs: Procs, sim_env: dict[str, str],
                                                    tmp_path: Path) -> None:
    out = tmp_path / "out"
    hw = procs.start("sim", "hardware", "--config", str(BANK), "--out", str(out),
                     "--always-open", "--ready-file", str(tmp_path / "hw.ready"), env=sim_env,
                     log=tmp_path / "hw.log")
    procs.wait_file(hw, tmp_path / "hw.ready")
    config = out / "branch.toml"
    assert 'pin_factory = "tessera-sim"' in config.read_text(encoding="utf-8")
    fw = procs.start("run", "all", "--config", str(config), "--ready-file",
                     str(tmp_path / "fw.ready"), env=sim_env, log=tmp_path / "fw.log")
    procs.wait_file(fw, tmp_path / "fw.ready", 60)
    state = _state(sim_env)
    assert {d: len(s["connected"]) for d, s in state["devices"].items()} == {
        "main": 1, "sim-c3": 1, "sim-c4": 1, "sim-c5": 1, "sim-c6": 1}
    assert state["lamps"]["kiosk.ready"]["lit"]  # the printer answered at start-up

    # a customer takes a cash ticket: the printer emulator decodes A001
    assert "kiosk.cash (main pin 17): down" in _ok("press", "kiosk.cash", env=sim_env)
    ticket = out / "tickets" / "ticket-0001.json"
    assert until(ticket.exists, 15)
    assert "A001" in json.loads(ticket.read_text(encoding="utf-8"))["text"]

    # counter 1 calls it: hall board and the counter's own sign show it, a WAV is made
    _ok("press", "counter-c1.next", env=sim_env)
    signs = until(lambda: (s := _state(sim_env)["board"]["signs"]) and "A001" in s.get("01", "")
                  and "A001" in s.get("11", "") and s, 15)
    assert signs, _state(sim_env)["board"]
    assert until(lambda: any("A001" in w for w in _state(sim_env)["wavs"]), 15)

    # a scenario file: a loans ticket and a bouncy press on the counter's RECALL
    plan = tmp_path / "plan.jsonl"
    plan.write_text('{"at": 0, "press": "kiosk.loans"}\n'
                    '{"at": 0.2, "press": "counter-c1.recall", "bounce": 3}\n',
                    encoding="utf-8")
    assert "2 step(s)" in _ok("scenario", str(plan), env=sim_env)
    assert until(lambda: len(_state(sim_env)["tickets"]) == 2, 15)
    assert "C001" in _state(sim_env)["tickets"][1]["text"]

    # paper out: the next ticket is refused and the kiosk lights its fault lamp
    assert _ok("printer", "paper-out", env=sim_env).strip() == "printer: paper_out"
    _ok("press", "kiosk.accounts", env=sim_env)
    lamps = until(lambda: (lp := _state(sim_env)["lamps"])["kiosk.printer-fault"]["lit"]
                  and lp, 15)
    assert lamps, _state(sim_env)["lamps"]
    assert not lamps["kiosk.ready"]["lit"]
    assert len(_state(sim_env)["tickets"]) == 2  # nothing printed while out of paper
    # the refusal's flicker (issue 15) lasts REFUSAL_LAMP_S, then the lamp is steady on
    time.sleep(REFUSAL_LAMP_S + 1.0)
    assert _state(sim_env)["lamps"]["kiosk.printer-fault"]["lit"]

    assert procs.stop(fw) == 0
    assert procs.stop(hw) == 0
    log = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    fault = [e for e in log if e["kind"] == "lamp" and e["name"] == "kiosk.printer-fault"]
    assert [e["state"] for e in fault][-1] == 1 and fault[-1]["device"] == "main"
    assert fault[-1]["pin"] == 15 and fault[-1]["t"] <= fault[-1]["t_rx"]
    kinds = {e["kind"] for e in log}
    assert {"connect", "input", "lamp", "ticket", "board", "wav", "printer",
            "disconnect"} <= kinds
