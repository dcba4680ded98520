"""``tessera demo``: a whole branch day on simulated hardware, in virtual time."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "bank.toml"


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("speed must be positive, or 'max'")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run a simulated branch day end to end (emulated hardware)")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                   help="branch config (default: examples/bank.toml)")
    p.add_argument("--minutes", type=float, default=None,
                   help="simulated span in minutes (default: the whole opening day)")
    p.add_argument("--speed", type=_speed, default=600.0,
                   help="virtual seconds per real second, or 'max' (default 600)")
    p.add_argument("--out", type=Path, default=Path("demo-out"), help="output directory")
    p.add_argument("--seed", type=int, default=1, help="random seed of the scenario")
    p.add_argument("--customers", type=int, default=None,
                   help="customers over the span (default: ~80%% of counter capacity)")
    p.add_argument("--broker", default="", metavar="URL",
                   help="also publish the event stream to this broker (mqtt://host:port)")
    p.add_argument("--counters", type=int, default=None,
                   help="grow the branch to N counters (copies of the configured ones)")
    p.add_argument("--no-voice", action="store_true", help="no announcement WAVs")
    p.add_argument("--plain", action="store_true", help="plain progress lines, no live view")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tessera.demo.runner import DemoOptions, run_demo
    from tessera.errors import ConfigError

    opts = DemoOptions(config=args.config, out=args.out, minutes=args.minutes,
                       speed=args.speed, seed=args.seed, broker=args.broker,
                       customers=args.customers, plain=True if args.plain else None,
                       counters=args.counters, voice=not args.no_voice)
    try:
        summary = run_demo(opts)
    except ConfigError as e:
        print(f"tessera demo: {e}")
        return 2
    keys = ("issued", "served", "no_show", "void", "mean_wait_s", "p90_wait_s",
            "mean_service_s", "duplicate_numbers", "events_in_db", "events_published")
    print(json.dumps({k: summary[k] for k in keys if k in summary}))
    print(f"output in {args.out}/ (summary.json, tickets/, board/, wav/, engine.db)")
    return 0 if summary["duplicate_numbers"] == 0 else 1
