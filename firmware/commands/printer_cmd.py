"""``tessera printer test`` and ``tessera sim printer``.

    tessera sim printer --out /tmp/tickets            # prints the pty path, runs until Ctrl-C
    tessera printer test --port /dev/pts/5 --profile XP-80C-CN
    tessera printer test --config /etc/tessera/branch.toml   # the kiosk's own printer

``printer test`` checks the port first (a missing device names the cable and
``/dev/serial/by-id``, no permission names the dialout group), reads the
status and sends nothing to a printer that reports a fault (a faulted printer
keeps the job and prints it whenever the fault clears) or that does not
answer, unless ``--no-status`` (or the config's ``require_status = false``).
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
    t.add_argument("--port",
                   help="device path or URL (/dev/ttyUSB0, /dev/pts/N, tcp://host:9100, "
                        "usb://VID:PID); default: the config's kiosk.printer.url")
    t.add_argument("--profile", default=None,
                   help="printer profile (default: the config's, else TM-T20II)")
    t.add_argument("--baud", type=int, default=0,
                   help="serial speed (default: the config's kiosk.printer.baudrate, else "
                        "the profile's)")
    t.add_argument("--mode", choices=("auto", "raster", "text"), default=None,
                   help="default: the config's kiosk.printer.mode, else auto")
    t.add_argument("--config", help="branch config: its printer settings and ticket template")
    t.add_argument("--no-status", action="store_true",
                   help="send even when the printer does not answer DLE EOT")
    t.set_defaults(func=printer_test)

    s = subgroup(sub, "sim", "run a hardware emulator")
    e = s.add_parser("printer", help="ESC/POS printer emulator on a pty")
    e.add_argument("--out", default="sim-tickets", help="directory for ticket PNG/JSON")
    e.add_argument("--profile", default="TM-T20II",
                   help="paper width and cutter (or tear bar) from this profile")
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
        profile = get_profile(args.profile)
        emu = PrinterEmulator(out_dir=Path(args.out), width_dots=profile.width_dots,
                              baudrate=args.baud or None, state=args.state,
                              link_path=Path(args.link) if args.link else None,
                              cutter=profile.cutter)
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
    if Path(port).is_dir():
        return f"--port {port[:200]} is a directory, not a device"
    return None  # missing or not writable: checks.port_errors says how to fix it


def _settings(args: argparse.Namespace) -> tuple[Any, list[str]]:
    """The config to print with: the test template, or ``--config`` with the flags on top."""
    import msgspec

    from tessera.config import load_config, parse_config
    from tessera.errors import ConfigError

    try:
        cfg = load_config(args.config) if args.config else parse_config(_TEST_CONFIG)
    except ConfigError as e:
        return None, list(e.errors)
    p = cfg.kiosk.printer
    changes: dict[str, Any] = {}
    if args.port or not args.config:
        changes["url"] = args.port or ""
    if args.profile or not args.config:
        changes["profile"] = args.profile or "TM-T20II"
    if args.mode or not args.config:
        changes["mode"] = args.mode or "auto"
    if args.baud or not args.config:
        changes["baudrate"] = args.baud  # 0 = the profile's, resolved by the caller
    if args.no_status:
        changes["require_status"] = False
    printer_sec = msgspec.structs.replace(p, **changes)
    cfg = msgspec.structs.replace(cfg, kiosk=msgspec.structs.replace(cfg.kiosk,
                                                                     printer=printer_sec))
    if not cfg.kiosk.printer.url:
        return cfg, ["--port: give the printer's device path or URL (or --config with "
                     "kiosk.printer.url)"]
    return cfg, []


def _port_problems(cfg: Any, from_flag: bool) -> list[str]:
    """``checks.port_errors`` (the kiosk's own start-up check), named after where the
    port came from: the cable / ``ls /dev/serial/by-id`` / dialout hints, not pyserial's."""
    from tessera.printing import checks

    url = cfg.kiosk.printer.url
    problem = _port_problem(url)
    if problem:
        return [problem if from_flag else problem.replace("--port", "kiosk.printer.url", 1)]
    errs = checks.port_errors(cfg)
    if from_flag:
        errs = [e.replace(f"kiosk.printer.url: {url}", f"--port {url[:200]}", 1)
                .replace("kiosk.printer.url:", "--port:", 1) for e in errs]
    return errs


def printer_test(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from tessera.drivers.escpos import EscposPrinter, PrinterLinkError, PrinterState
    from tessera.drivers.escpos_encoder import EncodeError, TicketEncoder
    from tessera.drivers.escpos_layout import TicketRenderer
    from tessera.drivers.printer_profiles import get_profile
    from tessera.engine import Ticket
    from tessera.errors import ConfigError
    from tessera.printing import checks
    from tessera.printing.template import TicketTemplate

    problems: list[str] = []
    if args.baud and args.baud not in BAUDRATES:
        problems.append(f"--baud {args.baud} is not a serial speed; use one of "
                        + ", ".join(map(str, BAUDRATES)))
    cfg, errs = _settings(args)
    problems += errs
    profile = None
    if cfg is not None:
        p = cfg.kiosk.printer
        try:
            profile = get_profile(p.profile)
        except ConfigError as e:
            flag = "--profile:" if args.profile or not args.config else "kiosk.printer.profile:"
            problems += [m.replace("kiosk.printer.profile:", flag, 1) for m in e.errors]
        if not errs:
            problems += _port_problems(cfg, from_flag=bool(args.port))
        if p.mode == "text" and profile is not None:  # what cannot print without raster
            problems += [f"--mode text: {e.split(': ', 1)[1]}" for e in checks.config_errors(cfg)
                         if e.startswith("kiosk.printer.mode:")]
    if problems or cfg is None or profile is None:
        for msg in problems:
            print(f"tessera printer test: {msg}", file=sys.stderr)
        return 2

    p = cfg.kiosk.printer
    svc = cfg.services[0]
    sample = Ticket("00000000-0000-7000-8000-000000000000", f"{svc.prefix}000", svc.id, "issued",
                    None, "", datetime.now(UTC).isoformat(), 3, 300.0, None, 0, None)
    renderer = TicketRenderer(str(cfg.path(cfg.ticket.font)), profile.width_dots)
    try:
        data = TicketEncoder(profile, renderer, p.mode).encode(TicketTemplate(cfg).doc(sample))
    except EncodeError as e:
        print(f"tessera printer test: --mode {p.mode}: {e}", file=sys.stderr)
        return 2
    printer = EscposPrinter(p.url, profile, baudrate=p.baudrate or None,
                            status_timeout_ms=p.status_timeout_ms)
    before = printer.status()
    print(f"status before: {before.state.value} {before.detail}")
    if before.state is PrinterState.UNKNOWN and before.detail.startswith("cannot open"):
        printer.close()
        return 1  # said once above: the link does not open
    refuse = before.state in (PrinterState.COVER_OPEN, PrinterState.PAPER_OUT,
                              PrinterState.OFFLINE)
    if refuse or (before.state is PrinterState.UNKNOWN and p.require_status):
        printer.close()
        why = ("a faulted printer keeps the job and prints it whenever the fault clears; "
               "fix the fault and run the test again" if refuse else
               "the printer did not answer the status request; check the cable, the baud "
               "rate and that the printer is on (or pass --no-status to send anyway)")
        print(f"not sent: {why}", file=sys.stderr)
        return 1
    try:
        printer.send(data)
    except PrinterLinkError as e:
        print(f"print failed: {e}", file=sys.stderr)
        printer.close()
        return 1
    after = printer.status(wait_s=printer.transfer_time_s(len(data)) + 1.0)
    printer.close()
    print(f"sent {len(data)} bytes at {printer.baudrate} baud "
          f"({printer.transfer_time_s(len(data)) * 1000:.0f} ms on the "
          f"{printer.link_kind} link); status after: {after.state.value} {after.detail}")
    return 0 if after.ready else 1
