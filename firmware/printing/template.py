"""From an issued ticket and the branch config to the blocks printed on paper.

    >>> doc = TicketTemplate(cfg).doc(ticket)      # doctest: +SKIP
    >>> doc.key                                    # doctest: +SKIP
    'cash'

Templates (``ticket.qr``, ``ticket.extra_line``) are ``str.format`` strings
over ``TEMPLATE_FIELDS``, filled with typed values: ``people_ahead`` and
``est_wait_min`` are whole numbers (``{est_wait_min:.0f}`` works), the others
text. The config check formats every template with sample values of those
types (``template_errors``), so what it accepts prints at the first customer.

    >>> template_errors("ticket.extra_line", "{est_wait_min:d} min")
    []
    >>> template_errors("ticket.extra_line", "{number:.0f}")[0][:58]
    "ticket.extra_line: '{number:.0f}' cannot be filled in (Unk"
"""

from __future__ import annotations

import difflib
import re
import string
from datetime import date, datetime
from typing import Protocol

from tessera.config import BranchConfig
from tessera.drivers.escpos_layout import QR, Align, Block, Gap, Line, Logo, TicketDoc
from tessera.drivers.printer_profiles import get_profile
from tessera.engine.routes import route_text

TEMPLATE_FIELDS = ("ticket_id", "number", "service", "service_name", "priority",
                   "appointment", "business_day", "tenant", "branch", "people_ahead",
                   "est_wait_min", "est_low_min", "est_high_min", "route", "ticket_token")
# ints; every other field is a str. est_low_min/est_high_min: the 80 % range of the wait
# (engine.wait_range), blank when the engine gives none
NUMBER_FIELDS = ("people_ahead", "est_wait_min", "est_low_min", "est_high_min")
# a sample of each field, as the printer fills it in (est_wait_min can also be blank)
SAMPLE_FIELDS: dict[str, object] = {
    "ticket_id": "0190a0b2-0000-7000-8000-000000000000", "number": "A001", "service": "cash",
    "service_name": "Cash", "priority": "", "appointment": "", "business_day": "2026-03-02",
    "tenant": "acme", "branch": "b1", "people_ahead": 3, "est_wait_min": 12,
    "est_low_min": 8, "est_high_min": 17, "route": "Reception > Nurse > Doctor",
    "ticket_token": "AAAAAAAAAAAAAAAA"}
MAX_SPEC_NUMBER = 200  # widths and precisions: a typo like {number:99999999} is refused

# Labels per language; a language missing here falls back to English.
LABELS: dict[str, dict[str, str]] = {
    "en": {"ahead": "People ahead: {n}", "wait": "Estimated wait: {m} min",
           "wait_none": "Estimated wait: -"},
    "zh": {"ahead": "前面还有 {n} 人", "wait": "预计等待 {m} 分钟", "wait_none": "预计等待 -"},
}
NUMBER_MAX_SCALE = 6
# Built-in priority class labels (``ticket.priority_names`` overrides them per class)
PRIORITY_LABELS: dict[str, dict[str, str]] = {
    "emergency": {"en": "Emergency", "zh": "紧急"},
    "priority": {"en": "Priority", "zh": "优先"},
    "vip": {"en": "VIP", "zh": "贵宾"},
}
APPOINTMENT_LABELS = {"en": "Appointment {slot} — checked in",
                      "zh": "预约 {slot} · 已签到"}
REPRINT_LABELS = {"en": "REPRINT", "zh": "补打"}


def priority_label(cfg: BranchConfig, priority: str, lang: str) -> str:
    """The name of a priority class in ``lang``: config, then built-in, then the id."""
    names = {**PRIORITY_LABELS.get(priority, {}), **cfg.ticket.priority_names.get(priority, {})}
    return names.get(lang) or names.get("en") or next(iter(names.values()), priority)


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
    @property
    def slot(self) -> str | None: ...


class Blank:
    """A field with no value (no wait estimate yet): empty whatever the format spec."""

    def __format__(self, spec: str) -> str:
        return ""

    def __str__(self) -> str:
        return ""

    __repr__ = __str__


def template_fields(template: str) -> list[str]:
    """Field names a format string uses; ValueError when it is malformed."""
    return [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]


def template_errors(path: str, template: str) -> list[str]:
    """Why ``template`` would not print, each as ``"path: what to fix"`` ([] = fine)."""
    from tessera.config_decode import show

    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        return [f"{path}: malformed template {show(template)} ({e}); write fields as "
                "{name}, and a literal brace as {{ or }}"]
    errs: list[str] = []
    for _, name, spec, _ in parsed:
        if name is None:
            continue
        root = re.split(r"[.\[]", name, maxsplit=1)[0]
        if root not in TEMPLATE_FIELDS:
            close = difflib.get_close_matches(root, TEMPLATE_FIELDS, n=1)
            errs.append(f"{path}: unknown field {{{show(name)[1:-1]}}} in {show(template)}; "
                        + (f"did you mean {{{close[0]}}}? " if close else "")
                        + "known fields: " + ", ".join(TEMPLATE_FIELDS))
        elif name != root:
            errs.append(f"{path}: {{{show(name)[1:-1]}}} in {show(template)}: write the "
                        f"field alone, {{{root}}} (no '.' or '[...]')")
        if any(int(n) > MAX_SPEC_NUMBER for n in re.findall(r"\d+", spec or "")):
            errs.append(f"{path}: format spec {show(spec)} in {show(template)}: widths and "
                        f"precisions go up to {MAX_SPEC_NUMBER}")
    if errs:
        return errs
    blank = {"est_wait_min": Blank(), "est_low_min": Blank(), "est_high_min": Blank()}
    for sample in (SAMPLE_FIELDS, {**SAMPLE_FIELDS, **blank}):
        try:
            template.format(**sample)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
            return [f"{path}: {show(template)} cannot be filled in ({e}); "
                    f"{', '.join(NUMBER_FIELDS[:-1])} and {NUMBER_FIELDS[-1]} are whole "
                    "numbers (e.g. "
                    "{est_wait_min:d} or {est_wait_min:.0f}), the other fields text "
                    "(e.g. {number:>5})"]
    return []


def range_fields(ticket: object) -> dict[str, object]:
    """``est_low_min``/``est_high_min`` of a ticket: its 80 % range in whole minutes (the
    high end at least one minute above the low), blank without one."""
    low = getattr(ticket, "est_low_s", None)
    high = getattr(ticket, "est_high_s", None)
    if low is None or high is None:
        return {"est_low_min": Blank(), "est_high_min": Blank()}
    lo = round(low / 60)
    return {"est_low_min": lo, "est_high_min": max(round(high / 60), lo + 1)}


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
        from tessera.web.links import LinkSigner, qr_template

        self.qr = qr_template(cfg)  # ticket.qr, or the web role's link (web.base_url)
        uses_token = "ticket_token" in self.qr + self.t.extra_line
        self._signer = LinkSigner.for_config(cfg) if uses_token else None

    def fields(self, ticket: TicketLike) -> dict[str, object]:
        """The template fields of ``ticket``, typed as ``SAMPLE_FIELDS``."""
        svc = self.cfg.service(ticket.service)
        wait = ticket.est_wait_s
        return {
            "ticket_id": ticket.id, "number": ticket.number, "service": ticket.service,
            "service_name": svc.name(self.languages[0]), "priority": ticket.priority or "",
            "appointment": ticket.appointment or "", "business_day": str(ticket.business_day),
            "tenant": self.cfg.branch.tenant, "branch": self.cfg.branch.branch,
            "people_ahead": int(ticket.people_ahead),
            "est_wait_min": Blank() if wait is None else round(wait / 60),
            # the visit route (Reception > Nurse > Doctor), "" for a ticket without one
            "route": route_text(self.cfg, ticket.service, getattr(ticket, "route", ()),
                                self.languages[0]),
            **range_fields(ticket),
            # the mobile-ticket link's signature (tessera.web.links)
            "ticket_token": self._signer.token(ticket.id) if self._signer else "",
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

    def labels(self, ticket: TicketLike, *, reprint: bool = False) -> list[Line]:
        """What the customer and the teller must see beside the number: the priority
        class, an appointment's slot and that it was checked in, a reprint."""
        out: list[Line] = []
        langs = list(dict.fromkeys(self.languages))
        if ticket.priority:
            names = dict.fromkeys(priority_label(self.cfg, ticket.priority, lg) for lg in langs)
            out.append(Line(" / ".join(names), scale=2, bold=True))
        if ticket.appointment:
            slot = ticket.slot
            at = "" if slot is None else \
                datetime.fromisoformat(slot).astimezone(self.cfg.tz).strftime("%H:%M")
            out += [Line(" ".join(APPOINTMENT_LABELS.get(lg, APPOINTMENT_LABELS["en"])
                                  .format(slot=at).split()), bold=True) for lg in langs]
        if reprint:
            out.append(Line(" / ".join(dict.fromkeys(
                REPRINT_LABELS.get(lg, REPRINT_LABELS["en"]) for lg in langs)), bold=True))
        return out

    def dynamic_blocks(self, ticket: TicketLike, *, reprint: bool = False) -> tuple[Block, ...]:
        f = self.fields(ticket)
        blocks: list[Block] = [Gap(8), Line(ticket.number, scale=number_scale(ticket.number,
                                                                              self.width)),
                               Gap(8), *self.labels(ticket, reprint=reprint)]
        for lang in self.languages:
            lab = LABELS.get(lang, LABELS["en"])
            blocks.append(Line(lab["ahead"].format(n=ticket.people_ahead)))
        for lang in self.languages:
            lab = LABELS.get(lang, LABELS["en"])
            m = f["est_wait_min"]
            blocks.append(Line(lab["wait_none"] if isinstance(m, Blank) else
                               lab["wait"].format(m=m)))
        blocks.append(Line(self._issued(ticket)))
        if self.t.extra_line:
            extra = self.t.extra_line.format(**f).strip()
            if extra:
                blocks.append(Line(extra, bold=True))
        if self.qr:
            # the QR block carries its own 4-module quiet zone above and below
            blocks.append(QR(self.qr.format(**f), self.t.qr_module, self.t.qr_error))
        if self.t.footer:
            blocks += [Gap(8), Line(self.t.footer)]
        return tuple(blocks)

    def _issued(self, ticket: TicketLike) -> str:
        at = ticket.issued_at
        if isinstance(at, str):
            at = datetime.fromisoformat(at)
        return at.astimezone(self.cfg.tz).strftime("%Y-%m-%d %H:%M")

    def doc(self, ticket: TicketLike, *, reprint: bool = False) -> TicketDoc:
        return TicketDoc(ticket.service, self.static_blocks(ticket.service),
                         self.dynamic_blocks(ticket, reprint=reprint))


__all__ = ["SAMPLE_FIELDS", "TEMPLATE_FIELDS", "Align", "Blank", "TicketTemplate",
           "template_errors", "template_fields"]
