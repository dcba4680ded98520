"""``tessera bench report``: the manager's month report at 3,000 tickets a day.

A synthetic month (``--quick``: a week at 300 a day) of the bank example is written
into a real engine store by bulk SQL shaped like the engine's rows (tickets, one
visit per stay with transfers, no-shows, day-end voids and failed prints, ratings
on each counter's scale, refusals, bookings); then the month's report is timed in
its phases: reading the rows (``month_read_s``), computing the KPIs
(``month_compute_s``; both together ``month_kpi_s``), the five charts
(``month_charts_s``), the HTML page and the CSV/JSON files, and the engine's
day-close summary of one full day (``day_close_kpi_ms``, median of 5, the cost the
day roll's transaction pays). ``dominant`` names the slowest phase. Target: the
month's report (KPIs + charts) within ``target_s`` (5 s) on x86.

    tessera bench report --json
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from tessera.config import BranchConfig, load_config
from tessera.engine.store import open_store
from tessera.outbox import uuid7

TARGET_S = 5.0
Row = tuple[object, ...]


def _rows(cfg: BranchConfig, days: list[str], per_day: int, seed: int = 18
          ) -> tuple[list[Row], list[Row], list[Row], list[Row], list[Row]]:
    """(tickets, visits, ratings, refusals, bookings) rows as the engine writes them."""
    rng = random.Random(seed)
    services = [s.id for s in cfg.services]
    prefixes = {s.id: s.prefix for s in cfg.services}
    counters = [(c.id, c.staff or f"t-{c.id}", [cs.service for cs in c.services],
                 cfg.rating_scale(c.id)) for c in cfg.counters]
    tickets: list[Row] = []
    visits: list[Row] = []
    ratings: list[Row] = []
    refusals: list[Row] = []
    bookings: list[Row] = []
    qorder = 0
    for day in days:
        d = date.fromisoformat(day)
        t0 = datetime(d.year, d.month, d.day, 9, tzinfo=cfg.tz).timestamp()
        seqs = dict.fromkeys(services, 0)
        for i in range(per_day):
            svc = services[rng.randrange(len(services))]
            seqs[svc] += 1
            qorder += 1
            issued = t0 + i * (8 * 3600 / per_day)
            tid = uuid7(int(issued * 1000))
            est = rng.uniform(60, 1200)
            priority = "priority" if rng.random() < 0.05 else None
            fate = rng.random()
            if fate < 0.01:  # the print failed
                tickets.append((tid, day, svc, svc, seqs[svc], f"{prefixes[svc]}{seqs[svc]:03d}",
                                "void", priority, 1, issued, issued, qorder, None, None, issued,
                                None, 0, None, None, "", 3, est, None))
                continue
            cid, staff, _, scale = counters[rng.randrange(len(counters))]
            queued, n, service, state = issued, 1, svc, "done"
            stays = 2 if rng.random() < 0.05 else 1
            for stay in range(stays):
                called = queued + rng.uniform(20, 1500)
                if fate > 0.98 and stay == stays - 1:  # left waiting at the close
                    visits.append((tid, n, day, service, priority, None, queued, None, None,
                                   t0 + 19 * 3600, None, None, 0, "void", "day_end"))
                    state = "void"
                    break
                serving = called + rng.uniform(10, 60)
                ended = serving + rng.uniform(60, 600)
                if stay < stays - 1:
                    nxt = services[(services.index(service) + 1) % len(services)]
                    visits.append((tid, n, day, service, priority, None, queued, called, None,
                                   called + 30, cid, staff, 0, "transferred", nxt))
                    queued, service, n = called + 30, nxt, n + 1
                    continue
                outcome = "no_show" if fate < 0.04 else "done"
                visits.append((tid, n, day, service, priority, None, queued, called,
                               serving if outcome == "done" else None, ended, cid, staff,
                               int(rng.random() < 0.1), outcome, None))
                state = outcome
                if outcome == "done" and rng.random() < 0.3:
                    score = rng.choice([scale, scale, scale - 1, max(1, scale - 2), 1])
                    ratings.append((tid, cid, staff, service, score, "bound", ended + 15,
                                    scale))
            tickets.append((tid, day, service, svc, seqs[svc], f"{prefixes[svc]}{seqs[svc]:03d}",
                            state, priority, 3, issued, queued, qorder, None, None, issued,
                            None, 0, None, None, "", 3, est, None))
        for j in range(per_day // 60):
            refusals.append((day, t0 + j * 600, services[j % len(services)],
                             ("closed", "past_closing", "printer_fault")[j % 3], "kiosk-main"))
        for j in range(per_day // 150):
            bookings.append((f"BK-{day}-{j}", services[j % len(services)], t0 + 3600 + j * 900,
                             "booked" if j % 4 == 0 else "checked_in"))
    return tickets, visits, ratings, refusals, bookings


def _rating_at(r: Row) -> float:
    at = r[6]
    assert isinstance(at, float)
    return at


def build_month_store(path: Path, cfg: BranchConfig, days: list[str], per_day: int) -> int:
    """Write the store at ``path`` (replaced); return the number of tickets."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    open_store(path).close()
    tickets, visits, ratings, refusals, bookings = _rows(cfg, days, per_day)
    by_time: list[Row] = sorted(ratings, key=_rating_at)  # ids grow with time, as the engine's
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO tickets(id, business_day, service, origin, seq, number, state, "
            "priority, rank, issued_at, queued_at, qorder, called_at, serving_at, ended_at, "
            "counter, recalls, appointment, slot, route, people_ahead, est_wait_s, staff) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            tickets)
        conn.executemany(
            "INSERT INTO visits(ticket_id, n, business_day, service, priority, appointment, "
            "queued_at, called_at, serving_at, ended_at, counter, staff, recalls, outcome, "
            "reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", visits)
        conn.executemany(
            "INSERT INTO ratings(ticket_id, counter, staff, service, score, status, at, scale) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", by_time)
        conn.executemany("INSERT INTO refusals(business_day, at, service, reason, device) "
                         "VALUES (?, ?, ?, ?, ?)", refusals)
        conn.executemany("INSERT INTO bookings(code, service, slot, state) VALUES (?, ?, ?, ?)",
                         bookings)
        conn.executemany(
            "INSERT INTO day_services(business_day, service, prefix) VALUES (?, ?, ?)",
            ((d, s.id, s.prefix) for d in days for s in cfg.services))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return len(tickets)


def _month(quick: bool) -> tuple[list[str], int]:
    if quick:
        return [(date(2026, 3, 2) + timedelta(days=i)).isoformat() for i in range(7)], 300
    return [(date(2026, 3, 1) + timedelta(days=i)).isoformat() for i in range(31)], 3000


def _bank() -> BranchConfig:
    from importlib.resources import files

    return load_config(Path(str(files("tessera.examples") / "bank.toml")))


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tessera.report.daily import closed_day_summary
    from tessera.report.export import write_csv, write_json
    from tessera.report.kpi import compute
    from tessera.report.render import render_charts, write_html
    from tessera.report.store_read import open_readonly, read_facts

    cfg = _bank()
    days, per_day = _month(bool(getattr(args, "quick", False)))
    with tempfile.TemporaryDirectory(prefix="tessera-bench-report-") as tmp:
        db = Path(tmp) / "engine.db"
        t = time.perf_counter()
        n = build_month_store(db, cfg, days, per_day)
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        with open_readonly(db) as store:
            facts = read_facts(store.conn, days, cfg)
        read_s = time.perf_counter() - t
        t = time.perf_counter()
        kpis = compute(facts, cfg)
        compute_s = time.perf_counter() - t
        render_charts(kpis, cfg)  # warm: the first call loads matplotlib and the font
        t = time.perf_counter()
        charts = render_charts(kpis, cfg)
        charts_s = time.perf_counter() - t
        out = Path(tmp) / "out"
        out.mkdir()
        t = time.perf_counter()
        write_html(kpis, cfg, charts, out / "report.html")
        html_s = time.perf_counter() - t
        t = time.perf_counter()
        write_csv(kpis, out)
        write_json(kpis, out)
        files_s = time.perf_counter() - t
        conn = sqlite3.connect(db)
        try:
            close = []
            for _ in range(5):
                t = time.perf_counter()
                conn.execute("BEGIN IMMEDIATE")  # as inside the day roll's transaction
                closed_day_summary(conn, days[len(days) // 2], cfg)
                conn.execute("ROLLBACK")
                close.append(time.perf_counter() - t)
        finally:
            conn.close()
    phases = {"month_read_s": read_s, "month_compute_s": compute_s, "month_charts_s": charts_s,
              "month_html_s": html_s, "month_csv_json_s": files_s}
    total = read_s + compute_s + charts_s
    return {
        "days": len(days), "tickets": n, "visits": len(facts.visits),
        "ratings": len(facts.ratings), "build_store_s": round(build_s, 2),
        **{k: round(v, 3) for k, v in phases.items()},
        "month_kpi_s": round(read_s + compute_s, 3),
        "month_report_s": round(total, 3), "target_s": TARGET_S,
        "within_target": total < TARGET_S, "dominant": max(phases, key=lambda k: phases[k]),
        "day_close_kpi_ms": round(1000 * statistics.median(close), 1),
        "quick": bool(getattr(args, "quick", False)),
    }
