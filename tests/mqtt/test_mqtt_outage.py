"""Broker outage: the broker is SIGKILLed >= 20 times while the engine works.

Brokers here are the fixture's throw-away mosquittos (anonymous on 127.0.0.1): this file
tests the client side, not the broker's security. The generated broker files are run
exactly as shipped, as Debian runs them, by tests/branch/test_shipped_broker.py and
tests/branch/test_shapes.py.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from mqtt_support import BRANCH, TENANT, assert_complete, settings

from tessera.clock import SystemClock
from tessera.engine import DomainError
from tessera.mqtt.link import DeviceLink
from tessera.outbox import Outbox

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


def _work(engine: Any, stop: threading.Event, wake: Any) -> int:
    """Issue, print, call and finish tickets until told to stop; return commands run."""
    n = 0
    engine.open_counter("c1", staff="t1")
    engine.open_counter("c2", staff="t2")
    while not stop.is_set():
        for svc in ("cash", "loans", "cash"):
            t = engine.issue(svc)
            engine.confirm_printed(t.id)
            n += 2
        for counter in ("c1", "c2"):
            try:
                engine.call_next(counter)
                engine.done(counter)
                n += 2
            except DomainError:
                pass
        wake()
        time.sleep(0.01)
    return n


@pytest.mark.timeout(120)
def test_every_event_survives_20_broker_kills(
        mosquitto: Any, collector: Any, engine: Any, tmp_path: Path) -> None:
    broker = mosquitto(persistence=True)
    sub = collector(broker, f"tessera/v1/{TENANT}/{BRANCH}/+/evt/#", client_id="hq-audit",
                    session_expiry_s=3600)
    sub.wait_connected()
    # the drainer's own connection to the engine's database
    ob = Outbox.open(tmp_path / "engine.db", tenant=TENANT, branch=BRANCH, device="engine")
    link = DeviceLink.build(settings(broker, "engine"), outbox=ob, clock=SystemClock())
    link.start()
    stop = threading.Event()
    worker = threading.Thread(target=_work, args=(engine, stop, link.uplink.notify))
    worker.start()
    rng = random.Random(6)
    try:
        for _ in range(20):
            deadline = time.monotonic() + rng.uniform(0.05, 0.4)
            while time.monotonic() < deadline:
                sub.pump(0.02)
            broker.kill()
            time.sleep(rng.uniform(0.0, 0.2))
            broker.start()
        stop.set()
        worker.join(10)
        expected = engine.outbox.all_events()
        assert len(expected) > 200
        sub.wait(lambda: ob.pending_count() == 0, 60, "the outbox to drain")
        sub.wait(lambda: {e["id"] for e in sub.envelopes()} >= {e["id"] for e in expected},
                 60, "every event at the subscriber")
        assert_complete(sub.envelopes(), expected)
    finally:
        stop.set()
        worker.join(10)
        link.stop()
