"""``tessera config check FILE``."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("config", help="check a branch configuration")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    c = csub.add_parser("check", help="validate FILE; exit 0 when valid (warnings, e.g. a "
                        "name too long for the paper, on stderr), 2 listing every error")
    c.add_argument("file", help="branch config (TOML)")
    c.set_defaults(func=check)


def check(args: argparse.Namespace) -> int:
    from tessera.config import load_config
    from tessera.errors import ConfigError

    try:
        cfg = load_config(args.file)
    except ConfigError as e:
        print(f"{args.file}: {len(e.errors)} error(s):", file=sys.stderr)
        for err in e.errors:
            print(f"  {err}", file=sys.stderr)
        return 2
    print(f"{args.file}: OK ({cfg.branch.tenant}/{cfg.branch.branch}, "
          f"{len(cfg.services)} services, {len(cfg.counters)} counters)")
    try:  # what prints, but not as configured (the kiosk's extra may be missing here)
        from tessera.printing.checks import config_warnings
    except ImportError:
        return 0
    for warning in config_warnings(cfg):
        print(f"  warning: {warning}", file=sys.stderr)
    return 0
