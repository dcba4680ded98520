"""Crash-safety helper: run engine commands as fast as possible, reporting each commit.

``python -m tessera.bench.crashloop DB`` prints one line per committed
command (``issue <id> <number>``, ``confirm <id>``, ``call <id>``,
``done <id>``) and flushes it, until killed (or after ``MAX_RUN_S``, so a
lost parent never leaves it running). The crash test SIGKILLs it at random
moments and checks the store afterwards.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tessera.clock import SystemClock
from tessera.config import BranchConfig, parse_config
from tessera.engine.engine import Engine
from tessera.engine.errors import DomainError

CONFIG = """
[branch]
tenant = "crash"
branch = "loop"
[clock]
trust = "always"
[engine]
unconfirmed_timeout_s = 0.2
[[services]]
id = "cash"
prefix = "A"
names = { en = "Cash" }
[[services]]
id = "loans"
prefix = "L"
names = { en = "Loans" }
[[counters]]
id = "c1"
number = 1
services = [{ service = "cash" }, { service = "loans" }]
"""
MAX_RUN_S = 30.0


def config() -> BranchConfig:
    return parse_config(CONFIG)


def main(argv: list[str]) -> int:
    engine = Engine.open(config(), SystemClock(), Path(argv[0]), trust=lambda: True)
    out = sys.stdout

    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    engine.tick()
    engine.open_counter("c1")
    snap = engine.snapshot()["counters"]["c1"]["current"]
    if snap is not None:
        say(f"done {engine.done('c1').id}")
    say("ready")
    i = 0
    stop = time.monotonic() + MAX_RUN_S
    while time.monotonic() < stop:
        i += 1
        t = engine.issue("cash" if i % 3 else "loans")
        say(f"issue {t.id} {t.number}")
        if i % 7 == 0:  # leave some unconfirmed: tick() voids them later
            engine.tick()
            continue
        say(f"confirm {engine.confirm_printed(t.id).id}")
        try:
            say(f"call {engine.call_next('c1').id}")
        except DomainError:
            continue
        say(f"done {engine.done('c1').id}")
    engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
