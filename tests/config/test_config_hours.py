"""Opening hours past midnight and the day-end policy (issue 15): each mistake named by
its path, and what the engine makes of a valid span (the business day it opened in,
DST dates in Europe/London)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tessera.config import parse_config
from tessera.engine.day import next_opening, open_span
from tessera.errors import ConfigError

TOML = """
[branch]
tenant = "acme"
branch = "b-01"
timezone = "Europe/London"
day_rollover = "04:00"

[[services]]
id = "late"
prefix = "L"
names = {{ en = "Late desk" }}
hours = {hours}
{extra}
"""


def _cfg(hours: str, extra: str = "", rollover: str = "04:00") -> object:
    return parse_config(TOML.format(hours=hours, extra=extra).replace('"04:00"', f'"{rollover}"'))


def _errors(hours: str, extra: str = "", rollover: str = "04:00") -> list[str]:
    with pytest.raises(ConfigError) as e:
        _cfg(hours, extra, rollover)
    return e.value.errors


@pytest.mark.parametrize(("hours", "extra", "rollover", "expected"), [
    ('{ default = ["08:00-08:00"] }', "", "04:00",
     "services[0].hours.default[0]: '08:00-08:00' has zero length"),
    ('{ fri = ["20:00-02:00"], sat = ["01:00-12:00"] }', "", "04:00",
     "services[0].hours.sat: '01:00-12:00' on sat overlaps '20:00-02:00' of hours.fri, "
     "which runs past midnight from fri"),
    ('{ sun = ["22:00-03:00"], mon = ["02:00-05:00"] }', "", "06:00",
     "services[0].hours.mon: '02:00-05:00' on mon overlaps '22:00-03:00' of hours.sun"),
    ('{ default = ["09:00-12:00", "11:00-13:00"] }', "", "04:00",
     "services[0].hours.default: '09:00-12:00' and '11:00-13:00' overlap"),
    ('{ default = ["20:00-05:00"] }', "", "04:00",
     "services[0].hours.default[0]: '20:00-05:00' is open across branch.day_rollover 04:00"),
    ('{ default = ["20:00-02:00"] }', "", "00:00",
     'set services[0].at_day_end = "carry"'),
    ('{ default = ["20:00-02:00"] }', 'at_day_end = "keep"', "04:00",
     "services[0].at_day_end: 'keep' is not one of 'void', 'carry'"),
])
def test_each_hours_mistake_names_its_path(hours: str, extra: str, rollover: str,
                                           expected: str) -> None:
    errs = _errors(hours, extra, rollover)
    assert any(expected in e for e in errs), errs


@pytest.mark.parametrize(("hours", "extra", "rollover"), [
    ('{ default = ["20:00-02:00"] }', "", "04:00"),
    ('{ default = ["20:00-02:00"] }', 'at_day_end = "carry"', "00:00"),
    ('{ default = ["00:00-24:00"] }', 'at_day_end = "carry"', "04:00"),
    ('{ default = ["04:00-24:00", "00:00-04:00"] }', "", "04:00"),
    ('{ fri = ["20:00-02:00"], sat = ["02:00-12:00"] }', "", "13:00"),
])
def test_valid_spans_past_midnight(hours: str, extra: str, rollover: str) -> None:
    _cfg(hours, extra, rollover)


def _at(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
           second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_a_span_past_midnight_belongs_to_the_day_it_opened() -> None:
    cfg = _cfg('{ fri = ["20:00-02:00"], sat = [], default = [] }')
    svc, tz = cfg.services[0], cfg.tz  # type: ignore[attr-defined]
    # Fri 27 Mar 2026 20:00 GMT opens; Sat 01:59 still open (Saturday itself is closed)
    assert open_span(svc, _at(2026, 3, 27, 19, 59), tz) is None
    span = open_span(svc, _at(2026, 3, 28, 1, 59), tz)
    assert span == (_at(2026, 3, 27, 20), _at(2026, 3, 28, 2))
    assert open_span(svc, _at(2026, 3, 28, 2, 0), tz) is None
    nxt = next_opening(svc, _at(2026, 3, 28, 2, 0), tz)
    assert nxt is not None and nxt.isoformat() == "2026-04-03T20:00:00+01:00"


@pytest.mark.parametrize(("opens", "closes", "hours_long"), [
    # Sat 28 Mar 2026 20:00 GMT to Sun 02:00 BST (clocks go forward at 01:00 UTC): 5 h
    (_at(2026, 3, 28, 20), _at(2026, 3, 29, 1), 5),
    # Sat 24 Oct 2026 20:00 BST to Sun 02:00 GMT (clocks go back at 01:00 UTC): 7 h
    (_at(2026, 10, 24, 19), _at(2026, 10, 25, 2), 7),
])
def test_a_span_past_midnight_across_dst(opens: datetime, closes: datetime,
                                         hours_long: int) -> None:
    cfg = _cfg('{ default = ["20:00-02:00"] }')
    svc, tz = cfg.services[0], cfg.tz  # type: ignore[attr-defined]
    minute = timedelta(minutes=1)
    for inside in (opens, opens + (closes - opens) / 2, closes - minute):
        assert open_span(svc, inside, tz) == (opens, closes), inside
    assert (closes - opens).total_seconds() == hours_long * 3600
    assert open_span(svc, opens - minute, tz) is None
    assert open_span(svc, closes, tz) is None
