"""``tessera report --config FILE [--db FILE] [--day DATE | --week DATE | --month YYYY-MM |
--from DATE --to DATE] [--out DIR] [--format png,csv,json,html] [--json]``: the KPIs of
business days (docs/kpi.md) as text, or as charts, spreadsheets, JSON and one HTML page."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tessera.config import BranchConfig

FORMATS = ("png", "csv", "json", "html")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "report", help="KPIs of business days from the engine's store (text, charts, CSV, "
        "JSON, HTML)",
        description="The manager's daily, weekly and monthly check (docs/kpi.md). The store "
        "is read-only: nothing is written beside it. Text on stdout unless --out is given.")
    p.add_argument("--config", required=True, help="branch config (TOML)")
    p.add_argument("--db", help="engine database (default: <storage.dir>/engine.db)")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--day", help="business day (YYYY-MM-DD); default: the store's newest")
    when.add_argument("--week", metavar="DATE", help="the ISO week (Monday-Sunday) of DATE")
    when.add_argument("--month", metavar="YYYY-MM", help="a calendar month of business days")
    when.add_argument("--from", dest="first", metavar="DATE",
                      help="first business day of a range (with --to)")
    p.add_argument("--to", dest="last", metavar="DATE", help="last business day of the range")
    p.add_argument("--out", metavar="DIR", help="write the report files into DIR")
    p.add_argument("--format", default=",".join(FORMATS),
                   help=f"with --out: comma-separated of {', '.join(FORMATS)} (default: all; "
                   "png and html need the 'report' extra)")
    p.add_argument("--json", action="store_true", help="print one JSON object (not text)")
    p.set_defaults(func=report)


def _formats(text: str) -> list[str]:
    wanted = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in wanted if f not in FORMATS]
    if bad or not wanted:
        raise ValueError(f"--format {text[:60]!r}: use a comma-separated list of "
                         f"{', '.join(FORMATS)}")
    return list(dict.fromkeys(wanted))


def report(args: argparse.Namespace) -> int:
    from tessera.config import load_config
    from tessera.errors import ConfigError, StoreError
    from tessera.report import compute, known_days, open_readonly, read_facts
    from tessera.report.period import PeriodError, days_between, month_of, parse_day, week_of
    from tessera.report.store_read import damaged_row

    def fail(msg: str) -> int:
        print(f"tessera report: {msg}", file=sys.stderr)
        return 2

    try:
        if args.last is not None and args.first is None:
            return fail("--to needs --from")
        if args.first is not None and args.last is None:
            return fail("--from needs --to")
        if args.out is None and args.format != ",".join(FORMATS):
            return fail("--format needs --out DIR (without it the report is text on stdout)")
        formats = _formats(args.format)
        days: list[str] | None = None
        if args.day is not None:
            days = [parse_day(args.day, "--day").isoformat()]
        elif args.week is not None:
            days = week_of(args.week)
        elif args.month is not None:
            days = month_of(args.month)
        elif args.first is not None:
            days = days_between(args.first, args.last)
    except (ValueError, PeriodError) as e:
        return fail(str(e))
    charts = args.out is not None and bool({"png", "html"} & set(formats))
    if charts:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            return fail("charts (png, html) need matplotlib: install the 'report' extra "
                        "(pip install 'tessera[report]'), or ask for --format csv,json")
    try:
        cfg = load_config(args.config)
        db = Path(args.db) if args.db else cfg.path(cfg.storage.dir) / "engine.db"
        if not args.db and not db.exists():
            return fail(f"{db}: no engine store yet (has the engine run?)")
        with open_readonly(db) as store:  # read-only: never writes the store or beside it
            if days is None:
                known = known_days(store.conn)
                days = known[-1:]
            try:
                facts = read_facts(store.conn, days, cfg)
                facts.notes[:0] = store.notes
                if not days:
                    facts.notes.append(f"{db} has no business day yet: an empty report")
                kpis = compute(facts, cfg)
            except (TypeError, ValueError) as e:
                where = damaged_row(store.conn) or f"{type(e).__name__}: {e!s:.80}"
                raise StoreError(f"{db}: a value the report needs is missing or wrong "
                                 f"({where}); the store is damaged") from None
    except ConfigError as e:
        return fail(str(e))
    except StoreError as e:
        return fail(str(e) if str(db) in str(e) else f"{db}: {e}")
    if args.out is None:
        if args.json:
            print(json.dumps(kpis, sort_keys=True, ensure_ascii=False))
        else:
            from tessera.report.export import print_text

            print_text(kpis, sys.stdout)
        return 0
    return _write(kpis, cfg, Path(args.out), formats)


def _write(kpis: dict[str, Any], cfg: BranchConfig, out: Path, formats: list[str]) -> int:
    from tessera.report.export import write_csv, write_json

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"tessera report: --out {out}: {e.strerror or e}", file=sys.stderr)
        return 2
    written = []
    if "json" in formats:
        written.append(write_json(kpis, out))
    if "csv" in formats:
        written += write_csv(kpis, out)
    if "png" in formats or "html" in formats:
        from tessera.report.render import render_charts, write_charts, write_html

        charts = render_charts(kpis, cfg)
        if "png" in formats:
            written += write_charts(charts, out)
        if "html" in formats:
            written.append(write_html(kpis, cfg, charts, out / "report.html"))
    span = kpis["from"] if kpis["from"] == kpis["to"] else f"{kpis['from']}..{kpis['to']}"
    print(f"report {span}{' (no data)' if kpis['empty'] else ''}: {len(written)} files in "
          f"{out}/ ({', '.join(p.name for p in written)})")
    return 0
