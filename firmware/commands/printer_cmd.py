"""``tessera printer test`` and ``tessera sim printer``.

    tessera sim printer --out /tmp/tickets            # prints the pty path, runs until Ctrl-C
    tessera printer test --port /dev/pts/5 --profile XP-80C-CN
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from typing import Any

from tessera.commands.board_cmd import subgroup
from tessera.commands.sim_cmd import add_state_argument, control_printer

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
    add_state_argument(e, "ok, near-end, paper-out, cover-open, offline, silent, garbage")
    e.set_defaults(func=sim_printer)


def sim_printer(args: argparse.Namespace) -> int:
    if args.control_state is not None:  # `sim printer STATE`: tell the running sim hardware
        return control_printer(args)
    from pathlib import Path

    from tessera.drivers.printer_profiles import get_profile
    from tessera.errors import ConfigError
    from tessera.sim.printer import PrinterEmulator, PrinterSimState

    if problem := _sim_printer_problem(args, [s.value for s in PrinterSimState]):
        print(f"tessera sim printer: {problem}", file=sys.stderr)
        return 2
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


def _sim_printer_problem(args: argparse.Namespace, states: list[str]) -> str | None:
    """What in the emulator's options would fail or harm something, checked before it
    starts: the symlink it makes (and removes at exit) must never replace a file."""
    from pathlib import Path

    from tessera.config_paths import dir_problem

    if args.state not in states:
        return f"--state {args.state[:40]!r} is not a printer state; valid: {', '.join(states)}"
    if problem := dir_problem(Path(args.out), writable=True):
        return f"--out {args.out} {problem}"
    if args.link:
        link = Path(args.link)
        for p in (link, link.with_name(link.name + ".new")):
            if p.is_symlink() or not os.path.lexists(p):
                continue
            return (f"--link {p} exists and is not a symlink; it is left alone: remove it "
                    "yourself or choose another path")
        if problem := dir_problem(link.parent, writable=True):
            return f"--link: {link.parent} {problem}"
    return None


BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400)


def _port_problem(port: str) -> str | None:
    """Why ``--port`` cannot be a printer, checked before anything is opened."""
    import importlib.util
    from pathlib import Path

    from tessera.config_paths import url_problem

    if port.startswith("usb://"):
        if not re.fullmatch(r"usb://[0-9a-fA-F]{4}:[0-9a-fA-F]{4}", port):
            return f"--port {port[:60]!r} is not usb://VID:PID (4 hex digits each)"
        if importlib.util.find_spec("usb") is None:
            return ("--port usb://: USB printers need pyusb; install it with "
                    "pip install 'tessera[usb]' (or apt-get install python3-usb)")
        return None
    for scheme in ("tcp", "socket"):
        if port.startswith(f"{scheme}://"):
            problem = url_problem(port, (scheme,), port_required=True)
            return f"--port {problem}" if problem else None
    if "://" in port:
        return None  # another pyserial URL (rfc2217://, loop://): pyserial checks it
    dev = Path(port)
    if not dev.exists():
        return f"--port {port[:200]} does not exist; check the cable and ls /dev/serial/by-id/"
    if dev.is_dir():
        return f"--port {port[:200]} is a directory, not a device"
    if not os.access(dev, os.R_OK | os.W_OK):
        return f"--port {port[:200]}: no permission; add this user to the dialout group"
    return None


def printer_test(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    import msgspec
    from tessera.config import load_config, parse_config
    from tessera.drivers.escpos import EscposPrinter, PrinterLinkError, PrinterState
    from tessera.drivers.printer_profiles import get_profile
    from tessera.engine import Ticket
    from tessera.errors import ConfigError
    from tessera.printing import checks
    from tessera.printing.encoder import EncodeError, TicketEncoder
    from tessera.printing.layout import TicketRenderer
    from tessera.printing.template import TicketTemplate

    problems = [p for p in (_port_problem(args.port),) if p]
    if args.baud and args.baud not in BAUDRATES:
        problems.append(f"--baud {args.baud} is not a serial speed; use one of "
                        + ", ".join(map(str, BAUDRATES)))
    try:
        profile = get_profile(args.profile)
    except ConfigError as e:
        problems += [m.replace("kiosk.printer.profile:", "--profile:", 1) for m in e.errors]
    try:
        cfg = load_config(args.config) if args.config else parse_config(_TEST_CONFIG)
        printer_sec = msgspec.structs.replace(cfg.kiosk.printer, profile=args.profile,
                                              mode=args.mode)
        cfg = msgspec.structs.replace(
            cfg, kiosk=msgspec.structs.replace(cfg.kiosk, printer=printer_sec))
        if args.mode == "text":  # what this printer cannot print without raster
            problems += [f"--mode text: {e.split(': ', 1)[1]}" for e in checks.config_errors(cfg)
                         if e.startswith("kiosk.printer.mode:")]
    except ConfigError as e:
        problems += e.errors
    if problems:
        for p in problems:
            print(f"tessera printer test: {p}", file=sys.stderr)
        return 2

    svc = cfg.services[0]
    sample = Ticket("00000000-0000-7000-8000-000000000000", f"{svc.prefix}000", svc.id, "issued",
                    None, "", datetime.now(UTC).isoformat(), 3, 300.0, None, 0, None)
    renderer = TicketRenderer(str(cfg.path(cfg.ticket.font)), profile.width_dots)
    try:
        data = TicketEncoder(profile, renderer, args.mode).encode(TicketTemplate(cfg).doc(sample))
    except EncodeError as e:
        print(f"tessera printer test: --mode {args.mode}: {e}", file=sys.stderr)
        return 2
    printer = EscposPrinter(args.port, profile, baudrate=args.baud or None)
    before = printer.status()
    print(f"status before: {before.state.value} {before.detail}")
    if before.state is PrinterState.UNKNOWN and before.detail.startswith("cannot open"):
        printer.close()
        return 1  # said once above: the link does not open
    try:
        printer.send(data)
    except PrinterLinkError as e:
        print(f"print failed: {e}", file=sys.stderr)
        printer.close()
        return 1
    after = printer.status(wait_s=printer.transfer_time_s(len(data)) + 1.0)
    printer.close()
    print(f"sent {len(data)} bytes ({printer.transfer_time_s(len(data)) * 1000:.0f} ms on the "
          f"{printer.link_kind} link); status after: {after.state.value} {after.detail}")
    return 0 if after.ready else 1
