"""Build an engine store as a year-long branch leaves it, fast (for ``bench mqtt``).

A branch issuing ``per_day`` tickets every day for ``days`` days (3,000 x 365: ~1.1 M
tickets), every ticket done, one rating in five, ``day_services`` rows per day, and
the outbox as retention keeps it (``outbox_rows`` delivered events, the newest under
the device's high-water mark). Rows come from generators into ``executemany`` with
``synchronous=OFF`` and one transaction per table: a few seconds, not the hours a
real year of commits takes. Nothing in it is pruned: the worst case for a start.

    build_year_store(Path("/tmp/year.db"), cfg, days=365, per_day=3000)
    # -> 1095000
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from tessera.config import BranchConfig
from tessera.engine.store import open_store
from tessera.mqtt.drainer import MARK_SCHEMA
from tessera.outbox import rfc3339, uuid7

DAY_S = 86400


def _tickets(cfg: BranchConfig, first: date, days: int, per_day: int
             ) -> Iterator[tuple[object, ...]]:
    services = [(s.id, s.prefix) for s in cfg.services]
    counters = [c.id for c in cfg.counters] or ["c1"]
    rng = random.Random(365)
    qorder = 0
    for d in range(days):
        day = first + timedelta(days=d)
        t0 = datetime(day.year, day.month, day.day, 8, tzinfo=UTC).timestamp()
        seqs = dict.fromkeys((s for s, _ in services), 0)
        for i in range(per_day):
            service, prefix = services[i % len(services)]
            seqs[service] += 1
            seq = seqs[service]
            qorder += 1
            issued = t0 + i * 10.0
            called = issued + rng.uniform(30, 900)
            yield (uuid7(int(issued * 1000)), day.isoformat(), service, service, seq,
                   f"{prefix}{seq:03d}", "done", None, 0, issued, issued, qorder, called,
                   called + 20, called + rng.uniform(60, 600), counters[i % len(counters)],
                   0, None, None, "", 3, 300.0)


def build_year_store(path: Path, cfg: BranchConfig, *, days: int = 365, per_day: int = 3000,
                     outbox_rows: int = 200_000, end: date | None = None) -> int:
    """Write the store at ``path`` (replaced); return the number of tickets."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    conn = open_store(path)
    conn.close()
    last = end or datetime.now(UTC).date() - timedelta(days=1)
    first = last - timedelta(days=days - 1)
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        cur = conn.executemany(
            "INSERT INTO tickets(id, business_day, service, origin, seq, number, state, "
            "priority, rank, issued_at, queued_at, qorder, called_at, serving_at, ended_at, "
            "counter, recalls, appointment, slot, route, people_ahead, est_wait_s) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _tickets(cfg, first, days, per_day))
        n = days * per_day
        conn.executemany(
            "INSERT INTO day_services(business_day, service, prefix, last_seq) VALUES (?, ?, ?, ?)",
            ((
                (first + timedelta(days=d)).isoformat(), s.id, s.prefix,
                per_day // len(cfg.services)) for d in range(days) for s in cfg.services))
        conn.executemany(
            "INSERT INTO ratings(ticket_id, counter, staff, service, score, status, at) "
            "VALUES (NULL, 'c1', 't1', ?, ?, 'bound', ?)",
            ((cfg.services[0].id, 1 + i % 5, datetime(first.year, first.month, first.day,
                                                     tzinfo=UTC).timestamp() + i * 50.0)
             for i in range(n // 5)))
        now = datetime.now(UTC)
        stamp = rfc3339(now)
        base = {"v": 1, "tenant": cfg.branch.tenant, "branch": cfg.branch.branch,
                "device": cfg.mqtt.device, "ts": stamp, "clock": "synced"}
        conn.executemany(
            "INSERT INTO outbox(seq, id, type, ts, body, delivered_at) VALUES (?, ?, ?, ?, ?, ?)",
            ((s, eid, "ticket.done", stamp, json.dumps({**base, "id": eid, "seq": s,
                                                        "type": "ticket.done",
                                                        "data": {"pad": "x" * 300}}),
              now.timestamp()) for s in range(1, outbox_rows + 1) for eid in (uuid7(),)))
        conn.execute(MARK_SCHEMA)
        conn.execute("INSERT INTO mqtt_hwm(device, seq, store) VALUES (?, ?, ?)",
                     (cfg.mqtt.device, outbox_rows, uuid7()))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert cur is not None
    finally:
        conn.close()
    # written with synchronous=OFF: flush it now, or the first fsync of whoever opens
    # it next (a restart being timed) pays for hundreds of MiB of dirty page cache
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return n
