"""``tessera bench mqtt``: QoS1 flood, outbox drain rate and paced latency on loopback.

Starts its own mosquitto on 127.0.0.1 and measures, in one run:

* ``flood_per_s``: QoS1 publishes through the client adapter with a window of
  100 unacknowledged (the baseline: what paho and the broker can do here);
* ``drain_per_s``: a 10 000-event outbox backlog drained by the real drainer
  (SQLite reads, PUBACK bookkeeping, delivered marks with fsync);
  ``drain_ratio_vs_flood`` compares the two (target >= 0.45);
* ``paced_p50_ms`` / ``paced_p99_ms``: publish→receive latency of events sent
  at 500/s (target p99 <= 1 ms on x86). A p99 of 10 ms or more means Nagle
  is holding packets (TCP_NODELAY missing on one side): the bench fails loudly;
* ``resend_per_drop_max`` / ``resend_per_drop``: rows a device re-sends per broker
  restart (SIGTERM, 1.5-3 s apart, live load of 200 events/s, default backoff):
  the events since the last high-water mark the broker kept (issue 12; the old 40 s
  window re-sent everything since the chain began);
* ``first_event_after_broker_return_s``: the worst, over those restarts, of the
  time from the broker accepting connections again to the first *new* event at
  an HQ-like subscriber (target < 5 s);
* ``restart_ms_by_store_mib``: a new process (imports included) opening the engine
  store (checks, migrations, the engine's setup) and its MQTT link's first drain
  query and retention scan, for an empty store and for a year of a
  3,000-ticket/day branch with nothing pruned (``tessera.bench.store_year``);
  ``restart_ratio_year_vs_empty`` (target <= 1.5). ``restart_open_ms_by_store_mib``
  is the in-process part alone (the store-dependent milliseconds).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import queue
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tessera.clock import SystemClock
from tessera.drivers.mqtt_client import Connected, Message, MqttSettings, PahoClient, PubAck
from tessera.mqtt.drainer import mark_payload
from tessera.mqtt.link import DeviceLink
from tessera.mqtt.local_broker import LocalBroker
from tessera.outbox import Outbox
from tessera.stats import percentile

NAGLE_MS = 10.0
STORM_RATE = 200.0  # events per second during the broker restarts


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


class _NullPort:
    """An MqttPort that accepts every publish (restart timing: no network)."""

    def __init__(self) -> None:
        self.events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.mid = 0

    def start(self) -> None: ...

    def stop(self, timeout: float = 5.0) -> None: ...

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False,
                props: Any = None) -> int:
        self.mid += 1
        return self.mid

    def subscribe(self, topic_filter: str, qos: int = 1) -> None: ...

    def ack(self, msg: Any) -> None: ...


def restart_ms(path: Path, cfg: Any, runs: int = 5) -> float:
    """Median ms to open the engine store at ``path`` and resume its link's drain."""
    from tessera.engine import Engine

    times: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        eng = Engine.open(cfg, SystemClock(), path)
        ob = Outbox.open(path, tenant=cfg.branch.tenant, branch=cfg.branch.branch,
                         device=cfg.mqtt.device)
        link = DeviceLink.build(MqttSettings(host="127.0.0.1", port=1, client_id="bench"),
                                outbox=ob, clock=SystemClock(), port=_NullPort())
        d = link.drainer
        d.on_connected(session_present=True)
        # the broker hands back the mark the device last saw: resume above it
        d.on_mark(Message(d.mark_topic, mark_payload(d.local_mark, d.store_id), retain=True))
        d.pump()
        link.uplink.retention.undelivered_bytes()
        times.append((time.perf_counter() - t0) * 1000)
        link.presence.conn.close()
        ob.conn.close()
        eng.close()
    return statistics.median(times)


def store_restarts(work: Path, quick: bool) -> dict[str, Any]:
    from tessera.bench.store_year import build_year_store
    from tessera.config import parse_config

    cfg = parse_config(_BENCH_TOML, base_dir=work)
    empty = work / "empty.db"
    _create_store(cfg, empty)
    year = work / "year.db"
    days = 30 if quick else 365
    t0 = time.perf_counter()
    tickets = build_year_store(year, cfg, days=days, per_day=3000)
    build_s = time.perf_counter() - t0
    out: dict[str, float] = {}
    opened: dict[str, float] = {}
    runs: dict[Path, list[float]] = {empty: [], year: []}
    for _ in range(7):  # interleaved, so load from elsewhere hits both alike
        for p in runs:
            runs[p].append(_process_restart_ms(p, work, runs=1))
    for p in (empty, year):
        mib = f"{sum(f.stat().st_size for f in p.parent.glob(p.name + '*')) / (1 << 20):.1f}"
        out[mib] = round(statistics.median(runs[p]), 1)
        opened[mib] = round(restart_ms(p, cfg), 2)
    e, y = out.values()
    oe, oy = opened.values()
    return {"restart_ms_by_store_mib": out, "restart_ratio_year_vs_empty": round(y / e, 2),
            "restart_open_ms_by_store_mib": opened,
            "restart_open_ratio_year_vs_empty": round(oy / oe, 2),
            "restart_year_tickets": tickets, "restart_year_build_s": round(build_s, 1)}


def _process_restart_ms(path: Path, work: Path, runs: int = 5) -> float:
    """Median ms from spawning a Python process to its engine store and link being
    open and drained once (imports included: what a systemd restart waits for)."""
    import subprocess

    code = ("import sys; from pathlib import Path; from tessera.bench.mqtt import "
            "_BENCH_TOML, restart_ms; from tessera.config import parse_config; "
            "restart_ms(Path(sys.argv[1]), parse_config(_BENCH_TOML, base_dir=Path(sys.argv[2])), "
            "runs=1)")
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code, str(path), str(work)], check=True)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _create_store(cfg: Any, path: Path) -> None:
    from tessera.engine import Engine

    Engine.open(cfg, SystemClock(), path).close()


_BENCH_TOML = """
[branch]
tenant = "bench"
branch = "b1"
timezone = "UTC"
languages = ["en"]
[clock]
trust = "always"
[[services]]
id = "cash"
prefix = "A"
names = { en = "Cash" }
[[services]]
id = "loans"
prefix = "C"
names = { en = "Loans" }
[[counters]]
id = "c1"
number = 1
services = [{ service = "cash" }, { service = "loans" }]
[[counters]]
id = "c2"
number = 2
services = [{ service = "cash" }]
"""


def storm(work: Path, drops: int) -> dict[str, Any]:
    """Broker restarts 2 s apart under live load: re-sends per drop, first new event."""
    import threading

    broker = LocalBroker(work / "storm-broker", persistence=True,
                         extra_conf="autosave_on_changes false\nautosave_interval 30\n").start()
    got: list[tuple[float, str]] = []
    stop = threading.Event()
    sub = PahoClient(MqttSettings(host=broker.host, port=broker.port, client_id="bench-hq",
                                  session_expiry_s=3600, backoff_min_s=0.05,
                                  backoff_max_s=0.2))
    sub.start()
    _connected(sub)
    topic = "tessera/v1/bench/b1/storm/evt/#"
    sub.subscribe(topic, 1)

    def listen() -> None:
        while not stop.is_set():
            try:
                ev = sub.events.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(ev, Connected):
                sub.subscribe(topic, 1)
            elif isinstance(ev, Message):
                got.append((time.monotonic(), json.loads(ev.payload)["id"]))

    ob = Outbox.open(work / "storm.db", tenant="bench", branch="b1", device="storm")
    writer = Outbox.open(work / "storm.db", tenant="bench", branch="b1", device="storm")
    link = DeviceLink.build(MqttSettings(host=broker.host, port=broker.port,
                                         client_id="bench-storm"),
                            outbox=ob, clock=SystemClock(), inflight=100)

    def write() -> None:
        while not stop.is_set():
            writer.append("ticket.called", {"pad": "x" * 150}, ts=datetime.now(UTC))
            link.uplink.notify()
            time.sleep(1 / STORM_RATE)

    threads = [threading.Thread(target=listen, daemon=True),
               threading.Thread(target=write, daemon=True)]
    link.start()
    for t in threads:
        t.start()
    firsts: list[float] = []
    rng = random.Random(12)  # drops out of phase with the 1 s mark period
    try:
        deadline = time.monotonic() + 30
        while not link.drainer.ready and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(2.5)  # past the first mark
        for _ in range(drops):
            time.sleep(rng.uniform(1.5, 3.0))
            broker.stop()
            broker.start()
            back = time.monotonic()
            before = {i for at, i in got if at < back}
            first = None
            while first is None and time.monotonic() < back + 30:
                first = next((at for at, i in list(got) if at >= back and i not in before),
                             None)
                time.sleep(0.005)
            firsts.append((first or back + 30) - back)
        resends = link.drainer.resends[1:]  # the first connect of a new device sends all
    finally:
        stop.set()
        for t in threads:
            t.join(5)
        link.stop()
        sub.stop()
        broker.kill()
    return {"resend_per_drop_max": max(resends) if resends else None,
            "resend_per_drop": resends, "storm_rate_per_s": STORM_RATE,
            "first_event_after_broker_return_s": round(max(firsts), 3) if firsts else None}


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
        stormed = storm(Path(tmp), 3 if quick else 8)
        restarts = store_restarts(Path(tmp), quick)
    result: dict[str, Any] = {
        "flood_per_s": round(flood_rate, 1),
        "drain_per_s": round(drain_rate, 1),
        "drain_ratio_vs_flood": round(drain_rate / flood_rate, 3),
        "drain_backlog": n_drain,
        "paced_rate_per_s": 500,
        "paced_n": len(lat),
        "paced_p50_ms": round(statistics.median(lat), 3) if lat else None,
        "paced_p99_ms": round(percentile(lat, 0.99), 3) if lat else None,
        "paced_max_ms": round(max(lat), 3) if lat else None,
        **stormed,
        **restarts,
    }
    p99 = result["paced_p99_ms"]
    if p99 is None or p99 >= NAGLE_MS or len(lat) < n_paced:
        print(json.dumps(result, sort_keys=True) if args.json else result)
        print(f"FAIL: paced p99 {p99} ms >= {NAGLE_MS} ms (or messages lost: {len(lat)}/"
              f"{n_paced}): Nagle is stalling small publishes; check TCP_NODELAY on the "
              "client and set_tcp_nodelay in mosquitto.conf", file=sys.stderr)
        raise SystemExit(3)
    return result
