"""Crash safety for real: SIGKILL a busy engine process hundreds of times.

A subprocess issues, confirms, calls and completes tickets as fast as it can,
reporting each committed command on stdout. We kill it at random moments
(``TESSERA_CRASH_KILLS`` times, default 200), restart it each time, and then
check the store: no number twice, every reported command present, and the
outbox events replay exactly to the final ticket states.
"""

from __future__ import annotations

import json
import os
import random
import selectors
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

KILLS = int(os.environ.get("TESSERA_CRASH_KILLS", "200"))


def _run_once(db: Path, rng: random.Random, lines: list[str]) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tessera.bench.crashloop", str(db)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    wait_ready = rng.random() < 0.8  # else kill somewhere in start-up/recovery
    deadline = time.monotonic() + (10.0 if wait_ready else rng.uniform(0.05, 0.3))
    kill_at = None
    while time.monotonic() < (kill_at or deadline):
        for key, _ in sel.select(timeout=0.005):
            chunk = os.read(key.fd, 65536)
            if not chunk:
                break
            buf += chunk
        if kill_at is None and wait_ready and b"ready\n" in buf:
            kill_at = time.monotonic() + rng.uniform(0.0, 0.06)
        if proc.poll() is not None:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    rest = proc.stdout.read()
    sel.close()
    proc.stdout.close()
    err = proc.stderr.read() if proc.stderr else b""
    if proc.stderr:
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, err.decode(errors="replace")
    lines.extend(ln for ln in (buf + rest).decode().splitlines() if ln != "ready")


def replay(events: list[dict[str, object]]) -> dict[str, tuple[str, str, str]]:
    """Fold outbox events into {ticket_id: (state, number, service)} (independent of the engine)."""
    tickets: dict[str, tuple[str, str, str]] = {}
    for env in events:
        d = env["data"]
        assert isinstance(d, dict)
        t = env["type"]
        if t == "ticket.issued":
            assert d["ticket_id"] not in tickets
            tickets[d["ticket_id"]] = ("issued", d["number"], d["service"])
            continue
        if not str(t).startswith("ticket."):
            continue
        state, number, service = tickets[d["ticket_id"]]
        if t == "ticket.printed":
            assert state == "issued"
            state = "waiting"
        elif t == "ticket.void":
            assert state in ("issued", "waiting", "called", "serving")
            state = "void"
        elif t == "ticket.called":
            assert state == "waiting"
            state = "called"
        elif t == "ticket.serving":
            assert state == "called"
            state = "serving"
        elif t == "ticket.done":
            assert state == "serving"
            state, service = ("waiting", d["next_service"]) if d["next_service"] else ("done",
                                                                                      service)
        elif t == "ticket.no_show":
            state = "no_show"
        elif t == "ticket.transferred":
            state, service = "waiting", d["to_service"]
        tickets[d["ticket_id"]] = (state, number, service)
    return tickets


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_sigkill_many_times_loses_and_invents_nothing(tmp_path: Path) -> None:
    db = tmp_path / "engine.db"
    rng = random.Random(1234)
    lines: list[str] = []
    for _ in range(KILLS):
        _run_once(db, rng, lines)

    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT id, state, number, service, business_day FROM tickets").fetchall()
    state = {r[0]: (r[1], r[2], r[3]) for r in rows}
    dupes = conn.execute("SELECT business_day, number, COUNT(*) FROM tickets "
                         "GROUP BY business_day, number HAVING COUNT(*) > 1").fetchall()
    assert dupes == []
    assert len(lines) > KILLS  # the loop made progress between kills

    after = {"confirm": ("waiting", "called", "serving", "done"),
             "call": ("called", "serving", "done"), "done": ("done",)}
    for line in lines:
        verb, tid, *rest = line.split()
        assert tid in state, f"reported {line!r} but the ticket is missing"
        if verb == "issue":
            assert state[tid][1] == rest[0]
        elif state[tid][0] != "void" or verb == "confirm":
            assert state[tid][0] in after[verb], (line, state[tid])

    seqs = [r[0] for r in conn.execute("SELECT seq FROM outbox ORDER BY seq")]
    assert seqs == list(range(1, len(seqs) + 1)), "an event was lost or invented"
    events = [json.loads(r[0]) for r in conn.execute("SELECT body FROM outbox ORDER BY seq")]
    assert replay(events) == state
    current = conn.execute("SELECT current FROM counters WHERE id = 'c1'").fetchone()[0]
    open_calls = [t for t, (s, _, _) in state.items() if s in ("called", "serving")]
    assert open_calls == ([current] if current else [])
    conn.close()
