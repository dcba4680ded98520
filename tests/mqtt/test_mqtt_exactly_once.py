"""Commands run exactly once across engine crashes (issue 12).

A kiosk device process (``command_device.py``: the project's own client, no memory
shared with the engine) issues and confirms tickets while ``tessera run engine`` is
SIGKILLed at a random moment and restarted, ``TESSERA_KILL_ROUNDS`` times (200 by
default, as in CI; fewer locally). The broker is mosquitto with exactly the files
``tessera broker config`` writes, every device logging in with its credentials.
Afterwards: every command the device issued got one answer (every re-sent copy of
an answer is the same answer), every command was applied once (tickets, outbox
events and stored answers all count the same), and no printed ticket was voided.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from engine_proc import EngineProcess
from mqtt_support import shipped_branch, start_generated

pytestmark = [pytest.mark.mqtt, pytest.mark.slow, pytest.mark.timeout(600)]
HERE = Path(__file__).parent
ROUNDS = int(os.environ.get("TESSERA_KILL_ROUNDS", "200"))


def device(config: Path, out: Path, stop: Path, name: str, *extra: str
           ) -> subprocess.Popen[bytes]:
    p = subprocess.Popen([sys.executable, str(HERE / "command_device.py"), "--config",
                          str(config), "--device", name, "--out", str(out),
                          "--stop-file", str(stop), *extra],
                         stdout=subprocess.PIPE, stderr=out.with_suffix(".log").open("wb"))
    assert p.stdout is not None and p.stdout.readline().strip() == b"started"
    return p


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]


def same_answer_for_every_copy(results: list[dict[str, Any]]) -> int:
    """Every copy of an answer (re-sends are answered from the replay table) is the same;
    returns how many copies came more than once."""
    by_corr: dict[str, set[str]] = {}
    copies = 0
    for a in results:
        if "answer" not in a or a["answer"]["code"] == "rate-limited":
            continue  # rate-limited is not an outcome: the client re-sends
        by_corr.setdefault(a["corr"], set()).add(json.dumps(a["answer"], sort_keys=True))
        copies += 1
    assert all(len(v) == 1 for v in by_corr.values()), \
        [v for v in by_corr.values() if len(v) > 1][:3]
    return copies - len(by_corr)


def test_commands_run_exactly_once_while_the_engine_is_killed(
        mosquitto: Any, broker_base: Path) -> None:
    config, cfg = shipped_branch(broker_base)
    start_generated(mosquitto, cfg, broker_base / "broker")
    engine = EngineProcess(config, broker_base / "engine.log")
    kout, cout, stop = broker_base / "kiosk.jsonl", broker_base / "counter.jsonl", \
        broker_base / "stop"
    rng = random.Random(int(os.environ.get("TESSERA_KILL_SEED", "12")))
    t0 = time.monotonic()
    engine.start()
    devs = [device(config, kout, stop, "kiosk-pi-k", "--pace-s", "0.05", "--threads", "4"),
            device(config, cout, stop, "counter-pi-1", "--pace-s", "0.1", "--counter", "c1")]
    try:
        for _ in range(ROUNDS):
            time.sleep(rng.uniform(0.0, 0.3))  # from "just up" to "busy for a while"
            engine.kill()
            engine.start()
        stop.touch()
        for d, out in zip(devs, (kout, cout), strict=True):
            d.wait(90)  # finishes the command in hand through the last engine
            assert d.returncode == 0, out.with_suffix(".log").read_text()[-3000:]
    finally:
        stop.touch()
        for d in devs:
            if d.poll() is None:
                d.kill()
        engine.stop()
    elapsed = time.monotonic() - t0
    kres, cres = lines(kout), lines(cout)
    ops = [r for r in kres + cres if "op" in r and r["op"] != "end"]
    failed = [r for r in ops if not r["ok"]]
    assert not failed, failed[:5]  # every command answered: none timed out or was refused
    repeated = same_answer_for_every_copy(kres) + same_answer_for_every_copy(cres)
    issued = [r for r in ops if r["op"] == "issue"]
    confirms = [r for r in ops if r["op"] == "confirm"]
    called = [r for r in ops if r["op"] == "call-next" and r["code"] == "ok"]
    finished = [r for r in ops if r["op"] == "done" and r["code"] == "ok"]
    assert issued and len(confirms) == len(issued) and finished
    assert all(c["state"] == "waiting" for c in confirms)
    # applied exactly once: in the tickets, the outbox and the replay table alike
    db = sqlite3.connect(broker_base / "var" / "engine.db")
    try:
        tickets = {r[0]: r[1:] for r in db.execute("SELECT id, number, state FROM tickets")}
        events = Counter(t for (t,) in db.execute("SELECT type FROM outbox"))
        stored = dict(db.execute("SELECT sender || ' ' || name, COUNT(*) FROM mqtt_replay "
                                 "GROUP BY sender, name").fetchall())
    finally:
        db.close()
    assert sorted(tickets) == sorted(r["ticket"] for r in issued)
    assert sorted(t[0] for t in tickets.values()) == sorted(
        f"A{i:03d}" for i in range(1, len(issued) + 1))  # no number skipped or used twice
    assert "void" not in {t[1] for t in tickets.values()}  # no printed ticket voided
    assert all(tickets[r["ticket"]][1] == "done" for r in finished)
    assert events["ticket.issued"] == events["ticket.printed"] == len(issued)
    assert events["ticket.called"] == len(called) and events["ticket.done"] == len(finished)
    assert events["ticket.void"] == 0
    assert stored == {"kiosk-pi-k issue-ticket": len(issued),
                      "kiosk-pi-k confirm-printed": len(issued),
                      "counter-pi-1 open-counter": 1,
                      "counter-pi-1 call-next": sum(r["op"] == "call-next" for r in ops),
                      "counter-pi-1 done": sum(r["op"] == "done" for r in ops)}
    sent = kres[-1]["sent"] + cres[-1]["sent"]
    commands = len(ops) + 1
    print(f"\n{ROUNDS} kills, {engine.starts} starts in {elapsed:.1f} s: {commands} commands "
          f"({len(issued)} tickets issued and confirmed, {len(finished)} called and done), "
          f"{sent - commands} re-sends, {repeated} answers repeated (redelivered or "
          f"re-sent), slowest command {max(r['s'] for r in ops):.2f} s")
