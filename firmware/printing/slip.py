"""The refusal slip: why the customer got no ticket, in the branch's languages (issue 15).

    doc = RefusalSlip(cfg).doc("past_closing", "loans", now)
    [b.text for b in doc.dynamic if isinstance(b, Line)][1]
    # -> 'Loans closes at 16:30 — please come back tomorrow' (after the Chinese line)

Printed only when the printer can print (never for a printer fault); the same layout
code as tickets (``TicketDoc`` blocks, wrapped and shrunk to the paper by the
renderer). Reasons are the stable codes of ``tessera.engine.kiosk.REASONS``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tessera.config import BranchConfig
from tessera.drivers.escpos_layout import Block, Gap, Line, TicketDoc
from tessera.engine.day import next_opening, open_span

# {service}: its name; {close}: HH:MM it closes; {back}: when to come back (BACK)
SLIP_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "past_closing": "{service} closes at {close} — please come back {back}",
        "service_closed": "{service} is closed — please come back {back}",
        "clock_untrusted": "Tickets cannot be issued right now — please ask staff",
        "numbers_exhausted": "{service}: no more tickets today — please ask staff",
        "engine_unreachable": "Tickets cannot be issued right now — please ask staff",
        "unknown_booking": "Booking code not found — please check it or ask at reception",
        "booking_too_early": "Too early for your appointment — please check in later",
        "booking_too_late": "Your appointment time has passed — please ask at reception",
        "already_checked_in": "This booking is already checked in — please ask at reception",
    },
    "zh": {
        "past_closing": "{service} {close} 停止取号 — 请{back}再来",
        "service_closed": "{service}已停止服务 — 请{back}再来",
        "clock_untrusted": "暂时无法取号 — 请咨询工作人员",
        "numbers_exhausted": "{service}今日号码已发完 — 请咨询工作人员",
        "engine_unreachable": "暂时无法取号 — 请咨询工作人员",
        "unknown_booking": "未找到预约号 — 请核对或到服务台咨询",
        "booking_too_early": "预约签到时间未到 — 请稍后再签到",
        "booking_too_late": "预约时间已过 — 请到服务台咨询",
        "already_checked_in": "该预约已签到 — 请到服务台咨询",
    },
}
# {time}: HH:MM; {day}: weekday name
BACK: dict[str, dict[str, str]] = {
    "en": {"today": "at {time}", "tomorrow": "tomorrow", "later": "on {day} at {time}",
           "none": "another day"},
    "zh": {"today": "{time}", "tomorrow": "明天", "later": "{day} {time}", "none": "改天"},
}
WEEKDAYS = {"en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
                   "Sunday"),
            "zh": ("周一", "周二", "周三", "周四", "周五", "周六", "周日")}
SLIP_REASONS = tuple(SLIP_TEXT["en"])  # a printer fault gets no slip: it cannot print


class RefusalSlip:
    """Slips for the branch's ticket languages, with its services' hours."""

    def __init__(self, cfg: BranchConfig) -> None:
        self.cfg = cfg
        self.languages = cfg.ticket.languages or cfg.branch.languages

    def lines(self, reason: str, service: str, now: datetime) -> list[str]:
        """One line per language ([] for a reason without a slip)."""
        if reason not in SLIP_TEXT["en"]:
            return []
        svc = next((s for s in self.cfg.services if s.id == service), None)
        tz = self.cfg.tz
        close, reopen = "", None
        if svc is not None:
            span = open_span(svc, now, tz)
            if span is not None:
                close = f"{span[1].astimezone(tz):%H:%M}"
            reopen = next_opening(svc, span[1] if span is not None else now, tz)
        out: list[str] = []
        for lang in dict.fromkeys(self.languages):
            texts = SLIP_TEXT.get(lang, SLIP_TEXT["en"])
            name = svc.name(lang) if svc is not None else service
            out.append(texts[reason].format(service=name, close=close,
                                            back=self._back(lang, now, reopen)))
        return out

    def _back(self, lang: str, now: datetime, reopen: datetime | None) -> str:
        back = BACK.get(lang, BACK["en"])
        if reopen is None:
            return back["none"]
        local_now, local = now.astimezone(self.cfg.tz), reopen.astimezone(self.cfg.tz)
        days = WEEKDAYS.get(lang, WEEKDAYS["en"])
        if local.date() == local_now.date():
            return back["today"].format(time=f"{local:%H:%M}")
        if local.date() == local_now.date() + timedelta(days=1):
            return back["tomorrow"]
        return back["later"].format(day=days[local.weekday()], time=f"{local:%H:%M}")

    def doc(self, reason: str, service: str, now: datetime) -> TicketDoc:
        head: list[Block] = []
        if self.cfg.branch.name:
            head += [Line(self.cfg.branch.name), Gap(12)]
        body: list[Block] = [Line(text, bold=i == 0) for i, text in
                             enumerate(self.lines(reason, service, now))]
        body += [Gap(8), Line(f"{now.astimezone(self.cfg.tz):%Y-%m-%d %H:%M}")]
        return TicketDoc(f"slip:{reason}", tuple(head), tuple(body))


__all__ = ["SLIP_REASONS", "SLIP_TEXT", "RefusalSlip"]
