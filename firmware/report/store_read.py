"""The report's rows, read from an engine store without writing a byte beside it.

:func:`open_readonly` opens ``engine.db`` the way :func:`tessera.engine.report.read_events`
always has (no ``-wal``/``-shm`` created next to it; a private copy when SQLite would
otherwise need to write one, or when the store is of an older schema and must be
migrated to be read), and :func:`read_facts` turns the v5 tables of a range of
business days into named rows.

    with open_readonly(Path("var/engine.db")) as store:
        facts = read_facts(store.conn, ["2026-03-02"], cfg)
    facts.visits[0].outcome
    # -> 'done'
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from tessera.config import BranchConfig, parse_hhmm
from tessera.errors import StoreError

Row = tuple[Any, ...]  # a raw SQLite row, made a named type right where it is read
LOCK_WAIT_S = 2.0  # how long a report waits for a store another program has locked
# what a store of each era must hold to be read (or migrated, then read)
OLD_TABLES = ("outbox", "meta", "day_services", "tickets", "counters", "ratings", "bookings")
TABLES = (*OLD_TABLES, "visits", "refusals")
# numeric columns the KPIs do arithmetic on: a damaged row is named, not a traceback
NUMERIC = {"tickets": ("issued_at", "est_wait_s"),
           "visits": ("queued_at", "called_at", "serving_at", "ended_at", "recalls"),
           "ratings": ("score", "at", "scale"), "refusals": ("at",), "bookings": ("slot",)}
SCAN_FROM_DAYS = 7  # ranges this long are read by a table scan, not the day index
CLOCK_SLACK_S = 3600.0  # ratings are found by time: tolerate a clock this far backwards


class TicketFact(NamedTuple):
    id: str
    number: str
    business_day: str
    origin: str  # the service it was issued for
    state: str
    priority: str | None
    appointment: str | None
    issued_at: float
    est_wait_s: float


class VisitFact(NamedTuple):
    """One stay of a ticket in one service's queue (table ``visits``)."""

    ticket_id: str
    n: int
    business_day: str
    service: str
    priority: str | None
    appointment: str | None
    queued_at: float
    called_at: float | None
    serving_at: float | None
    ended_at: float
    counter: str | None
    staff: str | None
    recalls: int
    outcome: str  # done | routed | transferred | no_show | void
    reason: str | None


class RatingFact(NamedTuple):
    business_day: str
    ticket_id: str | None
    counter: str
    staff: str
    service: str | None
    score: int
    scale: int  # the stored scale, or the counter's configured one for rows before v5
    status: str  # bound | duplicate | unbound
    at: float


class RefusalFact(NamedTuple):
    business_day: str
    at: float
    service: str
    reason: str


class BookingFact(NamedTuple):
    business_day: str
    code: str
    service: str
    slot: float
    state: str  # booked | checked_in | no_show
    ticket_id: str | None


@dataclass
class Facts:
    """Everything the KPIs are computed from, for the business days ``days``."""

    days: list[str]
    tickets: list[TicketFact] = field(default_factory=list)
    visits: list[VisitFact] = field(default_factory=list)
    ratings: list[RatingFact] = field(default_factory=list)
    refusals: list[RefusalFact] = field(default_factory=list)
    bookings: list[BookingFact] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Store:
    conn: sqlite3.Connection
    version: int  # the schema version of the file itself (before any private migration)
    notes: list[str]


@contextmanager
def open_readonly(db: Path) -> Iterator[Store]:
    """A read-only connection to the engine store ``db``; the file is never written.

    StoreError when ``db`` is missing, a directory, empty, not an engine store,
    locked, damaged or newer than this Tessera. A store of an older schema is
    migrated in a private copy (the file stays as it is; a note says so).
    """
    from tessera.config_paths import file_problem
    from tessera.engine.store import SCHEMA_VERSION, check_store, migrate

    if problem := file_problem(db):
        raise StoreError(f"{db}: {problem}")
    if db.stat().st_size == 0:
        raise StoreError(f"{db} is empty (0 bytes), not an engine store; point --db at the "
                         "engine.db in storage.dir")
    wal, shm = (db.with_name(db.name + suffix) for suffix in ("-wal", "-shm"))
    # a store copied with its WAL but no live writer: SQLite would create -shm beside it
    # to read the WAL (the check too), so everything reads a private copy
    stray_wal = wal.exists() and not shm.exists()
    if not stray_wal:
        version = _version(db, db, check_store)
        if version == SCHEMA_VERSION:
            conn = _connect_ro(db, wal)
            try:
                _require_tables(conn, db, TABLES)
                yield Store(conn, version, [])
            finally:
                conn.close()
            return
    # or one of an older schema, to migrate: read a private copy
    with tempfile.TemporaryDirectory(prefix="tessera-report-") as tmp:
        copy = Path(tmp) / db.name
        shutil.copyfile(db, copy)
        if wal.exists():
            shutil.copyfile(wal, Path(tmp) / wal.name)
        version = _version(copy, db, check_store)
        notes = []
        if version < SCHEMA_VERSION:
            rw = sqlite3.connect(copy, isolation_level=None)
            try:
                _require_tables(rw, db, OLD_TABLES)
                migrate(rw, version)
            except sqlite3.DatabaseError as e:
                raise StoreError(f"{db} (schema version {version}) cannot be migrated to be "
                                 f"read ({e}): a damaged engine store") from None
            finally:
                rw.close()
            notes.append(f"{db} has schema version {version}; it was read through a private "
                         f"copy migrated to {SCHEMA_VERSION} (the file was not changed). "
                         "Tickets from before v5 have no visit rows: their one stay is taken "
                         "from the ticket itself; refusals were not recorded then.")
        conn = _connect_ro(copy, Path(tmp) / wal.name)
        try:
            _require_tables(conn, db, TABLES)
            yield Store(conn, version, notes)
        finally:
            conn.close()


def _require_tables(conn: sqlite3.Connection, shown: Path, tables: tuple[str, ...]) -> None:
    have = {r[0] for r in _query(conn, "SELECT name FROM sqlite_master WHERE type = 'table'",
                                 ())}
    for t in tables:
        if t not in have:
            raise StoreError(f"{shown} has no {t} table: a damaged engine store")


def _version(path: Path, shown: Path, check: Callable[[Path], int]) -> int:
    """``check_store(path)`` (read-only), its errors naming ``shown``; refuses version 0."""
    try:
        version = check(path)
    except StoreError as e:
        raise StoreError(str(e).replace(str(path), str(shown))) from None
    if version == 0:
        raise StoreError(f"{shown} is an empty SQLite database, not an engine store yet "
                         "(has the engine run with this storage.dir?)")
    return version


def _connect_ro(path: Path, wal: Path) -> sqlite3.Connection:
    with path.open("rb") as f:
        wal_mode = f.read(20)[18:19] == b"\x02"  # the header's file format version
    # a WAL store without its -wal: immutable, as read-only would create -wal and -shm;
    # with one (a live engine), or a rollback-journal file: read-only, honouring locks
    mode = "mode=ro&immutable=1" if wal_mode and not wal.exists() else "mode=ro"
    return sqlite3.connect(f"file:{quote(str(path.resolve()))}?{mode}", uri=True,
                           timeout=LOCK_WAIT_S)


def known_days(conn: sqlite3.Connection) -> list[str]:
    """The business days the store has tickets or refusals for, oldest first."""
    return [r[0] for r in _query(conn, "SELECT business_day FROM day_services UNION "
                                       "SELECT business_day FROM refusals ORDER BY 1", ())]


def day_start(day: str, cfg: BranchConfig) -> float:
    """Epoch second at which business day ``day`` begins (the roll time, local, DST-aware)."""
    roll = parse_hhmm(cfg.branch.day_rollover)
    return datetime.combine(date.fromisoformat(day), roll, tzinfo=cfg.tz).timestamp()


def read_facts(conn: sqlite3.Connection, days: list[str], cfg: BranchConfig) -> Facts:
    """The rows of business days ``days`` (consecutive, oldest first) from a v5 store."""
    facts = Facts(list(days))
    if not days:
        return facts
    lo_day, hi_day = days[0], days[-1]
    rng = (lo_day, hi_day)
    # a day (the engine's close) through the business_day indexes; a week or more (most
    # of a store that keeps engine.keep_days) by one scan: the index's lookup per row
    # would cost more than reading every page once
    day_col = "business_day" if len(days) < SCAN_FROM_DAYS else "+business_day"
    facts.tickets = [TicketFact._make(r) for r in _query(
        conn, "SELECT id, number, business_day, origin, state, priority, appointment, "
        f"issued_at, est_wait_s FROM tickets WHERE {day_col} BETWEEN ? AND ?", rng)]
    facts.visits = [VisitFact._make(r) for r in _query(
        conn, "SELECT ticket_id, n, business_day, service, priority, appointment, queued_at, "
        "called_at, serving_at, ended_at, counter, staff, recalls, outcome, reason FROM visits "
        f"WHERE {day_col} BETWEEN ? AND ?", rng)]
    facts.visits += _stays_without_visits(conn, rng, {v.ticket_id for v in facts.visits})
    facts.refusals = [RefusalFact._make(r) for r in _query(
        conn, "SELECT business_day, at, service, reason FROM refusals "
        "WHERE business_day BETWEEN ? AND ?", rng)]
    lo = day_start(lo_day, cfg)
    hi = day_start((date.fromisoformat(hi_day) + timedelta(days=1)).isoformat(), cfg)
    day_of_at = _day_finder(days, cfg)
    for r in _query(conn, "SELECT ticket_id, counter, staff, service, score, scale, status, at "
                          "FROM ratings WHERE id >= ? AND at >= ? AND at < ?",
                    (_first_id_at(conn, lo - CLOCK_SLACK_S), lo - CLOCK_SLACK_S,
                     hi + CLOCK_SLACK_S)):
        day = day_of_at(r[7])
        if day is not None:
            scale = r[5] if r[5] is not None else cfg.rating_scale(r[1])
            facts.ratings.append(RatingFact(day, r[0], r[1], r[2] or "", r[3], int(r[4]),
                                            int(scale), r[6], r[7]))
    for code, service, slot, state, tid in _query(
            conn, "SELECT code, service, slot, state, ticket_id FROM bookings "
            "WHERE slot >= ? AND slot < ?", (lo - 86400.0, hi + 86400.0)):
        day = day_of_at(slot)
        if day is not None:
            facts.bookings.append(BookingFact(day, code, service, slot, state, tid))
    return facts


def _day_finder(days: list[str], cfg: BranchConfig) -> Callable[[float], str | None]:
    """The business day of ``days`` an epoch second falls in (None: outside them): the
    engine's own :func:`tessera.engine.day.business_day`, cached per UTC minute (a roll
    time and every UTC offset are whole minutes, so the day is constant within one)."""
    from tessera.engine.day import business_day

    wanted = set(days)
    tz, roll = cfg.tz, parse_hhmm(cfg.branch.day_rollover)
    cache: dict[int, str | None] = {}

    def find(epoch: float) -> str | None:
        m = int(epoch // 60)
        if m not in cache:
            day = business_day(datetime.fromtimestamp(m * 60, tz), tz, roll).isoformat()
            cache[m] = day if day in wanted else None
        return cache[m]
    return find


def _stays_without_visits(conn: sqlite3.Connection, rng: tuple[str, str],
                          have: set[str]) -> list[VisitFact]:
    """One stay per finished ticket the ``visits`` table does not know (written before
    schema v5, read through a migrated copy), from the ticket's own columns."""
    out = []
    for r in _query(conn, "SELECT id, business_day, service, priority, appointment, queued_at, "
                          "called_at, serving_at, ended_at, counter, staff, recalls, state "
                          "FROM tickets WHERE business_day BETWEEN ? AND ? AND state IN "
                          "('done', 'no_show') AND NOT EXISTS (SELECT 1 FROM visits v "
                          "WHERE v.ticket_id = tickets.id)", rng):
        if r[0] in have or r[8] is None:
            continue
        serving = r[7] if r[7] is not None else (r[8] if r[12] == "done" else None)
        out.append(VisitFact(r[0], 1, r[1], r[2], r[3], r[4], r[5], r[6], serving, r[8],
                             r[9], r[10], r[11], r[12], None))
    return out


def _first_id_at(conn: sqlite3.Connection, t: float) -> int:
    """The smallest rating id whose row is at or after ``t`` (ids grow with time), by
    bisection over the primary key: a year of ratings costs ~20 lookups, not a scan."""
    row = _query(conn, "SELECT MIN(id), MAX(id) FROM ratings", ())
    lo, hi = row[0] if row else (None, None)
    if lo is None or hi is None:
        return 0
    while lo < hi:
        mid = (lo + hi) // 2
        got = _query(conn, "SELECT id, at FROM ratings WHERE id >= ? ORDER BY id LIMIT 1",
                     (mid,))
        if not got:
            hi = mid
        elif got[0][1] < t:
            lo = got[0][0] + 1
        else:  # the answer is below mid, or the first id at or after it
            hi = mid
    return int(lo)


def _query(conn: sqlite3.Connection, sql: str, args: tuple[object, ...]) -> list[Row]:
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError as e:
        why = "is locked by another program; try again" if "locked" in str(e) else \
            f"is not a readable engine store ({e}); it may be damaged"
        raise StoreError(f"the store {why}") from None
    except sqlite3.DatabaseError as e:
        raise StoreError(f"the store is a damaged SQLite database ({e})") from None


def damaged_row(conn: sqlite3.Connection) -> str | None:
    """Where the store holds a value the KPIs cannot compute with (text where a number
    belongs), e.g. ``"tickets row id 't1': issued_at is 'soon'"``; None when none."""
    for table, cols in NUMERIC.items():
        for col in cols:
            rows = _query(conn, f"SELECT rowid, {col} FROM {table} WHERE typeof({col}) NOT IN "
                          "('integer', 'real', 'null') LIMIT 1", ()) if table != "visits" \
                else _query(conn, f"SELECT ticket_id, {col} FROM visits WHERE typeof({col}) "
                            "NOT IN ('integer', 'real', 'null') LIMIT 1", ())
            if rows:
                key, value = rows[0]
                return f"{table} row {key!r}: {col} is {str(value)[:40]!r}, not a number"
    return None
