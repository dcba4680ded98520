"""The engine seen from another Pi: ``EnginePort`` over MQTT 5 request/response.

    engine = RemoteEngine(CommandClient(link.port, link.uplink, link.topics, clock=clock))
    engine.call_next("c1").number          # -> 'A001' (or raises QueueEmpty)

Answers are decoded (msgspec) into the engine's own ``Ticket``, ``CounterState``
and ``Rating``, and a ``rejected`` answer raises the engine's own
:class:`~tessera.engine.errors.DomainError` leaf for its ``code`` (``QueueEmpty``
for ``queue-empty``), so a role cannot tell the difference. The raised class is
also a :class:`RemoteRefused`; a code that is not a domain error (``forbidden``,
``rate-limited``, ``invalid``...) raises a plain ``RemoteRefused``. No answer
(broker or engine down) raises :class:`EngineUnreachable`, and so does an answer
whose result does not decode.
The client re-sends each command until it is answered or expires; the kiosk's
``confirm_printed`` of a ticket that came out of the printer is re-sent, under the
fixed id ``confirm.{ticket_id}``, until the engine has it, and is written to
``pending`` first so a kiosk restarted meanwhile sends it again: a printed
number is never voided because an answer was lost. A refusal the kiosk decided
itself (``report_refusal``) follows the same pattern on its own thread, under
``refusal.{key}``, kept in ``pending_refusals`` (``tessera.roles.pending``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any, Protocol, TypeVar

import msgspec

from tessera.engine.clocktrust import ClockSet
from tessera.engine.errors import ALL_ERRORS, DomainError
from tessera.engine.models import BookingLoad, CounterState, Rating, Ticket, TicketPlace
from tessera.errors import DeviceError
from tessera.roles.pending import PendingConfirms, PendingRefusals, Report

T = TypeVar("T")


class RemoteRefused(DomainError):
    """The engine refused the command; nothing changed (``code``: the answer's code)."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


@cache
def refusal_class(code: str) -> type[RemoteRefused]:
    """The exception a ``rejected`` answer with ``code`` raises: the engine's own leaf
    for a domain code (e.g. ``QueueEmpty`` and ``RemoteRefused`` at once), else
    ``RemoteRefused``."""
    for leaf in ALL_ERRORS:
        if leaf.code == code:
            return type(f"Remote{leaf.__name__}", (leaf, RemoteRefused), {})
    return RemoteRefused


class EngineUnreachable(DeviceError):
    """No answer from the engine (``code``: ``timeout`` or the transport's error code)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"engine unreachable ({code}): {detail}")
        self.code = code


log = logging.getLogger(__name__)
UNANSWERED = frozenset({"timeout", "in-doubt", "internal", "bad-response"})
CONFIRM_PAUSE_S = 1.0
PLACES_PER_REQUEST = 50


class Requester(Protocol):
    def request(self, name: str, args: dict[str, Any], *, timeout: float | None = ...,
                command_id: str | None = ...) -> dict[str, Any]: ...


class RemoteEngine:
    """``tessera.roles.ports.EnginePort`` through ``tessera.mqtt.command_client.CommandClient``."""

    def __init__(self, client: Requester, *, timeout_s: float | None = None,
                 pending: Path | None = None,
                 pending_refusals: Path | None = None) -> None:
        self.client = client
        self.timeout_s = timeout_s  # None: until the command expires at the engine
        self.pending = PendingConfirms(pending)
        self.refusals = PendingRefusals(pending_refusals)
        self._stop = threading.Event()
        self._resender: threading.Thread | None = None
        self._reporter: threading.Thread | None = None
        self._report_lock = threading.Lock()
        self._report_wake = threading.Event()

    def resume_pending(self) -> None:
        """Re-send, on a thread, the confirms a previous run of this kiosk left unanswered
        (and the refusal reports)."""
        if self.pending.ids() and self._resender is None:
            self._resender = threading.Thread(target=self._resend_pending, daemon=True,
                                              name="confirm-resend")
            self._resender.start()
        if self.refusals.items():
            self._start_reporter()

    def close(self) -> None:
        self._stop.set()
        self._report_wake.set()

    # ------------------------------------------------------------------ refusal reports

    def report_refusal(self, key: str, service: str, reason: str, at: str) -> None:
        """Kept (fsync'd) now, sent on the reporter thread until the engine answers."""
        self.refusals.add(Report(key, service, reason, at))
        self._start_reporter()

    def _start_reporter(self) -> None:
        with self._report_lock:
            if self._reporter is None:
                self._reporter = threading.Thread(target=self._report_loop, daemon=True,
                                                  name="refusal-report")
                self._reporter.start()
        self._report_wake.set()

    def _report_loop(self) -> None:
        while not self._stop.is_set():
            self._report_wake.wait(CONFIRM_PAUSE_S * 30)
            self._report_wake.clear()
            for r in self.refusals.items():
                if self._stop.is_set():
                    return
                try:
                    answer = self.client.request(
                        "report-refusal", {"key": r.key, "service": r.service,
                                           "reason": r.reason, "at": r.at},
                        timeout=self.timeout_s, command_id=f"refusal.{r.key}")
                except Exception:  # the link is stopping
                    log.exception("reporting refusal %s failed", r.key)
                    answer = {"code": "internal"}
                if str(answer.get("code", "")) in UNANSWERED:
                    self._stop.wait(CONFIRM_PAUSE_S)
                    self._report_wake.set()  # try again: the engine must get it
                    break
                if answer.get("status") != "done":  # refused for good: it cannot be kept
                    log.error("the engine refused refusal report %s (%s): %s", r.key,
                              answer.get("code"), answer.get("detail"))
                self.refusals.remove(r.key)

    def reprint(self, ticket_id: str | None = None, *, last: bool = False) -> Ticket:
        return self._call(Ticket, "reprint", ticket_id=ticket_id, last=last)

    def _resend_pending(self) -> None:
        for ticket_id in self.pending.ids():
            try:
                self.confirm_printed(ticket_id)
            except Exception:  # refused (e.g. already voided) or stopping
                log.exception("confirming printed ticket %s failed", ticket_id)

    def _call(self, type_: type[T], name: str, **args: Any) -> T:
        return _outcome(self.client.request(name, args, timeout=self.timeout_s), type_)

    def snapshot(self) -> dict[str, Any]:
        """The engine's live state (queues, counters, recent calls) for a board rebuild."""
        answer = self.client.request("snapshot", {}, timeout=self.timeout_s or 5.0)
        if answer.get("status") != "done" or not isinstance(answer.get("result"), dict):
            raise EngineUnreachable(str(answer.get("code") or "error"),
                                    str(answer.get("detail", "")))
        result: dict[str, Any] = answer["result"]
        return result

    def issue(self, service: str, *, priority: str | None = None,
              channel: str | None = None) -> Ticket:
        if channel is not None:  # a phone's ticket (the web role's /join)
            return self._call(Ticket, "issue-ticket", service=service, priority=priority,
                              channel=channel)
        return self._call(Ticket, "issue-ticket", service=service, priority=priority)

    def confirm_printed(self, ticket_id: str) -> Ticket:
        """Re-sent until the engine answers (the ticket is printed: it must not be voided
        for a lost answer); the fixed id makes every re-send the same command."""
        self.pending.add(ticket_id)
        while True:
            answer = self.client.request("confirm-printed", {"ticket_id": ticket_id},
                                         timeout=self.timeout_s,
                                         command_id=f"confirm.{ticket_id}")
            if str(answer.get("code", "")) not in UNANSWERED or self._stop.is_set():
                break
            log.warning("confirm of printed ticket %s not answered yet (%s); re-sending",
                        ticket_id, answer.get("code"))
            self._stop.wait(CONFIRM_PAUSE_S)  # an "internal" answer comes back at once
        if str(answer.get("code", "")) not in UNANSWERED:
            self.pending.remove(ticket_id)
        return _outcome(answer, Ticket)

    def void(self, ticket_id: str, reason: str) -> Ticket:
        return self._call(Ticket, "void-ticket", ticket_id=ticket_id, reason=reason)

    def check_in(self, code: str) -> Ticket:
        return self._call(Ticket, "check-in", code=code)

    def call_next(self, counter: str) -> Ticket:
        return self._call(Ticket, "call-next", counter=counter)

    def recall(self, counter: str) -> Ticket:
        return self._call(Ticket, "recall", counter=counter)

    def no_show(self, counter: str) -> Ticket:
        return self._call(Ticket, "no-show", counter=counter)

    def done(self, counter: str) -> Ticket:
        return self._call(Ticket, "done", counter=counter)

    def transfer(self, counter: str, service: str) -> Ticket:
        return self._call(Ticket, "transfer", counter=counter, service=service)

    def open_counter(self, counter: str, staff: str | None = None) -> CounterState:
        return self._call(CounterState, "open-counter", counter=counter, staff=staff)

    def close_counter(self, counter: str) -> CounterState:
        return self._call(CounterState, "close-counter", counter=counter)

    def pause(self, counter: str) -> CounterState:
        return self._call(CounterState, "pause", counter=counter)

    def resume(self, counter: str) -> CounterState:
        return self._call(CounterState, "resume", counter=counter)

    def rate(self, counter: str, score: int) -> Rating:
        return self._call(Rating, "rate", counter=counter, score=score)

    def load_booking_lines(self, source: str, lines: Iterable[tuple[int, str, str, str]], *,
                           dry_run: bool = False) -> BookingLoad:
        """One batch of ``load-appointments``: it must fit ``mqtt.command_max_bytes``
        (``tessera.commands.appointments_cmd`` splits a file)."""
        return self._call(BookingLoad, "load-appointments", file=source, dry_run=dry_run,
                          lines=[{"line": n, "code": c, "service": s, "slot": t}
                                 for n, c, s, t in lines])

    def set_clock(self, when: str, *, staff: str) -> ClockSet:
        """Staff set the engine's time (``set-clock``; the engine names this device)."""
        return self._call(ClockSet, "set-clock", time=when, staff=staff)

    def call_specific(self, counter: str, number: str) -> Ticket:
        return self._call(Ticket, "call-specific", counter=counter, number=number)

    def undo_no_show(self, ticket: str, *, counter: str | None = None) -> Ticket:
        if counter is None:  # over MQTT the counter is who undoes it (command_auth)
            raise ValueError("undo_no_show over MQTT needs the counter that undoes it")
        return self._call(Ticket, "undo-no-show", counter=counter, ticket=ticket)

    def ticket_places(self, ticket_ids: Iterable[str]) -> dict[str, TicketPlace]:
        """The web role's read of the open mobile pages' tickets (unknown ids left out),
        in requests of PLACES_PER_REQUEST ids (an answer stays far below the broker's
        message size limit)."""
        ids = list(ticket_ids)
        out: dict[str, TicketPlace] = {}
        for i in range(0, len(ids), PLACES_PER_REQUEST):
            answer = self.client.request("ticket-places",
                                         {"ticket_ids": ids[i:i + PLACES_PER_REQUEST]},
                                         timeout=self.timeout_s or 5.0)  # a read: no wait
            if answer.get("status") != "done":
                _outcome(answer, dict)  # raises the refusal or EngineUnreachable
            try:
                out.update(msgspec.convert(answer.get("result"), dict[str, TicketPlace]))
            except msgspec.ValidationError as e:
                raise EngineUnreachable("bad-response", f"the engine's answer is not a "
                                        f"map of ticket places: {e}") from None
        return out

    def rate_ticket(self, ticket_id: str, score: int, *, channel: str = "web") -> Rating:
        """A ticket's one rating from its page (the engine records channel ``web``)."""
        return self._call(Rating, "rate-ticket", ticket_id=ticket_id, score=score)


def _outcome(answer: dict[str, Any], type_: type[T]) -> T:
    status = answer.get("status")
    code, detail = str(answer.get("code", "")), str(answer.get("detail", ""))
    if status == "done":
        try:
            return msgspec.convert(answer.get("result"), type_)
        except msgspec.ValidationError as e:
            raise EngineUnreachable("bad-response", f"the engine's answer is not a "
                                    f"{type_.__name__}: {e}") from None
    if status == "rejected" and code not in UNANSWERED:
        raise refusal_class(code)(detail or code, code)
    raise EngineUnreachable(code or "error", detail)
