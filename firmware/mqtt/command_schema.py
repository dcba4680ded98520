"""Schemas of the engine commands carried over MQTT 5 request/response.

msgspec rather than pydantic: it decodes and validates in one pass straight
from bytes (~10x faster), rejects unknown fields per Struct
(``forbid_unknown_fields``), reports the failing path (``$.args.counter``),
and costs about 1 MiB of RSS instead of ~20 MiB, which matters for a role
process on a Pi. The config loader already depends on it.

    >>> req = decode_request(b'{"id":"x1","issued_at":"2026-03-02T08:00:00Z","args":{}}')
    >>> decode_args("call-next", b'{"counter":"c1"}')
    CounterArgs(counter='c1')
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class _Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


class CommandRequest(_Strict):
    id: Id
    issued_at: Annotated[str, msgspec.Meta(max_length=40)]
    args: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"{}"))


class CommandResponse(msgspec.Struct, frozen=True):
    id: str | None
    status: str  # done | rejected | error
    code: str
    detail: str = ""
    result: dict[str, Any] = msgspec.field(default_factory=dict)


class IssueArgs(_Strict):
    service: Name
    priority: Name | None = None
    channel: Literal["remote"] | None = None  # a ticket taken on a phone (the web role)


class TicketArgs(_Strict):
    ticket_id: Name


class VoidArgs(_Strict):
    ticket_id: Name
    reason: Annotated[str, msgspec.Meta(max_length=200)] = "print-failed"


class CheckInArgs(_Strict):
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class CounterArgs(_Strict):
    counter: Name


class CallSpecificArgs(_Strict):
    counter: Name
    # ASCII only: "A¹" passes str.isdigit() and then int() fails
    number: Annotated[str, msgspec.Meta(min_length=1, max_length=16,
                                        pattern=r"^ *[A-Za-z]{0,2}[0-9]{1,9} *$")]


class TransferArgs(_Strict):
    counter: Name
    service: Name


class OpenCounterArgs(_Strict):
    counter: Name
    staff: Name | None = None


class RateArgs(_Strict):
    counter: Name
    score: int


class SetClockArgs(_Strict):
    """``set-clock`` (issue 15): the local time a member of staff reads, and who they are
    (a ``[[staff]]`` id or a counter's ``staff``)."""

    time: Annotated[str, msgspec.Meta(min_length=16, max_length=19,
                                      pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}"
                                              r"(:[0-9]{2})?$")]
    staff: Name


class UndoNoShowArgs(_Strict):
    """``undo-no-show``: ``ticket`` is a ticket id or today's number (``A017``)."""

    counter: Name
    ticket: Annotated[str, msgspec.Meta(min_length=1, max_length=64,
                                        pattern=r"^[A-Za-z0-9._:-]+$")]


class ReportRefusalArgs(_Strict):
    """A refusal the kiosk decided itself (issue 15); ``key`` makes re-sends one report."""

    key: Id
    service: Annotated[str, msgspec.Meta(max_length=64)]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[a-z_]+$")]
    at: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]


class ReprintArgs(_Strict):
    """Print a ticket again, same number: by ``ticket_id``, or ``last`` of this kiosk."""

    ticket_id: Name | None = None
    last: bool = False


class TicketPlacesArgs(_Strict):
    """The live places of the tickets whose mobile pages are open (the web role)."""

    ticket_ids: Annotated[list[Id], msgspec.Meta(max_length=2000)]


class RateTicketArgs(_Strict):
    """A ticket's one rating from its mobile page (channel ``web``)."""

    ticket_id: Name
    score: int


class SnapshotArgs(_Strict):
    """``snapshot`` takes no arguments: it reads the engine's live state."""


class BookingLine(_Strict):
    """One line of a bookings file, with its line number in that file."""

    line: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)]
    code: Annotated[str, msgspec.Meta(max_length=64)]
    service: Annotated[str, msgspec.Meta(max_length=64)]
    slot: Annotated[str, msgspec.Meta(max_length=64)]


class LoadAppointmentsArgs(_Strict):
    """A batch of a bookings file (``tessera appointments load``); see docs/mqtt.md."""

    file: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    lines: Annotated[list[BookingLine], msgspec.Meta(min_length=1, max_length=500)]
    dry_run: bool = False


ARGS: dict[str, type[_Strict]] = {
    "issue-ticket": IssueArgs,
    "confirm-printed": TicketArgs,
    "void-ticket": VoidArgs,
    "check-in": CheckInArgs,
    "call-next": CounterArgs,
    "call-specific": CallSpecificArgs,
    "recall": CounterArgs,
    "transfer": TransferArgs,
    "no-show": CounterArgs,
    "done": CounterArgs,
    "pause": CounterArgs,
    "resume": CounterArgs,
    "open-counter": OpenCounterArgs,
    "close-counter": CounterArgs,
    "rate": RateArgs,
    # read-only: a display or counter on its own Pi rebuilds its boards from it
    "snapshot": SnapshotArgs,
    "load-appointments": LoadAppointmentsArgs,  # issue 15: a supervisor device only
    "undo-no-show": UndoNoShowArgs,  # issue 15
    "report-refusal": ReportRefusalArgs,
    "reprint": ReprintArgs,
    # the web role (docs/web.md): tickets' places (read-only) and the phone rating
    "ticket-places": TicketPlacesArgs,
    "rate-ticket": RateTicketArgs,
}

# Which commands each role may send (tessera.mqtt.command_auth checks it; the broker
# ACL lets a monitor write only these requests).
ROLE_COMMANDS: dict[str, tuple[str, ...]] = {
    "kiosk": ("issue-ticket", "confirm-printed", "void-ticket", "check-in",
              "report-refusal", "reprint"),
    "counter": ("call-next", "call-specific", "recall", "transfer", "no-show", "done",
                "pause", "resume", "open-counter", "close-counter", "rate", "snapshot",
                "undo-no-show", "reprint"),
    "display": ("snapshot",),
    "engine": (),
    "monitor": ("snapshot",),  # read-only: a dashboard may ask for the live state
    # a staff PC or console that loads the day's bookings (tessera appointments load)
    "supervisor": ("load-appointments", "snapshot"),
    # hall display, mobile tickets and the supervisor console's actions (the console's
    # accounts and their roles are checked by the web role, docs/web.md)
    "web": ("snapshot", "ticket-places", "rate-ticket", "open-counter", "close-counter",
            "pause", "resume", "call-specific", "transfer", "void-ticket",
            "issue-ticket", "confirm-printed"),  # these two with web.join only
}

# issue 15: staff set the engine's clock after a power cut (a counter device: a panel, or
# `tessera clock set` logged in as a counter device of mqtt.devices)
ARGS["set-clock"] = SetClockArgs
ROLE_COMMANDS["counter"] += ("set-clock",)
# issue 20: the supervisor console's reprint, undo of a no-show (for the counter the
# supervisor names: any counter, as it opens and closes any) and bookings upload
ROLE_COMMANDS["web"] += ("reprint", "undo-no-show", "load-appointments")

_request_decoder = msgspec.json.Decoder(CommandRequest)
_args_decoders = {name: msgspec.json.Decoder(t) for name, t in ARGS.items()}


def decode_request(payload: bytes) -> CommandRequest:
    """Raise msgspec.ValidationError (schema) or msgspec.DecodeError (not JSON)."""
    return _request_decoder.decode(payload)


def decode_args(name: str, raw: bytes) -> Any:
    return _args_decoders[name].decode(raw)


def encode(obj: Any) -> bytes:
    return msgspec.json.encode(obj)
