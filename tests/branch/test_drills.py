"""Fault drills against the running processes of a shipped branch (simulated bus,
generated broker files): kills, printer and board faults, a broker outage, a stuck button
and button chatter. Driven only through `tessera sim ...`, MQTT and the stores.

``TESSERA_DRILL_KILLS`` sets how many kill rounds per role (CI: 2, the default);
``TESSERA_DRILL_STUCK_S`` how long the stuck button is held (CI: 60, the default).
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from shape_support import SimBranch, bank_toml, free_port, until

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

KILLS = int(os.environ.get("TESSERA_DRILL_KILLS", "2"))
STUCK_S = float(os.environ.get("TESSERA_DRILL_STUCK_S", "60"))


def _toml(base: Path, *, lan: bool, port: int) -> str:
    text = bank_toml(base, port=port, lan=lan)
    return text.replace("highlight_s = 10\n", "highlight_s = 10\nping_interval_s = 1\n", 1)


def _lan(b: SimBranch) -> None:
    b.start("engine")
    b.start("display")
    b.start("kiosk")
    b.start("counter", "pi-a")
    b.start("counter", "pi-b")


def _no_duplicate_or_gap(numbers: list[str]) -> None:
    counts = Counter(numbers)
    assert not [n for n, k in counts.items() if k > 1], counts
    by_prefix: dict[str, list[int]] = {}
    for n in numbers:
        by_prefix.setdefault(n[0], []).append(int(n[1:]))
    for prefix, seqs in by_prefix.items():
        assert sorted(seqs) == list(range(1, len(seqs) + 1)), (prefix, sorted(seqs))


@pytest.mark.timeout(400)
def test_sigkill_each_role_mid_day_and_restart(broker_base: Path, mosquitto: Any) -> None:
    """Each role SIGKILLed while the branch works, then restarted as systemd would: no
    ticket number duplicated or lost, every printed ticket known to the engine and not
    void, boards restored after the display's restart, every outbox drained."""
    with SimBranch(broker_base, _toml(broker_base, lan=True, port=free_port())) as b:
        cfg = b.start_hardware()
        b.start_broker(mosquitto)
        mon = b.monitor()  # before the first event
        _lan(b)
        try:
            for _round in range(KILLS):
                for victim in ("engine", "kiosk", "counter-pi-a", "display"):
                    printed = len(b.tickets())
                    b.press("kiosk.cash")
                    assert until(lambda p=printed: len(b.tickets()) > p), b.log("kiosk")  # type: ignore[misc]
                    b.press("counter-c1.next")
                    b.kill(victim)
                    role, _, device = victim.partition("-")
                    b.start(role, device or None)
                    b.press("counter-c1.done")
                    # the branch works again through the restarted role
                    printed = len(b.tickets())
                    b.press("kiosk.accounts")
                    more = until(lambda p=printed: len(b.tickets()) > p, 30)  # type: ignore[misc]
                    assert more, (victim, b.log("kiosk"))
                    b.press("counter-c1.next")
                    last = mon.wait(lambda: [e for e in mon.of_type("ticket.called")
                                             if e["data"].get("counter") == "c1"])
                    number = sorted(last, key=lambda e: e["seq"])[-1]["data"]["number"]
                    # the hall board shows the newest call, also after a display restart
                    assert until(lambda n=number: n in b.hall_text()), (victim, b.hall_text())  # type: ignore[misc]
                    b.press("counter-c1.done")
            numbers = b.numbers()
            _no_duplicate_or_gap(numbers)
            with b.db("engine") as c:
                state = dict(c.execute("SELECT number, state FROM tickets"))
            printed_numbers = [t["number"] for t in b.tickets() if t.get("number")]
            for n in printed_numbers:
                assert n in state and state[n] != "void", (n, state.get(n))
            for d in ("engine", "kiosk-main", "counter-pi-a", "display-main"):
                assert until(lambda d=d: b.pending(d) == 0, 30), d  # type: ignore[misc]
            # after dedupe by id the monitor saw every engine event, seq contiguous
            rows = _engine_rows(b)
            def seen() -> set[int]:
                return {e["seq"] for e in mon.events if e["device"] == "engine"}
            assert mon.wait(lambda: seen() == set(range(1, rows + 1)), 30), \
                sorted(set(range(1, rows + 1)) - seen())
        finally:
            mon.stop()
        assert cfg is not None


def _engine_rows(b: SimBranch) -> int:
    with b.db("engine") as c:
        (n,) = c.execute("SELECT max(seq) FROM outbox").fetchone()
        return int(n or 0)


@pytest.mark.timeout(240)
def test_printer_paper_out_and_cover_open_mid_job(broker_base: Path, mosquitto: Any) -> None:
    with SimBranch(broker_base, _toml(broker_base, lan=False, port=free_port())) as b:
        b.start_hardware()
        b.start_broker(mosquitto)
        b.start("all")
        mon = b.monitor()
        root = mon.root
        try:
            for fault, paper, cover in (("paper-out", "out", "closed"),
                                        ("cover-open", "unknown", "open")):
                printed = len(b.tickets())
                # the fault arrives while the job is under way (30 ms after the press)
                scenario = b.base / f"{fault}.jsonl"
                scenario.write_text(
                    json.dumps({"at": 0, "press": "kiosk.cash", "duration_ms": 60}) + "\n"
                    + json.dumps({"at": 0.03, "printer": fault}) + "\n", encoding="utf-8")
                b.sim("scenario", str(scenario))
                # the kiosk reads the printer's status before and after each ticket: the
                # next customer is refused, nothing prints, the fault lamp and the
                # retained state/printer say why
                until(lambda: False, 1.6)  # the repeat window of the button
                during = len(b.tickets())
                b.press("kiosk.cash")
                assert until(lambda: b.state()["lamps"]["kiosk.printer-fault"]["lit"]), \
                    b.state()["lamps"]
                assert mon.wait(lambda p=paper, c=cover: (  # type: ignore[misc]
                    mon.retained.get(f"{root}/kiosk-main/state/printer", {}).get("paper"),
                    mon.retained.get(f"{root}/kiosk-main/state/printer", {}).get("cover"))
                    == (p, c)), mon.retained.get(f"{root}/kiosk-main/state/printer")
                assert len(b.tickets()) == during
                b.sim("printer", "ok")
                assert until(lambda: not b.state()["lamps"]["kiosk.printer-fault"]["lit"])
                b.press("kiosk.cash")
                assert until(lambda d=during: len(b.tickets()) > d, 20), b.log("all")  # type: ignore[misc]
                assert len(b.tickets()) >= printed + 1
            _no_duplicate_or_gap(b.numbers())
            with b.db("engine") as c:
                state = dict(c.execute("SELECT number, state FROM tickets"))
            for t in b.tickets():  # every ticket a customer holds will be called
                assert state.get(t["number"]) not in (None, "void"), (t["number"], state)
            assert mon.wait(lambda: [e for e in mon.of_type("device.fault")
                                     if e["device"] == "kiosk-main"])
        finally:
            mon.stop()


@pytest.mark.timeout(240)
def test_board_silent_and_back(broker_base: Path, mosquitto: Any) -> None:
    with SimBranch(broker_base, _toml(broker_base, lan=True, port=free_port())) as b:
        b.start_hardware()
        b.start_broker(mosquitto)
        _lan(b)
        mon = b.monitor()
        try:
            b.press("kiosk.cash")
            b.press("counter-c1.next")
            called = mon.wait(lambda: mon.of_type("ticket.called"))
            first = called[0]["data"]["number"]
            assert until(lambda: first in b.hall_text())
            b.sim("board", "silent")
            assert mon.wait(lambda: [e for e in mon.of_type("device.fault")
                                     if e["device"] == "display-main"
                                     and e["data"]["kind"] == "board"], 30)
            b.press("counter-c1.done")
            b.press("kiosk.cash")
            b.press("counter-c1.next")
            second = mon.wait(lambda: [e["data"]["number"] for e in mon.of_type("ticket.called")
                                       if e["data"]["number"] != first])
            b.sim("board", "ok")
            assert mon.wait(lambda: [e for e in mon.of_type("device.recovered")
                                     if e["device"] == "display-main"], 60)
            # recovery re-sends the whole content: the call made while it was silent shows
            assert until(lambda: second[0] in b.hall_text(), 30), b.hall_text()
        finally:
            mon.stop()


@pytest.mark.timeout(240)
def test_broker_down_for_a_while(broker_base: Path, mosquitto: Any) -> None:
    """Single box: the branch keeps serving while its broker is down; afterwards every
    event reaches the (persistent-session) monitor and every outbox drains."""
    with SimBranch(broker_base, _toml(broker_base, lan=False, port=free_port())) as b:
        b.start_hardware()
        broker = b.start_broker(mosquitto)
        b.start("all")
        mon = b.monitor()
        try:
            b.press("kiosk.cash")
            assert mon.wait(lambda: mon.of_type("ticket.issued"))
            broker.stop()
            for _ in range(3):
                printed = len(b.tickets())
                b.press("kiosk.cash")
                assert until(lambda p=printed: len(b.tickets()) > p), "no ticket, broker down"  # type: ignore[misc]
                b.press("counter-c1.next")
                b.press("counter-c1.done")
            broker.start()
            for d in ("engine", "kiosk-main"):
                assert until(lambda d=d: b.pending(d) == 0, 60), d  # type: ignore[misc]
            want = _engine_rows(b)
            assert mon.wait(lambda: len({e["seq"] for e in mon.events
                                         if e["device"] == "engine"}) >= want, 60), want
            _no_duplicate_or_gap(b.numbers())
        finally:
            mon.stop()


@pytest.mark.timeout(300)
def test_a_button_stuck_for_a_minute(broker_base: Path, mosquitto: Any) -> None:
    """One ticket for the press, a gpio fault while it stays down, recovery on release;
    the kiosk's other buttons keep working meanwhile."""
    with SimBranch(broker_base, _toml(broker_base, lan=False, port=free_port())) as b:
        cfg = b.start_hardware()
        b.start_broker(mosquitto)
        b.start("all")
        mon = b.monitor()
        try:
            holder = threading.Thread(target=b.sim, args=("hold", "kiosk.cash", f"{STUCK_S}"))
            holder.start()
            stuck_after = cfg.gpio.stuck_ms / 1000
            if stuck_after < STUCK_S:
                assert mon.wait(lambda: [e for e in mon.of_type("device.fault")
                                         if e["data"]["kind"] == "gpio"], stuck_after + 20)
            b.press("kiosk.accounts")
            assert until(lambda: any(t["number"].startswith("B") for t in b.tickets()), 20)
            holder.join(STUCK_S + 30)
            assert not holder.is_alive()
            if stuck_after < STUCK_S:
                assert mon.wait(lambda: [e for e in mon.of_type("device.recovered")
                                         if e["data"]["kind"] == "gpio"], 20)
            cash = [t for t in b.tickets() if t["number"].startswith("A")]
            assert len(cash) == 1, cash  # the held button issued one ticket, not one a repeat
        finally:
            mon.stop()


@pytest.mark.timeout(240)
def test_ten_presses_a_second_for_ten_seconds(broker_base: Path, mosquitto: Any) -> None:
    """A child drums on one kiosk button: one ticket per repeat window, not 100."""
    with SimBranch(broker_base, _toml(broker_base, lan=False, port=free_port())) as b:
        cfg = b.start_hardware()
        b.start_broker(mosquitto)
        b.start("all")
        steps = [json.dumps({"at": round(i * 0.1, 3), "press": "kiosk.cash", "duration_ms": 40})
                 for i in range(100)]
        scenario = b.base / "drum.jsonl"
        scenario.write_text("\n".join(steps) + "\n", encoding="utf-8")
        b.sim("scenario", str(scenario))
        window_s = cfg.gpio.repeat_ms / 1000
        want = int(9.9 // window_s) + 1  # presses at 0.0 … 9.9 s, one per window
        assert until(lambda: len(b.tickets()) >= want - 1, 30)
        until(lambda: False, 2)  # let the last ones print
        got = len(b.tickets())
        assert want - 1 <= got <= want + 1, (got, want)
        _no_duplicate_or_gap(b.numbers())
