"""Who may send which engine command with which arguments, from the branch config.

The broker authenticates the sender (a request is published in the sender's own
subtree, which only it may write); this module authorizes it. Rules:

* a device sends only its role's commands (``ROLE_COMMANDS``; a monitor only
  ``snapshot``);
* a counter device acts only on the counters wired to its Pi (``counters[].device``),
  and opens a counter only for configured staff (``[[staff]]`` or the counter's
  own ``staff``);
* a kiosk issues only the (service, priority class) pairs its buttons are
  configured for, and its check-in attempts are rate-limited;
* a kiosk reports refusals only for its buttons' services, under keys
  ``{device}.<id>`` of its own (``report-refusal``);
* every device has a command rate limit (token bucket).

A refusal is a :class:`Refusal` (code ``forbidden`` or ``rate-limited``) naming
what is wrong; the command server answers it and the engine never sees it.

    policy = CommandPolicy.from_config(cfg)
    policy.permit("counter-pi-1", "call-next", CounterArgs(counter="c2"), now=0.0)
    # -> Refusal(code='forbidden', detail="device 'counter-pi-1' may act only on its own ...")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tessera.config import BranchConfig
from tessera.identity import branch_devices
from tessera.mqtt.command_schema import ROLE_COMMANDS

# Per device: a steady 10 commands/s with bursts of 50 is far above what buttons
# produce (a counter Pi with eight panels pressed together, a board rebuild) and far
# below what a looping or hostile client would send.
RATE_PER_S = 10.0
BURST = 50.0
# Booking codes are short: 10 check-in attempts a minute per kiosk stops guessing.
CHECKIN_PER_S = 10 / 60
CHECKIN_BURST = 10.0


@dataclass(frozen=True)
class Refusal:
    code: str  # forbidden | rate-limited
    detail: str


@dataclass
class TokenBucket:
    """``rate`` tokens a second up to ``burst``; ``take`` spends one if there is one."""

    rate: float
    burst: float
    tokens: float = -1.0
    at: float = 0.0

    def take(self, now: float) -> bool:
        if self.tokens < 0:
            self.tokens, self.at = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


@dataclass(frozen=True)
class Grant:
    """What one device may do."""

    role: str
    commands: frozenset[str]
    counters: frozenset[str] = frozenset()  # counter role: the counters of its Pi
    issues: frozenset[tuple[str, str | None]] = frozenset()  # kiosk: (service, priority)


@dataclass
class CommandPolicy:
    """Authorization and rate limits of engine commands, per sender device."""

    grants: Mapping[str, Grant]
    staff: Mapping[str, frozenset[str]]  # counter id -> staff ids it may be opened for
    rate_per_s: float = RATE_PER_S
    burst: float = BURST
    checkin_per_s: float = CHECKIN_PER_S
    checkin_burst: float = CHECKIN_BURST
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)
    _checkins: dict[str, TokenBucket] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: BranchConfig) -> CommandPolicy:
        buttons = frozenset((b.service, b.priority) for b in cfg.kiosk.buttons)
        configured = frozenset(s.id for s in cfg.staff)
        grants: dict[str, Grant] = {}
        for dev in branch_devices(cfg).values():
            cmds = frozenset(ROLE_COMMANDS.get(dev.role, ()))
            grants[dev.id] = Grant(
                dev.role, cmds,
                counters=frozenset(c.id for c in cfg.counters if c.device == dev.pi)
                if dev.role == "counter" else frozenset(),
                issues=buttons if dev.role == "kiosk" else
                frozenset((s.id, None) for s in cfg.services)
                if dev.role == "web" and cfg.web.join else frozenset())
        staff = {c.id: configured | ({c.staff} if c.staff else set()) for c in cfg.counters}
        return cls(grants, staff)

    def admit(self, sender: str, now: float) -> Refusal | None:
        """The sender's rate limit, checked for every request before it is even parsed."""
        bucket = self._buckets.get(sender)
        if bucket is None:
            bucket = self._buckets.setdefault(sender, TokenBucket(self.rate_per_s, self.burst))
        if bucket.take(now):
            return None
        return Refusal("rate-limited", f"device {sender!r} sent more than {self.burst:g} "
                       f"requests in a burst or {self.rate_per_s:g}/s; slow down")

    def may_send(self, sender: str, name: str) -> Refusal | None:
        """Whether the sender's role may send command ``name`` at all."""
        grant = self.grants.get(sender)
        if grant is None:
            return Refusal("forbidden", f"device {sender!r} is not a device of this branch "
                           "(tessera broker config lists them)")
        if name not in grant.commands:
            return Refusal("forbidden", f"device {sender!r} ({grant.role}) may not send "
                           f"{name!r}; it may send: {', '.join(sorted(grant.commands)) or 'none'}")
        return None

    def permit(self, sender: str, name: str, args: Any, now: float) -> Refusal | None:
        """Whether the sender may run ``name`` with these (decoded) arguments now."""
        refused = self.may_send(sender, name)
        if refused is not None:
            return refused
        grant = self.grants[sender]
        counter = getattr(args, "counter", None)
        if grant.role == "counter" and counter is not None:
            if counter not in grant.counters:
                return Refusal("forbidden", f"device {sender!r} may act only on its own "
                               f"counters ({', '.join(sorted(grant.counters)) or 'none'}), "
                               f"not {counter!r} - at `$.args.counter`")
            staff = getattr(args, "staff", None)
            if name == "open-counter" and staff is not None \
                    and staff not in self.staff.get(counter, frozenset()):
                return Refusal("forbidden", f"staff id {staff!r} is not configured "
                               "([[staff]] or counters[].staff) - at `$.args.staff`")
        if name == "set-clock" and args.staff not in frozenset().union(*self.staff.values()):
            return Refusal("forbidden", f"staff id {args.staff!r} is not configured "
                           "([[staff]] or counters[].staff) - at `$.args.staff`")
        if grant.role == "kiosk" and name == "issue-ticket":
            pair = (args.service, args.priority)
            if pair not in grant.issues:
                offered = ", ".join(f"{s}/{p or 'normal'}" for s, p in sorted(
                    grant.issues, key=lambda x: (x[0], x[1] or "")))
                return Refusal("forbidden", f"device {sender!r} has no button for service "
                               f"{args.service!r} with priority {args.priority or 'normal'!r}; "
                               f"its buttons: {offered or 'none'} - at `$.args`")
        if grant.role == "kiosk" and name == "report-refusal":
            # a kiosk reports only its own refusals: for its own buttons' services (or
            # none, a booking code), under a key in its own name
            services = {s for s, _ in grant.issues}
            if args.service and args.service not in services:
                return Refusal("forbidden", f"device {sender!r} has no button for service "
                               f"{args.service!r}; it reports refusals for: "
                               f"{', '.join(sorted(services)) or 'none'} - at `$.args.service`")
            if not args.key.startswith(f"{sender}."):
                return Refusal("forbidden", f"device {sender!r} reports refusals under keys "
                               f"of its own, '{sender}.<id>', not {args.key!r} - at "
                               "`$.args.key`")
        if name == "issue-ticket" and (args.channel is not None) != (grant.role == "web"):
            return Refusal("forbidden", f"device {sender!r} ({grant.role}) may not issue with "
                           f"channel {args.channel!r} - at `$.args.channel`")
        if grant.role == "web" and name in ("issue-ticket", "confirm-printed") \
                and not grant.issues:
            return Refusal("forbidden", f"device {sender!r}: tickets from the phone are off "
                           "(web.join = false)")
        if grant.role == "web" and name == "issue-ticket" \
                and (args.service, args.priority) not in grant.issues:
            return Refusal("forbidden", f"device {sender!r} may issue normal tickets of the "
                           f"configured services only - at `$.args`")
        if name == "check-in":
            bucket = self._checkins.get(sender)
            if bucket is None:
                bucket = self._checkins.setdefault(
                    sender, TokenBucket(self.checkin_per_s, self.checkin_burst))
            if not bucket.take(now):
                return Refusal("rate-limited", f"device {sender!r}: more than "
                               f"{self.checkin_burst:g} check-in attempts in a row; wait "
                               f"{1 / self.checkin_per_s:.0f} s between attempts")
        return None
