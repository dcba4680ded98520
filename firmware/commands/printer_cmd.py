"""``tessera printer test`` and ``tessera sim printer``.

    tessera sim printer --out /tmp/tickets            # prints the pty path, runs until Ctrl-C
    tessera printer test --port /dev/pts/5 --profile XP-80C-CN
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from tessera.commands.board_cmd import subgroup

_TEST_CONFIG = """
[branch]
tenant = "test"
branch = "printer-test"
name = "Tessera printer test 打印测试"
languages = ["en", "zh"]
[[services]]
id = "test"
prefix = "T"
names = { en = "Test ticket", zh = "测试票" }
[ticket]
qr = "https://tessera.example/t/{ticket_id}"
footer = "ESC/POS OK / 打印正常"
"""


def register(sub: Any) -> None:
    p = sub.add_parser("printer", help="ticket printer tools")
    psub = p.add_subparsers(dest="printer_command", metavar="ACTION", required=True)
    t = psub.add_parser("test", help="query status and print a test ticket")
    t.add_argument("--port", required=True,
                   help="device path or URL (/dev/ttyUSB0, /dev/pts/N, tcp://host:9100, "
                        "usb://VID:PID)")
    t.add_argument("--profile", default="TM-T20II", help="printer profile (default TM-T20II)")
    t.add_argument("--baud", type=int, default=0, help="serial speed (default: the profile's)")
    t.add_argument("--mode", choices=("auto", "raster", "text"), default="auto")
    t.add_argument("--config", help="branch config whose ticket template to use")
    t.set_defaults(func=printer_test)

    s = subgroup(sub, "sim", "run a hardware emulator")
    e = s.add_parser("printer", help="ESC/POS printer emulator on a pty")
    e.add_argument("--out", default="sim-tickets", help="directory for ticket PNG/JSON")
    e.add_argument("--profile", default="TM-T20II", help="paper width from this profile")
    e.add_argument("--baud", type=int, default=0, help="throttle to this baud rate (0 = off)")
    e.add_argument("--state", default="online",
                   help="online, near_end, paper_out, cover_open, offline, silent, garbage")
    e.add_argument("--link", help="also expose the pty as this symlink")
    e.add_argument("--duration", type=float, default=0.0, help="stop after N seconds")
    e.set_defaults(func=sim_printer)


def sim_printer(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tessera.drivers.printer_profiles import get_profile
    from tessera.errors import ConfigError
    from tessera.sim.printer import PrinterEmulator

    try:
        width = get_profile(args.profile).width_dots
        emu = PrinterEmulator(out_dir=Path(args.out), width_dots=width,
                              baudrate=args.baud or None, state=args.state,
                              link_path=Path(args.link) if args.link else None)
    except (ConfigError, ValueError) as e:
        print(f"tessera sim printer: {e}", file=sys.stderr)
        return 2
    with emu:
        print(emu.path, flush=True)
        deadline = time.monotonic() + args.duration if args.duration else None
        seen = 0
        try:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.1)
                for ticket in emu.tickets[seen:]:
                    print(f"ticket: {' | '.join(ticket.record['text'])} -> "
                          f"{ticket.record.get('png', '')}", flush=True)
                seen = len(emu.tickets)
        except KeyboardInterrupt:
            pass
    return 0


def printer_test(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    import msgspec
    from tessera.config import load_config, parse_config
    from tessera.drivers.escpos import EscposPrinter, PrinterLinkError
    from tessera.drivers.printer_profiles import get_profile
    from tessera.engine import Ticket
    from tessera.errors import ConfigError
    from tessera.printing.encoder import TicketEncoder
    from tessera.printing.layout import TicketRenderer
    from tessera.printing.template import TicketTemplate

    try:
        profile = get_profile(args.profile)
        cfg = load_config(args.config) if args.config else parse_config(_TEST_CONFIG)
        printer_sec = msgspec.structs.replace(cfg.kiosk.printer, profile=args.profile)
        cfg = msgspec.structs.replace(
            cfg, kiosk=msgspec.structs.replace(cfg.kiosk, printer=printer_sec))
        printer = EscposPrinter(args.port, profile, baudrate=args.baud or None)
    except ConfigError as e:
        print(f"tessera printer test: {e}", file=sys.stderr)
        return 2

    svc = cfg.services[0]
    sample = Ticket("00000000-0000-7000-8000-000000000000", f"{svc.prefix}000", svc.id, "issued",
                    None, "", datetime.now(UTC).isoformat(), 3, 300.0, None, 0, None)
    before = printer.status()
    print(f"status before: {before.state.value} {before.detail}")
    renderer = TicketRenderer(str(cfg.path(cfg.ticket.font)), profile.width_dots)
    data = TicketEncoder(profile, renderer, args.mode).encode(TicketTemplate(cfg).doc(sample))
    try:
        printer.send(data)
    except PrinterLinkError as e:
        print(f"print failed: {e}", file=sys.stderr)
        return 1
    after = printer.status(wait_s=printer.transfer_time_s(len(data)) + 1.0)
    printer.close()
    print(f"sent {len(data)} bytes ({printer.transfer_time_s(len(data)) * 1000:.0f} ms on the "
          f"{printer.link_kind} link); status after: {after.state.value} {after.detail}")
    return 0 if after.ready else 1
