"""``tessera run ROLE --config FILE [--sim]``: run the branch, or one role of it.

``all`` runs every role in one process over the in-process bus; ``kiosk``,
``counter``, ``display``, ``engine`` and ``web`` run one role each, talking MQTT.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tessera.identity import RUN_ROLES

LOG_LEVELS = ("debug", "info", "warning", "error")


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run the branch (all) or one role on this device")
    p.add_argument("role", choices=RUN_ROLES,
                   help="all, kiosk, counter, display, engine or web (the web role is part "
                        "of all when web.enabled is true)")
    p.add_argument("--config", type=Path, required=True, help="branch config (TOML)")
    p.add_argument("--sim", action="store_true",
                   help="simulated hardware: mock GPIO pins, printer and board emulators "
                        "on ptys (output under <storage.dir>/sim)")
    p.add_argument("--device", default=os.environ.get("TESSERA_DEVICE") or None,
                   help="this Pi's name in the config (counters[].device, kiosk.device, "
                        "board.device); its role runs as MQTT device <role>-<NAME>. counter: "
                        "only the panels wired to this Pi. Default $TESSERA_DEVICE; required "
                        "on real hardware when counter panels are wired to several Pis")
    p.add_argument("--log-level", default=os.environ.get("TESSERA_LOG_LEVEL") or "info",
                   choices=LOG_LEVELS, help="log lines on stderr (journald under systemd) "
                   "from this level up; default $TESSERA_LOG_LEVEL or info")
    p.add_argument("--tick-s", type=float, default=1.0, help=argparse.SUPPRESS)
    p.add_argument("--ready-file", type=Path, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def setup_logging(level: str) -> None:
    """One format for every role, before any library can choose one: python-escpos calls
    ``logging.basicConfig`` at import, which would otherwise decide the kiosk's. No
    timestamp: journald stamps each line."""
    import logging

    logging.basicConfig(level=level.upper(), format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr, force=True)


def run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    from tessera.clock import SystemClock
    from tessera.config import load_config
    from tessera.errors import ConfigError, DeviceError
    from tessera.service import Notifier, Watchdog
    from tessera.wiring import build_branch

    try:
        # only this role's device checks: a display Pi needs no ticket font
        cfg = load_config(args.config, roles=(args.role,))
    except ConfigError as e:
        print(f"tessera run: {e}", file=sys.stderr)
        return 2
    if args.role == "counter" and not args.sim and args.device is None:
        devices = sorted({c.device for c in cfg.counters if c.panel is not None})
        if len(devices) > 1:
            print(f"tessera run counter: this config wires counter panels to the devices "
                  f"{', '.join(devices)}; say which Pi this is with --device NAME (or "
                  "TESSERA_DEVICE=NAME in /etc/tessera/tessera.env)", file=sys.stderr)
            return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with ExitStack() as stack:
        if args.sim:
            from tessera.demo.hardware import simulated_hardware

            cfg = stack.enter_context(simulated_hardware(cfg, cfg.path(cfg.storage.dir) / "sim",
                                                         roles=(args.role,)))
        try:
            branch = build_branch(cfg, SystemClock(), roles=(args.role,), sim=args.sim,
                                  device=args.device)
        except ConfigError as e:
            print(f"tessera run: {e}", file=sys.stderr)
            return 2
        except DeviceError as e:  # GPIO library, hardware or simulator missing: say which
            print(f"tessera run: {e}", file=sys.stderr)
            return 1
        stack.callback(branch.close)
        notifier = Notifier.from_env()
        if branch.web is not None:
            print(f"tessera run {args.role}: web on {branch.web.url} (/display, /t/<ticket>, "
                  "/manage)", flush=True)
        print(f"tessera run {args.role}: ready", flush=True)
        if args.ready_file is not None:
            args.ready_file.write_text("ready\n")
        notifier.ready(f"{args.role}: serving")
        watchdog = Watchdog(notifier)  # unhealthy: no WATCHDOG=1, systemd restarts the role
        while not stop.wait(args.tick_s):
            branch.tick()
            watchdog.tick(branch)
        notifier.stopping()
        print(f"tessera run {args.role}: stopping", flush=True)
    print(f"tessera run {args.role}: stopped", flush=True)
    return 0
