"""The durable outbox: every event a device emits, in ``seq`` order, on disk.

An event is appended in the same SQLite transaction as the state change it
reports (the engine passes its own connection), so no event is lost or
invented across a crash. The MQTT drainer reads ``pending()`` and marks rows
``delivered`` on PUBACK; a row marked delivered is sent again when the broker's
retained high-water mark comes back below it (``tessera.mqtt.drainer``), so
consumers dedupe by ``id``.

    ob = Outbox.open("var/kiosk.db", tenant="acme", branch="b1", device="kiosk")
    env = ob.append("device.fault", {"kind": "printer", "state": "paper_out"}, ts=now)
    [e["seq"] for e in ob.pending(10)]
    # -> [1]

Table ``outbox``: ``seq`` (per-device, never reused: AUTOINCREMENT), ``id``
(UUIDv7, unique), ``type``, ``ts``, ``body`` (the JSON envelope exactly as
published), ``delivered_at`` (NULL until the broker acknowledged it).
"""

from __future__ import annotations

import functools
import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

# ``seq`` is the rowid: never reused, because the newest row is never deleted
# (retention keeps it) and, in stores that still carry a floor in
# ``sqlite_sequence`` (the AUTOINCREMENT schema before engine store v3),
# ``NEXT_SEQ_SQL`` stays above it. No AUTOINCREMENT, no UNIQUE on ``id`` (a uuid7
# minted here) and no partial index on undelivered rows: each was one more B-tree
# page in the WAL of every committed event (12 of 39 frames per
# issue→confirm→call→done cycle). The drainer reads undelivered rows by ``seq``
# range from its cursor.
SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    ts TEXT NOT NULL,
    body TEXT NOT NULL,
    delivered_at REAL
);
"""

# The next seq when a floor may live in sqlite_sequence (stores from before v3 and
# legacy device outboxes), and when it cannot (no AUTOINCREMENT table in the file).
NEXT_SEQ_SQL = ("SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0), "
                "COALESCE((SELECT MAX(seq) FROM outbox), 0)) + 1")
NEXT_SEQ_MAX_SQL = "SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox"


def next_seq_sql(conn: sqlite3.Connection) -> str:
    """The query for the next outbox ``seq`` of the file behind ``conn``."""
    has_floor = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                             "AND name = 'sqlite_sequence'").fetchone()
    return NEXT_SEQ_SQL if has_floor else NEXT_SEQ_MAX_SQL

_uuid_lock = threading.Lock()
_last_ms = 0
_counter = 0
# uuid7's random bits need uniqueness, not secrecy: a PRNG seeded from the OS (and
# reseeded in a forked child, so parent and child never share a stream) is ~50x
# cheaper than a getrandom() syscall per id.
_rng = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _rng.seed(os.urandom(32)))
_encode = msgspec.json.Encoder().encode


def uuid7(now_ms: int | None = None) -> str:
    """A UUIDv7 string (RFC 9562): time-ordered, unique across restarts.

    Monotonic within a process even when several ids share a millisecond.
    """
    global _last_ms, _counter
    with _uuid_lock:
        ms = int(time.time() * 1000) if now_ms is None else now_ms
        if ms <= _last_ms:
            ms = _last_ms
            _counter += 1
        else:
            _counter = _rng.getrandbits(11)
        _last_ms = ms
        rand_a = _counter & 0xFFF
        rand_b = _rng.getrandbits(62)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@functools.lru_cache(maxsize=256)  # a command stamps the same instant several times
def rfc3339(ts: datetime) -> str:
    """UTC timestamp with milliseconds and a ``Z``."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def connect(path: str | Path, *, page_size: int | None = None) -> sqlite3.Connection:
    """Open a SQLite file the way every durable Tessera store needs it.

    WAL with ``synchronous=FULL``: a committed transaction survives a power cut.
    Autocommit mode (``isolation_level=None``); callers use explicit
    ``BEGIN IMMEDIATE`` transactions. ``page_size`` applies to a new, empty
    file only (SQLite fixes it when the first table is created).
    """
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    if page_size is not None:
        conn.execute(f"PRAGMA page_size = {int(page_size)}")  # before WAL creates the file
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class Outbox:
    """Append-only event log of one device, drained to MQTT in ``seq`` order."""

    def __init__(self, conn: sqlite3.Connection, *, tenant: str, branch: str, device: str,
                 clock_synced: bool = True) -> None:
        self.conn = conn
        self.tenant, self.branch, self.device = tenant, branch, device
        self.clock_synced = clock_synced
        self._lock = threading.RLock()
        conn.executescript(SCHEMA)
        self.next_seq_sql = next_seq_sql(conn)

    @classmethod
    def open(cls, path: str | Path, *, tenant: str, branch: str, device: str) -> Outbox:
        return cls(connect(path), tenant=tenant, branch=branch, device=device)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (or ``ROLLBACK`` on any exception)."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException:
                self.abort()
                raise

    def abort(self) -> None:
        """Roll back the open write transaction, if any (a failed COMMIT included)."""
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def peek_next_seq(self, conn: sqlite3.Connection) -> int:
        """The seq the next append in the caller's write transaction will get."""
        (seq,) = conn.execute(self.next_seq_sql).fetchone()
        return int(seq)

    def append(self, type_: str, data: dict[str, Any], *, ts: datetime,
               conn: sqlite3.Connection | None = None) -> dict[str, Any]:
        """Append one event; inside the caller's transaction when ``conn`` is given.

        Returns the envelope (with its ``seq``) exactly as it will be published.
        """
        if conn is None:
            with self.transaction() as c:
                return self.append(type_, data, ts=ts, conn=c)
        eid = uuid7(int(ts.timestamp() * 1000))
        stamp = rfc3339(ts)
        # The caller holds the write lock (BEGIN IMMEDIATE), so the next seq is known
        # before the INSERT and the row is written once, body included: above every seq
        # ever used, even pruned ones (see SCHEMA and NEXT_SEQ_SQL).
        seq = self.peek_next_seq(conn)
        env = {
            "v": 1, "id": eid, "type": type_, "tenant": self.tenant, "branch": self.branch,
            "device": self.device, "seq": seq, "ts": stamp,
            "clock": "synced" if self.clock_synced else "unsynced", "data": data,
        }
        conn.execute("INSERT INTO outbox(seq, id, type, ts, body) VALUES (?, ?, ?, ?, ?)",
                     (seq, eid, type_, stamp, _encode(env).decode()))
        return env

    def pending(self, limit: int, after_seq: int = 0) -> list[dict[str, Any]]:
        """Undelivered envelopes in ``seq`` order, oldest first."""
        return [json.loads(body) for _, _, body in self.pending_raw(limit, after_seq)]

    def pending_raw(self, limit: int, after_seq: int = 0) -> list[tuple[int, str, bytes]]:
        """Undelivered ``(seq, type, body)`` in ``seq`` order: the bytes as published."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT seq, type, body FROM outbox WHERE delivered_at IS NULL AND seq > ? "
                "ORDER BY seq LIMIT ?", (after_seq, limit)).fetchall()
        return [(int(s), str(t), str(b).encode()) for s, t, b in rows]

    def reopen_above(self, seq: int) -> int:
        """Mark every delivered event above ``seq`` undelivered again; how many.

        A range of the primary key: as cheap on a year-long outbox as on a new one.
        """
        with self.transaction() as c:
            return int(c.execute("UPDATE outbox SET delivered_at = NULL WHERE seq > ? "
                                 "AND delivered_at IS NOT NULL", (seq,)).rowcount)

    def delivered_through(self, after_seq: int) -> int:
        """The highest seq s >= ``after_seq`` with every row in (after_seq, s] delivered.

        One statement, so the first pending row and the newest row come from the
        same snapshot; it reads the primary key from ``after_seq`` on only.
        """
        with self._lock:
            first, newest = self.conn.execute(
                "SELECT (SELECT MIN(seq) FROM outbox WHERE seq > ?1 AND delivered_at IS NULL), "
                "(SELECT MAX(seq) FROM outbox)", (after_seq,)).fetchone()
        if first is not None:
            return max(after_seq, int(first) - 1)
        return max(after_seq, int(newest or 0))

    def undelivered_bytes(self, after_seq: int = 0) -> int:
        """Size of the event bodies still waiting for the broker (rows above ``after_seq``:
        the drainer's high-water mark, below which every row is delivered)."""
        with self._lock:
            (n,) = self.conn.execute(
                "SELECT COALESCE(SUM(LENGTH(body)), 0) FROM outbox WHERE seq > ? "
                "AND delivered_at IS NULL", (after_seq,)).fetchone()
        return int(n)

    def pending_count(self, after_seq: int = 0) -> int:
        with self._lock:
            (n,) = self.conn.execute(
                "SELECT COUNT(*) FROM outbox WHERE seq > ? AND delivered_at IS NULL",
                (after_seq,)).fetchone()
        return int(n)

    def mark_delivered(self, seqs: list[int]) -> None:
        """Stamp rows the broker acknowledged (a row acknowledged twice on one connection
        keeps its first stamp). Stamps only age rows for retention: what is re-sent
        after a drop comes from the high-water mark, never from these times."""
        if not seqs:
            return
        now = time.time()
        with self.transaction() as c:
            c.executemany("UPDATE outbox SET delivered_at = ? WHERE seq = ? "
                          "AND delivered_at IS NULL", [(now, s) for s in seqs])

    def all_events(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.conn.execute("SELECT body FROM outbox ORDER BY seq").fetchall()
        return [json.loads(r[0]) for r in rows]

    def last_seq(self) -> int:
        with self._lock:
            row = self.conn.execute("SELECT MAX(seq) FROM outbox").fetchone()
        return int(row[0] or 0)

    def size_bytes(self) -> int:
        p = self.conn.execute("PRAGMA database_list").fetchone()[2]
        return sum(os.path.getsize(p + s) for s in ("", "-wal") if os.path.exists(p + s))
