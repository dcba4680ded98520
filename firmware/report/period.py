"""The business days a report covers: one day, the ISO week (Monday to Sunday) of a date,
a calendar month, or an inclusive range.

    >>> week_of("2026-03-26")[0], week_of("2026-03-26")[-1]
    ('2026-03-23', '2026-03-29')
    >>> len(month_of("2026-02"))
    28
    >>> days_between("2026-03-30", "2026-04-01")
    ['2026-03-30', '2026-03-31', '2026-04-01']
"""

from __future__ import annotations

import re
from datetime import date, timedelta

MAX_DAYS = 3660  # a range longer than ten years is a typo


class PeriodError(ValueError):
    """A --day/--week/--month/--from/--to value that is not a date or range."""


def parse_day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"{option} {text[:40]!r} is not a date; write YYYY-MM-DD") from None


def days_between(first: str, last: str, *, options: tuple[str, str] = ("--from", "--to")
                 ) -> list[str]:
    a, b = parse_day(first, options[0]), parse_day(last, options[1])
    if b < a:
        raise PeriodError(f"{options[1]} {last} is before {options[0]} {first}")
    if (b - a).days >= MAX_DAYS:
        raise PeriodError(f"{options[0]} {first} {options[1]} {last}: at most {MAX_DAYS} days")
    return [(a + timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]


def week_of(text: str) -> list[str]:
    d = parse_day(text, "--week")
    monday = d - timedelta(days=d.weekday())
    return [(monday + timedelta(days=i)).isoformat() for i in range(7)]


def month_of(text: str) -> list[str]:
    m = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if m is None or not 1 <= int(m[2]) <= 12:
        raise PeriodError(f"--month {text[:40]!r} is not a month; write YYYY-MM")
    first = date(int(m[1]), int(m[2]), 1)
    nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return [(first + timedelta(days=i)).isoformat() for i in range((nxt - first).days)]
