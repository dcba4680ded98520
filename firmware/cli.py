"""The ``tessera`` command line.

Each command group lives in its own module under ``tessera.commands`` with
``register(subparsers)``; heavy imports happen inside the command functions,
so ``tessera --help`` stays fast on a Pi. A command line that names its
command registers that command's module only (``tessera run engine`` does not
build the bench, demo and broker parsers: ~30 ms of every role's start-up).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tessera._version import __version__

# Top-level command name -> the modules that register (parts of) it, in --help order.
COMMANDS: dict[str, tuple[str, ...]] = {
    "config": ("tessera.commands.config_cmd",),
    "bench": ("tessera.commands.bench_cmd",),
    "run": ("tessera.commands.run_cmd",),
    "demo": ("tessera.commands.demo_cmd",),
    "broker": ("tessera.commands.broker_cmd",),
    "printer": ("tessera.commands.printer_cmd",),
    "sim": ("tessera.commands.printer_cmd", "tessera.commands.board_cmd",
            "tessera.commands.sim_cmd"),
    "voice": ("tessera.commands.board_cmd",),
    "report": ("tessera.commands.report_cmd",),
    "appointments": ("tessera.commands.appointments_cmd",),
    "clock": ("tessera.commands.clock_cmd",),
    "web": ("tessera.commands.web_cmd",),
}
# every command module once, in --help order
COMMAND_MODULES: tuple[str, ...] = tuple(dict.fromkeys(m for ms in COMMANDS.values() for m in ms))


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or with ``only`` (a command name) just that command's."""
    parser = argparse.ArgumentParser(
        prog="tessera",
        description="Tessera queue-management firmware: kiosk, counters, caller board, MQTT.",
    )
    parser.add_argument("--version", action="version", version=f"tessera {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in COMMAND_MODULES if only is None else COMMANDS[only]:
        importlib.import_module(mod).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    first = args_in[0] if args_in else None
    parser = build_parser(first if first in COMMANDS else None)
    args = parser.parse_args(args_in)
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
