"""``tessera demo``: a whole branch day on simulated hardware, in virtual time."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _packaged_example(name: str) -> Path:
    """An example config shipped as package data (``tessera.examples``: examples/ in a
    checkout, site-packages/tessera/examples in a wheel install)."""
    from importlib.resources import files

    try:
        return Path(str(files("tessera.examples") / name))
    except (ModuleNotFoundError, TypeError):  # not installed: run from the checkout
        return Path(__file__).resolve().parents[2] / "examples" / name


DEFAULT_CONFIG = _packaged_example("bank.toml")
MAX_MINUTES = 7 * 24 * 60  # a week of simulated time
MAX_SPEED = 1e6


def _number(text: str, what: str, lo: float, hi: float, *, integer: bool) -> float:
    """``text`` as a number in [lo, hi]; ArgumentTypeError saying what is allowed."""
    kind = "a whole number" if integer else "a number"
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and lo <= value <= hi):
        raise argparse.ArgumentTypeError(f"{text[:40]!r}: {what} must be {kind} from "
                                         f"{lo:g} to {hi:g}")
    return value


def _bounded(what: str, lo: float, hi: float, *, integer: bool = False
             ) -> Callable[[str], float]:
    def parse(text: str) -> float:
        return _number(text, what, lo, hi, integer=integer)
    parse.__name__ = what  # argparse names the type in its own messages
    return parse


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        return _number(text, "the speed", 0.001, MAX_SPEED, integer=False)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text[:40]!r}: the speed is virtual seconds per real second, a number from "
            f"0.001 to {MAX_SPEED:g}, or 'max'") from None


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run a simulated branch day end to end (emulated hardware)")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                   help="branch config (default: examples/bank.toml)")
    p.add_argument("--minutes", type=_bounded("minutes", 1, MAX_MINUTES), default=None,
                   help="simulated span in minutes (default: the whole opening day)")
    p.add_argument("--speed", type=_speed, default=600.0,
                   help="virtual seconds per real second, or 'max' (default 600)")
    p.add_argument("--out", type=Path, default=Path("demo-out"), help="output directory")
    p.add_argument("--seed", type=_bounded("the seed", 0, 2**63 - 1, integer=True), default=1,
                   help="random seed of the scenario")
    p.add_argument("--customers", type=_bounded("customers", 0, 100_000, integer=True),
                   default=None,
                   help="customers over the span (default: ~80%% of counter capacity)")
    p.add_argument("--broker", default="", metavar="URL",
                   help="also publish the event stream to this broker (mqtt://host:port)")
    p.add_argument("--counters", type=_bounded("counters", 1, 200, integer=True), default=None,
                   help="grow the branch to N counters (copies of the configured ones)")
    p.add_argument("--no-voice", action="store_true", help="no announcement WAVs")
    p.add_argument("--no-web", action="store_true",
                   help="no web role (by default it serves the hall display, ticket pages "
                        "and console on web.bind at a free port and prints the URLs)")
    p.add_argument("--plain", action="store_true", help="plain progress lines, no live view")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tessera.config_paths import dir_problem, url_problem
    from tessera.demo.runner import DemoOptions, run_demo
    from tessera.errors import ConfigError

    # refused before anything is created
    if problem := dir_problem(args.out, writable=True):
        print(f"tessera demo: --out {args.out} {problem}", file=sys.stderr)
        return 2
    if args.broker and (problem := url_problem(args.broker, ("mqtt", "mqtts"))):
        print(f"tessera demo: --broker {problem}", file=sys.stderr)
        return 2
    opts = DemoOptions(config=args.config, out=args.out, minutes=args.minutes,
                       speed=args.speed, seed=args.seed, broker=args.broker,
                       customers=args.customers, plain=True if args.plain else None,
                       counters=args.counters, voice=not args.no_voice,
                       web=not args.no_web)
    try:
        summary = run_demo(opts)
    except ConfigError as e:
        print(f"tessera demo: {e}", file=sys.stderr)
        return 2
    keys = ("issued", "served", "no_show", "void", "mean_wait_s", "p90_wait_s",
            "mean_service_s", "duplicate_numbers", "events_in_db", "events_published")
    print(json.dumps({k: summary[k] for k in keys if k in summary}))
    print(f"output in {args.out}/ (summary.json, tickets/, board/, wav/, engine.db)")
    return 0 if summary["duplicate_numbers"] == 0 else 1
