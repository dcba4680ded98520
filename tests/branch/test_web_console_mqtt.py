"""The console on its own Pi (issue 20): `tessera run web` against a mosquitto started with
exactly the files `tessera broker config` writes. Its "devices offline" alert follows
every device's retained `{device}/status` (a counter Pi not started is offline, then
online once it runs); reprint (printed by the kiosk process), undo of a no-show for the
counter the supervisor names, and a bookings upload split into `load-appointments`
batches all go through the web device's own commands; no ACL denial."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from shape_support import SimBranch, bank_toml, free_port, until

from tessera.identity import device_id
from tessera.web.accounts import hash_password

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(240)]
PASSWORD = "correct horse battery"


def _console_state(c: httpx.Client, want: Callable[[dict[str, Any]], bool],
                   timeout_s: float = 40.0) -> dict[str, Any] | None:
    """The first console state on /manage/events that ``want`` accepts."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with c.stream("GET", "/manage/events", timeout=5) as r:
                for line in r.iter_lines():
                    if line.startswith("data: {") and '"counters"' in line:
                        state: dict[str, Any] = json.loads(line[6:])
                        if want(state):
                            return state
                    if time.monotonic() > deadline:
                        return None
        except httpx.HTTPError:
            time.sleep(0.2)
    return None


def _offline(state: dict[str, Any]) -> set[str]:
    return {str(a["device"]) for a in state["alerts"] if a["kind"] == "offline"}


def _login(url: str, name: str) -> tuple[httpx.Client, str]:
    c = httpx.Client(base_url=url, timeout=30)
    assert c.post("/manage/login", data={"name": name, "password": PASSWORD}
                  ).status_code == 303
    return c, c.get("/manage").text.split('name="csrf" content="')[1].split('"')[0]


def test_console_over_mqtt_presence_and_the_new_actions(broker_base: Path,
                                                        mosquitto: Any) -> None:
    port, web_port = free_port(), free_port()
    hashed = hash_password(PASSWORD, n=1024)
    toml = bank_toml(broker_base, port=port, lan=True).replace("enabled = false  ", f'''\
enabled = true
device = "tv"
port = {web_port}
heartbeat_s = 0.5
#''').replace('port = 8080\n', '') + f'''
[[web.accounts]]
name = "sam"
role = "supervisor"
password_hash = "{hashed}"
[[web.accounts]]
name = "mia"
role = "manager"
password_hash = "{hashed}"
'''
    with SimBranch(broker_base, toml) as b:
        cfg = b.start_hardware()
        b.start_broker(mosquitto)
        root = f"tessera/v1/{cfg.branch.tenant}/{cfg.branch.branch}"
        assert f"topic read {root}/+/status" in (broker_base / "broker" / "acl").read_text()
        mon = b.monitor()
        try:
            b.start("engine")
            b.start("kiosk")
            b.start("web")
            url = f"http://127.0.0.1:{web_port}"
            assert until(lambda: httpx.get(url + "/healthz").json()["engine"] == "ok", 30)
            sam, sam_csrf = _login(url, "sam")
            # counter Pi pi-a is not running: offline once the grace after the first
            # status has passed; the engine, kiosk and web device are online
            state = _console_state(sam, lambda s: "counter-pi-a" in _offline(s))
            assert state is not None, b.log("web")
            online = {device_id(cfg, "engine"), device_id(cfg, "kiosk"), "web-tv"}
            assert not online & _offline(state), state["alerts"]
            b.start("counter", "pi-a")
            assert _console_state(sam, lambda s: "counter-pi-a" not in _offline(s)), \
                b.log("web")
            # a ticket at c1, reprinted from the console: printed by the kiosk process
            b.press("kiosk.cash")
            issued = mon.wait(lambda: mon.of_type("ticket.issued"))
            number, tid = issued[0]["data"]["number"], issued[0]["data"]["ticket_id"]
            assert mon.wait(lambda: mon.of_type("ticket.printed"))
            printed = len(b.tickets())
            b.press("counter-c1.next")
            assert mon.wait(lambda: mon.of_type("ticket.called"))
            r = sam.post("/manage/action", data={"action": "reprint", "ticket": number,
                                                 "csrf": sam_csrf})
            assert r.status_code == 200, (r.text, b.log("web"))
            assert mon.wait(lambda: mon.of_type("ticket.reprinted"))[0]["data"][
                "ticket_id"] == tid
            assert until(lambda: len(b.tickets()) == printed + 1, 30), b.log("kiosk")
            # a no-show undone from the console, for counter c1
            b.press("counter-c1.no-show")
            assert mon.wait(lambda: mon.of_type("ticket.no_show"))
            r = sam.post("/manage/action", data={"action": "undo-no-show", "ticket": number,
                                                 "counter": "c1", "csrf": sam_csrf})
            assert r.status_code == 200, (r.text, b.log("web"))
            r = sam.post("/manage/action", data={"action": "undo-no-show", "ticket": number,
                                                 "counter": "c1", "csrf": sam_csrf})
            assert (r.status_code, r.json()["code"]) == (409, "bad-state"), r.text
            # bookings: a bad file refused line by line, then 150 loaded in batches
            mia, mia_csrf = _login(url, "mia")
            day = (datetime.now(cfg.tz).date() + timedelta(days=1)).isoformat()
            r = mia.post("/manage/action", data={
                "action": "appointments", "file": "bad.csv", "csrf": mia_csrf,
                "csv": f"K1,nosuch,{day}T09:00\nK2,cash,later\n"})
            assert (r.status_code, r.json()["code"]) == (422, "bad-bookings"), r.text
            assert [m.split(": field ")[0] for m in r.json()["errors"]] == [
                "bad.csv:1", "bad.csv:2"]
            lines = "".join(f"B{i:03d},cash,{day}T{9 + i // 60:02d}:{i % 60:02d}\n"
                            for i in range(150))
            r = mia.post("/manage/action", data={"action": "appointments", "file": "d.csv",
                                                 "csv": lines, "csrf": mia_csrf})
            assert r.status_code == 200, (r.text, b.log("web"))
            assert r.json()["result"]["added"] == 150 and r.json()["batches"] > 1
            with b.db("engine") as db:
                assert db.execute("SELECT count(*) FROM bookings").fetchone() == (150,)
            def acts() -> list[dict[str, Any]]:
                return [e for e in mon.of_type("console.action")
                        if e["data"]["action"] != "login"]

            assert mon.wait(lambda: len(acts()) >= 5)
            assert [(e["device"], e["data"]["account"], e["data"]["action"],
                     e["data"]["code"]) for e in acts()] == [
                ("web-tv", "sam", "reprint", "ok"), ("web-tv", "sam", "undo-no-show", "ok"),
                ("web-tv", "sam", "undo-no-show", "bad-state"),
                ("web-tv", "mia", "appointments", "bad-bookings"),
                ("web-tv", "mia", "appointments", "ok")]
            # a device that stops cleanly is offline at once
            b.stop("counter-pi-a")
            assert _console_state(sam, lambda s: "counter-pi-a" in _offline(s)), \
                b.log("web")
            assert "Denied" not in b.broker_log()
        finally:
            mon.stop()
