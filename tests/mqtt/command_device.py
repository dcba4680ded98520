"""A kiosk or counter device process for the exactly-once test (run as a subprocess).

    python command_device.py --config branch.toml --device kiosk-pi-k --out results.jsonl
        [--stop-file F] [--count N] [--pace-s S] [--threads T] [--counter C]

Issues a ticket and confirms it as printed (or, with ``--counter``, calls the next
ticket and finishes it), again and again, through the project's own client
(``DeviceLink`` + ``CommandClient`` + ``RemoteEngine``, as ``tessera run kiosk``
builds them), until ``--count`` tickets or the stop file appears. Each outcome is
one JSON line; so is every answer that arrives on the device's response topic
(``{"answer": ...}``), re-sent copies included.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tessera.clock import SystemClock
from tessera.config import load_config
from tessera.drivers.mqtt_client import Message
from tessera.mqtt.command_client import CommandClient
from tessera.mqtt.link import DeviceLink
from tessera.roles.remote import EngineUnreachable, RemoteEngine, RemoteRefused


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--device", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--stop-file", type=Path, default=None)
    ap.add_argument("--count", type=int, default=1 << 30)
    ap.add_argument("--service", default="cash")
    ap.add_argument("--pace-s", type=float, default=0.0, help="pause between tickets")
    ap.add_argument("--threads", type=int, default=1, help="commands in flight at once")
    ap.add_argument("--counter", default="", help="be a teller at this counter instead")
    a = ap.parse_args()
    cfg = load_config(a.config, roles=("counter",) if a.counter else ("kiosk",))
    clock = SystemClock()
    link = DeviceLink.from_config(cfg, a.device, clock=clock,
                                  meta={"role": ["counter" if a.counter else "kiosk"]})
    client = CommandClient(link.port, link.uplink, link.topics, clock=clock,
                           expiry_s=math.ceil(cfg.mqtt.command_max_age_s))
    lock = threading.Lock()
    out = a.out.open("a", encoding="utf-8")

    def line(obj: dict[str, Any]) -> None:
        with lock:
            out.write(json.dumps(obj) + "\n")
            out.flush()

    def every_answer(msg: Message) -> None:
        line({"answer": json.loads(msg.payload),
              "corr": (msg.correlation_data or b"").decode()})

    link.uplink.add_handler(client.reply_topic, every_answer)
    link.start()
    engine = RemoteEngine(client)
    print("started", flush=True)
    left = [a.count]

    def customer() -> None:
        while not (a.stop_file is not None and a.stop_file.exists()):
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
            time.sleep(a.pace_s)  # a kiosk's customers, not a benchmark
            t0 = time.monotonic()
            try:
                ticket = engine.issue(a.service)
            except (EngineUnreachable, RemoteRefused) as e:
                line({"op": "issue", "ok": False, "code": e.code, "s": time.monotonic() - t0})
                continue
            line({"op": "issue", "ok": True, "ticket": ticket.id, "number": ticket.number,
                  "s": time.monotonic() - t0})
            t0 = time.monotonic()
            try:
                confirmed = engine.confirm_printed(ticket.id)
                line({"op": "confirm", "ok": True, "ticket": ticket.id,
                      "state": confirmed.state, "s": time.monotonic() - t0})
            except (EngineUnreachable, RemoteRefused) as e:
                line({"op": "confirm", "ok": False, "ticket": ticket.id, "code": e.code,
                      "s": time.monotonic() - t0})

    def teller() -> None:  # --counter: open it, then NEXT and DONE, again and again
        try:
            engine.open_counter(a.counter)
        except (EngineUnreachable, RemoteRefused) as e:
            line({"op": "open", "ok": False, "code": e.code})
            return
        while not (a.stop_file is not None and a.stop_file.exists()):
            time.sleep(a.pace_s)
            for op, call in (("call-next", engine.call_next), ("done", engine.done)):
                t0 = time.monotonic()
                try:
                    t = call(a.counter)
                except RemoteRefused as e:  # queue-empty: nobody waiting yet
                    line({"op": op, "ok": True, "code": e.code, "s": time.monotonic() - t0})
                    break
                except EngineUnreachable as e:
                    line({"op": op, "ok": False, "code": e.code, "s": time.monotonic() - t0})
                    break
                line({"op": op, "ok": True, "code": "ok", "ticket": t.id, "state": t.state,
                      "s": time.monotonic() - t0})

    job = teller if a.counter else customer
    workers = [threading.Thread(target=job) for _ in range(1 if a.counter else a.threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    line({"op": "end", "sent": client.sent})
    link.stop()
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
