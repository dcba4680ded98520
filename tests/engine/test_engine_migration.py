"""Schema v1 → v4: an existing v1 store (built here from the v1 DDL) migrates in place
and keeps working: numbers continue, FIFO order holds, history and events survive."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from engine_support import START, make_config

from tessera.clock import VirtualClock
from tessera.engine import Engine
from tessera.engine.store import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, _statements

Opener = Callable[..., Engine]
T0 = START.timestamp()
DAY = "2026-03-02"
V1_INDEXES = {"tickets_waiting", "tickets_qorder", "tickets_open", "tickets_number"}


def _ticket(tid: str, service: str, seq: int, prefix: str, state: str, qorder: int,
            age_s: float, counter: str | None = None) -> tuple[object, ...]:
    at = T0 - age_s
    return (tid, DAY, service, service, seq, f"{prefix}{seq:03d}", state, None, 3, at, at,
            qorder, at if state in ("called", "done") else None, counter)


def _write_v1(path: Path) -> None:
    """A v1 store as the v1 engine left it mid-morning (schema from the v1 DDL)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA page_size = 1024")
    conn.execute("PRAGMA journal_mode=WAL")
    v1_ddl = MIGRATIONS[0]
    assert all(name in v1_ddl for name in V1_INDEXES)  # really the v1 schema
    conn.execute("BEGIN")
    for stmt in _statements(v1_ddl):
        conn.execute(stmt)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    conn.executemany("INSERT INTO meta VALUES (?, ?)",
                     [("business_day", DAY), ("last_ts", repr(T0 - 30))])
    conn.executemany("INSERT INTO day_services VALUES (?, ?, ?, ?)",
                     [(DAY, "cash", "A", 3), (DAY, "accounts", "B", 1), (DAY, "loans", "C", 0)])
    conn.executemany(
        "INSERT INTO tickets(id, business_day, service, origin, seq, number, state, priority, "
        "rank, issued_at, queued_at, qorder, called_at, counter) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [_ticket("t-a1", "cash", 1, "A", "done", 1, 900, "c2"),
         _ticket("t-b1", "accounts", 1, "B", "called", 2, 800, "c1"),
         _ticket("t-a2", "cash", 2, "A", "waiting", 3, 700),
         _ticket("t-a3", "cash", 3, "A", "issued", 4, 600)])
    conn.executemany("INSERT INTO counters(id, state, current) VALUES (?, ?, ?)",
                     [("c1", "open", "t-b1"), ("c2", "open", None), ("c3", "closed", None)])
    # global AUTOINCREMENT ids, services interleaved
    conn.executemany("INSERT INTO service_times(service, seconds) VALUES (?, ?)",
                     [("cash", 100.0), ("accounts", 50.0), ("cash", 200.0), ("cash", 300.0)])
    conn.executemany("INSERT INTO outbox(seq, id, type, ts, body) VALUES (?, ?, ?, ?, ?)",
                     [(s, f"e{s}", "x", "t", json.dumps({"seq": s})) for s in range(1, 11)])
    conn.execute("DELETE FROM outbox WHERE seq > 7")  # pruned tail: seq 8..10 stay spent
    conn.execute("COMMIT")
    conn.close()


def _names(conn: sqlite3.Connection, kind: str) -> set[str]:
    return {r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = ? AND name NOT LIKE 'sqlite_%'", (kind,))}


def test_v1_store_migrates_in_place_and_keeps_working(tmp_path: Path,
                                                      open_engine: Opener) -> None:
    _write_v1(tmp_path / "engine.db")
    clock = VirtualClock(START + timedelta(seconds=60))
    engine = open_engine(make_config(), clock)
    conn = engine.conn
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 7
    assert "last_done_staff" in {r[1] for r in conn.execute("PRAGMA table_info(counters)")}
    # v5: visits and refusals, a rating's scale, a ticket's staff
    assert {"visits", "refusals"} <= _names(conn, "table")
    assert "scale" in {r[1] for r in conn.execute("PRAGMA table_info(ratings)")}
    assert "staff" in {r[1] for r in conn.execute("PRAGMA table_info(tickets)")}
    # v6: a counter's pending pause (after its current ticket)
    assert "pause_pending" in {r[1] for r in conn.execute("PRAGMA table_info(counters)")}
    # v7 (kiosk): a reported refusal's idempotency key, unique where set
    assert "key" in {r[1] for r in conn.execute("PRAGMA table_info(refusals)")}
    assert "refusals_key" in _names(conn, "index")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    indexes = _names(conn, "index")
    assert "tickets_issued" in indexes and "tickets_waiting" in indexes
    assert not indexes & {"tickets_qorder", "tickets_open", "tickets_number", "outbox_pending"}
    # v3: the outbox is a plain rowid table (no AUTOINCREMENT, no UNIQUE id index); its
    # rows survived and the old AUTOINCREMENT floor (seq 10, rows 8..10 pruned) is kept
    (ddl,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'outbox'").fetchone()
    assert "AUTOINCREMENT" not in ddl.upper() and "UNIQUE" not in ddl.upper()
    assert not [r for r in conn.execute("PRAGMA index_list(outbox)")]
    assert [r[0] for r in conn.execute("SELECT seq FROM outbox ORDER BY seq")] == \
        list(range(1, 8))
    assert conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'"
                        ).fetchone() == (10,)
    # service times kept, per service in their old order, in the clustered table
    assert conn.execute("SELECT service, seconds FROM service_times ORDER BY service, id"
                        ).fetchall() == [("accounts", 50.0), ("cash", 100.0), ("cash", 200.0),
                                         ("cash", 300.0)]
    assert list(engine._recent_times("cash")[0]) == [100.0, 200.0, 300.0]

    # numbering continues; a new ticket queues behind the migrated one (FIFO)
    a4 = engine.issue("cash")
    assert a4.number == "A004"
    engine.confirm_printed(a4.id)
    assert engine.call_next("c2").number == "A002"
    engine.done("c2")
    assert engine.call_next("c2").number == "A004"
    # the migrated called ticket finishes; its service time joins the history
    assert engine.done("c1").number == "B001"
    assert [r[0] for r in conn.execute(  # called 800 s before START, done at START + 60 s
        "SELECT seconds FROM service_times WHERE service = 'accounts' ORDER BY id")] == [
        50.0, 860.0]
    # the unconfirmed migrated ticket is auto-voided; call_specific finds old numbers
    engine.done("c2")
    assert engine.tick() == []  # not yet: a restarted engine first gives kiosks' confirms
    clock.advance(engine.cfg.engine.unconfirmed_timeout_s)  # their window (issue 12)
    assert [e["data"]["number"] for e in engine.tick()] == ["A003"]  # found via tickets_issued
    assert engine.get_ticket("t-a3").state == "void"
    with pytest.raises(Exception, match="A003 is void"):
        engine.call_specific("c1", "A003")
    # events continue above every seq ever used, pruned ones included
    seqs = [e["seq"] for e in engine.events_since(7)]
    assert seqs and seqs[0] == 11 and seqs == list(range(11, 11 + len(seqs)))
    engine.close()

    # reopening does not migrate again and the store still works
    engine2 = open_engine(make_config(), clock)
    assert engine2.issue("cash").number == "A005"


def test_call_specific_finds_wrapped_numbers(open_engine: Opener, clock: VirtualClock) -> None:
    engine = open_engine(make_config(engine_extra='number_wrap = "wrap"'), clock)
    engine.open_counter("c2")
    first = engine.issue("cash")
    engine.confirm_printed(first.id)
    engine.conn.execute("UPDATE day_services SET last_seq = 999 WHERE service = 'cash'")
    again = engine.issue("cash")  # seq 1000 shows as A001 again
    assert again.number == first.number == "A001"
    engine.confirm_printed(again.id)
    assert engine.call_specific("c2", "A001").id == again.id  # the newest one first
    engine.done("c2")
    assert engine.call_specific("c2", "a001").id == first.id
