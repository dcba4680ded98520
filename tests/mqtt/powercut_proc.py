"""The engine of a branch under load, as a process to SIGKILL (power-cut drills).

    python powercut_proc.py --config branch.toml [--rate 40]

Opens the engine store and its MQTT link the way ``tessera run engine`` does
(``Engine.open`` on ``<storage.dir>/engine.db``, ``DeviceLink.from_config`` with the
engine's login from the generated credentials), then issues, confirms, calls and
finishes tickets at about ``--rate`` commands per second until SIGTERM (clean stop:
the outbox drained, the last high-water mark, ``offline``) or SIGKILL. Prints
``started`` and, on every connect, ``resend <rows> <mark or local>`` (the drainer's
counters) on stdout.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tessera.clock import SystemClock
from tessera.config import load_config
from tessera.engine import DomainError, Engine
from tessera.mqtt.link import DeviceLink


def _work(engine: Any, rate: float, stop: threading.Event) -> None:
    counters = [c.id for c in engine.cfg.counters]
    for c in engine.cfg.counters:
        try:
            engine.open_counter(c.id, staff=c.staff or None)
        except DomainError:
            pass
    services = [s.id for s in engine.cfg.services]
    pause = 1.0 / rate
    i = 0
    while not stop.is_set():
        i += 1
        try:
            t = engine.issue(services[i % len(services)])
            engine.confirm_printed(t.id)
            counter = counters[i % len(counters)]
            engine.call_next(counter)
            engine.done(counter)
        except DomainError:
            pass
        stop.wait(4 * pause)  # four commands per round


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--rate", type=float, default=40.0)
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("tessera.mqtt.drainer").setLevel(logging.DEBUG)
    cfg = load_config(Path(a.config))
    clock = SystemClock()
    db = cfg.path(cfg.storage.dir) / "engine.db"
    engine = Engine.open(cfg, clock, db)
    link = DeviceLink.from_config(cfg, cfg.mqtt.device, clock=clock, db_path=db,
                                  meta={"role": ["engine"]})
    engine.on_commit = lambda events: link.uplink.notify()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    link.start()
    worker = threading.Thread(target=_work, args=(engine, a.rate, stop), daemon=True)
    worker.start()
    print("started", flush=True)
    reported = 0
    while not stop.wait(0.05):
        d = link.drainer
        while reported < len(d.resends):
            mark = d.restored[reported]
            print(f"resend {d.resends[reported]} {'local' if mark is None else mark}",
                  flush=True)
            reported += 1
    worker.join(10)
    # a clean stop after the load: let the outbox drain first (bounded)
    deadline = time.monotonic() + 30
    while link.drainer.outbox.pending_count() and time.monotonic() < deadline:
        time.sleep(0.05)
    link.stop()
    engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
