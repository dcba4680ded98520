"""Control names, the derived config, scenario files and requests: what ``tessera sim``
accepts and the errors it gives (no processes here)."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

import tessera.sim.control
from tessera.config import load_config, parse_config
from tessera.demo.hardware import config_toml, derived_config, sim_wiring
from tessera.sim.control import BadRequest, check_request, load_scenario


def test_the_control_docstring_examples_run() -> None:
    assert doctest.testmod(tessera.sim.control).failed == 0


def test_bank_names(bank_config_path: Path, tmp_path: Path) -> None:
    cfg = derived_config(load_config(bank_config_path), out=tmp_path)
    w = sim_wiring(cfg)
    kiosk = [n for n in w.buttons if n.startswith("kiosk.")]
    # two buttons share "cash": the priority one is named by its class
    assert kiosk == ["kiosk.cash", "kiosk.accounts", "kiosk.loans", "kiosk.wealth",
                     "kiosk.cash-priority"]
    assert (w.buttons["kiosk.cash-priority"].device, w.buttons["kiosk.cash-priority"].pin) == \
        ("main", 24)
    assert w.button("counter-c1.no_show") == w.buttons["counter-c1.no-show"]
    assert w.buttons["counter-c1.rate-3"].pin == 16
    # c3 has no panel in bank.toml: the demo's simulated one, on its own simulated Pi
    assert w.buttons["counter-c3.next"].device == "sim-c3"
    assert set(w.devices) == {"main", "sim-c3", "sim-c4", "sim-c5", "sim-c6"}
    assert sorted(w.lamps)[:4] == ["counter-c3.rating-led", "counter-c4.rating-led",
                                   "counter-c5.rating-led", "counter-c6.rating-led"]
    assert {"kiosk.ready", "kiosk.printer-fault", "kiosk.printer-warning",
            "kiosk.closed"} <= set(w.lamps)
    assert w.button("sim-c3:5") == w.buttons["counter-c3.next"]
    assert w.button("main:9").pin == 9  # any pin of a known device


@pytest.mark.parametrize(("name", "says"), [
    ("kiosk.cassh", "kiosk has kiosk.cash, kiosk.accounts, kiosk.loans, kiosk.wealth, "
                    "kiosk.cash-priority"),
    ("counter-c1.nxt", "counter-c1 has counter-c1.next, counter-c1.recall"),
    ("counter-c9.next", "no 'counter-c9' here; valid groups: kiosk, counter-c1, counter-c2"),
    ("kiosk.ready", "(that is a lamp, an output)"),
    ("pi-9:5", "unknown device 'pi-9'; valid: main, sim-c3, sim-c4, sim-c5, sim-c6"),
    ("main:40", "pin must be a BCM GPIO number, 0-27"),
    ("main:4", "is the lamp kiosk.ready, an output"),
])
def test_unknown_names_list_the_valid_ones(bank_config_path: Path, tmp_path: Path, name: str,
                                           says: str) -> None:
    w = sim_wiring(derived_config(load_config(bank_config_path), out=tmp_path))
    with pytest.raises(BadRequest) as e:
        w.button(name)
    assert says in str(e.value)


@pytest.mark.parametrize(("req", "says"), [
    ({"op": "printer", "state": "jammed"},
     "unknown printer state 'jammed'; valid: ok, near-end, paper-out, cover-open, offline, "
     "silent, garbage"),
    ({"op": "board", "state": "off"}, "unknown board state 'off'; valid: ok, silent, power-cycle"),
    ({"op": "hold", "name": "kiosk.cash", "seconds": -1}, "seconds: -1 must be more than 0"),
    ({"op": "press", "name": "kiosk.cash", "bounce": 99}, "bounce: 99 must be a whole number"),
    ({"op": "press", "name": ""}, "give a button name"),
    ({"op": "reboot"}, "unknown request 'reboot'; valid: press, hold, printer, board, state"),
])
def test_bad_requests_say_what_is_valid(req: dict[str, object], says: str) -> None:
    with pytest.raises(BadRequest) as e:
        check_request(req)
    assert says in str(e.value)


def test_scenario_files_toml_and_json_lines(tmp_path: Path) -> None:
    toml = tmp_path / "day.toml"
    toml.write_text('[[step]]\nat = 0\npress = "kiosk.cash"\nbounce = 2\n'
                    '[[step]]\nat = 1.5\nhold = "counter-c1.next"\nseconds = 2.5\n'
                    '[[step]]\nat = 4\nprinter = "paper_out"\n', encoding="utf-8")
    jsonl = tmp_path / "day.jsonl"
    jsonl.write_text('# the same day\n{"at": 0, "press": "kiosk.cash", "bounce": 2}\n'
                     '{"at": 1.5, "hold": "counter-c1.next", "seconds": 2.5}\n\n'
                     '{"at": 4, "printer": "paper-out"}\n', encoding="utf-8")
    steps = load_scenario(toml)
    assert steps == load_scenario(jsonl)
    assert steps == [
        {"op": "press", "name": "kiosk.cash", "bounce": 2, "at": 0.0},
        {"op": "hold", "name": "counter-c1.next", "seconds": 2.5, "bounce": 0, "at": 1.5},
        {"op": "printer", "state": "paper-out", "at": 4.0},
    ]


def test_a_bad_scenario_reports_every_step_at_once(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"at": 2, "press": "kiosk.cash"}\n'
                   '{"at": 1, "press": "kiosk.cash"}\n'
                   '{"at": 3, "printer": "on-fire"}\n'
                   '{"at": 4, "press": "kiosk.cash", "hold": "kiosk.cash"}\n'
                   '{"at": 5, "press": "kiosk.cash", "colour": "red"}\n', encoding="utf-8")
    with pytest.raises(BadRequest) as e:
        load_scenario(bad)
    text = str(e.value)
    assert "step 2 (line 2): at = 1 comes before the step above (2)" in text
    assert "step 3 (line 3): unknown printer state 'on-fire'; valid: ok," in text
    assert "step 4 (line 4): give exactly one of press, hold, printer, board" in text
    assert "step 5 (line 5): unknown key 'colour'" in text
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"at": 0, "press": \n', encoding="utf-8")
    with pytest.raises(BadRequest, match=r"broken\.jsonl:1: not a JSON object"):
        load_scenario(broken)


def test_the_derived_config_reads_back_equal_from_anywhere(bank_config_path: Path,
                                                          tmp_path: Path) -> None:
    base = load_config(bank_config_path)
    out = tmp_path / "sim"
    cfg = derived_config(base, out=out, printer_url="/dev/pts/98", board_url="/dev/pts/99",
                         always_open=True)
    text = config_toml(cfg)
    elsewhere = parse_config(text, base_dir=tmp_path / "somewhere" / "else", roles=())
    assert elsewhere.path(elsewhere.storage.dir) == out.resolve()  # absolute: no base dir
    assert elsewhere.gpio.pin_factory == "tessera-sim"
    assert elsewhere.kiosk.printer.url == "/dev/pts/98" and elsewhere.board.url == "/dev/pts/99"
    assert elsewhere.voice.output == f"dir:{(out / 'wav').resolve()}"
    assert elsewhere.clock.trust == "always"
    assert elsewhere.mqtt.url == ""  # no broker unless the config has one
    assert all(s.hours == {} for s in elsewhere.services)  # --always-open
    assert elsewhere.gpio.debounce_ms == base.gpio.debounce_ms  # a person's presses
    kept = derived_config(base, out=out)
    assert kept.service("cash").hours == base.service("cash").hours
