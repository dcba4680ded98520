"""``tessera report`` as a manager runs it: periods (day, a week across the spring DST
change, a month), the files of --out, and the bad input of issue 18, each leaving the
store byte for byte as it was, with nothing written beside it."""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from report_support import DAY, Branch, fixture_day, open_branch

from tessera.cli import main
from tessera.engine.store import APPLICATION_ID, MIGRATIONS, _statements


def _digest(db: Path) -> tuple[str, list[str]]:
    return hashlib.sha256(db.read_bytes()).hexdigest(), sorted(p.name for p in db.parent.iterdir())


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["report", *args, "--json"]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Branch:
    return fixture_day(tmp_path_factory.mktemp("day"))


def test_text_report_of_the_newest_day_leaves_the_store_untouched(
        day: Branch, capsys: pytest.CaptureFixture[str]) -> None:
    before = _digest(day.db)
    # the newest business day is 2026-03-03 (rolled into, nothing in it yet)
    assert main(["report", "--config", str(day.cfg_path), "--day", DAY]) == 0
    text = capsys.readouterr().out
    assert "6 tickets, 5 arrived, 3 served, 1 no-shows" in text
    assert "complaint: A001 at counter c2 (t-2), 1/5" in text
    assert "turned away: closed 1, past_closing 1" in text
    assert _digest(day.db) == before


def test_an_empty_range_says_so(day: Branch, capsys: pytest.CaptureFixture[str]) -> None:
    k = _json(capsys, "--config", str(day.cfg_path), "--day", "2020-01-01")
    assert k["empty"] is True and k["branch"]["issued"] == 0
    assert k["branch"]["wait"]["mean_s"] is None and k["services"]["cash"]["sla_pct"] is None
    assert main(["report", "--config", str(day.cfg_path), "--day", "2020-01-01"]) == 0
    assert "no data" in capsys.readouterr().out


def test_a_day_of_only_voids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = open_branch(tmp_path)
    for _ in range(3):  # the printer failed every time
        t = b.engine.issue("cash")
        b.engine.void(t.id, "paper out")
    b.engine.close()
    k = _json(capsys, "--config", str(b.cfg_path), "--day", DAY)
    br = k["branch"]
    assert (br["issued"], br["arrived"], br["voided"], br["served"]) == (3, 0, 3, 0)
    assert br["voided_by_reason"] == {"not_printed": 3} and br["left_unserved"] == 0
    assert br["wait"]["n"] == 0 and br["ratings"]["satisfaction_pct"] is None
    assert k["empty"] is False and k["issued_by_hour"] == {"09:00": 3}
    assert main(["report", "--config", str(b.cfg_path), "--day", DAY]) == 0
    assert "3 tickets, 0 arrived, 0 served" in capsys.readouterr().out


def _serve_one(b: Branch, at: datetime, score: int) -> None:
    b.clock.advance((at - b.clock.now()).total_seconds())
    b.engine.open_counter("c2", staff="t-2")
    t = b.engine.issue("cash")
    b.engine.confirm_printed(t.id)
    b.clock.advance(120)
    b.engine.call_next("c2")
    b.clock.advance(300)
    b.engine.done("c2")
    b.clock.advance(10)
    b.engine.rate("c2", score)


def test_a_week_across_the_spring_dst_change(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Europe/London goes to BST at 01:00 UTC on Sunday 2026-03-29; the day rolls at 03:00
    local. Mon 23 .. Sun 29 is the ISO week of Thursday 26."""
    b = open_branch(tmp_path, start=datetime(2026, 3, 23, 10, 0, tzinfo=UTC))
    for d in range(23, 29):  # 10:00 GMT
        _serve_one(b, datetime(2026, 3, d, 10, 0, tzinfo=UTC), 5)
    # 02:30 UTC on the 29th is 03:30 BST: after that day's roll (it would be 02:30, still
    # the 28th, if the zone had no DST)
    _serve_one(b, datetime(2026, 3, 29, 2, 30, tzinfo=UTC), 1)
    _serve_one(b, datetime(2026, 3, 30, 9, 0, tzinfo=UTC), 5)  # Monday: the next week
    b.engine.close()
    k = _json(capsys, "--config", str(b.cfg_path), "--week", "2026-03-26")
    assert k["days"] == [f"2026-03-{d}" for d in range(23, 30)]
    assert [k["daily"][f"2026-03-{d}"]["arrived"] for d in range(23, 30)] == [1] * 7
    assert k["branch"]["arrived"] == 7 and k["branch"]["served"] == 7
    # the 29th's ticket was issued at 03:30 local (BST); the others at 10:00 GMT
    assert k["hours"]["03:00"]["arrived"] == 1 and k["hours"]["10:00"]["arrived"] == 6
    # its rating (03:37 BST) belongs to the 29th and to this week
    assert k["branch"]["ratings"]["n"] == 7 and k["branch"]["ratings"]["complaints"] == 1
    [c] = k["complaints"]
    assert c["at"].startswith("2026-03-29T03:37:") and c["at"].endswith("+01:00")
    assert k["daily"]["2026-03-29"]["wait"]["mean_s"] == 120.0
    nxt = _json(capsys, "--config", str(b.cfg_path), "--from", "2026-03-30", "--to",
                "2026-03-30")
    assert nxt["branch"]["arrived"] == 1 and nxt["hours"]["10:00"]["arrived"] == 1  # 09:00Z


def test_a_month(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = open_branch(tmp_path, start=datetime(2026, 2, 27, 10, 0, tzinfo=UTC))
    for at in (datetime(2026, 2, 28, 10, 0, tzinfo=UTC), datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
               datetime(2026, 3, 16, 10, 0, tzinfo=UTC), datetime(2026, 3, 31, 12, 0, tzinfo=UTC),
               datetime(2026, 4, 1, 10, 0, tzinfo=UTC)):
        _serve_one(b, at, 4)
    b.engine.close()
    k = _json(capsys, "--config", str(b.cfg_path), "--month", "2026-03")
    assert len(k["days"]) == 31 and k["from"] == "2026-03-01" and k["to"] == "2026-03-31"
    assert k["branch"]["arrived"] == 3 and k["branch"]["served"] == 3
    assert sum(x["arrived"] for x in k["daily"].values()) == 3
    assert k["daily"]["2026-03-16"]["served"] == 1 and k["daily"]["2026-03-02"]["served"] == 0
    assert k["hours"]["10:00"]["arrived_per_day"] == round(2 / 31, 1)
    assert k["branch"]["ratings"]["satisfaction_pct"] == 100.0  # 4 of 5: top two


def test_charts_html_csv_and_json(day: Branch, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    before = _digest(day.db)
    out = tmp_path / "out"
    assert main(["report", "--config", str(day.cfg_path), "--day", DAY, "--out",
                 str(out)]) == 0
    assert "files in" in capsys.readouterr().out
    pngs = sorted(out.glob("*.png"))
    assert {p.stem for p in pngs} == {"arrivals_by_hour", "wait_by_service",
                                      "satisfaction_by_counter", "satisfaction_by_staff",
                                      "service_level_by_day"}
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert 5_000 < p.stat().st_size < 1_000_000, p
        with Image.open(p) as im:
            im.verify()
            assert im.size[0] >= 600 and im.size[1] >= 300
    page = (out / "report.html").read_text(encoding="utf-8")
    for p in pngs:
        assert f'id="{p.stem}"' in page
    assert page.count("data:image/png;base64,") == len(pngs)
    assert "http://" not in page and "https://" not in page and "src=\"//" not in page
    assert "<link" not in page and "<script" not in page
    k = json.loads((out / "kpi.json").read_text(encoding="utf-8"))
    assert k["branch"]["served"] == 3
    # the CSV files, re-read with the csv module, say what the JSON says
    raw = (out / "services.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM
    with (out / "services.csv").open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["service"] for r in rows] == list(k["services"])
    for r in rows:
        s = k["services"][r["service"]]
        expect = {"issued": s["issued"], "arrived": s["arrived"], "served": s["served"],
                  "no_shows": s["no_shows"], "wait_mean_s": s["wait"]["mean_s"],
                  "wait_p90_s": s["wait"]["p90_s"], "service_mean_s": s["service_time"]["mean_s"],
                  "sla_pct": s["sla_pct"], "above_sla": s["above_sla"],
                  "ratings_satisfaction_pct": s["ratings"]["satisfaction_pct"],
                  "sla_wait_s": s["sla_wait_s"]}
        for col, v in expect.items():
            assert r[col] == ("" if v is None else str(v)), (col, r[col], v)
    with (out / "counters.csv").open(encoding="utf-8-sig", newline="") as f:
        counters = {r["counter"]: r for r in csv.DictReader(f)}
    assert counters["c2"]["ratings_by_scale"] == "5:1/0/0/0/1"
    assert counters["c1"]["ratings_satisfaction_pct"] == "100.0"
    with (out / "complaints.csv").open(encoding="utf-8-sig", newline="") as f:
        [complaint] = list(csv.DictReader(f))
    assert complaint["number"] == "A001" and complaint["scale"] == "5"
    assert _digest(day.db) == before


def test_charts_without_the_report_extra_name_it(day: Branch, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    out = tmp_path / "out"
    assert main(["report", "--config", str(day.cfg_path), "--day", DAY, "--out", str(out),
                 "--format", "png,csv"]) == 2
    err = capsys.readouterr().err
    assert "'report' extra" in err and "tessera[report]" in err
    assert not out.exists()  # nothing half-written
    assert main(["report", "--config", str(day.cfg_path), "--day", DAY, "--out", str(out),
                 "--format", "csv,json"]) == 0  # the spreadsheets need no extra
    assert (out / "services.csv").exists() and not list(out.glob("*.png"))


@pytest.mark.parametrize(("args", "message"), [
    (["--day", "yesterday"], "--day 'yesterday' is not a date"),
    (["--month", "2026-13"], "--month '2026-13' is not a month"),
    (["--from", "2026-03-05"], "--from needs --to"),
    (["--from", "2026-03-05", "--to", "2026-03-01"], "--to 2026-03-01 is before --from"),
    (["--format", "png"], "--format needs --out"),
    (["--out", "x", "--format", "pdf"], "--format 'pdf': use a comma-separated list"),
])
def test_bad_options_are_refused(day: Branch, args: list[str], message: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--config", str(day.cfg_path), *args]) == 2
    assert message in capsys.readouterr().err


def test_a_file_that_is_not_a_tessera_store(tmp_path: Path, day: Branch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE contacts (name TEXT)")
    conn.commit()
    conn.close()
    text = tmp_path / "notes.db"
    text.write_text("not a database\n")
    for db, why in ((other, "some other program"), (text, "not a SQLite database")):
        before = _digest(db)
        assert main(["report", "--config", str(day.cfg_path), "--db", str(db)]) == 2
        err = capsys.readouterr().err
        assert why in err and str(db) in err
        assert _digest(db) == before


def _write_v4(path: Path) -> None:
    """A store as schema v4 left it: one ticket served, no visits table yet."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("BEGIN")
    for migration in MIGRATIONS[:4]:
        for stmt in _statements(migration):
            conn.execute(stmt)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 4")
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
    conn.execute("INSERT INTO day_services VALUES (?, 'cash', 'A', 1)", (DAY,))
    conn.execute(
        "INSERT INTO tickets(id, business_day, service, origin, seq, number, state, rank, "
        "issued_at, queued_at, qorder, called_at, serving_at, ended_at, counter) VALUES "
        "('t1', ?, 'cash', 'cash', 1, 'A001', 'done', 3, ?, ?, 1, ?, ?, ?, 'c2')",
        (DAY, t0, t0, t0 + 200, t0 + 230, t0 + 530))
    conn.execute("COMMIT")
    conn.close()


def test_an_older_schema_is_migrated_in_a_private_copy(
        tmp_path: Path, day: Branch, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "v4" / "engine.db"
    db.parent.mkdir()
    _write_v4(db)
    before = _digest(db)
    k = _json(capsys, "--config", str(day.cfg_path), "--db", str(db), "--day", DAY)
    assert any("schema version 4" in n and "private copy" in n for n in k["notes"])
    assert k["branch"]["served"] == 1 and k["branch"]["wait"]["mean_s"] == 200.0
    assert k["branch"]["service_time"]["mean_s"] == 300.0
    assert _digest(db) == before  # no byte changed, no -wal/-shm beside it
    with sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 4


def test_a_store_copied_with_its_wal_but_no_shm_is_read_from_a_private_copy(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    (tmp_path / "live").mkdir()
    b = open_branch(tmp_path / "live")
    b.engine.open_counter("c2", staff="t-2")
    t = b.engine.issue("cash")
    b.engine.confirm_printed(t.id)
    b.engine.call_next("c2")
    b.engine.done("c2")
    live_wal = b.db.with_name("engine.db-wal")
    assert live_wal.exists() and live_wal.stat().st_size > 0  # the engine is still open
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copyfile(b.db, copy / "engine.db")
    shutil.copyfile(live_wal, copy / "engine.db-wal")
    b.engine.close()
    before = _digest(copy / "engine.db")
    k = _json(capsys, "--config", str(b.cfg_path), "--db", str(copy / "engine.db"), "--day",
              DAY)
    assert k["branch"]["served"] == 1  # the rows still only in the WAL were read
    assert _digest(copy / "engine.db") == before
    assert sorted(p.name for p in copy.iterdir()) == ["engine.db", "engine.db-wal"]


def test_a_roll_time_inside_the_dst_gap(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Berlin jumps from 02:00 to 03:00 on 2026-03-29; a roll at 02:30 falls in the gap, so
    that business day begins at 03:00 CEST (01:00 UTC). A rating at 01:07 UTC (03:07
    CEST) belongs to the 29th, as the engine's own business_day says."""
    from report_support import TOML

    toml = TOML.replace('timezone = "Europe/London"', 'timezone = "Europe/Berlin"').replace(
        'day_rollover = "03:00"', 'day_rollover = "02:30"')
    b = open_branch(tmp_path, toml, start=datetime(2026, 3, 29, 1, 0, tzinfo=UTC))
    _serve_one(b, datetime(2026, 3, 29, 1, 0, 30, tzinfo=UTC), 4)  # rated at 01:07:40 UTC
    assert b.engine.business_day() == "2026-03-29"
    b.engine.close()
    k = _json(capsys, "--config", str(b.cfg_path), "--day", "2026-03-29")
    assert k["branch"]["served"] == 1 and k["branch"]["ratings"]["n"] == 1
    assert k["hours"]["03:00"]["arrived"] == 1  # 01:00:30 UTC is 03:00:30 CEST
    k = _json(capsys, "--config", str(b.cfg_path), "--day", "2026-03-28")
    assert k["branch"]["ratings"]["n"] == 0
