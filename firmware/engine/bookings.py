"""Appointment commands: load bookings while the branch runs, and missed bookings.

* ``load_appointments(path)`` / ``load_booking_lines(source, lines)`` /
  ``book(code, service, slot)``: every line checked first
  (:func:`tessera.engine.appointments.check_lines`), then, in one transaction,
  idempotent by code: a new code is booked (unless its window has already
  ended: ``past``, not booked, never counted as missed), a code already booked
  (not yet checked in) with the same service and slot is left alone, one with
  another slot or service is **moved** to it; a code that has checked in, was a no-show
  or was missed cannot change (``bad-bookings`` naming the line). Any bad line
  refuses the whole batch: nothing of it is applied.
* A booking never checked in by the end of its window (``slot +
  engine.appointment_late_s``) becomes ``missed``, with the event
  ``appointment.missed`` ``{code, service, slot, business_day}``: in ``tick()``
  and in the day roll's transaction (before the old day's tickets are voided),
  so a report of the day counts it as an appointment no-show.

    engine.load_booking_lines("b.csv", [(2, "K1", "doctor", "2026-03-02T09:30")])
    # -> BookingLoad(added=1, moved=0, unchanged=0, past=0)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tessera.engine import errors as E
from tessera.engine.appointments import Booking, check_lines, load_bookings
from tessera.engine.core import Envelope, utc_datetime
from tessera.engine.issuing import IssuingCommands
from tessera.engine.models import BookingLoad
from tessera.engine.rows import TicketRow
from tessera.outbox import rfc3339

log = logging.getLogger(__name__)

MAX_ERRORS_SHOWN = 20  # lines named in one refusal (the rest are counted)


class BookingCommands(IssuingCommands):
    """book / load_appointments / load_booking_lines, and missed bookings in tick and roll.

        engine.load_appointments(Path("bookings.csv"))
        # -> 12
    """

    # the earliest time a booked window ends (None: unknown, read the store)
    _next_miss: float | None = None

    # ------------------------------------------------------------------ loading

    def book(self, code: str, service: str, slot: datetime) -> None:
        """Add (or move) one booking: the same as one line of the appointments file."""
        if slot.tzinfo is None:
            slot = slot.replace(tzinfo=self._tz)
        self.load_booking_lines("book", [(1, code, service, slot.isoformat())])

    def load_appointments(self, path: Path) -> int:
        """Load a bookings CSV (ConfigError names each bad line and field; nothing of a bad
        file is loaded); returns how many bookings were added or moved (0 on a re-load)."""
        bookings = load_bookings(path, self.cfg)
        got = self._apply(bookings, str(path), dry_run=False, strict=True)
        return got.added + got.moved

    def load_booking_lines(self, source: str, lines: Iterable[tuple[int, str, str, str]], *,
                           dry_run: bool = False) -> BookingLoad:
        """Load ``(line, code, service, slot)`` lines of file ``source`` (one batch of
        ``tessera appointments load``); BadBookings lists every bad line as
        ``source:line: …`` and nothing is applied. ``dry_run`` checks against the store
        and changes nothing."""
        rows = [(line, [code, service, slot]) for line, code, service, slot in lines]
        bookings, errors = check_lines(source, rows, self.cfg)
        if errors:
            raise _bad(errors)
        return self._apply(bookings, source, dry_run=dry_run, strict=True)

    def _insert_bookings(self, bookings: list[Booking]) -> int:
        """``engine.appointments_file`` at open: the same rules, but a booking that can no
        longer change is left as it is (the engine must open), with a notice."""
        got = self._plan(bookings, self.clock.now().timestamp())
        for b in got.conflicts:
            log.warning("engine.appointments_file:%d: booking %s has %s; its new slot or "
                        "service is ignored", b.line, b.code, got.states[b.code])
        self._write(got)
        return len(got.new) + len(got.moves)

    def _apply(self, bookings: list[Booking], source: str, *, dry_run: bool,
               strict: bool) -> BookingLoad:
        def run(now: float) -> BookingLoad:
            plan = self._plan(bookings, now)
            if plan.conflicts and strict:
                raise _bad([f"{source}:{b.line}: field 'slot': booking {b.code} has "
                            f"{plan.states[b.code].replace('_', '-')}; its slot and service "
                            "can no longer change (book a new code)" for b in plan.conflicts])
            result = BookingLoad(len(plan.new), len(plan.moves), plan.unchanged,
                                 len(plan.past))
            if dry_run:
                return result
            self._write(plan)
            if plan.new or plan.moves:
                self._emit("appointments.loaded", {
                    "source": source[-200:], "added": result.added, "moved": result.moved,
                    "unchanged": result.unchanged, "past": result.past})
            return result
        return self._run(run, roll=False)

    def _plan(self, bookings: list[Booking], now: float) -> _Plan:
        plan = _Plan()
        late = self.cfg.engine.appointment_late_s
        for b in bookings:
            row = self.conn.execute("SELECT service, slot, state FROM bookings WHERE code = ?",
                                    (b.code,)).fetchone()
            if row is None and b.slot.timestamp() + late <= now:
                # loaded after its window ended: nobody could check in, nobody missed it
                plan.past.append(b)
            elif row is None:
                plan.new.append(b)
            elif row[0] == b.service and row[1] == b.slot.timestamp():
                plan.unchanged += 1
            elif row[2] == "booked":
                plan.moves.append(b)
            else:
                plan.conflicts.append(b)
                plan.states[b.code] = str(row[2] if row[2] != "checked_in" else "checked in")
        return plan

    def _write(self, plan: _Plan) -> None:
        self.conn.executemany("INSERT INTO bookings(code, service, slot) VALUES (?, ?, ?)",
                              [(b.code, b.service, b.slot.timestamp()) for b in plan.new])
        self.conn.executemany("UPDATE bookings SET service = ?, slot = ? WHERE code = ?",
                              [(b.service, b.slot.timestamp(), b.code) for b in plan.moves])
        if plan.new or plan.moves:
            self._next_miss = None

    # ------------------------------------------------------------------ missed bookings

    def tick(self) -> list[Envelope]:
        """Also mark bookings whose check-in window ended ``missed`` (see module doc)."""
        out = super().tick()
        now = self.clock.now().timestamp()
        if self._next_miss is None or now >= self._next_miss:
            def run(now: float) -> list[Envelope]:
                self._mark_missed(now)
                return list(self._cmd.events)
            out = [*out, *self._run(run, roll=False)]
        return list(out)

    def _end_day(self, day: str, new_day: str) -> None:
        self._mark_missed(self._cmd.now)  # counted in the day that ends, before its roll
        super()._end_day(day, new_day)

    def _mark_missed(self, now: float) -> None:
        """In the running transaction: every booking whose window ended by ``now``."""
        late = self.cfg.engine.appointment_late_s
        rows = self.conn.execute("SELECT code, service, slot FROM bookings WHERE state = "
                                 "'booked' AND slot + ? <= ? ORDER BY slot, code",
                                 (late, now)).fetchall()
        for code, service, slot in rows:
            self.conn.execute("UPDATE bookings SET state = 'missed' WHERE code = ?", (code,))
            self._emit("appointment.missed", {
                "code": code, "service": service, "slot": rfc3339(utc_datetime(slot)),
                "business_day": self.business_day(slot)})
        (first,) = self.conn.execute("SELECT MIN(slot) FROM bookings WHERE state = "
                                     "'booked'").fetchone()
        nxt = math.inf if first is None else float(first) + late
        self._cmd.after_commit.append(lambda: setattr(self, "_next_miss", nxt))

    def _void(self, r: TicketRow, reason: str) -> TicketRow:
        self._next_miss = None  # a voided check-in is booked again: its window counts
        return super()._void(r, reason)


@dataclass
class _Plan:
    """What a batch would do to the store."""

    new: list[Booking] = field(default_factory=list)
    moves: list[Booking] = field(default_factory=list)
    conflicts: list[Booking] = field(default_factory=list)
    past: list[Booking] = field(default_factory=list)  # new codes whose window has ended
    states: dict[str, str] = field(default_factory=dict)  # conflicting code -> its state
    unchanged: int = 0


def _bad(errors: list[str]) -> E.BadBookings:
    shown = errors[:MAX_ERRORS_SHOWN]
    more = len(errors) - len(shown)
    e = E.BadBookings("; ".join(shown) + (f"; and {more} more" if more else "")
                      + "; nothing was loaded")
    e.errors = tuple(errors)
    return e


__all__ = ["BookingCommands", "BookingLoad"]
