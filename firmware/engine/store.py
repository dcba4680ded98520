"""The engine's SQLite store: schema, forward migrations, safe opening.

The file is checked read-only *before* anything is written, so a corrupt
file, someone else's SQLite database or one from a newer Tessera is refused
with a clear :class:`StoreError` and left byte-for-byte untouched.

    >>> conn = open_store(Path("var/engine.db"))   # creates or migrates
    >>> conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    True

Schema versions live in ``PRAGMA user_version``; ``MIGRATIONS[i]`` takes the
file from version ``i`` to ``i + 1`` and runs inside one transaction.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

from tessera.errors import StoreError
from tessera.outbox import connect

# "TSQE" — marks the file as a Tessera queue-engine store.
APPLICATION_ID = 0x54535145
SQLITE_MAGIC = b"SQLite format 3\x00"
# A command touches ~7-11 pages (ticket row and its indexes, outbox row and its indexes);
# each goes to the WAL whole before the commit's fsync. 1 KiB pages write ~3x fewer
# bytes per commit than 4 KiB (less to flush, less flash wear). New stores only.
PAGE_SIZE = 1024

_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE day_services (
    business_day TEXT NOT NULL, service TEXT NOT NULL, prefix TEXT NOT NULL,
    last_seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (business_day, service)
);
CREATE TABLE tickets (
    id TEXT PRIMARY KEY,
    business_day TEXT NOT NULL,
    service TEXT NOT NULL,
    origin TEXT NOT NULL,
    seq INTEGER NOT NULL,
    number TEXT NOT NULL,
    state TEXT NOT NULL,
    priority TEXT,
    rank INTEGER NOT NULL,
    issued_at REAL NOT NULL,
    queued_at REAL NOT NULL,
    qorder INTEGER NOT NULL,
    called_at REAL,
    serving_at REAL,
    ended_at REAL,
    counter TEXT,
    recalls INTEGER NOT NULL DEFAULT 0,
    appointment TEXT,
    slot REAL,
    route TEXT NOT NULL DEFAULT '',
    people_ahead INTEGER NOT NULL DEFAULT 0,
    est_wait_s REAL NOT NULL DEFAULT 0,
    UNIQUE (business_day, origin, seq)
);
CREATE INDEX tickets_waiting ON tickets(service, rank, qorder) WHERE state = 'waiting';
CREATE INDEX tickets_qorder ON tickets(qorder);
CREATE INDEX tickets_open ON tickets(state) WHERE state IN ('issued', 'called', 'serving');
CREATE INDEX tickets_number ON tickets(business_day, number);
CREATE TABLE service_times (
    id INTEGER PRIMARY KEY AUTOINCREMENT, service TEXT NOT NULL, seconds REAL NOT NULL
);
CREATE INDEX service_times_by_service ON service_times(service, id);
CREATE TABLE counters (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL DEFAULT 'closed',
    staff TEXT NOT NULL DEFAULT '',
    current TEXT,
    priority_streak INTEGER NOT NULL DEFAULT 0,
    last_done TEXT,
    last_done_at REAL,
    last_done_service TEXT
);
CREATE TABLE ratings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id TEXT, counter TEXT NOT NULL, staff TEXT NOT NULL, service TEXT,
    score INTEGER NOT NULL, status TEXT NOT NULL, at REAL NOT NULL
);
CREATE UNIQUE INDEX ratings_bound ON ratings(ticket_id) WHERE status = 'bound';
CREATE TABLE bookings (
    code TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    slot REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'booked',
    ticket_id TEXT
);
"""

# v2: fewer B-tree pages dirtied per command (each one is a WAL frame before the
# commit's fsync). Gone: ``tickets_qorder`` (the queue position now comes from the
# outbox sequence, see core._next_qorder), ``tickets_number`` (call_specific finds a
# number through the UNIQUE (business_day, origin, seq) index) and ``tickets_open``
# (only auto-void needs the issued tickets: ``tickets_issued``; called/serving tickets
# are the counters' ``current``). ``service_times`` is clustered on (service, id):
# one B-tree instead of a table plus an index.
_V2 = """
DROP INDEX tickets_open;
DROP INDEX tickets_qorder;
DROP INDEX tickets_number;
CREATE INDEX tickets_issued ON tickets(issued_at) WHERE state = 'issued';
CREATE TABLE service_times_v2 (
    service TEXT NOT NULL, id INTEGER NOT NULL, seconds REAL NOT NULL,
    PRIMARY KEY (service, id)
) WITHOUT ROWID;
INSERT INTO service_times_v2(service, id, seconds) SELECT service, id, seconds FROM service_times;
DROP TABLE service_times;
ALTER TABLE service_times_v2 RENAME TO service_times;
"""

# v3: the outbox without AUTOINCREMENT, UNIQUE(id) and the partial index on undelivered
# rows (three B-tree pages less in every commit's WAL, see tessera.outbox.SCHEMA). The
# AUTOINCREMENT floor is kept: DROP TABLE deletes the table's sqlite_sequence row, so
# it is parked under another name first and put back as a plain row, which
# ``tessera.outbox.NEXT_SEQ_SQL`` still reads (``ratings`` keeps sqlite_sequence alive).
_V3 = """
CREATE TABLE outbox_v3 (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    ts TEXT NOT NULL,
    body TEXT NOT NULL,
    delivered_at REAL
);
INSERT INTO outbox_v3(seq, id, type, ts, body, delivered_at)
    SELECT seq, id, type, ts, body, delivered_at FROM outbox;
UPDATE sqlite_sequence SET name = 'outbox floor' WHERE name = 'outbox';
DROP TABLE outbox;
ALTER TABLE outbox_v3 RENAME TO outbox;
UPDATE sqlite_sequence SET name = 'outbox' WHERE name = 'outbox floor'
"""

# v4: a rating is credited to the staff who completed the ticket, not to whoever is
# logged in at the counter when the customer presses (a shift change inside the window).
_V4 = """
ALTER TABLE counters ADD COLUMN last_done_staff TEXT
"""

# v5: what reports and the kiosk need kept (issues 15, 18). ``visits``: one row per
# stay of a ticket in one service's queue, written when the stay ends (served, routed
# on, transferred, no-show, voided), so waits and service times are per service even
# for a ticket transferred twice. ``refusals``: a kiosk press that got no ticket, and
# why. ``ratings.scale``: the scale the score was given on (NULL for older rows: the
# configured scale). ``tickets.staff``: who called it last.
_V5 = """
CREATE TABLE visits (
    ticket_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    business_day TEXT NOT NULL,
    service TEXT NOT NULL,
    priority TEXT,
    appointment TEXT,
    queued_at REAL NOT NULL,
    called_at REAL,
    serving_at REAL,
    ended_at REAL NOT NULL,
    counter TEXT,
    staff TEXT,
    recalls INTEGER NOT NULL DEFAULT 0,
    outcome TEXT NOT NULL,
    reason TEXT,
    PRIMARY KEY (ticket_id, n)
) WITHOUT ROWID;
CREATE INDEX visits_by_day ON visits(business_day);
CREATE TABLE refusals (
    id INTEGER PRIMARY KEY,
    business_day TEXT NOT NULL,
    at REAL NOT NULL,
    service TEXT NOT NULL,
    reason TEXT NOT NULL,
    device TEXT NOT NULL DEFAULT ''
);
CREATE INDEX refusals_by_day ON refusals(business_day);
ALTER TABLE ratings ADD COLUMN scale INTEGER;
ALTER TABLE tickets ADD COLUMN staff TEXT
"""

# v6 (counter, issue 15): PAUSE while a ticket is at the counter, with
# ``engine.pause_while_called = "after_done"``, pauses it when that ticket ends; the
# pending pause survives a restart.
_V6_COUNTER = """
ALTER TABLE counters ADD COLUMN pause_pending INTEGER NOT NULL DEFAULT 0
"""

# The outbox as v1 created it (tessera.outbox.SCHEMA has moved on: a migration's text
# never changes once released).
_OUTBOX_V1 = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    ts TEXT NOT NULL,
    body TEXT NOT NULL,
    delivered_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(seq) WHERE delivered_at IS NULL;
"""

# A full ``PRAGMA quick_check`` reads every page: ~1 s per 100 MiB on a Pi's SD card,
# at every start. Files up to this size get it at open; a bigger one (a long-lived
# branch) gets a cheap check at open (header, schema, the root-to-newest path of the
# big B-trees) and the full one in the background (tessera.engine.upkeep). Why that
# is enough at start: WAL with synchronous=FULL survives a power cut by SQLite's
# design, so what corrupts a store is a failing medium or a foreign writer, which
# the background check still reports; what a start must refuse outright (not
# SQLite, foreign, newer, torn header) is found without reading every page.
FULL_CHECK_MAX_BYTES = 32 << 20

# v6 (kiosk, issue 15): a refusal the kiosk reported itself (a printer fault) carries
# the kiosk's idempotency key, so a report re-sent after a lost answer or a restart is
# kept once. Engine-decided refusals have no key (NULL: not unique-checked).
_V7_KIOSK = """
ALTER TABLE refusals ADD COLUMN key TEXT;
CREATE UNIQUE INDEX refusals_key ON refusals(key) WHERE key IS NOT NULL
"""

# MIGRATIONS[i] upgrades a version-i file to version i+1.
MIGRATIONS: tuple[str, ...] = (_V1 + _OUTBOX_V1, _V2, _V3, _V4, _V5, _V6_COUNTER, _V7_KIOSK)
SCHEMA_VERSION = len(MIGRATIONS)


def check_store(path: Path) -> int:
    """Inspect ``path`` read-only; return its schema version (0 = new/empty).

    Raises StoreError for anything that is not an engine store we can use.
    """
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with path.open("rb") as f:
        head = f.read(100)
    if not head.startswith(SQLITE_MAGIC):
        raise StoreError(
            f"{path} is not a SQLite database (corrupt or some other file). It was left "
            "untouched: move it away (keep it for diagnosis) and start again, or point "
            "storage.dir elsewhere.")
    # without a WAL beside it, "immutable" reads the file without creating -wal/-shm
    wal = path.with_name(path.name + "-wal")
    mode = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
    try:
        ro = sqlite3.connect(f"file:{quote(str(path.resolve()))}?{mode}", uri=True)
        try:
            (app_id,) = ro.execute("PRAGMA application_id").fetchone()
            (version,) = ro.execute("PRAGMA user_version").fetchone()
            tables = [r[0] for r in ro.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%'")]
            check = _check(ro, path)
        finally:
            ro.close()
    except sqlite3.DatabaseError as e:
        raise StoreError(
            f"{path} is a damaged SQLite database ({e}). It was left untouched: restore it "
            "from a backup or move it away to start a new queue store.") from None
    if check != "ok":
        raise StoreError(f"{path} failed SQLite's integrity check ({check}). It was left "
                         "untouched: restore it from a backup or move it away.")
    if app_id != APPLICATION_ID:
        if app_id == 0 and not tables:
            return 0
        raise StoreError(
            f"{path} is a SQLite database of some other program (tables: "
            f"{', '.join(sorted(tables)) or 'none'}). It was left untouched: point "
            "storage.dir at Tessera's own directory.")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema version {version}, written by a newer Tessera (this one "
            f"knows up to {SCHEMA_VERSION}). It was left untouched: upgrade Tessera.")
    return int(version)


def _check(ro: sqlite3.Connection, path: Path) -> str:
    """``quick_check`` for a small file; for a big one, read the schema and the newest
    rows of every table (a malformed page on those paths raises DatabaseError)."""
    if path.stat().st_size <= FULL_CHECK_MAX_BYTES:
        (check,) = ro.execute("PRAGMA quick_check(1)").fetchone()
        return str(check)
    tables = [r[0] for r in ro.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for t in tables:
        order = " ORDER BY rowid DESC" if _has_rowid(ro, t) else ""
        ro.execute(f'SELECT * FROM "{t}"{order} LIMIT 1').fetchall()
    return "ok"


def _has_rowid(ro: sqlite3.Connection, table: str) -> bool:
    sql = ro.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    return not (sql and sql[0] and "WITHOUT ROWID" in sql[0].upper())


def full_check(path: Path) -> str:
    """SQLite's ``quick_check`` of the whole file, read-only ("ok" when sound); for the
    background check of a big store."""
    ro = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
    try:
        (check,) = ro.execute("PRAGMA quick_check(1)").fetchone()
        return str(check)
    finally:
        ro.close()


def open_store(path: Path) -> sqlite3.Connection:
    """Check, then open (WAL, synchronous=FULL) and migrate the store at ``path``."""
    version = check_store(path)
    conn = connect(path, page_size=PAGE_SIZE if version == 0 else None)
    try:
        migrate(conn, version)
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection, version: int) -> None:
    """Apply every migration after ``version``, each in its own transaction."""
    for target in range(version + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            (current,) = conn.execute("PRAGMA user_version").fetchone()
            if current >= target:  # another process migrated meanwhile
                conn.execute("ROLLBACK")
                continue
            for stmt in _statements(MIGRATIONS[target - 1]):
                conn.execute(stmt)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {target}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _statements(script: str) -> list[str]:
    # executescript() would COMMIT our transaction; split on ';' instead (no
    # triggers or string literals with ';' in our schema).
    return [s.strip() for s in script.split(";") if s.strip()]
