"""Day KPIs from the engine's outbox: waits, service times, SLA, no-shows, ratings, peaks.

Deprecated (issue 18): ``tessera report`` now computes every KPI once, in
:mod:`tessera.report` from the store's tables (docs/kpi.md); this module stays for
a copy of the event stream without its store.

Computed from the events (the same facts HQ receives), so a report can be
rebuilt from any copy of the event stream. :func:`read_events` reads them from
an engine store without writing a byte next to it (no ``-wal``/``-shm``), and
refuses anything that is not one with a StoreError saying what it is.

    kpis = day_report(engine.events_since(0), cfg, "2026-03-02")
    kpis["services"]["cash"]["sla_pct"]
    # -> 93.8
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import statistics
import tempfile
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec

from tessera.config import BranchConfig
from tessera.errors import StoreError
from tessera.stats import percentile

Envelope = dict[str, Any]
LOCK_WAIT_S = 2.0  # how long a report waits for a store another program has locked


class _EnvelopeShape(msgspec.Struct):
    """What the report needs of every event (more fields are allowed)."""

    seq: int
    type: str
    ts: str
    data: dict[str, Any]


def read_events(db: Path) -> list[Envelope]:
    """Every event of the engine store ``db`` in ``seq`` order, read-only.

    StoreError when ``db`` is missing, a directory, empty, not an engine store,
    locked, damaged, or holds an event that is not a JSON envelope.
    """
    from tessera.config_paths import file_problem
    from tessera.engine.store import check_store

    if problem := file_problem(db):
        raise StoreError(f"{db}: {problem}")
    if db.stat().st_size == 0:
        raise StoreError(f"{db} is empty (0 bytes), not an engine store; point --db at the "
                         "engine.db in storage.dir")
    wal, shm = (db.with_name(db.name + suffix) for suffix in ("-wal", "-shm"))
    if wal.exists() and not shm.exists():
        # a store copied with its WAL but no live writer: SQLite would create -shm
        # beside it to read the WAL, so read a private copy instead
        with tempfile.TemporaryDirectory(prefix="tessera-report-") as tmp:
            copy = Path(tmp) / db.name
            shutil.copyfile(db, copy)
            shutil.copyfile(wal, Path(tmp) / wal.name)
            return _read(copy, db, check_store)
    return _read(db, db, check_store)


def _read(path: Path, shown: Path, check: Any) -> list[Envelope]:
    try:
        version = check(path)
    except StoreError as e:
        raise StoreError(str(e).replace(str(path), str(shown))) from None
    if version == 0:
        raise StoreError(f"{shown} is an empty SQLite database, not an engine store yet "
                         "(has the engine run with this storage.dir?)")
    wal = path.with_name(path.name + "-wal")
    with path.open("rb") as f:
        wal_mode = f.read(20)[18:19] == b"\x02"  # the header's file format version
    # a WAL store without its -wal: immutable, as read-only would create -wal and -shm;
    # with one (a live engine), or a rollback-journal file: read-only, honouring locks
    mode = "mode=ro&immutable=1" if wal_mode and not wal.exists() else "mode=ro"
    try:
        conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?{mode}", uri=True,
                               timeout=LOCK_WAIT_S)
        try:
            rows = conn.execute("SELECT seq, body FROM outbox ORDER BY seq").fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError as e:
        why = "is locked by another program; try again" if "locked" in str(e) else \
            "has no outbox table: a damaged engine store" if "no such table" in str(e) else \
            f"cannot be read ({e})"
        raise StoreError(f"{shown} {why}") from None
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{shown} is a damaged SQLite database ({e})") from None
    events: list[Envelope] = []
    for seq, body in rows:
        try:
            event = json.loads(body)
            msgspec.convert(event, _EnvelopeShape)
        except (ValueError, TypeError, msgspec.ValidationError) as e:
            raise StoreError(f"{shown}: event seq {seq} is not a Tessera event envelope "
                             f"({str(e)[:120]}); the store is damaged or not Tessera's"
                             ) from None
        events.append(event)
    return events


def _rolled_to(e: Envelope) -> str | None:
    """The business day a ``day.rolled`` event starts (None for any other event)."""
    day = e["data"].get("business_day") if e["type"] == "day.rolled" else None
    return day if isinstance(day, str) else None


def days_in(events: list[Envelope]) -> list[str]:
    return [day for e in events if (day := _rolled_to(e)) is not None]


def events_of_day(events: list[Envelope], day: str) -> list[Envelope]:
    """The events between the roll into ``day`` and the next roll (outbox order)."""
    out: list[Envelope] = []
    current = None
    for e in events:
        if e["type"] == "day.rolled":
            current = _rolled_to(e)
            continue
        if current == day:
            out.append(e)
    return out


def _stats(xs: list[float]) -> dict[str, float | int | None]:
    if not xs:
        return {"n": 0, "mean_s": None, "p50_s": None, "p90_s": None}
    return {"n": len(xs), "mean_s": round(statistics.fmean(xs), 1),
            "p50_s": round(percentile(xs, 0.5), 1), "p90_s": round(percentile(xs, 0.9), 1)}


def _ratings(scores: list[int], alerts: int) -> dict[str, Any]:
    return {"n": len(scores), "mean": round(statistics.fmean(scores), 2) if scores else None,
            "alerts": alerts}


class _Tally:
    """The day's counts, one event at a time."""

    def __init__(self, cfg: BranchConfig) -> None:
        self.cfg = cfg
        self.waits: dict[str, list[float]] = defaultdict(list)
        self.service_s: dict[tuple[str, str], list[float]] = defaultdict(list)  # (kind, key)
        self.issued: Counter[str] = Counter()
        self.no_shows = {"walk_in": 0, "appointment": 0}
        self.voids = 0
        self.peaks: Counter[str] = Counter()
        self.scores: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.alerts: Counter[tuple[str, str]] = Counter()
        self.first_call: set[str] = set()
        self.rating_status: Counter[str] = Counter()

    def add(self, e: Envelope) -> None:
        """Count ``e``; StoreError (naming its seq) when a field the report needs is bad."""
        try:
            self._add(e["data"], e["type"], e)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise StoreError(f"event seq {e.get('seq')} ({e.get('type')}): a field the report "
                             f"needs is missing or wrong ({err!s:.80}); the store is damaged"
                             ) from None

    def _add(self, d: dict[str, Any], t: str, e: Envelope) -> None:
        if t == "ticket.issued":
            self.issued[d["service"]] += 1
            ts = datetime.fromisoformat(e["ts"]).astimezone(self.cfg.tz)
            self.peaks[f"{ts:%H}:00"] += 1
        elif t == "ticket.called" and d["ticket_id"] not in self.first_call:
            self.first_call.add(d["ticket_id"])
            self.waits[d["service"]].append(float(d["wait_s"]))
        elif t == "ticket.done":
            for kind in ("service", "counter", "staff"):
                key = d[kind] if kind != "staff" else (d["staff"] or "-")
                self.service_s[kind, key].append(float(d["service_s"]))
        elif t == "ticket.no_show":
            self.no_shows["appointment" if d["appointment"] else "walk_in"] += 1
        elif t == "appointment.missed":  # booked, never checked in (engine/bookings.py)
            self.no_shows["appointment"] += 1
        elif t == "ticket.no_show_undone":  # the customer came back: not a no-show
            self.no_shows["appointment" if d["appointment"] else "walk_in"] -= 1
        elif t == "ticket.void":
            self.voids += 1
        elif t == "feedback.rated":
            self.rating_status[d["status"]] += 1
            if d["status"] == "bound":
                for kind in ("service", "counter", "staff"):
                    self.scores[kind, d[kind] or "-"].append(int(d["score"]))
        elif t == "feedback.alert":
            for kind in ("service", "counter", "staff"):
                self.alerts[kind, d[kind] or "-"] += 1


def day_report(events: list[Envelope], cfg: BranchConfig, day: str) -> dict[str, Any]:
    """KPIs of business day ``day`` per branch, service, counter and staff."""
    tally = _Tally(cfg)
    for e in events_of_day(events, day):
        tally.add(e)
    waits, service_s, scores, alerts = tally.waits, tally.service_s, tally.scores, tally.alerts
    issued, peaks = tally.issued, tally.peaks
    services = {}
    for svc in cfg.services:
        w = waits.get(svc.id, [])
        within = sum(1 for x in w if x <= svc.sla_wait_s)
        services[svc.id] = {
            "issued": issued[svc.id], "wait": _stats(w),
            "service_time": _stats(service_s.get(("service", svc.id), [])),
            "sla_wait_s": svc.sla_wait_s, "sla_target_pct": round(svc.sla_target * 100, 1),
            "sla_pct": round(100 * within / len(w), 1) if w else None,
            "ratings": _ratings(scores.get(("service", svc.id), []),
                                alerts[("service", svc.id)])}

    def per(kind: str) -> dict[str, Any]:
        keys = {k for (kk, k) in service_s if kk == kind} | {k for (kk, k) in scores if kk == kind}
        return {k: {"service_time": _stats(service_s.get((kind, k), [])),
                    "ratings": _ratings(scores.get((kind, k), []), alerts[(kind, k)])}
                for k in sorted(keys)}

    all_waits = [x for xs in waits.values() for x in xs]
    return {
        "business_day": day, "issued": sum(issued.values()), "wait": _stats(all_waits),
        "no_shows": tally.no_shows, "voided": tally.voids,
        "ratings": dict(tally.rating_status),
        "peak_hours": dict(sorted(peaks.items(), key=lambda kv: (-kv[1], kv[0]))[:5]),
        "issued_by_hour": dict(sorted(peaks.items())),
        "services": services, "counters": per("counter"), "staff": per("staff"),
    }
