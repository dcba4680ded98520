"""A device process for the crash and presence tests (run as a subprocess).

    python device_proc.py --port P --db D --device kiosk-1 [--fill N] [--state printer]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from tessera.clock import SystemClock
from tessera.drivers.mqtt_client import MqttSettings
from tessera.mqtt.link import DeviceLink
from tessera.outbox import Outbox


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--device", required=True)
    ap.add_argument("--fill", type=int, default=0)
    ap.add_argument("--state", default="")
    ap.add_argument("--run-s", type=float, default=60.0)
    a = ap.parse_args()
    ob = Outbox.open(Path(a.db), tenant="acme", branch="b1", device=a.device)
    if a.fill:
        now = datetime.now(UTC)
        with ob.transaction() as c:
            for i in range(a.fill):
                ob.append("ticket.issued", {"i": i}, ts=now, conn=c)
    link = DeviceLink.build(
        MqttSettings(host="127.0.0.1", port=a.port, client_id=a.device, keepalive_s=2,
                     backoff_min_s=0.05, backoff_max_s=0.3),
        outbox=ob, clock=SystemClock(), meta={"role": ["kiosk"]}, inflight=100)
    if a.state:
        link.presence.set_state(a.state, {"paper": "ok", "session": link.presence.session})
    link.start()
    print("started", flush=True)
    deadline = time.monotonic() + a.run_s
    while time.monotonic() < deadline:
        time.sleep(0.05)
    link.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
