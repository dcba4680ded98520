"""The KPIs of a hand-built day (report_support.fixture_day): every expected number below
is worked out by hand from the day's script, not by the code under test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from report_support import DAY, fixture_day

from tessera.report import report_for


@pytest.fixture(scope="module")
def kpis(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    b = fixture_day(tmp_path_factory.mktemp("day"))
    k = report_for(b.db, b.cfg, [DAY])
    k["_est"] = b.est
    return k


def test_branch_counts(kpis: dict[str, Any]) -> None:
    b = kpis["branch"]
    # A001-A005 and C001; A004's print failed (never queued), A005 left at the close
    assert (b["issued"], b["arrived"], b["voided"]) == (6, 5, 2)
    assert b["voided_by_reason"] == {"day_end": 1, "not_printed": 1}
    # visits: A003, A001, A002, C001 x3 (transferred twice), A005
    assert (b["visits"], b["called"], b["served"]) == (7, 6, 3)
    assert (b["no_shows"], b["no_show_pct"]) == (1, round(100 / 6, 1))
    assert (b["transferred"], b["recalls"], b["left_unserved"]) == (2, 1, 1)
    assert b["turned_away"] == 2
    assert kpis["turned_away"] == {"by_reason": {"closed": 1, "past_closing": 1},
                                   "by_service": {"cash": 1, "loans": 1}}
    assert kpis["no_shows"] == {"walk_in": 1, "appointment": 1}  # BK1 never checked in
    assert kpis["empty"] is False and kpis["business_day"] == DAY


def test_waits_are_first_call_minus_issue(kpis: dict[str, Any]) -> None:
    # A003 60 s, A001 100, A002 400, C001 500 (its first call; later stays do not count)
    assert kpis["branch"]["wait"] == {"n": 4, "mean_s": 265.0, "p50_s": 250.0,
                                      "p90_s": 470.0, "max_s": 500.0}
    assert kpis["wait"] == kpis["branch"]["wait"]  # the old day_report key, same numbers


def test_service_times_and_service_level(kpis: dict[str, Any]) -> None:
    b = kpis["branch"]
    # DONE - start: A003 300-90, A001 430-130, C001 1010-710
    assert b["service_time"] == {"n": 3, "mean_s": 270.0, "p50_s": 300.0, "p90_s": 300.0,
                                 "max_s": 300.0}
    # visit waits vs their service's SLA (cash 300 s, loans 600 s): only A002 (400) above
    assert (b["sla_pct"], b["above_sla"]) == (round(500 / 6, 1), 1)


def test_per_service(kpis: dict[str, Any]) -> None:
    cash, loans = kpis["services"]["cash"], kpis["services"]["loans"]
    # cash stays: A003, A001, A002, C001's second, A005; waits 60, 100, 400, 60
    assert (cash["issued"], cash["arrived"], cash["visits"], cash["served"]) == (5, 4, 5, 2)
    assert cash["wait"]["mean_s"] == 155.0 and cash["wait"]["max_s"] == 400.0
    assert (cash["sla_pct"], cash["above_sla"], cash["sla_wait_s"]) == (75.0, 1, 300.0)
    assert cash["service_time"]["mean_s"] == 255.0
    assert (cash["transferred"], cash["no_shows"], cash["left_unserved"]) == (1, 1, 1)
    assert cash["turned_away"] == {"closed": 1}
    # loans stays: C001's first (500 s, recalled, transferred) and third (40 s, served)
    assert (loans["visits"], loans["served"], loans["recalls"]) == (2, 1, 1)
    assert loans["wait"]["mean_s"] == 270.0 and loans["sla_pct"] == 100.0
    assert loans["service_time"]["mean_s"] == 300.0


def test_ratings_normalised_per_scale(kpis: dict[str, Any]) -> None:
    r = kpis["branch"]["ratings"]
    # bound: 3 of 3 at c1, 1 of 5 and 5 of 5 at c2; a duplicate 4 and an unbound 2
    assert r["n"] == 3 and r["duplicate"] == 1 and r["unbound"] == 1
    assert r["by_scale"] == {"3": {"1": 0, "2": 0, "3": 1},
                             "5": {"1": 1, "2": 0, "3": 0, "4": 0, "5": 1}}
    assert r["satisfaction_pct"] == round(200 / 3, 1)  # 3/3 and 5/5 are top-two, 1/5 not
    assert r["mean"] is None  # never a raw mean across scales
    assert r["response_pct"] == 100.0 and r["complaints"] == 1
    c1, c2 = kpis["counters"]["c1"]["ratings"], kpis["counters"]["c2"]["ratings"]
    assert (c1["n"], c1["mean"], c1["satisfaction_pct"], c1["unbound"]) == (1, 3.0, 100.0, 1)
    assert (c2["n"], c2["mean"], c2["satisfaction_pct"], c2["duplicate"]) == (2, 3.0, 50.0, 1)
    assert kpis["staff"]["t-2"]["ratings"]["complaints"] == 1
    assert kpis["ratings"] == {"bound": 3, "duplicate": 1, "unbound": 1}
    [complaint] = kpis["complaints"]
    assert {k: complaint[k] for k in ("number", "counter", "staff", "service", "score",
                                      "scale")} == {"number": "A001", "counter": "c2",
                                                    "staff": "t-2", "service": "cash",
                                                    "score": 1, "scale": 5}
    assert complaint["at"] == "2026-03-02T09:07:20+00:00"


def test_a_rating_with_no_ticket_counts_only_as_unbound(kpis: dict[str, Any]) -> None:
    c1 = kpis["counters"]["c1"]
    # the unbound press at c1 changes neither its count, its rate nor its response rate
    assert (c1["ratings"]["n"], c1["ratings"]["response_pct"]) == (1, 100.0)
    assert c1["ratings"]["by_scale"] == {"3": {"1": 0, "2": 0, "3": 1}}


def test_per_counter_staff_hour_and_classes(kpis: dict[str, Any]) -> None:
    c1, c2 = kpis["counters"]["c1"], kpis["counters"]["c2"]
    assert (c1["visits"], c1["served"], c1["no_shows"], c1["transferred"]) == (3, 1, 1, 1)
    assert (c2["visits"], c2["served"], c2["recalls"]) == (3, 2, 1)
    assert kpis["staff"]["t-1"]["visits"] == 3 and kpis["staff"]["t-2"]["served"] == 2
    assert set(kpis["counters"]) == {"c1", "c2"}  # A005 never reached a counter
    assert kpis["hours"]["09:00"]["arrived"] == 5 and kpis["hours"]["09:00"]["served"] == 3
    assert kpis["hours"]["09:00"]["counters"] == 2
    assert kpis["issued_by_hour"] == {"09:00": 6}  # the old key: every number spent
    prio = kpis["priority"]["priority"]
    assert (prio["visits"], prio["served"], prio["wait"]["mean_s"]) == (1, 1, 60.0)
    ap = kpis["appointments"]
    assert (ap["booked"], ap["checked_in"], ap["missed"], ap["no_shows"]) == (1, 0, 1, 1)
    assert kpis["daily"][DAY]["arrived"] == 5 and kpis["daily"][DAY]["served"] == 3


def test_estimate_accuracy(kpis: dict[str, Any]) -> None:
    est = kpis["_est"]
    errs = [60 - est["A003"], 100 - est["A001"], 400 - est["A002"], 500 - est["C001"]]
    e = kpis["branch"]["estimate"]
    assert e["n"] == 4
    assert e["mae_s"] == pytest.approx(sum(abs(x) for x in errs) / 4, abs=0.05)
    assert e["bias_s"] == pytest.approx(sum(errs) / 4, abs=0.05)


def test_a_ticket_transferred_twice_counts_in_each_service(tmp_path: Path) -> None:
    import sqlite3

    b = fixture_day(tmp_path)
    conn = sqlite3.connect(b.db)
    try:
        rows = conn.execute("SELECT v.n, v.service, v.outcome, v.reason FROM visits v "
                            "JOIN tickets t ON t.id = v.ticket_id WHERE t.number = 'C001' "
                            "ORDER BY v.n").fetchall()
    finally:
        conn.close()
    assert rows == [(1, "loans", "transferred", "cash"), (2, "cash", "transferred", "loans"),
                    (3, "loans", "done", None)]
    k = report_for(b.db, b.cfg, [DAY])
    assert k["branch"]["served"] == 3  # C001 served once, after two transfers
    assert k["services"]["loans"]["wait"]["n"] == 2  # each stay's own wait
