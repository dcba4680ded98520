"""``tessera bench mqtt``: QoS1 flood, outbox drain rate and paced latency on loopback.

Starts its own mosquitto on 127.0.0.1 and measures, in one run:

* ``flood_per_s``: QoS1 publishes through the client adapter with a window of
  100 unacknowledged (the baseline: what paho and the broker can do here);
* ``drain_per_s``: a 10 000-event outbox backlog drained by the real drainer
  (SQLite reads, PUBACK bookkeeping, delivered marks with fsync);
  ``drain_ratio_vs_flood`` compares the two (target >= 0.45);
* ``paced_p50_ms`` / ``paced_p99_ms``: publish→receive latency of events sent
  at 500/s (target p99 <= 1 ms on x86). A p99 of 10 ms or more means Nagle
  is holding packets (TCP_NODELAY missing on one side): the bench fails loudly.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import queue
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tessera.clock import SystemClock
from tessera.drivers.mqtt_client import Connected, Message, MqttSettings, PahoClient, PubAck
from tessera.mqtt.link import DeviceLink
from tessera.mqtt.local_broker import LocalBroker
from tessera.outbox import Outbox

NAGLE_MS = 10.0


def _connected(c: PahoClient, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if isinstance(c.events.get(timeout=0.1), Connected):
                return
        except queue.Empty:
            pass
    raise TimeoutError("benchmark client could not connect to its mosquitto")


def flood(broker: LocalBroker, n: int, window: int = 100) -> float:
    c = PahoClient(MqttSettings(host=broker.host, port=broker.port, client_id="bench-flood",
                                max_inflight=window))
    c.start()
    _connected(c)
    body = b'{"v":1,"type":"ticket.issued","data":{"pad":"' + b"x" * 200 + b'"}}'
    sent = acked = 0
    t0 = time.perf_counter()
    while acked < n:
        while sent < n and sent - acked < window:
            c.publish("tessera/v1/bench/b1/flood/evt/ticket.issued", body, qos=1)
            sent += 1
        if isinstance(c.events.get(timeout=10), PubAck):
            acked += 1
    dt = time.perf_counter() - t0
    c.stop()
    return n / dt


def drain(broker: LocalBroker, work: Path, n: int) -> float:
    ob = Outbox.open(work / "drain.db", tenant="bench", branch="b1", device="drain")
    now = datetime.now(UTC)
    with ob.transaction() as conn:
        for i in range(n):
            ob.append("ticket.issued", {"i": i, "pad": "x" * 150}, ts=now, conn=conn)
    link = DeviceLink.build(MqttSettings(host=broker.host, port=broker.port,
                                         client_id="bench-drain"),
                            outbox=ob, clock=SystemClock(), inflight=100)
    link.start()
    deadline = time.monotonic() + 120
    while not link.drainer.connected and time.monotonic() < deadline:
        time.sleep(0.001)
    t0 = time.perf_counter()
    while link.drainer.acked_total < n and time.monotonic() < deadline:
        time.sleep(0.002)
    dt = time.perf_counter() - t0
    link.stop()
    return n / dt


def _receiver(port: int, n: int, timeout: float, out: Any) -> None:
    """Subscriber in its own process, so publisher and receiver do not share a GIL."""
    sub = PahoClient(MqttSettings(host="127.0.0.1", port=port, client_id="bench-sub"))
    sub.start()
    _connected(sub)
    sub.subscribe(PACED_TOPIC, 1)
    time.sleep(0.3)
    out.send("ready")
    lat: list[float] = []
    deadline = time.monotonic() + timeout
    while len(lat) < n and time.monotonic() < deadline:
        try:
            ev = sub.events.get(timeout=0.2)
        except queue.Empty:
            continue
        if isinstance(ev, Message):
            # CLOCK_MONOTONIC is system-wide on Linux: comparable across processes
            lat.append((time.perf_counter_ns() - json.loads(ev.payload)["t"]) / 1e6)
    sub.stop()
    out.send(lat)


PACED_TOPIC = "tessera/v1/bench/b1/paced/evt/ticket.called"


def paced(broker: LocalBroker, n: int, rate: float = 500.0) -> list[float]:
    ctx = multiprocessing.get_context("spawn")
    here, there = ctx.Pipe()
    proc = ctx.Process(target=_receiver, args=(broker.port, n, n / rate + 20, there))
    proc.start()
    pub = PahoClient(MqttSettings(host=broker.host, port=broker.port, client_id="bench-pub"))
    pub.start()
    _connected(pub)
    if not here.poll(30):
        proc.kill()
        raise TimeoutError("benchmark subscriber did not start")
    here.recv()
    start = time.perf_counter()
    for i in range(n):
        target = start + i / rate
        while (now := time.perf_counter()) < target:
            time.sleep(min(0.001, target - now))
        pub.publish(PACED_TOPIC, json.dumps({"t": time.perf_counter_ns(), "i": i}).encode(),
                    qos=1)
    lat: list[float] = here.recv() if here.poll(n / rate + 30) else []
    proc.join(10)
    pub.stop()
    return lat


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def run(args: argparse.Namespace) -> dict[str, Any]:
    quick = bool(getattr(args, "quick", False))
    n_flood = 5000 if quick else 20000
    n_drain = 10000
    n_paced = 1000 if quick else 5000
    with tempfile.TemporaryDirectory(prefix="tessera-bench-mqtt-") as tmp:
        broker = LocalBroker(Path(tmp) / "broker").start()
        try:
            flood_rate = flood(broker, n_flood)
            drain_rate = drain(broker, Path(tmp), n_drain)
            lat = paced(broker, n_paced)
        finally:
            broker.stop()
    result: dict[str, Any] = {
        "flood_per_s": round(flood_rate, 1),
        "drain_per_s": round(drain_rate, 1),
        "drain_ratio_vs_flood": round(drain_rate / flood_rate, 3),
        "drain_backlog": n_drain,
        "paced_rate_per_s": 500,
        "paced_n": len(lat),
        "paced_p50_ms": round(statistics.median(lat), 3) if lat else None,
        "paced_p99_ms": round(_pct(lat, 0.99), 3) if lat else None,
        "paced_max_ms": round(max(lat), 3) if lat else None,
    }
    p99 = result["paced_p99_ms"]
    if p99 is None or p99 >= NAGLE_MS or len(lat) < n_paced:
        print(json.dumps(result, sort_keys=True) if args.json else result)
        print(f"FAIL: paced p99 {p99} ms >= {NAGLE_MS} ms (or messages lost: {len(lat)}/"
              f"{n_paced}): Nagle is stalling small publishes; check TCP_NODELAY on the "
              "client and set_tcp_nodelay in mosquitto.conf", file=sys.stderr)
        raise SystemExit(3)
    return result
