"""Every deployment shape as it ships, driven from outside over the simulated GPIO bus.

Single box (`tessera run all`), branch LAN (engine, kiosk, two counter Pis and a display as
separate `tessera run` processes) and a branch bridged to a second mosquitto acting as HQ.
The branch broker is mosquitto with exactly the files `tessera broker config` writes,
started as Debian starts it (no `user root`, no anonymous login, no edited ACL): a kiosk
press on the bus prints a ticket the emulator decodes; NEXT shows it on the board and
writes the WAV; DONE + a rating give a `feedback.rated` event for that ticket at the
branch broker (and at HQ); retained `state/*` reflect it; the broker log has no "Denied".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from shape_support import Monitor, SimBranch, bank_toml, free_port, until

pytestmark = [pytest.mark.mqtt, pytest.mark.slow, pytest.mark.timeout(240)]


def _hq_section(port: int) -> str:
    return (f'\n[mqtt.hq]\nurl = "mqtt://127.0.0.1:{port}"\nrestart_min_s = 1\n'
            'restart_max_s = 2\nkeepalive_s = 5\n')


@pytest.mark.parametrize("shape", ["single-box", "branch-lan", "hq-bridge"])
def test_a_customer_day_in_every_shape(shape: str, broker_base: Path, mosquitto: Any) -> None:
    port = free_port()
    hq = mosquitto(persistence=True) if shape == "hq-bridge" else None
    toml = bank_toml(broker_base, port=port, lan=shape == "branch-lan",
                     hq=_hq_section(hq.port) if hq is not None else "")
    with SimBranch(broker_base, toml) as b:
        cfg = b.start_hardware()
        b.start_broker(mosquitto)
        root = f"tessera/v1/{cfg.branch.tenant}/{cfg.branch.branch}"
        mon = b.monitor()
        at_hq = Monitor(hq.host, hq.port, root) if hq is not None else None
        try:
            if shape == "branch-lan":
                b.start("engine")
                b.start("display")
                b.start("kiosk")
                b.start("counter", "pi-a")
                b.start("counter", "pi-b")
                devices = ["engine", "kiosk-main", "counter-pi-a", "counter-pi-b",
                           "display-main"]
            else:
                b.start("all")
                devices = ["engine", "kiosk-main", "display-main"]
            for d in devices:
                assert mon.wait(lambda d=d: mon.retained.get(f"{root}/{d}/status", {})  # type: ignore[misc]
                                .get("state") == "online"), (d, mon.retained.keys())

            b.press("kiosk.cash")
            tickets = until(b.tickets)
            assert tickets, b.log("all") or b.log("kiosk")
            issued = mon.wait(lambda: mon.of_type("ticket.issued"))
            number = issued[0]["data"]["number"]
            assert number in " ".join(tickets[0]["text"]), tickets[0]

            b.press("counter-c1.next")
            assert until(lambda: number in b.hall_text()), b.hall_text()
            assert until(lambda: b.state()["wavs"]), "no announcement WAV"
            b.press("counter-c1.done")
            b.press("counter-c1.rate-3")
            rated = mon.wait(lambda: mon.of_type("feedback.rated"))
            assert rated[0]["data"]["ticket_id"] == issued[0]["data"]["ticket_id"], rated
            assert rated[0]["data"]["status"] == "bound" and rated[0]["data"]["counter"] == "c1"

            # retained state as docs/mqtt.md promises
            assert mon.wait(lambda: mon.retained.get(f"{root}/engine/state/counter-c1", {})
                            .get("state") == "open")
            assert mon.wait(lambda: f"{root}/engine/state/queue-cash" in mon.retained)
            # live wait estimates (issue 19): retained per service; the ticket, called, left
            wait_cash = f"{root}/engine/state/wait-cash"
            assert mon.wait(lambda: isinstance(mon.retained.get(wait_cash), dict) and all(
                t["number"] != number for t in mon.retained[wait_cash]["tickets"])), \
                mon.retained.get(wait_cash)
            assert mon.wait(lambda: mon.retained.get(f"{root}/kiosk-main/state/printer", {})
                            .get("paper") == "ok")
            assert mon.wait(lambda: number in str(
                mon.retained.get(f"{root}/display-main/state/board", "")))

            if at_hq is not None:
                assert at_hq.wait(lambda: at_hq.of_type("feedback.rated"), 30), "not at HQ"
                assert at_hq.wait(lambda: at_hq.retained.get(f"{root}/broker/state/hq") == 1)
            # every device drained its outbox
            for d in devices:
                assert until(lambda d=d: b.pending(d) == 0), d  # type: ignore[misc]
        finally:
            mon.stop()
            if at_hq is not None:
                at_hq.stop()
        log = b.broker_log()
        assert "Denied" not in log, [ln for ln in log.splitlines() if "Denied" in ln][:5]
