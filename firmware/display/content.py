"""What the boards show, as pure state: the hall board's recent calls and each
counter board's text, plus the time-of-day schedules (brightness, volume).

    hall = HallContent(history=4, highlight_s=10)
    hall.call("t1", "A023", counter_number=3, at=now)
    hall.lines(now)
    # -> [BoardLine(text='A023 → 3', highlight=True)]

No I/O here: the role feeds events in and pushes ``lines()`` / ``text`` to the
board driver, so the same state can be rebuilt from an engine snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from typing import Any

from tessera.config import parse_hhmm
from tessera.drivers.alpha import FIELD_STRING_SIZE, BoardLine

CLOSED, PAUSED, IDLE = "closed", "paused", "---"
LOGIN = "login"  # a closed counter whose staff log in with a code on its panel


@dataclass(frozen=True)
class CallEntry:
    ticket_id: str
    number: str
    counter_number: int
    highlight_until: datetime

    @property
    def text(self) -> str:
        return f"{self.number} → {self.counter_number}"


@dataclass
class HallContent:
    """The last ``history`` calls, newest first; the newest highlighted for a while."""

    history: int
    highlight_s: float
    calls: list[CallEntry] = field(default_factory=list)

    def call(self, ticket_id: str, number: str, *, counter_number: int, at: datetime) -> None:
        """A (re)call of a ticket to a counter: it moves to the top, highlighted."""
        self.remove(ticket_id)
        until = at + timedelta(seconds=self.highlight_s)
        self.calls.insert(0, CallEntry(ticket_id, number, counter_number, until))
        del self.calls[self.history:]

    def recall(self, ticket_id: str, number: str, *, counter_number: int, at: datetime) -> None:
        """A recall re-highlights the entry where it is (inserting it if it scrolled off)."""
        until = at + timedelta(seconds=self.highlight_s)
        for i, entry in enumerate(self.calls):
            if entry.ticket_id == ticket_id:
                self.calls[i] = replace(entry, highlight_until=until)
                return
        self.call(ticket_id, number, counter_number=counter_number, at=at)

    def remove(self, ticket_id: str) -> bool:
        """No-show or void: the ticket disappears from the board."""
        before = len(self.calls)
        self.calls = [c for c in self.calls if c.ticket_id != ticket_id]
        return len(self.calls) != before

    def lines(self, now: datetime) -> list[BoardLine]:
        return [BoardLine(c.text, c.highlight_until > now) for c in self.calls]

    def next_change(self, now: datetime) -> datetime | None:
        """When the next highlight runs out (so the role knows when to redraw)."""
        pending = [c.highlight_until for c in self.calls if c.highlight_until > now]
        return min(pending, default=None)

    def rebuild(self, recent_calls: list[Mapping[str, Any]], now: datetime) -> None:
        """Content from the engine's ``recent_calls`` (newest first, no-shows/voids excluded)."""
        self.calls = []
        for rc in recent_calls[: self.history]:
            at = _parse_ts(rc.get("ts"), now)
            until = at + timedelta(seconds=self.highlight_s)
            self.calls.append(CallEntry(str(rc["ticket_id"]), str(rc["number"]),
                                        int(rc["counter_number"]), until))


@dataclass
class CounterContent:
    """One counter board: the ticket being served, or closed/paused; over that, what the
    teller is doing (a transfer target being chosen, a pause after this customer) and,
    for a few seconds, why a key was refused (``notice``)."""

    state: str = "closed"  # open | paused | closed
    ticket_id: str | None = None
    number: str | None = None
    login: bool = False  # closed reads "login": the teller types a code on the panel
    pause_pending: bool = False  # PAUSE pressed with a customer: pauses after them
    choosing: str | None = None  # "A001>loans" while TRANSFER cycles the targets
    notice: str | None = None  # a refusal ("queue empty"), shown until notice_until
    notice_until: datetime | None = None

    @property
    def text(self) -> str:
        if self.notice is not None:
            return self.notice
        if self.choosing is not None:
            return self.choosing
        if self.state == "closed":
            return LOGIN if self.login else CLOSED
        if self.state == "paused":
            return PAUSED
        if self.pause_pending and self.number:
            return fit(f"{self.number} then pause", f"{self.number} +pause")
        return self.number or IDLE

    def show_notice(self, text: str, until: datetime) -> None:
        self.notice, self.notice_until = text, until

    def expire(self, now: datetime) -> bool:
        """Drop a notice that ran out; True when the text changed."""
        if self.notice_until is not None and now >= self.notice_until:
            self.notice = self.notice_until = None
            return True
        return False

    def serve(self, ticket_id: str, number: str) -> None:
        self.state = "open" if self.state == "closed" else self.state
        if ticket_id != self.ticket_id:
            self.pause_pending = False
        self.ticket_id, self.number, self.choosing = ticket_id, number, None

    def release(self, ticket_id: str) -> None:
        """The ticket left the counter (done, no-show, transferred, void)."""
        if self.ticket_id == ticket_id:
            self.ticket_id = self.number = self.choosing = None

    def rebuild(self, snap: Mapping[str, Any]) -> None:
        state = str(snap.get("state", "closed"))
        self.state = state if state in ("open", "paused", "closed") else "open"
        self.pause_pending = bool(snap.get("pause_pending"))
        self.choosing = None
        cur = snap.get("current")
        # a no-show or void current ticket never shows
        if cur and cur.get("state") not in ("no_show", "void", "done"):
            self.ticket_id, self.number = str(cur["ticket_id"]), str(cur["number"])
        else:
            self.ticket_id = self.number = None


def fit(text: str, shorter: str, width: int = FIELD_STRING_SIZE) -> str:
    """``text`` when it fits a counter sign's ``width`` characters, else ``shorter``."""
    return text if len(text) <= width else shorter[:width]


def scheduled(schedule: Mapping[str, int], local: time) -> int | None:
    """Value of a ``{"HH:MM": value}`` schedule at ``local`` time; wraps past midnight."""
    if not schedule:
        return None
    points = sorted((parse_hhmm(k), v) for k, v in schedule.items())
    current = points[-1][1]  # before the first point: yesterday's last value
    for at, value in points:
        if at <= local:
            current = value
    return current


def in_spans(spans: tuple[str, ...], local: time) -> bool:
    """Whether ``local`` falls inside any ``HH:MM-HH:MM`` span (spans may cross midnight)."""
    for span in spans:
        start, end = (parse_hhmm(p) for p in span.split("-"))
        if (start <= local < end) if start < end else (local >= start or local < end):
            return True
    return False


def _parse_ts(value: Any, default: datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return default
    return default
