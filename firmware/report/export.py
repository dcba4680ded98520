"""The KPIs as text (stdout), CSV files for a spreadsheet and JSON for HQ systems.

CSV: UTF-8 with a BOM (so a spreadsheet opens CJK names right), one row per entity,
column names fixed by :data:`CSV_COLUMNS` (a contract, like JSON keys: add, never
rename). Empty cells are "no data" (None in the JSON).

    write_csv(kpis, Path("out"))   # out/services.csv, out/counters.csv, ...
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

Block = dict[str, Any]
Column = tuple[str, Callable[[Block], Any]]


def _path(*keys: str) -> Callable[[Block], Any]:
    def get(b: Block) -> Any:
        for k in keys:
            b = b[k]
        return b
    return get


_STATS = ("n", "mean_s", "p50_s", "p90_s", "max_s")
_RATINGS = ("n", "mean", "response_pct", "satisfaction_pct", "complaints", "duplicate",
            "unbound")
# one column per KPI of an entity block (tessera.report.kpi.visits_block), and how to get it
_BLOCK: list[Column] = [
    *[(k, _path(k)) for k in ("visits", "called", "served", "no_shows", "no_show_pct",
                              "transferred", "recalls", "left_unserved")],
    *[(f"wait_{k}", _path("wait", k)) for k in _STATS],
    *[(f"service_{k}", _path("service_time", k)) for k in _STATS],
    ("sla_pct", _path("sla_pct")), ("above_sla", _path("above_sla")),
    *[(f"ratings_{k}", _path("ratings", k)) for k in _RATINGS],
    ("ratings_by_scale", lambda b: scale_text(b["ratings"]["by_scale"])),
]
_SERVICE: list[Column] = [
    ("issued", _path("issued")), ("arrived", _path("arrived")),
    ("sla_wait_s", _path("sla_wait_s")), ("sla_target_pct", _path("sla_target_pct")),
    ("turned_away", lambda b: sum(b["turned_away"].values()))]
_BRANCH: list[Column] = [
    *[(k, _path(k)) for k in ("issued", "arrived", "voided", "turned_away")],
    *[(f"estimate_{k}", _path("estimate", k)) for k in ("n", "mae_s", "bias_s")]]

CSV_COLUMNS: dict[str, list[str]] = {
    "branch": ["from", "to", *(c for c, _ in _BRANCH), *(c for c, _ in _BLOCK)],
    "services": ["service", *(c for c, _ in _SERVICE), *(c for c, _ in _BLOCK)],
    "counters": ["counter", *(c for c, _ in _BLOCK)],
    "staff": ["staff", *(c for c, _ in _BLOCK)],
    "priority": ["priority", *(c for c, _ in _BLOCK)],
    "hours": ["hour", "arrived", "served", "counters", "arrived_per_day", "wait_n",
              "wait_mean_s", "wait_p90_s"],
    "daily": ["business_day", "arrived", "served", "no_shows", "wait_n", "wait_mean_s",
              "wait_p90_s", "sla_pct"],
    "turned_away": ["reason", "count"],
    "complaints": ["at", "ticket_id", "number", "service", "counter", "staff", "score",
                   "scale"],
}


def scale_text(by_scale: dict[str, dict[str, int]]) -> str:
    """``{"3": {"1": 0, "2": 1, "3": 4}}`` -> ``"3:0/1/4"`` (counts of scores 1..n)."""
    return ";".join(f"{s}:" + "/".join(str(n) for n in d.values()) for s, d in by_scale.items())


def csv_rows(kpis: dict[str, Any]) -> dict[str, list[list[Any]]]:
    """The rows of every CSV file (without the header), values as in the JSON."""
    def block(b: Block) -> list[Any]:
        return [f(b) for _, f in _BLOCK]

    br = kpis["branch"]
    return {
        "branch": [[kpis["from"], kpis["to"], *(f(br) for _, f in _BRANCH), *block(br)]],
        "services": [[sid, *(f(b) for _, f in _SERVICE), *block(b)]
                     for sid, b in kpis["services"].items()],
        "counters": [[k, *block(b)] for k, b in kpis["counters"].items()],
        "staff": [[k, *block(b)] for k, b in kpis["staff"].items()],
        "priority": [[k, *block(b)] for k, b in kpis["priority"].items()],
        "hours": [[h, x["arrived"], x["served"], x["counters"], x["arrived_per_day"],
                   x["wait"]["n"], x["wait"]["mean_s"], x["wait"]["p90_s"]]
                  for h, x in kpis["hours"].items()],
        "daily": [[d, x["arrived"], x["served"], x["no_shows"], x["wait"]["n"],
                   x["wait"]["mean_s"], x["wait"]["p90_s"], x["sla_pct"]]
                  for d, x in kpis["daily"].items()],
        "turned_away": [[r, n] for r, n in kpis["turned_away"]["by_reason"].items()],
        "complaints": [[c["at"], c["ticket_id"], c["number"], c["service"], c["counter"],
                        c["staff"], c["score"], c["scale"]] for c in kpis["complaints"]],
    }


def write_csv(kpis: dict[str, Any], out: Path) -> list[Path]:
    """One ``{name}.csv`` per table of :data:`CSV_COLUMNS` in ``out``."""
    paths = []
    for name, rows in csv_rows(kpis).items():
        path = out / f"{name}.csv"
        with path.open("w", encoding="utf-8-sig", newline="") as f:
            w = csv.writer(f)
            w.writerow(CSV_COLUMNS[name])
            w.writerows([["" if v is None else v for v in row] for row in rows])
        paths.append(path)
    return paths


def write_json(kpis: dict[str, Any], out: Path) -> Path:
    path = out / "kpi.json"
    path.write_text(json.dumps(kpis, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
                    encoding="utf-8")
    return path


def _min(s: float | None) -> str:
    return "-" if s is None else f"{s / 60:.1f} min"


def _p(x: float | None) -> str:
    return "-" if x is None else f"{x:g}%"


def print_text(k: dict[str, Any], out: TextIO) -> None:
    """The report as plain text (the default of ``tessera report``)."""
    def say(line: str = "") -> None:
        out.write(line + "\n")

    span = k["from"] if k["from"] == k["to"] else f"{k['from']} to {k['to']}"
    b = k["branch"]
    say(f"Business day {span}" if k["from"] == k["to"] else f"Business days {span}")
    for note in k["notes"]:
        say(f"note: {note}")
    if k["empty"]:
        say("no data: nothing was issued, refused, rated or booked in this range")
        return
    say(f"{b['issued']} tickets, {b['arrived']} arrived, {b['served']} served, "
        f"{b['no_shows']} no-shows ({_p(b['no_show_pct'])}), {b['transferred']} transferred, "
        f"{b['recalls']} recalls, {b['left_unserved']} left unserved at close, "
        f"{b['voided']} voided, {b['turned_away']} turned away")
    say(f"wait: mean {_min(b['wait']['mean_s'])}, median {_min(b['wait']['p50_s'])}, "
        f"p90 {_min(b['wait']['p90_s'])}, max {_min(b['wait']['max_s'])}; "
        f"service time: mean {_min(b['service_time']['mean_s'])}, "
        f"p90 {_min(b['service_time']['p90_s'])}; service level {_p(b['sla_pct'])} "
        f"({b['above_sla']} above target)")
    r = b["ratings"]
    say(f"ratings: {r['n']} (response {_p(r['response_pct'])}), satisfied "
        f"{_p(r['satisfaction_pct'])}, complaints {r['complaints']}, unbound {r['unbound']}")
    e = b["estimate"]
    if e["n"]:
        say(f"estimate: MAE {_min(e['mae_s'])}, bias {_min(e['bias_s'])} (n={e['n']})")
    if k["turned_away"]["by_reason"]:
        say("turned away: " + ", ".join(f"{r} {n}" for r, n in
                                        k["turned_away"]["by_reason"].items()))
    ap = k["appointments"]
    if ap["booked"] or ap["visits"]:
        say(f"appointments: {ap['booked']} booked, {ap['checked_in']} checked in, "
            f"{ap['no_shows']} no-shows ({ap['missed']} never checked in)")
    if k["peak_hours"]:
        say("peak hours: " + ", ".join(f"{h} ({n})" for h, n in k["peak_hours"].items()))
    say(f"{'service':<14}{'arrived':>8}{'served':>8}{'wait':>10}{'p90':>10}{'service':>10}"
        f"{'SLA %':>8}{'target':>8}{'satisf.':>9}")
    for sid, s in k["services"].items():
        say(f"{sid:<14}{s['arrived']:>8}{s['served']:>8}{_min(s['wait']['mean_s']):>10}"
            f"{_min(s['wait']['p90_s']):>10}{_min(s['service_time']['mean_s']):>10}"
            f"{'-' if s['sla_pct'] is None else s['sla_pct']:>8}"
            f"{'-' if s['sla_target_pct'] is None else s['sla_target_pct']:>8}"
            f"{_p(s['ratings']['satisfaction_pct']):>9}")
    for kind, label in (("counters", "counter"), ("staff", "staff")):
        for key, v in k[kind].items():
            r = v["ratings"]
            say(f"{label} {key}: served {v['served']}, mean service "
                f"{_min(v['service_time']['mean_s'])}, ratings {r['n']}, satisfied "
                f"{_p(r['satisfaction_pct'])}, complaints {r['complaints']}")
    for c in k["complaints"]:
        say(f"complaint: {c['number'] or '-'} at counter {c['counter']} ({c['staff'] or '-'}), "
            f"{c['score']}/{c['scale']}, {c['at']}")
