"""From an issued ticket and the branch config to the blocks printed on paper.

    >>> doc = TicketTemplate(cfg).doc(ticket)      # doctest: +SKIP
    >>> doc.key
    'cash'

Templates (``ticket.qr``, ``ticket.extra_line``) are ``str.format`` strings
over ``TEMPLATE_FIELDS``; the config check rejects any other field at start-up.
"""

from __future__ import annotations

import string
from datetime import date, datetime
from typing import Protocol

from tessera.config import BranchConfig
from tessera.drivers.printer_profiles import get_profile
from tessera.printing.layout import QR, Align, Block, Gap, Line, Logo, TicketDoc

TEMPLATE_FIELDS = ("ticket_id", "number", "service", "service_name", "priority",
                   "appointment", "business_day", "tenant", "branch", "people_ahead",
                   "est_wait_min")

# Labels per language; a language missing here falls back to English.
LABELS: dict[str, dict[str, str]] = {
    "en": {"ahead": "People ahead: {n}", "wait": "Estimated wait: {m} min",
           "wait_none": "Estimated wait: -"},
    "zh": {"ahead": "前面还有 {n} 人", "wait": "预计等待 {m} 分钟", "wait_none": "预计等待 -"},
}
NUMBER_MAX_SCALE = 6


class TicketLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def number(self) -> str: ...
    @property
    def service(self) -> str: ...
    @property
    def priority(self) -> str | None: ...
    @property
    def people_ahead(self) -> int: ...
    @property
    def est_wait_s(self) -> float | None: ...
    @property
    def issued_at(self) -> datetime | str: ...
    @property
    def business_day(self) -> date | str: ...
    @property
    def appointment(self) -> str | None: ...


def template_fields(template: str) -> list[str]:
    """Field names a format string uses; ValueError when it is malformed."""
    return [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]


def number_scale(number: str, width_dots: int) -> int:
    """The largest ROM-font multiplier (≤ 6) at which ``number`` fits the paper."""
    return max(1, min(NUMBER_MAX_SCALE, (width_dots - 16) // (12 * max(len(number), 1))))


class TicketTemplate:
    """The branch's ticket template, bound to its printer's width."""

    def __init__(self, cfg: BranchConfig) -> None:
        self.cfg = cfg
        self.t = cfg.ticket
        self.languages = self.t.languages or cfg.branch.languages
        self.width = get_profile(cfg.kiosk.printer.profile).width_dots

    def fields(self, ticket: TicketLike) -> dict[str, str]:
        svc = self.cfg.service(ticket.service)
        wait = ticket.est_wait_s
        return {
            "ticket_id": ticket.id, "number": ticket.number, "service": ticket.service,
            "service_name": svc.name(self.languages[0]), "priority": ticket.priority or "",
            "appointment": ticket.appointment or "", "business_day": str(ticket.business_day),
            "tenant": self.cfg.branch.tenant, "branch": self.cfg.branch.branch,
            "people_ahead": str(ticket.people_ahead),
            "est_wait_min": "" if wait is None else str(round(wait / 60)),
        }

    def static_blocks(self, service_id: str) -> tuple[Block, ...]:
        svc = self.cfg.service(service_id)
        blocks: list[Block] = []
        if self.t.logo:
            blocks.append(Logo(str(self.cfg.path(self.t.logo))))
        if self.cfg.branch.name:
            blocks.append(Line(self.cfg.branch.name))
        blocks.append(Gap(12))
        names = dict.fromkeys(svc.name(lang) for lang in self.languages)  # dedupe, keep order
        blocks.extend(Line(name, scale=2 if i == 0 else 1, bold=i == 0)
                      for i, name in enumerate(names))
        return tuple(blocks)

    def dynamic_blocks(self, ticket: TicketLike) -> tuple[Block, ...]:
        f = self.fields(ticket)
        blocks: list[Block] = [Gap(8), Line(ticket.number, scale=number_scale(ticket.number,
                                                                              self.width)),
                               Gap(8)]
        for lang in self.languages:
            lab = LABELS.get(lang, LABELS["en"])
            blocks.append(Line(lab["ahead"].format(n=ticket.people_ahead)))
        for lang in self.languages:
            lab = LABELS.get(lang, LABELS["en"])
            m = f["est_wait_min"]
            blocks.append(Line(lab["wait"].format(m=m) if m else lab["wait_none"]))
        blocks.append(Line(self._issued(ticket)))
        if self.t.extra_line:
            extra = self.t.extra_line.format(**f).strip()
            if extra:
                blocks.append(Line(extra, bold=True))
        if self.t.qr:
            blocks += [Gap(8), QR(self.t.qr.format(**f), self.t.qr_module, self.t.qr_error)]
        if self.t.footer:
            blocks += [Gap(8), Line(self.t.footer)]
        return tuple(blocks)

    def _issued(self, ticket: TicketLike) -> str:
        at = ticket.issued_at
        if isinstance(at, str):
            at = datetime.fromisoformat(at)
        return at.astimezone(self.cfg.tz).strftime("%Y-%m-%d %H:%M")

    def doc(self, ticket: TicketLike) -> TicketDoc:
        return TicketDoc(ticket.service, self.static_blocks(ticket.service),
                         self.dynamic_blocks(ticket))


__all__ = ["TEMPLATE_FIELDS", "Align", "TicketTemplate", "template_fields"]
