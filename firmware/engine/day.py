"""Business days, opening hours and clock trust.

The business day is the local date of ``now - rollover`` in the branch's
timezone (zoneinfo wall-clock arithmetic, so DST days roll once, at the
configured local time, or at the first instant after it when that wall time
does not exist).

    >>> business_day(datetime(2026, 3, 29, 1, 30, tzinfo=UTC), ZoneInfo("Europe/London"),
    ...              time(3, 0))
    datetime.date(2026, 3, 28)
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tessera.config import BranchConfig, Service, service_spans

TrustCheck = Callable[[], bool]


def business_day(now: datetime, tz: ZoneInfo, rollover: time) -> date:
    """The business day ``now`` belongs to."""
    local = now.astimezone(tz).replace(tzinfo=None)
    return (local - timedelta(hours=rollover.hour, minutes=rollover.minute)).date()


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """Wall time ``at`` on ``day`` in ``tz`` as aware UTC (PEP 495, ``fold=0``): a wall
    time that happens twice (DST fall-back) is its first occurrence; one that does not
    exist (spring-forward) is read with the offset before the change (01:30 on the
    night clocks go forward is 02:30 summer time)."""
    return datetime.combine(day, at, tz).astimezone(UTC)


def spans_on(service: Service, day: date, tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """The opening spans that start on local date ``day``, as aware UTC (start, end): a
    span past midnight (``20:00-02:00``) ends on the next day and belongs to ``day``."""
    out = []
    for start, end in service_spans(service, day.weekday()):
        end_day = day + timedelta(days=1) if end == time(0, 0) or end < start else day
        out.append((local_instant(day, start, tz), local_instant(end_day, end, tz)))
    return out


def open_span(service: Service, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
    """The opening span (start, end as aware UTC) containing ``now``, or None. A span
    that crossed midnight comes from the day before (Friday's 20:00-02:00 is open at
    Saturday 01:00 whatever Saturday's own hours say). Compared in UTC, so the span is
    as long as the clock on the wall says across a DST change."""
    at = now.astimezone(UTC)
    today = now.astimezone(tz).date()
    for day in (today - timedelta(days=1), today):
        for s, e in spans_on(service, day, tz):
            if s <= at < e:
                return s, e
    return None


def next_opening(service: Service, now: datetime, tz: ZoneInfo) -> datetime | None:
    """When ``service`` opens next (within a week), local time; None if never."""
    at = now.astimezone(UTC)
    today = now.astimezone(tz).date()
    for d in range(8):
        starts = sorted(s for s, _ in spans_on(service, today + timedelta(days=d), tz))
        for s in starts:
            if s > at:
                return s.astimezone(tz)
    return None


def timedatectl_synced(run: Callable[[list[str]], str] | None = None) -> bool:
    """True when systemd-timesyncd/chrony reports NTP synchronisation."""
    cmd = ["timedatectl", "show", "-p", "NTPSynchronized", "--value"]
    try:
        out = run(cmd) if run is not None else subprocess.run(
            cmd, capture_output=True, text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return out.strip() == "yes"


def trust_check(cfg: BranchConfig, run: Callable[[list[str]], str] | None = None) -> TrustCheck:
    """The check named by ``cfg.clock.trust`` (``run`` replaces the subprocess in tests)."""
    mode = cfg.clock.trust
    if mode == "always":
        return lambda: True
    if mode == "flag-file":
        flag = cfg.path(cfg.clock.sync_flag)
        return flag.exists
    return lambda: timedatectl_synced(run)


def always_trusted() -> bool:
    """Trust check for simulations and tests that drive a virtual clock."""
    return True
