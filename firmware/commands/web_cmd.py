"""``tessera web hash-password``: the ``password_hash`` of a console account.

Reads the password from stdin (or asks twice on a terminal), never from the command
line (it would land in the shell history and the process list), and prints
``scrypt$N$r$p$salt$hash`` for ``[[web.accounts]] password_hash``.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

MIN_PASSWORD = 8


def register(sub: Any) -> None:
    p = sub.add_parser("web", help="web role helpers (console password hashes)")
    wsub = p.add_subparsers(dest="web_command", metavar="ACTION", required=True)
    h = wsub.add_parser("hash-password", help="print the scrypt hash of a console password "
                        "(read from stdin, or asked twice on a terminal)")
    h.set_defaults(func=hash_password)


def hash_password(args: argparse.Namespace) -> int:
    from tessera.web.accounts import MAX_PASSWORD
    from tessera.web.accounts import hash_password as make

    if sys.stdin.isatty():
        pw = getpass.getpass("password: ")
        if getpass.getpass("again: ") != pw:
            print("tessera web hash-password: the two passwords differ", file=sys.stderr)
            return 2
    else:
        pw = sys.stdin.readline().rstrip("\r\n")
    if not MIN_PASSWORD <= len(pw) <= MAX_PASSWORD:
        print(f"tessera web hash-password: a password has {MIN_PASSWORD} to {MAX_PASSWORD} "
              f"characters; this one has {len(pw)}", file=sys.stderr)
        return 2
    print(make(pw))
    return 0
