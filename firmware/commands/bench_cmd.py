"""``tessera bench NAME [--json]``: benchmark scripts.

Each benchmark measures ratios against a baseline in the same run (the
machine may be shared and noisy); the JSON keys are a contract read by HQ
tooling and by the README's performance section.
"""

from __future__ import annotations

import argparse
import importlib
import json
from typing import Any

# name -> module exposing run(args) -> dict and optionally add_arguments(parser)
BENCHES: dict[str, tuple[str, str]] = {
    "dispatch": ("tessera.bench.dispatch", "GPIO ring buffer and dispatcher handoff"),
    "branch": ("tessera.bench.branch", "press to ticket/board/voice, RSS and start-up per role"),
    "engine": ("tessera.bench.engine", "durable engine commands/s vs raw fsync/s"),
    "board": ("tessera.bench.board", "call event to caller-board bytes and announcement WAV"),
    "printer": ("tessera.bench.printer", "ticket render time and bytes on the wire"),
    "mqtt": ("tessera.bench.mqtt", "QoS1 flood vs outbox drain rate, paced pub->sub latency"),
    "estimator": ("tessera.bench.estimator", "wait-estimate RMSE vs plain and the oracle bound"),
    "hil": ("tessera.bench.hil", "press on the simulated GPIO bus vs in-process mock pins"),
    "report": ("tessera.bench.report", "a month's KPIs and charts at 3,000 tickets a day"),
    "web": ("tessera.bench.web", "NEXT to the hall TV in chromium, SSE fan-out to 1,000 phones"),
}

# benches with options of their own: their module's add_arguments(parser) adds them (the
# module must import quickly: it is imported whenever the CLI builds its parser)
OWN_OPTIONS = frozenset({"estimator"})


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="run a benchmark and print its figures")
    bsub = p.add_subparsers(dest="bench", metavar="NAME", required=True)
    for name, (mod, helptext) in BENCHES.items():
        b = bsub.add_parser(name, help=helptext)
        b.add_argument("--json", action="store_true", help="print one JSON object")
        b.set_defaults(func=_runner(mod))
        b.set_defaults(bench_module=mod)
        b.add_argument("--quick", action="store_true", help="shorter run (smoke test)")
        if name in OWN_OPTIONS:
            importlib.import_module(mod).add_arguments(b)


def _runner(mod: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        result: dict[str, Any] = importlib.import_module(mod).run(args)
        if args.json:
            print(json.dumps(result, sort_keys=True))
        else:
            width = max(len(k) for k in result)
            for k, v in result.items():
                print(f"{k:<{width}}  {v}")
        return 0

    return run
