"""`tessera run web` on its own Pi: fed by the engine's events over MQTT, asking the engine
through commands of its own device (web-<web.device>), against a mosquitto started with
exactly the files `tessera broker config` writes (no anonymous login, the generated ACL).
The hall display's stream shows a call made on the counter Pi's panel, a phone rates its
ticket through `rate-ticket`, a console action is refused for the wrong role and done for
the right one, and its console.action event reaches the broker; a ticket taken on the
phone (/join) is issued with channel remote; no ACL denial. Started
before the engine, it serves its pages and reports the engine unreachable."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from shape_support import SimBranch, bank_toml, free_port, until

from tessera.web.accounts import hash_password
from tessera.web.links import LinkSigner

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(180)]
PASSWORD = "correct horse battery"


def _display_numbers(url: str, want: str, timeout_s: float = 20.0) -> bool:
    """Whether /display/events (SSE) carries a state whose newest call is ``want``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with httpx.stream("GET", url + "/display/events", timeout=5) as r:
                for line in r.iter_lines():
                    if line.startswith("data: {") and '"calls"' in line:
                        calls = json.loads(line[6:])["calls"]
                        if calls and calls[0]["number"] == want:
                            return True
                    if time.monotonic() > deadline:
                        return False
        except httpx.HTTPError:
            time.sleep(0.2)
    return False


def test_web_role_on_its_own_pi(broker_base: Path, mosquitto: Any) -> None:
    port, web_port = free_port(), free_port()
    hashed = hash_password(PASSWORD, n=1024)
    toml = bank_toml(broker_base, port=port, lan=True).replace("enabled = false  ", f'''\
enabled = true
device = "tv"
port = {web_port}
heartbeat_s = 0.5
#''').replace('port = 8080\n', '').replace("join = false", "join = true") + f'''
[[web.accounts]]
name = "vera"
role = "viewer"
password_hash = "{hashed}"
[[web.accounts]]
name = "sam"
role = "supervisor"
password_hash = "{hashed}"
'''
    with SimBranch(broker_base, toml) as b:
        cfg = b.start_hardware()
        b.start_broker(mosquitto)
        assert "user web-tv" in (broker_base / "broker" / "acl").read_text()
        root = f"tessera/v1/{cfg.branch.tenant}/{cfg.branch.branch}"
        mon = b.monitor()
        try:
            # started before the engine: it serves, and says the engine does not answer
            b.start("web")
            url = f"http://127.0.0.1:{web_port}"
            assert f"web on {url}" in b.log("web")
            assert httpx.get(url + "/display").status_code == 200
            assert until(lambda: httpx.get(url + "/healthz").json()["engine"]
                         == "unreachable", 30), b.log("web")
            b.start("engine")
            b.start("kiosk")
            b.start("counter", "pi-a")
            assert mon.wait(lambda: mon.retained.get(f"{root}/web-tv/status", {})
                            .get("state") == "online"), b.log("web")
            assert until(lambda: httpx.get(url + "/healthz").json()["engine"] == "ok", 30)
            b.press("kiosk.cash")
            issued = mon.wait(lambda: mon.of_type("ticket.issued"))
            number, tid = issued[0]["data"]["number"], issued[0]["data"]["ticket_id"]
            assert mon.wait(lambda: mon.of_type("ticket.printed"))
            ref = LinkSigner.for_config(cfg).ref(tid)
            page = httpx.get(f"{url}/t/{ref}")
            assert page.status_code == 200, (page.text, b.log("web"))
            assert httpx.get(f"{url}/t/{tid}.AAAAAAAAAAAAAAAA").status_code == 404
            b.press("counter-c1.next")
            assert _display_numbers(url, number), b.log("web")
            b.press("counter-c1.done")
            r = httpx.post(f"{url}/t/{ref}/rate", data={"score": "3"})  # c1's scale: 3
            assert r.status_code == 200, (r.text, b.log("web"))
            rated = mon.wait(lambda: mon.of_type("feedback.rated"))
            assert rated[0]["data"] | {"at": None} == {
                "ticket_id": tid, "counter": "c1", "staff": "t-001", "service": "cash",
                "score": 3, "scale": 3, "status": "bound", "channel": "web", "at": None}
            r = httpx.post(f"{url}/t/{ref}/rate", data={"score": "2"})
            assert (r.status_code, r.json()["code"]) == (409, "already-rated")
            # the console, over MQTT: the viewer is refused by the web role, the supervisor
            # pauses counter 1 through the engine's pause command of device web-tv
            for name, want in (("vera", 403), ("sam", 200)):
                c = httpx.Client(base_url=url)
                assert c.post("/manage/login", data={"name": name, "password": PASSWORD}
                              ).status_code == 303
                csrf = c.get("/manage").text.split('name="csrf" content="')[1].split('"')[0]
                r = c.post("/manage/action", data={"action": "pause", "counter": "c1",
                                                   "csrf": csrf})
                assert r.status_code == want, (name, r.text)
            assert mon.wait(lambda: any(e["type"] == "counter.paused"
                                        for e in mon.events))
            acts = mon.wait(lambda: [e for e in mon.of_type("console.action")
                                     if e["data"]["action"] == "pause"])
            assert {(e["device"], e["data"]["account"], e["data"]["outcome"]) for e in acts
                    } == {("web-tv", "vera", "rejected"), ("web-tv", "sam", "done")}
            # a ticket taken on the phone: issue-ticket with channel remote, confirmed
            r = httpx.post(f"{url}/join", data={"service": "loans"})
            assert r.status_code == 303, (r.text, b.log("web"))
            remote = mon.wait(lambda: [e for e in mon.of_type("ticket.issued")
                                       if e["data"].get("channel") == "remote"])
            assert remote[0]["data"]["service"] == "loans"
            assert httpx.get(url + r.headers["location"]).status_code == 200
            assert "Denied" not in b.broker_log()
        finally:
            mon.stop()
