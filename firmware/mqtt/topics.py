"""Topic builder and validator for ``tessera/v1/{tenant}/{branch}/{device}/...``.

    >>> t = Topics("acme", "b1", "kiosk-1")
    >>> t.event("ticket.issued")
    'tessera/v1/acme/b1/kiosk-1/evt/ticket.issued'
    >>> t.request("call-next")
    'tessera/v1/acme/b1/kiosk-1/req/call-next'
    >>> t.response("kiosk-1")
    'tessera/v1/acme/b1/engine/res/kiosk-1'

Names (tenant, branch, device, state part, command) are ``[a-z0-9-]``; event
types keep their dotted form (``ticket.no_show``) so a consumer can map a
topic back to the envelope ``type`` without a table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tessera.errors import TesseraError

PREFIX = "tessera/v1"
ENGINE_DEVICE = "engine"
NAME_RE = re.compile(r"\A[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?\Z")  # \Z: no trailing newline
EVENT_TYPE_RE = re.compile(r"\A[a-z0-9][a-z0-9._-]{0,63}\Z")
KINDS = ("status", "meta", "state", "evt", "req", "res")


class TopicError(TesseraError, ValueError):
    """A name or topic does not follow the Tessera topic contract."""


def check_name(what: str, name: str) -> str:
    if not NAME_RE.match(name):
        raise TopicError(f"{what} {name!r}: use 1-64 characters a-z, 0-9 and '-', "
                         "not starting or ending with '-'")
    return name


@dataclass(frozen=True)
class TopicParts:
    tenant: str
    branch: str
    device: str
    kind: str
    rest: str  # state part, event type, command name, requester; "" for status/meta


@dataclass(frozen=True)
class Topics:
    """Topics of one device. A device sends engine requests in its own subtree
    (``{device}/req/{name}``: only it may write there, so the broker authenticates
    the sender); the engine answers in its own (``engine/res/{device}``)."""

    tenant: str
    branch: str
    device: str
    engine: str = ENGINE_DEVICE

    def __post_init__(self) -> None:
        check_name("tenant", self.tenant)
        check_name("branch", self.branch)
        check_name("device", self.device)
        check_name("engine device", self.engine)

    @property
    def branch_root(self) -> str:
        return f"{PREFIX}/{self.tenant}/{self.branch}"

    def of(self, device: str) -> str:
        return f"{self.branch_root}/{check_name('device', device)}"

    @property
    def root(self) -> str:
        return f"{self.branch_root}/{self.device}"  # checked once, in __post_init__

    @property
    def status(self) -> str:
        return f"{self.root}/status"

    @property
    def meta(self) -> str:
        return f"{self.root}/meta"

    def state(self, part: str) -> str:
        return f"{self.root}/state/{check_name('state part', part)}"

    def event(self, type_: str) -> str:
        if not EVENT_TYPE_RE.match(type_):
            raise TopicError(f"event type {type_!r}: use a-z, 0-9, '.', '_' and '-'")
        return f"{self.root}/evt/{type_}"

    def request(self, name: str) -> str:
        """Where this device sends engine command ``name``."""
        return f"{self.root}/req/{check_name('command', name)}"

    @property
    def request_filter(self) -> str:
        """What the engine subscribes to: every device's requests."""
        return f"{self.branch_root}/+/req/+"

    def response(self, requester: str) -> str:
        """Where the engine answers ``requester`` (in the engine's own subtree)."""
        return f"{self.of(self.engine)}/res/{check_name('requester', requester)}"


def parse(topic: str) -> TopicParts:
    """Split a Tessera topic; raise TopicError when it does not follow the contract."""
    parts = topic.split("/")
    if len(parts) < 6 or "/".join(parts[:2]) != PREFIX or parts[5] not in KINDS:
        raise TopicError(f"{topic!r} is not "
                         "tessera/v1/{tenant}/{branch}/{device}/{kind}/...")
    tenant, branch, device, kind = parts[2:6]
    for what, name in (("tenant", tenant), ("branch", branch), ("device", device)):
        check_name(what, name)
    rest = "/".join(parts[6:])
    if kind in ("status", "meta"):
        if rest:
            raise TopicError(f"{topic!r}: nothing may follow /{kind}")
    elif kind == "evt":
        if not EVENT_TYPE_RE.match(rest):
            raise TopicError(f"{topic!r}: bad event type {rest!r}")
    else:
        check_name(kind, rest)
    return TopicParts(tenant, branch, device, kind, rest)


def matches(topic_filter: str, topic: str) -> bool:
    """MQTT filter matching (``+`` one level, ``#`` the rest)."""
    f, t = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(f):
        if part == "#":
            return True
        if i >= len(t) or (part != "+" and part != t[i]):
            return False
    return len(f) == len(t)
