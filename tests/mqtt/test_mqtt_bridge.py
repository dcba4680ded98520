"""Branch → HQ bridge with the generated config: HQ outage loses nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from mqtt_support import (
    BRANCH,
    TENANT,
    assert_complete,
    branch_broker_config,
    fill,
    settings,
    start_generated,
)

from tessera.clock import SystemClock
from tessera.mqtt.credentials import load_credentials
from tessera.mqtt.link import DeviceLink
from tessera.outbox import Outbox

pytestmark = [pytest.mark.mqtt, pytest.mark.slow, pytest.mark.timeout(90)]


def test_events_generated_while_hq_is_down_all_reach_hq(
        mosquitto: Any, collector: Any, tmp_path: Path, broker_base: Path) -> None:
    hq = mosquitto(persistence=True)
    cfg = branch_broker_config(broker_base, hq=(
        f'\n[mqtt.hq]\nurl = "mqtt://127.0.0.1:{hq.port}"\nrestart_min_s = 1\n'
        'restart_max_s = 2\nkeepalive_s = 5\n'))
    conf = broker_base / "broker"
    branch = start_generated(mosquitto, cfg, conf)
    text = (conf / "mosquitto.conf").read_text()
    assert f"topic tessera/v1/{TENANT}/{BRANCH}/# out 1" in text
    assert "cleansession false" in text and "restart_timeout 1 2" in text

    hq_sub = collector(hq, f"tessera/v1/{TENANT}/{BRANCH}/+/evt/#", client_id="hq-consumer",
                       session_expiry_s=3600)
    hq_sub.wait_connected()
    user, pw = load_credentials(conf / "credentials" / "engine.toml")
    ob = Outbox.open(tmp_path / "engine.db", tenant=TENANT, branch=BRANCH, device="engine")
    link = DeviceLink.build(settings(branch, "engine", username=user, password=pw),
                            outbox=ob, clock=SystemClock())
    link.start()
    try:
        fill(ob, 20)  # the bridge is up: these flow straight through
        link.uplink.notify()
        hq_sub.wait(lambda: len(hq_sub.envelopes()) >= 20, 30, "bridge up")

        hq.stop()  # HQ goes away (clean stop: it keeps its sessions)
        time.sleep(0.3)
        fill(ob, 500)
        link.uplink.notify()
        hq_sub.wait(lambda: ob.pending_count() == 0, 30, "branch broker accepted the events")
        hq.start()
        hq_sub.wait(lambda: len({e["id"] for e in hq_sub.envelopes()}) >= 520, 45,
                    "every event at HQ")
        assert_complete(hq_sub.envelopes(), ob.all_events())
    finally:
        link.stop()
