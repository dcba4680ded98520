"""The engine's core: transactions, outbox events, business day, clock trust, lookups
and wait estimates. Commands live in ``issuing.py`` and ``calling.py``; the
public class is :class:`tessera.engine.engine.Engine`.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import logging
import math
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, TypeVar

from tessera.clock import Clock
from tessera.config import BranchConfig, Service, parse_hhmm
from tessera.engine import errors as E
from tessera.engine.appointments import Booking, load_bookings
from tessera.engine.clocktrust import (
    Anchor,
    BootClock,
    ClockSet,
    EngineClock,
    SystemBoot,
    parse_local_time,
)
from tessera.engine.day import TrustCheck, business_day, trust_check
from tessera.engine.estimator import Server, ServiceHistory, combined_wait
from tessera.engine.models import Ticket
from tessera.engine.policy import Rules
from tessera.engine.rows import COUNTER_COLS, REAL_COLS, TICKET_COLS, CounterRow, TicketRow
from tessera.engine.store import open_store
from tessera.engine.waitmodel import WaitModel, staffing
from tessera.outbox import Outbox, rfc3339

Envelope = dict[str, Any]
T = TypeVar("T")
CommitHook = Callable[[list[Envelope]], None]
# Called with the engine's connection and the command's result inside its transaction,
# right before COMMIT (see ``EngineCore.recording``).
RecordHook = Callable[[sqlite3.Connection, Any], None]

log = logging.getLogger(__name__)
_FIELD_INDEX = {name: i for i, name in enumerate(TicketRow._fields)}
_STATE = _FIELD_INDEX["state"]
_UPDATE_SQL: dict[tuple[str, ...], str] = {}  # one stable statement per column set
TRUST_CACHE_S = 60.0  # a positive NTP check stays valid this long (timedatectl is slow)
CLOCK_SLACK_S = 2.0  # tolerated backwards step before the clock counts as untrusted
MAX_CLOCK_STEP_S = 31 * 86400.0  # the furthest ahead a member of staff may set the clock


def utc_datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _ref(r: TicketRow) -> dict[str, Any]:
    """The fields every ticket event starts with."""
    return {"ticket_id": r.id, "number": r.number, "service": r.service}


@dataclass(slots=True)
class Command:
    """The context of the one command running now (one SQLite transaction).

    ``now`` is the command's single clock reading (epoch s): every timestamp it
    writes is this one; ``events`` the outbox envelopes it appended, handed to
    ``on_commit`` after COMMIT; ``after_commit`` in-memory updates (caches, the
    saved ``last_ts``) applied only once the transaction committed. A command that
    raises leaves nothing of either.
    """

    now: float
    events: list[Envelope] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)


@dataclass(slots=True)
class DayCache:
    """What the engine knows of the business day without reading the store: the day in
    force and its window (epoch s), and the ``day_services`` rows known to exist. A
    rolled-back command may have rolled the day or added rows: it ``forget()``s."""

    window: tuple[str, float, float] | None = None
    services: set[tuple[str, str]] = field(default_factory=set)

    def forget(self) -> None:
        self.window = None
        self.services = set()


class EngineCore:
    """State, transactions and lookups shared by the command mixins.

        core = EngineCore.open(cfg, VirtualClock(start), trust=always_trusted)
    """

    def __init__(self, cfg: BranchConfig, clock: Clock, conn: sqlite3.Connection, *,
                 trust: TrustCheck | None = None, on_commit: CommitHook | None = None,
                 boot: BootClock | None = None) -> None:
        self.cfg = cfg
        # the engine's time: the system clock, or the last confirmed time plus the boot
        # time elapsed since (clock trust on a Pi without RTC, engine/clocktrust.py)
        self.clock = EngineClock(clock, boot if boot is not None else SystemBoot())
        self.conn = conn
        self.on_commit = on_commit
        self.outbox = Outbox(conn, tenant=cfg.branch.tenant, branch=cfg.branch.branch,
                             device=cfg.mqtt.device)
        self._trust = trust if trust is not None else trust_check(cfg)
        self._trusted_until = -math.inf
        self._lock = threading.RLock()
        self._cmd = Command(0.0)  # the running command (a spent one between commands)
        self._tz = cfg.tz
        self._rollover = parse_hhmm(cfg.branch.day_rollover)
        self._services = {s.id: s for s in cfg.services}
        self._counters = {c.id: c for c in cfg.counters}
        order = cfg.engine.priority_order
        self._rank = {p: i for i, p in enumerate(order)}
        self.rules = Rules(len(order), cfg.engine.starvation_after, cfg.engine.starvation_wait_s)
        # recent service times per service: (arrival order, sorted), kept in step with the
        # service_times table after each commit; the ServiceHistory view is rebuilt lazily
        self._times: dict[str, tuple[deque[float], list[float]]] = {}
        self._hist: dict[str, ServiceHistory] = {}
        self._waits = WaitModel()  # the estimator's online terms (engine/waitmodel.py)
        self._record: RecordHook | None = None
        # when this process opened the store: a kiosk's confirm that was on its way when
        # the engine went down gets a full unconfirmed_timeout_s after the restart to land
        self._up_since = clock.now().timestamp()
        self._days = DayCache()
        self._last_ts_saved = -math.inf  # last_ts as stored (read at setup)
        self.notices: list[str] = []
        # the last closed day's KPI summary (retained state/kpi), kept in meta.kpi_daily
        self.kpi_daily: dict[str, Any] | None = None
        self._setup()

    @classmethod
    def open(cls, cfg: BranchConfig, clock: Clock, db_path: Path | None = None, *,
             trust: TrustCheck | None = None, on_commit: CommitHook | None = None,
             boot: BootClock | None = None) -> Self:
        """Open (creating or migrating) the store at ``db_path`` (default
        ``<storage.dir>/engine.db``); StoreError if it is corrupt or foreign."""
        path = db_path if db_path is not None else cfg.path(cfg.storage.dir) / "engine.db"
        conn = open_store(Path(path))
        try:
            return cls(cfg, clock, conn, trust=trust, on_commit=on_commit, boot=boot)
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    # ------------------------------------------------------------------ plumbing

    def _setup(self) -> None:
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                self.conn.executemany(
                    "INSERT OR IGNORE INTO counters(id, staff) VALUES (?, ?)",
                    [(c.id, c.staff) for c in self.cfg.counters])
                if self.cfg.engine.appointments_file:
                    self._insert_bookings(
                        load_bookings(self.cfg.path(self.cfg.engine.appointments_file), self.cfg))
                self.conn.execute("COMMIT")
            except BaseException:
                self.outbox.abort()
                raise
            last = self._meta("last_ts")
            self._last_ts_saved = -math.inf if last is None else float(last)
            self.clock.adopt(Anchor.loads(self._meta("clock_anchor")))  # this boot's only
            day = self._meta("business_day")
            if day is not None:
                self.notices = self._prefix_notices(day)
            kpi = self._meta("kpi_daily")
            self.kpi_daily = None if kpi is None else json.loads(kpi)

    def _run(self, fn: Callable[[float], T], *, roll: bool = True) -> T:
        with self._lock:
            cmd = self._cmd = Command(self.clock.now().timestamp())
            now = cmd.now
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                if roll:
                    self._roll_if_due(now)
                result = fn(now)
                now = cmd.now  # set_clock moves the command's own time
                if now >= self._last_ts_saved + 1.0:  # 1 s resolution is plenty for sanity
                    self.conn.execute(
                        "UPDATE meta SET value = ? WHERE key = 'last_ts' "
                        "AND CAST(value AS REAL) < ?", (repr(now), now))
                    cmd.after_commit.append(lambda: setattr(self, "_last_ts_saved", now))
                record, self._record = self._record, None
                if record is not None:
                    record(self.conn, result)
                self.conn.execute("COMMIT")
            except BaseException:
                self.outbox.abort()  # also after a failed COMMIT: a failed command changes nothing
                self._cmd = Command(now)
                self._days.forget()
                raise
            for apply in cmd.after_commit:
                apply()
            events = cmd.events
            self._cmd = Command(now)
        if events and self.on_commit is not None:
            self.on_commit(events)
        return result

    @contextmanager
    def recording(self, record: RecordHook) -> Iterator[None]:
        """Have the next command of this thread write its own record in its transaction.

        ``record(conn, result)`` runs right before the command's COMMIT, so the state
        change and, e.g., the MQTT command server's stored answer commit together or
        not at all. The engine lock is held throughout: no other thread's command can
        take the hook. A command that raises never calls it.

            with engine.recording(lambda conn, result: save(conn, result)):
                engine.call_next("c1")
        """
        with self._lock:
            self._record = record
            try:
                yield
            finally:
                self._record = None

    def _next_qorder(self) -> int:
        """The back of every queue: the ``seq`` the command's next outbox event gets.

        Every queue entry (issue, routed DONE, transfer to the back) emits an event right
        after taking its position, and outbox ``seq`` only grows (never reused, see
        ``tessera.outbox.SCHEMA``), so positions increase across restarts without an
        index on ``qorder`` (one B-tree page less per issue). Must be called before that
        event is emitted.
        """
        return self.outbox.peek_next_seq(self.conn)

    def _emit(self, type_: str, data: dict[str, Any]) -> None:
        self._cmd.events.append(self.outbox.append(type_, data, ts=utc_datetime(self._cmd.now),
                                                   conn=self.conn))

    def _meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) "
                          "DO UPDATE SET value = excluded.value", (key, value))

    # ------------------------------------------------------------------ day & clock

    def business_day(self, now: float | None = None) -> str:
        t = self.clock.now() if now is None else utc_datetime(now)
        return business_day(t, self._tz, self._rollover).isoformat()

    def _checked_day(self, now: float) -> str | None:
        """The business day the last day roll checked, when its window covers ``now``."""
        known = self._days.window
        return known[0] if known is not None and known[1] <= now < known[2] else None

    def _day_of(self, now: float) -> str:
        """``business_day(now)``, from the window the day roll checked when it covers ``now``."""
        return self._checked_day(now) or self.business_day(now)

    def _roll_if_due(self, now: float) -> None:
        if self._checked_day(now) is not None:
            return  # still inside the business day checked last time
        day = self.business_day(now)
        stored = self._meta("business_day")
        if stored is not None and day <= stored:
            if day == stored:
                self._days.window = (day, *self._day_bounds(now, day))
            return  # same day, or the clock went backwards: never roll back
        if stored is not None:
            self._end_day(stored, day)
            self._close_day_kpis(stored)
        self._set_meta("business_day", day)
        if self._meta("last_ts") is None:
            self._set_meta("last_ts", repr(now))
            self._cmd.after_commit.append(lambda: setattr(self, "_last_ts_saved", now))
        self.conn.executemany(
            "INSERT OR IGNORE INTO day_services(business_day, service, prefix) VALUES (?, ?, ?)",
            [(day, s.id, s.prefix) for s in self.cfg.services])
        self.notices = []
        self._days.window = (day, *self._day_bounds(now, day))
        self._emit("day.rolled", {"business_day": day})

    def _day_bounds(self, now: float, day: str) -> tuple[float, float]:
        """Epoch bounds of a window around ``now`` inside its business day ``day`` (at most
        1 h, so DST shifts and odd roll times are always re-checked exactly)."""
        lo, hi = now - 3600.0, now + 3600.0
        while self.business_day(lo) != day:
            lo = (lo + now) / 2 if now - lo > 1 else now
        while self.business_day(hi) != day:
            hi = (hi + now) / 2 if hi - now > 1 else now
        return lo, hi

    def _end_day(self, day: str, new_day: str) -> None:
        """End business day ``day`` as ``new_day`` begins (docs/engine.md, "Business day").

        A ticket called or served at a counter is never voided: it stays with its counter
        and ends normally in ``new_day``. A waiting (or printing) ticket of a service with
        ``at_day_end = "carry"`` keeps its place and number; every other open ticket is
        voided (its stay ends: visit outcome ``void``, reason ``day_end``). A kept ticket
        moves into ``new_day`` with its sequence (event ``ticket.carried``), so the UNIQUE
        (business_day, origin, seq) index keeps every live number unique, the new day's
        numbering of its origin continues above it, and it counts in ``new_day``.
        """
        # Every open ticket belongs to ``day`` or before (the stored day only moves forward),
        # so no day filter: each open state comes through its own small index instead, the
        # partial ones for issued and waiting, the counters' current for called/serving.
        rows = self.conn.execute(
            f"SELECT {TICKET_COLS} FROM tickets WHERE state = 'issued' "
            f"UNION ALL SELECT {TICKET_COLS} FROM tickets WHERE state = 'waiting' "
            f"UNION ALL SELECT {TICKET_COLS} FROM tickets WHERE id IN (SELECT current FROM "
            "counters) AND state IN ('called', 'serving') ORDER BY qorder").fetchall()
        for t in map(TicketRow._make, rows):
            svc = self._services.get(t.service)
            if t.state in ("called", "serving") or (svc is not None and
                                                     svc.at_day_end == "carry"):
                try:
                    self.conn.execute("UPDATE tickets SET business_day = ? WHERE id = ?",
                                      (new_day, t.id))
                except sqlite3.IntegrityError:
                    pass  # its number is taken in new_day (left from an older day): void it
                else:
                    self._emit("ticket.carried", {**_ref(t), "state": t.state,
                                                  "from_day": t.business_day,
                                                  "business_day": new_day})
                    continue
            if t.state != "issued":  # a ticket never confirmed as printed never queued
                self._end_visit(t, "void", reason="day_end")
            self._set_state(t, "void", ended_at=self._cmd.now)
            self._emit("ticket.void", {**_ref(t), "reason": "the business day ended"})
            if t.counter is not None and t.state in ("called", "serving"):
                self.conn.execute("UPDATE counters SET current = NULL WHERE current = ?",
                                  (t.id,))
        self.conn.execute("UPDATE counters SET priority_streak = 0")

    def _close_day_kpis(self, day: str) -> None:
        """The closed day's KPI summary (docs/kpi.md): a ``kpi.daily`` event and the value
        of the retained ``state/kpi``, in the day roll's transaction. A failure here is
        logged and never fails the command that rolled the day (a customer's ticket)."""
        from tessera.report.daily import closed_day_summary

        try:
            summary = closed_day_summary(self.conn, day, self.cfg)
        except Exception:
            log.exception("kpi.daily for %s could not be computed; the day rolls without it",
                          day)
            return
        text = json.dumps(summary, sort_keys=True, separators=(",", ":"))
        self._set_meta("kpi_daily", text)
        self._emit("kpi.daily", summary)
        self._cmd.after_commit.append(lambda: setattr(self, "kpi_daily", json.loads(text)))

    def _prefix_notices(self, day: str) -> list[str]:
        out = []
        for service, prefix in self.conn.execute(
                "SELECT service, prefix FROM day_services WHERE business_day = ?", (day,)):
            svc = self._services.get(service)
            if svc is not None and svc.prefix != prefix:
                out.append(
                    f"services.{service}.prefix: the change from {prefix!r} to {svc.prefix!r} "
                    f"is refused until the next business day: tickets {prefix}… were already "
                    f"issued on {day}, and one service must keep one prefix per day")
        return out

    def _clock_problem(self, now: float) -> str | None:
        """Why tickets cannot be issued at ``now`` (None: they can). Policy per
        ``clock.trust`` in docs/engine.md, "Clock trust"."""
        clock = self.clock
        if clock.monotonic() >= self._trusted_until:
            synced = self._trust()
            if self.cfg.clock.trust != "always":  # "always" has no sync source to follow
                clock.synced = synced
                if synced:  # the system clock is right: the anchor follows it
                    anchor = clock.anchor_now(clock.base.now().timestamp(), "ntp")
                    clock.adopt(anchor)
                    self._set_meta("clock_anchor", anchor.dumps())
            if not (synced or clock.anchored()):
                return self._untrusted_why()
            self._trusted_until = clock.monotonic() + TRUST_CACHE_S
        last = self._last_ts_saved
        if now < last - CLOCK_SLACK_S:
            return (f"The clock reads {rfc3339(utc_datetime(now))}, earlier than the last recorded "
                    f"activity at {rfc3339(utc_datetime(last))}. Set the correct time (NTP) "
                    "before issuing tickets.")
        return None

    def _untrusted_why(self) -> str:
        how = {"timedatectl": "timedatectl reports no NTP sync",
               "flag-file": f"{self.cfg.clock.sync_flag} does not exist",
               "always": "the trust check failed"}[self.cfg.clock.trust]
        fix = ('Tickets cannot be issued until the time is set (check the network/NTP, or '
               'a member of staff sets it: tessera clock set "YYYY-MM-DD HH:MM" --staff ID).')
        old = Anchor.loads(self._meta("clock_anchor"))
        if old is None:
            return f"The clock is not synchronised ({how}). {fix}"
        who = f"{old.source}{' ' + old.staff if old.staff else ''}"
        return (f"The clock is not synchronised ({how}) and this Pi has restarted since its "
                f"time was last confirmed ({rfc3339(utc_datetime(old.true_ts))}, by {who}): "
                f"a Pi without a real-time clock starts with an old time after a power cut. "
                f"{fix}")

    def set_clock(self, when: str, *, staff: str, device: str = "") -> ClockSet:
        """A member of staff sets the engine's time (local ``"YYYY-MM-DD HH:MM"``).

        Refused while the sync source vouches for the system clock (``clock-synced``), for
        a time earlier than the last recorded activity (``clock-backwards``: tickets are
        never issued under a clock that went backwards) and for an unreadable time
        (``bad-time``). Emits ``clock.set`` naming the staff id and device.
        """
        try:
            true = parse_local_time(when, self._tz).timestamp()
        except ValueError as e:
            raise E.BadClockTime(str(e)) from None
        if not staff:
            raise E.BadClockTime("Say who sets the clock (a staff id).")

        def run(now: float) -> ClockSet:
            clock = self.clock
            if self.cfg.clock.trust != "always":
                clock.synced = self._trust()
                if clock.synced:
                    raise E.ClockSynced(
                        f"The clock is synchronised by NTP (it reads "
                        f"{rfc3339(utc_datetime(clock.base.now().timestamp()))}); it is not "
                        "set by hand.")
            last = self._last_ts_saved
            if true < last - CLOCK_SLACK_S:
                raise E.ClockBackwards(
                    f"{when.strip()} is earlier than the last recorded activity at "
                    f"{rfc3339(utc_datetime(last))}: check the date and time, and write the "
                    "local time as YYYY-MM-DD HH:MM.")
            if true > max(now, last) + MAX_CLOCK_STEP_S:
                raise E.BadClockTime(
                    f"{when.strip()} is more than {MAX_CLOCK_STEP_S // 86400:.0f} days after "
                    f"both the clock ({rfc3339(utc_datetime(now))}) and the last recorded "
                    "activity: check the date (a day roll that far ahead would end every "
                    "queue); after a longer shutdown wait for NTP.")
            anchor = clock.anchor_now(true, "staff", staff)
            self._set_meta("clock_anchor", anchor.dumps())
            self._cmd.now = true  # this command's events and last_ts carry the new time
            self._emit("clock.set", {"staff": staff, "device": device,
                                     "time": rfc3339(utc_datetime(true)),
                                     "previous": rfc3339(utc_datetime(now)),
                                     "step_s": round(true - now, 1), "source": "staff"})

            def adopt() -> None:
                clock.adopt(anchor)
                self._trusted_until = -math.inf  # decide again from the new anchor
            self._cmd.after_commit.append(adopt)
            return ClockSet(rfc3339(utc_datetime(true)), rfc3339(utc_datetime(now)),
                            round(true - now, 1), staff, device)
        return self._run(run, roll=False)

    def _require_trusted_clock(self, now: float) -> None:
        problem = self._clock_problem(now)
        self.outbox.clock_synced = problem is None
        if problem is not None and not self.cfg.clock.allow_untrusted:
            raise E.ClockUntrusted(problem)

    # ------------------------------------------------------------------ lookups

    def _name(self, svc: Service) -> str:
        """The service's name in the branch's first language (for messages)."""
        return svc.name(self.cfg.branch.languages[0])

    def _service(self, service_id: str) -> Service:
        svc = self._services.get(service_id)
        if svc is None:
            raise E.UnknownService(f"There is no service {service_id!r}; known: "
                                   + ", ".join(sorted(self._services)))
        return svc

    def _counter_row(self, counter: str) -> CounterRow:
        if counter not in self._counters:
            raise E.UnknownCounter(f"There is no counter {counter!r}; known: "
                                   + ", ".join(sorted(self._counters)))
        return CounterRow._make(self.conn.execute(
            f"SELECT {COUNTER_COLS} FROM counters WHERE id = ?", (counter,)).fetchone())

    def _ticket_row(self, ticket_id: str) -> TicketRow:
        row = self.conn.execute(f"SELECT {TICKET_COLS} FROM tickets WHERE id = ?",
                                (ticket_id,)).fetchone()
        if row is None:
            raise E.UnknownTicket(f"There is no ticket with id {ticket_id!r}.")
        return TicketRow._make(row)

    def _ticket(self, ticket_id: str) -> Ticket:
        return self._as_ticket(self._ticket_row(ticket_id))

    @staticmethod
    def _as_ticket(r: TicketRow) -> Ticket:
        return Ticket(id=r.id, number=r.number, service=r.service, state=r.state,
                      priority=r.priority, business_day=r.business_day,
                      issued_at=rfc3339(utc_datetime(r.issued_at)), people_ahead=r.people_ahead,
                      est_wait_s=r.est_wait_s, counter=r.counter, recalls=r.recalls,
                      appointment=r.appointment,
                      route=tuple(json.loads(r.route)) if r.route else (),
                      slot=None if r.slot is None else rfc3339(utc_datetime(r.slot)))

    def get_ticket(self, ticket_id: str) -> Ticket:
        """The ticket's current record (UnknownTicket if there is none)."""
        with self._lock:
            return self._ticket(ticket_id)

    def _set_state(self, r: TicketRow, state: str, **cols: Any) -> TicketRow:
        """Update ticket ``r``; returns its new row, built here rather than read back
        (RETURNING costs as much again as the UPDATE)."""
        names = tuple(cols)
        sql = _UPDATE_SQL.get(names)
        if sql is None:
            sets = ", ".join(["state = ?", *(f"{k} = ?" for k in names)])
            sql = _UPDATE_SQL.setdefault(names, f"UPDATE tickets SET {sets} WHERE id = ?")
        self.conn.execute(sql, (state, *cols.values(), r.id))
        # ended_at, origin, … are columns of the table, not of the row
        row = list(r)
        row[_STATE] = state
        for k, v in cols.items():
            i = _FIELD_INDEX.get(k)
            if i is not None:
                row[i] = float(v) if v is not None and k in REAL_COLS else v
        return TicketRow._make(row)  # (NamedTuple._replace costs ~2 us more per command)

    def _end_visit(self, r: TicketRow, outcome: str, *, staff: str | None = None,
                   reason: str | None = None) -> None:
        """Keep ticket ``r``'s stay in its current service (``visits``): its queue time,
        call, service start, counter and staff, and how it ended (``done``, ``routed``,
        ``transferred``, ``no_show``, ``void`` at the day's end). Reports read waits and
        service times per service from here, so a transferred or routed ticket counts in
        each service it queued for."""
        self.conn.execute(
            "INSERT INTO visits(ticket_id, n, business_day, service, priority, appointment, "
            "queued_at, called_at, serving_at, ended_at, counter, staff, recalls, outcome, "
            "reason) SELECT ?, COALESCE(MAX(n), 0) + 1, ?, ?, ?, ?, "
            # a stay starts when the ticket joined this queue: a ticket transferred to the
            # front keeps its first queued_at (its place), not the time it arrived here
            "MAX(?, COALESCE(MAX(ended_at), 0)), ?, ?, ?, ?, ?, "
            "? - COALESCE(SUM(recalls), 0), ?, ? "  # the ticket's recalls during this stay
            "FROM visits WHERE ticket_id = ?",
            (r.id, r.business_day, r.service, r.priority, r.appointment, r.queued_at,
             r.called_at, r.serving_at, self._cmd.now, r.counter, staff, r.recalls, outcome,
             reason, r.id))

    def _active(self, counter: str) -> tuple[CounterRow, TicketRow]:
        """The counter's row and its current ticket; NoCurrentTicket if idle."""
        c = self._counter_row(counter)
        if c.current is None:
            raise E.NoCurrentTicket(f"Counter {self._counters[counter].number} has no ticket "
                                    "being called or served; press NEXT first.")
        return c, self._ticket_row(c.current)

    def _counter_ready(self, counter: str) -> CounterRow:
        c = self._counter_row(counter)
        num = self._counters[counter].number
        if c.state == "closed":
            raise E.CounterClosed(f"Counter {num} is closed; open it first.")
        if c.state == "paused":
            raise E.CounterPaused(f"Counter {num} is paused; resume it first.")
        if c.current is not None:
            number = self._ticket_row(c.current).number
            raise E.CounterBusy(f"Counter {num} is still with {number}; press DONE, NO-SHOW "
                                "or TRANSFER first.")
        return c

    def _insert_bookings(self, bookings: list[Booking]) -> int:
        before = self.conn.total_changes
        self.conn.executemany("INSERT OR IGNORE INTO bookings(code, service, slot) VALUES "
                              "(?, ?, ?)", [(b.code, b.service, b.slot.timestamp())
                                            for b in bookings])
        return self.conn.total_changes - before

    # ------------------------------------------------------------------ estimates & views

    def _history(self, service: str) -> ServiceHistory:
        hist = self._hist.get(service)
        if hist is None:
            ranked = self._recent_times(service)[1]
            hist = ServiceHistory(ranked, self._services[service].default_service_s,
                                  presorted=True)
            self._hist[service] = hist
        return hist

    def _recent_times(self, service: str) -> tuple[deque[float], list[float]]:
        got = self._times.get(service)
        if got is None:
            n = self.cfg.engine.recent_service_window
            xs = [r[0] for r in self.conn.execute(
                "SELECT seconds FROM service_times WHERE service = ? ORDER BY id DESC LIMIT ?",
                (service, n))][::-1]
            got = (deque(xs), sorted(xs))
            self._times[service] = got
        return got

    def _add_service_time(self, service: str, seconds: float) -> None:
        """Called after COMMIT of a DONE: keep the in-memory window in step with the table."""
        recent, ranked = self._recent_times(service)
        recent.append(seconds)
        bisect.insort(ranked, seconds)
        if len(recent) > self.cfg.engine.recent_service_window:
            del ranked[bisect.bisect_left(ranked, recent.popleft())]
        self._hist.pop(service, None)

    def _servers(self, service: str, now: float, busy_services: set[str]) -> list[Server]:
        # a shared counter's capacity splits among the services that actually have people
        # waiting (plus the one asked about), by the time it spent on each lately with
        # the weights as a prior (WaitModel.shares)
        busy_services.add(service)
        out = []
        rows = {r[0]: r for r in self.conn.execute(
            "SELECT c.id, c.state, t.service, t.called_at FROM counters c "
            "LEFT JOIN tickets t ON t.id = c.current")}
        for cfgc in self.cfg.counters:
            weights = {cs.service: cs.weight for cs in cfgc.services}
            row = rows.get(cfgc.id)
            if service not in weights or row is None or row[1] == "paused":
                continue
            # counters[].hours: an open counter stops calling at the end of its span, a
            # closed one counts from the start of its next span today
            window = staffing(cfgc.hours, now, self._tz, row[1] == "open")
            if window is None:
                continue
            wshare = weights[service] / sum(w for s, w in weights.items()
                                            if s in busy_services)
            if len(weights) == 1:
                share = 1.0
            else:
                share = self._waits.shares(self.conn, self.cfg, cfgc.id, weights,
                                           busy_services, now)[service]
            elapsed = None if row[3] is None or row[1] != "open" else max(0.0, now - row[3])
            other = None  # busy with another service's customer: that one's residual
            if elapsed is not None and row[2] != service and row[2] in self._services:
                other = self._history(row[2])
            out.append(Server(share, elapsed, *window, history=other, weight_share=wshare))
        return out

    def _estimate(self, service: str, rank: int, now: float) -> tuple[int, float]:
        # per service: waiting tickets of this class or a higher one (ahead of a new
        # ticket of ``rank``, and competing for a shared counter's time; lower classes
        # never delay it: policy.choose takes the top class first)
        queues = {r[0]: int(r[1]) for r in self.conn.execute(
            "SELECT service, SUM(rank <= ?) FROM tickets WHERE state = 'waiting' "
            "GROUP BY service", (rank,))}
        ahead = queues.get(service, 0)
        servers = self._servers(service, now, {s for s, n in queues.items() if n > 0})
        hist = self._history(service)
        if not servers:  # nobody open yet: assume one counter will be
            return ahead, (ahead + 1) * hist.mean
        load = self._waits.load(self.conn, self.cfg, self.rules, service, rank, now)
        return ahead, combined_wait(ahead, servers, hist, load)

    def _with_range(self, t: Ticket, now: float) -> Ticket:
        """``t`` with the 80 % range of its estimate (``engine.wait_range``; else as is)."""
        if not self.cfg.engine.wait_range:
            return t
        low, high = self._waits.interval(self.conn, self.cfg, t.est_wait_s, t.people_ahead, now)
        return dataclasses.replace(t, est_low_s=round(low, 1), est_high_s=round(high, 1))

    @staticmethod
    def _range_data(t: Ticket) -> dict[str, Any]:
        """``est_low_s``/``est_high_s`` event keys, only when the range is on."""
        if t.est_low_s is None or t.est_high_s is None:
            return {}
        return {"est_low_s": t.est_low_s, "est_high_s": t.est_high_s}

    def stored_business_day(self) -> str | None:
        """The business day the store is in (None before the first command)."""
        return self._meta("business_day")

    def estimate_at(self, service: str, rank: int, now: float) -> tuple[int, float]:
        """``(people ahead, estimated wait s)`` for a new ticket of priority ``rank``."""
        return self._estimate(service, rank, now)

    def estimate(self, service: str) -> tuple[int, float]:
        """(people waiting, expected wait in s) for a new normal ticket of ``service``."""
        self._service(service)
        with self._lock:
            return self._estimate(service, self.rules.normal_rank, self.clock.now().timestamp())

    def events_since(self, seq: int, limit: int = 1000) -> list[Envelope]:
        """Outbox envelopes with ``seq`` greater than ``seq``, oldest first."""
        with self._lock:
            rows = self.conn.execute("SELECT body FROM outbox WHERE seq > ? ORDER BY seq "
                                     "LIMIT ?", (seq, limit)).fetchall()
        return [json.loads(r[0]) for r in rows]

