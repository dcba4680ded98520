"""The ``tessera`` command line.

Each command group lives in its own module under ``tessera.commands`` with
``register(subparsers)``; heavy imports happen inside the command functions,
so ``tessera --help`` stays fast on a Pi.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tessera._version import __version__

# Command modules, in --help order. Each defines register(subparsers).
COMMAND_MODULES: tuple[str, ...] = (
    "tessera.commands.config_cmd",
    "tessera.commands.bench_cmd",
    "tessera.commands.run_cmd",
    "tessera.commands.demo_cmd",
    "tessera.commands.broker_cmd",
    "tessera.commands.printer_cmd",
    "tessera.commands.board_cmd",
    "tessera.commands.report_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tessera",
        description="Tessera queue-management firmware: kiosk, counters, caller board, MQTT.",
    )
    parser.add_argument("--version", action="version", version=f"tessera {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in COMMAND_MODULES:
        importlib.import_module(mod).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        rc: int = func(args)
    except KeyboardInterrupt:
        return 130
    return rc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
