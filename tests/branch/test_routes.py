"""Visit routes (issue 15): the clinic's reception → nurse → doctor, driven through the
kiosk button and the counter panels' NEXT/DONE on mock pins; the route on the ticket."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from tessera.config import load_config, parse_config
from tessera.demo.rig import sim_rig
from tessera.errors import ConfigError


@pytest.mark.timeout(180)
def test_a_clinic_ticket_follows_its_route_through_the_counter_panels(
        tmp_path: Path, clinic_config_path: Path) -> None:
    base = load_config(clinic_config_path)
    base = msgspec.structs.replace(base, ticket=msgspec.structs.replace(
        base.ticket, extra_line="{route}"))
    with sim_rig(base, tmp_path, voice=False) as rig:
        engine = rig.branch.engine
        rig.clock.advance(3600)  # 09:00: every room is open
        desk = rig.cfg.counter("desk")
        assert desk.panel is not None
        button = rig.cfg.kiosk.buttons[0]
        assert button.service == "reception" and button.priority is None
        assert rig.press(rig.cfg.kiosk.device, button.pin)
        assert rig.printer.wait_tickets(1)
        kiosk = rig.branch.kiosk
        assert kiosk is not None
        assert kiosk.last is not None and kiosk.last.ok, kiosk.last
        ticket = kiosk.last.ticket
        assert ticket is not None and ticket.route == ("nurse", "doctor")
        assert "Reception > Nurse / Bloods > Doctor" in rig.printer.tickets[0].record["text"], \
            repr(rig.printer.tickets[0].record["text"])

        def next_done(counter: str) -> None:
            c = rig.cfg.counter(counter)
            assert c.panel is not None and c.panel.next is not None and c.panel.done is not None
            assert rig.press(c.device, c.panel.next)
            assert rig.branch.bus.drain(10.0)
            assert rig.press(c.device, c.panel.done)
            assert rig.branch.bus.drain(10.0)

        for counter in ("desk", "room-2", "room-4"):  # reception, a nurse, a doctor
            if counter != "desk":
                engine.open_counter(counter)
            next_done(counter)
        done = [e["data"] for e in engine.events_since(0) if e["type"] == "ticket.done"]
        assert [(d["number"], d["service"], d["next_service"]) for d in done] == [
            (ticket.number, "reception", "nurse"), (ticket.number, "nurse", "doctor"),
            (ticket.number, "doctor", None)]
        assert engine.get_ticket(ticket.id).state == "done"
        visits = engine.conn.execute("SELECT service, outcome FROM visits WHERE ticket_id = ? "
                                     "ORDER BY n", (ticket.id,)).fetchall()
        assert visits == [("reception", "routed"), ("nurse", "routed"), ("doctor", "done")]


CLINIC = """
[branch]
tenant = "t"
branch = "b"

[[services]]
id = "reception"
prefix = "R"
names = {{ en = "Reception" }}
{reception}

[[services]]
id = "nurse"
prefix = "N"
names = {{ en = "Nurse" }}
{nurse}
"""


@pytest.mark.parametrize(("reception", "nurse", "error"), [
    ('then = "bloods"', "", "services[0].then: unknown service 'bloods'; known: nurse, "
     "reception"),
    ('then = "reception"', "", "services[0].then: 'reception' cannot be followed by itself"),
    ('then = "nurse"', 'then = "reception"', "services[0].then: the route makes a cycle "
     "(reception > nurse > reception)"),
])
def test_a_route_names_an_existing_service_and_ends(reception: str, nurse: str,
                                                    error: str) -> None:
    with pytest.raises(ConfigError) as ei:
        parse_config(CLINIC.format(reception=reception, nurse=nurse))
    assert any(e.startswith(error) for e in ei.value.errors), ei.value.errors


def test_the_route_comes_from_the_config_at_issue_and_check_in(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from tessera.clock import VirtualClock
    from tessera.engine import Engine, always_trusted

    cfg = parse_config(CLINIC.format(reception='then = "nurse"', nurse=""), base_dir=tmp_path)
    clock = VirtualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    engine = Engine.open(cfg, clock, tmp_path / "e.db", trust=always_trusted)
    try:
        assert engine.issue("reception").route == ("nurse",)
        assert engine.issue("nurse").route == ()
        assert engine.issue("reception", route=()).route == ()  # explicitly none
        engine.book("K1", "reception", clock.now() + timedelta(minutes=5))
        assert engine.check_in("K1").route == ("nurse",)
    finally:
        engine.close()


def test_a_transfer_to_a_later_step_of_the_route_skips_the_steps_before(
        tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from tessera.clock import VirtualClock
    from tessera.engine import Engine, always_trusted

    text = CLINIC.format(reception='then = "nurse"', nurse='then = "doctor"') + """
[[services]]
id = "doctor"
prefix = "D"
names = { en = "Doctor" }

[[counters]]
id = "desk"
number = 1
services = [{ service = "reception" }]

[[counters]]
id = "room"
number = 2
services = [{ service = "doctor" }, { service = "nurse" }]
"""
    cfg = parse_config(text, base_dir=tmp_path)
    engine = Engine.open(cfg, VirtualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),
                         tmp_path / "e.db", trust=always_trusted)
    try:
        engine.open_counter("desk")
        engine.open_counter("room")
        for target, after in (("doctor", ()), ("nurse", ("doctor",))):
            t = engine.issue("reception")
            engine.confirm_printed(t.id)
            engine.call_next("desk")
            moved = engine.transfer("desk", target)
            assert (moved.service, moved.route) == (target, after)
            engine.call_next("room")
            assert engine.done("room").state == ("done" if not after else "waiting")
            if after:
                engine.call_next("room")
                assert engine.done("room").state == "done"
    finally:
        engine.close()


@pytest.mark.timeout(300)
def test_the_clinic_demo_is_a_plausible_day(tmp_path: Path, clinic_config_path: Path) -> None:
    """Before routes and staffing (issue 15) reception waited 110-117 min on average while
    the nurse and doctor rooms saw a handful of patients."""
    import sqlite3
    import statistics

    from tessera.demo.runner import DemoOptions, run_demo

    summary = run_demo(DemoOptions(config=clinic_config_path, out=tmp_path, speed=None,
                                   voice=False, save_tickets=False, plain=True))
    assert summary["duplicate_numbers"] == 0 and summary["lost_presses"] == 0
    conn = sqlite3.connect(f"file:{tmp_path / 'engine.db'}?mode=ro", uri=True)
    try:
        waits: dict[str, list[float]] = {}
        served: dict[str, int] = {}
        routed: dict[str, int] = {}
        for service, wait, outcome in conn.execute(
                "SELECT service, called_at - queued_at, outcome FROM visits"):
            if wait is not None:
                waits.setdefault(service, []).append(wait)
            served[service] = served.get(service, 0) + (outcome in ("done", "routed"))
            routed[service] = routed.get(service, 0) + (outcome == "routed")
        left = conn.execute("SELECT COUNT(*) FROM tickets WHERE state = 'waiting'").fetchone()
    finally:
        conn.close()
    mean_min = {s: statistics.fmean(w) / 60 for s, w in waits.items()}
    assert mean_min["reception"] < 20, mean_min
    assert max(mean_min.values()) < 45, mean_min
    # every patient seen at reception goes on to the nurse, then to the doctor
    assert routed["reception"] >= 0.9 * served["reception"]
    assert served["nurse"] >= 0.85 * routed["reception"], (served, routed)
    assert served["doctor"] >= 0.9 * routed["nurse"], (served, routed)
    assert left == (0,)
