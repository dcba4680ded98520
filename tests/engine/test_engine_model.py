"""Model-based test: random command sequences against a simple model of the queue."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from engine_support import START, make_config
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tessera.clock import VirtualClock
from tessera.engine import DomainError, Engine, always_trusted

CFG = make_config(starvation_wait_s=100)
SERVICES = ("cash", "accounts", "loans")
COUNTERS = {"c1": ("cash", "accounts"), "c2": ("cash",), "c3": ("loans", "accounts")}
PRIORITIES = (None, None, None, "emergency", "priority", "vip")
RANK = {"emergency": 0, "priority": 1, "vip": 2, None: 4}
STARVE_AFTER, STARVE_WAIT = 2, 100.0
CHANGE_TYPES = ("ticket.", "counter.")
STATS = {"starvation_checked": 0}


class QueueMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp())
        self.clock = VirtualClock(START)
        self.engine = Engine.open(CFG, self.clock, self.dir / "e.db", trust=always_trusted)
        self.tickets: dict[str, dict[str, Any]] = {}
        self.counters: dict[str, dict[str, Any]] = {
            c: {"state": "open", "current": None, "streak": 0, "pending": False}
            for c in COUNTERS}
        for c in COUNTERS:
            self.engine.open_counter(c)
        self.order = 0
        self.seq = self.engine.outbox.last_seq()

    def teardown(self) -> None:
        self.engine.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -------------------------------------------------------------- helpers

    def _new_events(self) -> list[str]:
        evs = self.engine.events_since(self.seq)
        if evs:
            self.seq = evs[-1]["seq"]
        return [e["type"] for e in evs if e["type"].startswith(CHANGE_TYPES)]

    def _expect(self, code: str | None, fn: Any, changes: int) -> Any:
        try:
            result = fn()
        except DomainError as e:
            assert code == e.code, (code, e.code, str(e))
            assert self._new_events() == []
            return None
        assert code is None, f"expected {code}"
        evs = self._new_events()
        assert len(evs) == changes, evs
        return result

    def _waiting(self, services: tuple[str, ...]) -> list[dict[str, Any]]:
        return [t for t in self.tickets.values()
                if t["state"] == "waiting" and t["service"] in services]

    def _ticket_in(self, state: str) -> list[str]:
        return sorted(i for i, t in self.tickets.items() if t["state"] == state)

    def _enqueue(self, t: dict[str, Any]) -> None:
        self.order += 1
        t["order"], t["since"] = self.order, self.clock.now().timestamp()

    # -------------------------------------------------------------- rules

    @rule(service=st.sampled_from(SERVICES), priority=st.sampled_from(PRIORITIES))
    def issue(self, service: str, priority: str | None) -> None:
        t = self._expect(None, lambda: self.engine.issue(service, priority=priority), 1)
        assert t.state == "issued"
        self.tickets[t.id] = {"state": "issued", "service": service, "rank": RANK[priority],
                              "number": t.number}
        self._enqueue(self.tickets[t.id])  # queue position counts from issue, not print

    @rule(service=st.sampled_from(SERVICES), priority=st.sampled_from(PRIORITIES))
    def issue_and_confirm(self, service: str, priority: str | None) -> None:
        self.issue(service, priority)
        tid = max(self.tickets, key=lambda i: self.tickets[i]["order"])
        self._expect(None, lambda: self.engine.confirm_printed(tid), 1)
        self.tickets[tid]["state"] = "waiting"

    @rule(counter=st.sampled_from(sorted(COUNTERS)), priority=st.sampled_from(PRIORITIES[3:]))
    def priority_burst(self, counter: str, priority: str) -> None:
        """A normal ticket waits while priority tickets keep coming (the starvation case)."""
        service = COUNTERS[counter][0]
        self.issue_and_confirm(service, None)
        self.wait(STARVE_WAIT / 2 + 1)
        for _ in range(STARVE_AFTER + 1):
            self.issue_and_confirm(service, priority)
            self.wait(STARVE_WAIT / 2)
            if self.counters[counter]["current"]:
                self.finish(counter, "done")
            self.call_next(counter)

    @rule(data=st.data())
    def confirm(self, data: st.DataObject) -> None:
        ids = self._ticket_in("issued")
        if not ids:
            return
        tid = data.draw(st.sampled_from(ids))
        self._expect(None, lambda: self.engine.confirm_printed(tid), 1)
        self.tickets[tid]["state"] = "waiting"

    @rule(data=st.data())
    def void(self, data: st.DataObject) -> None:
        ids = sorted(self.tickets)
        if not ids:
            return
        tid = data.draw(st.sampled_from(ids))
        ok = self.tickets[tid]["state"] == "issued"
        self._expect(None if ok else "bad-state", lambda: self.engine.void(tid, "paper out"), 1)
        if ok:
            self.tickets[tid]["state"] = "void"

    @rule(counter=st.sampled_from(sorted(COUNTERS)))
    def call_next(self, counter: str) -> None:
        c = self.counters[counter]
        waiting = self._waiting(COUNTERS[counter])
        code = {"closed": "counter-closed", "paused": "counter-paused"}.get(c["state"])
        if code is None and c["current"]:
            code = "counter-busy"
        if code is None and not waiting:
            code = "queue-empty"
        t = self._expect(code, lambda: self.engine.call_next(counter), 1)
        if t is None:
            return
        got = self.tickets[t.id]
        assert got["state"] == "waiting"
        # FIFO within a priority class and a service
        same = [w for w in waiting if w["service"] == got["service"] and w["rank"] == got["rank"]]
        assert got["order"] == min(w["order"] for w in same)
        now = self.clock.now().timestamp()
        starving = [w for w in waiting if w["rank"] == 4 and now - w["since"] > STARVE_WAIT]
        if c["streak"] >= STARVE_AFTER and starving:
            STATS["starvation_checked"] += 1
            assert got["rank"] == 4, "anti-starvation bound violated"
        else:
            assert got["rank"] == min(w["rank"] for w in waiting)
        c["streak"] = c["streak"] + 1 if got["rank"] < 4 else 0
        got["state"], c["current"] = "called", t.id

    @rule(counter=st.sampled_from(sorted(COUNTERS)),
          action=st.sampled_from(("done", "no_show", "recall", "start")))
    def finish(self, counter: str, action: str) -> None:
        c = self.counters[counter]
        tid = c["current"]
        code = None if tid else "no-current-ticket"
        changes = 1
        if tid and action == "done" and self.tickets[tid]["state"] == "called":
            changes = 2
        if tid and action == "start" and self.tickets[tid]["state"] == "serving":
            code = "bad-state"
        ends = action in ("done", "no_show")
        changes += int(ends and c["pending"])  # a pending pause takes effect (issue 15)
        self._expect(code, lambda: getattr(self.engine, action)(counter), changes)
        if code is not None:
            return
        t = self.tickets[tid]
        if ends and c["pending"]:
            c["state"], c["pending"] = "paused", False
        if action in ("done", "no_show"):
            t["state"], c["current"] = {"done": "done", "no_show": "no_show"}[action], None
        elif action == "start":
            t["state"] = "serving"

    @rule(counter=st.sampled_from(sorted(COUNTERS)), service=st.sampled_from(SERVICES))
    def transfer(self, counter: str, service: str) -> None:
        c = self.counters[counter]
        tid = c["current"]
        code = None if tid else "no-current-ticket"
        if tid and self.tickets[tid]["service"] == service:
            code = "bad-state"
        pending = code is None and c["pending"]
        self._expect(code, lambda: self.engine.transfer(counter, service), 1 + int(pending))
        if code is None:
            if pending:
                c["state"], c["pending"] = "paused", False
            t = self.tickets[tid]
            t["state"], t["service"], c["current"] = "waiting", service, None
            self._enqueue(t)

    @rule(counter=st.sampled_from(sorted(COUNTERS)),
          action=st.sampled_from(("open", "close", "pause", "resume")))
    def counter_change(self, counter: str, action: str) -> None:
        c = self.counters[counter]
        old = c["state"]
        target = {"open": "open", "close": "closed", "pause": "paused", "resume": "open"}[action]
        code = None
        if action in ("pause", "resume") and old == "closed":
            code = "counter-closed"
        if action == "close" and c["current"]:
            code = "counter-busy"
        fn = {"open": self.engine.open_counter, "close": self.engine.close_counter,
              "pause": self.engine.pause, "resume": self.engine.resume}[action]
        if code is None and action == "pause" and old == "open" and c["current"]:
            # engine.pause_while_called = "after_done": pending until the ticket ends
            self._expect(None, lambda: fn(counter), int(not c["pending"]))
            c["pending"] = True
            return
        changes = int(old != target) + int(code is None and c["pending"])  # cancelled
        self._expect(code, lambda: fn(counter), changes)
        if code is None:
            c["pending"] = False
            c["state"] = target
            if target == "closed":
                c["streak"] = 0

    @rule(seconds=st.floats(0, 120))
    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)

    # -------------------------------------------------------------- invariants

    @invariant()
    def one_state_per_ticket_and_unique_numbers(self) -> None:
        rows = self.engine.conn.execute("SELECT id, state, service, number FROM tickets").fetchall()
        assert {r[0]: (r[1], r[2]) for r in rows} == {
            i: (t["state"], t["service"]) for i, t in self.tickets.items()}
        numbers = [r[3] for r in rows]
        assert len(numbers) == len(set(numbers))


QueueMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=40,
                                          deadline=None)


class TestQueueMachine(QueueMachine.TestCase):  # type: ignore[misc,valid-type]
    @classmethod
    def tearDownClass(cls) -> None:
        # the anti-starvation branch must actually have been exercised
        assert STATS["starvation_checked"] > 0
