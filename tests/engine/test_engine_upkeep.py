"""Store upkeep (issue 12, bounded everything): old business days are pruned on a
schedule in small batches; today's and the counters' tickets never; a big store gets
the cheap check at open and the full one from the upkeep."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from tessera.bench.store_year import build_year_store
from tessera.clock import VirtualClock
from tessera.config import parse_config
from tessera.engine import store as store_mod
from tessera.engine.store import check_store
from tessera.engine.upkeep import StoreUpkeep

TOML = """
[branch]
tenant = "acme"
branch = "b1"
timezone = "UTC"
languages = ["en"]
[clock]
trust = "always"
[[services]]
id = "cash"
prefix = "A"
names = { en = "Cash" }
[[counters]]
id = "c1"
number = 1
services = [{ service = "cash" }]
[engine]
keep_days = 31
"""

TODAY = date(2026, 6, 30)


def _store(tmp_path: Path, days: int = 45, per_day: int = 20) -> tuple[Path, object]:
    cfg = parse_config(TOML, base_dir=tmp_path)
    path = tmp_path / "engine.db"
    build_year_store(path, cfg, days=days, per_day=per_day, outbox_rows=10,
                     end=TODAY - timedelta(days=1))
    return path, cfg


def _count(path: Path, sql: str) -> int:
    with sqlite3.connect(path) as c:
        return int(c.execute(sql).fetchone()[0])


def _clock() -> VirtualClock:
    return VirtualClock(datetime(TODAY.year, TODAY.month, TODAY.day, 12, tzinfo=UTC))


def test_old_days_are_pruned_in_batches_and_the_last_keep_days_stay(tmp_path: Path) -> None:
    path, _ = _store(tmp_path)
    cutoff = (TODAY - timedelta(days=31)).isoformat()
    old = _count(path, f"SELECT COUNT(*) FROM tickets WHERE business_day < '{cutoff}'")
    kept = _count(path, f"SELECT COUNT(*) FROM tickets WHERE business_day >= '{cutoff}'")
    assert old == 14 * 20 and kept == 31 * 20
    # a counter still shows an old ticket as its last done: it stays
    with sqlite3.connect(path) as c:
        (tid,) = c.execute("SELECT id FROM tickets ORDER BY business_day LIMIT 1").fetchone()
        c.execute("INSERT INTO counters(id, last_done) VALUES ('c1', ?)", (tid,))
        c.execute("INSERT INTO ratings(counter, staff, score, status, at) "
                  "VALUES ('c1', 't1', 5, 'bound', ?)", (_clock().now().timestamp(),))
    ticks = [0.0]
    up = StoreUpkeep(path, clock=_clock(), keep_days=31, batch=100,
                     monotonic=lambda: ticks[0])
    assert up.cutoff_day() == cutoff
    first = up.maybe_run()
    assert first is not None and first.tickets == 100  # one batch per pass
    assert up.maybe_run() is None  # not due yet
    while (rep := up.maybe_run()) is None or rep.total:
        ticks[0] += 1.0  # a full batch brings the next pass 1 s later
    assert _count(path, f"SELECT COUNT(*) FROM tickets WHERE business_day < '{cutoff}'") == 1
    assert _count(path, f"SELECT COUNT(*) FROM tickets WHERE business_day >= '{cutoff}'") \
        == kept
    assert _count(path, f"SELECT COUNT(*) FROM day_services WHERE business_day < '{cutoff}'") \
        == 0
    assert _count(path, "SELECT COUNT(*) FROM ratings") == 1  # today's
    assert _count(path, f"SELECT COUNT(*) FROM ratings WHERE at < "
                        f"{_clock().now().timestamp() - 31 * 86400}") == 0
    # idle: the next pass is a schedule period away
    done_at = ticks[0]
    ticks[0] += 1.0
    assert up.maybe_run() is None and up._due >= done_at + up.every_s
    up.close()


def test_service_times_keep_the_newest_per_service(tmp_path: Path) -> None:
    path, _ = _store(tmp_path, days=2, per_day=1)
    with sqlite3.connect(path) as c:
        c.executemany("INSERT INTO service_times(service, id, seconds) VALUES (?, ?, ?)",
                      [(s, i, 60.0) for s in ("cash", "loans") for i in range(1, 301)])
    up = StoreUpkeep(path, clock=_clock(), keep_days=31, keep_service_times=50)
    assert up.run().service_times == 500
    with sqlite3.connect(path) as c:
        rows = c.execute("SELECT service, MIN(id), MAX(id), COUNT(*) FROM service_times "
                         "GROUP BY service ORDER BY service").fetchall()
    assert rows == [("cash", 251, 300, 50), ("loans", 251, 300, 50)]
    up.close()


def test_keep_days_comes_from_the_config_and_today_is_never_pruned(tmp_path: Path) -> None:
    cfg = parse_config(TOML.replace("keep_days = 31", "keep_days = 7"), base_dir=tmp_path)
    up = StoreUpkeep.for_branch(cfg, tmp_path / "e.db", _clock())
    assert up.keep_days == 7 and up.cutoff_day() == (TODAY - timedelta(days=7)).isoformat()
    up.close()
    with pytest.raises(ValueError):
        StoreUpkeep(tmp_path / "e.db", clock=_clock(), keep_days=0)


def test_a_big_store_is_not_fully_checked_at_open_but_in_the_background(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = _store(tmp_path, days=3, per_day=5)
    monkeypatch.setattr(store_mod, "FULL_CHECK_MAX_BYTES", 1024)  # "big" for this test
    monkeypatch.setattr("tessera.engine.upkeep.FULL_CHECK_MAX_BYTES", 1024)
    assert check_store(path) == store_mod.SCHEMA_VERSION
    up = StoreUpkeep(path, clock=_clock(), keep_days=31)
    up.maybe_run()
    assert up._checker is not None
    up._checker.join(30)
    assert up.check_result == "ok"
    up.close()


def test_a_damaged_big_store_is_still_refused_at_open(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from tessera.errors import StoreError

    path, _ = _store(tmp_path, days=3, per_day=5)
    monkeypatch.setattr(store_mod, "FULL_CHECK_MAX_BYTES", 1024)
    data = bytearray(path.read_bytes())
    data[100:400] = b"\xff" * 300  # the first page's B-tree header: sqlite_master
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError):
        check_store(path)
