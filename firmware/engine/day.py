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


def open_span(service: Service, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
    """The opening span (local start, local end as aware UTC) containing ``now``, or None."""
    local = now.astimezone(tz)
    day = local.date()
    for start, end in service_spans(service, local.weekday()):
        s = datetime.combine(day, start, tz)
        e = datetime.combine(day + timedelta(days=1) if end == time(0, 0) else day, end, tz)
        if s <= local < e:
            return s.astimezone(UTC), e.astimezone(UTC)
    return None


def next_opening(service: Service, now: datetime, tz: ZoneInfo) -> datetime | None:
    """When ``service`` opens next (within a week), local time; None if never."""
    local = now.astimezone(tz)
    for d in range(8):
        day = local.date() + timedelta(days=d)
        for start, _ in sorted(service_spans(service, day.weekday())):
            s = datetime.combine(day, start, tz)
            if s > local:
                return s
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
