"""``tessera report --config FILE [--day DATE] [--json]``: a business day's KPIs."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("report", help="KPIs of a business day from the engine's store")
    p.add_argument("--config", required=True, help="branch config (TOML)")
    p.add_argument("--day", help="business day (YYYY-MM-DD); default: the current one")
    p.add_argument("--db", help="engine database (default: <storage.dir>/engine.db)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=report)


def report(args: argparse.Namespace) -> int:
    from datetime import date
    from pathlib import Path

    from tessera.config import load_config
    from tessera.engine.report import day_report, days_in, read_events
    from tessera.errors import ConfigError, StoreError

    try:
        if args.day is not None:
            try:
                date.fromisoformat(args.day)
            except ValueError:
                print(f"tessera report: --day {args.day[:40]!r} is not a date; write "
                      "YYYY-MM-DD", file=sys.stderr)
                return 2
        cfg = load_config(args.config)
        db = Path(args.db) if args.db else cfg.path(cfg.storage.dir) / "engine.db"
        if not args.db and not db.exists():
            print(f"{db}: no engine store yet (has the engine run?)", file=sys.stderr)
            return 2
        events = read_events(db)  # read-only: never writes the store or beside it
        days = days_in(events)
        day = args.day or (days[-1] if days else None)
        if day is None or day not in days:
            print(f"no events for business day {day}; known: {', '.join(days) or 'none'}",
                  file=sys.stderr)
            return 2
        try:
            kpis = day_report(events, cfg, day)
        except StoreError as e:
            raise StoreError(f"{db}: {e}") from None
    except (ConfigError, StoreError) as e:
        print(f"tessera report: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(kpis, sort_keys=True, ensure_ascii=False))
    else:
        _print(kpis)
    return 0


def _fmt(s: Any) -> str:
    return "-" if s is None else f"{s / 60:.1f} min"


def _print(k: dict[str, Any]) -> None:
    print(f"Business day {k['business_day']}: {k['issued']} tickets, "
          f"mean wait {_fmt(k['wait']['mean_s'])}, p90 {_fmt(k['wait']['p90_s'])}, "
          f"no-shows {k['no_shows']['walk_in']} walk-in / {k['no_shows']['appointment']} "
          f"appointment, {k['voided']} voided")
    print("peak hours: " + ", ".join(f"{h} ({n})" for h, n in k["peak_hours"].items()))
    print(f"{'service':<14}{'issued':>7}{'wait':>10}{'p90':>10}{'served':>10}{'SLA %':>8}"
          f"{'target':>8}{'rating':>8}")
    for sid, s in k["services"].items():
        r = s["ratings"]["mean"]
        print(f"{sid:<14}{s['issued']:>7}{_fmt(s['wait']['mean_s']):>10}"
              f"{_fmt(s['wait']['p90_s']):>10}{_fmt(s['service_time']['mean_s']):>10}"
              f"{'-' if s['sla_pct'] is None else s['sla_pct']:>8}{s['sla_target_pct']:>8}"
              f"{'-' if r is None else r:>8}")
    for kind in ("counters", "staff"):
        for key, v in k[kind].items():
            r = v["ratings"]
            print(f"{kind[:-1] if kind == 'counters' else 'staff'} {key}: served "
                  f"{v['service_time']['n']}, mean {_fmt(v['service_time']['mean_s'])}, "
                  f"rating {r['mean'] if r['mean'] is not None else '-'} ({r['n']}), "
                  f"alerts {r['alerts']}")
