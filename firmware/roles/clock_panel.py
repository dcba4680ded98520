"""Setting the engine's clock from a login counter panel (issue 15, docs/branch.md).

After a power cut on an offline Pi without RTC the engine refuses tickets until the
time is confirmed. On a ``panel.login`` counter nobody is logged in to, a member of
staff types their code on the rating buttons and **holds NEXT** (or presses PAUSE):
the panel enters clock entry, starting from the time the counter's clock reads, and
the sign shows it as ``T09:14``. Then:

| key | does |
|---|---|
| NEXT / NO-SHOW | one minute later / earlier |
| RECALL / TRANSFER | one hour later / earlier |
| DONE (tap) | set it: the engine's ``set_clock`` with that staff id (event ``clock.set``) |
| DONE or NEXT (hold), PAUSE | leave without setting anything |

Rating buttons do nothing in clock entry. The panel leaves clock entry by itself
after ``CLOCK_IDLE_S`` without a key, so a half-set time is never left on the sign.

    entry = ClockEntry("r-amara", datetime(2026, 3, 2, 9, 0, tzinfo=tz), now=0.0)
    entry.key(Act.RECALL, now=1.0); entry.text()   # -> 'T10:00'
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tessera.dispatch import Act

CLOCK_IDLE_S = 120.0  # clock entry is left after this long without a key
STEPS = {Act.NEXT: 60, Act.NO_SHOW: -60, Act.RECALL: 3600, Act.TRANSFER: -3600}


class ClockEntry:
    """A time being set on a panel: who sets it and the local time shown."""

    def __init__(self, staff: str, start: datetime, *, now: float) -> None:
        self.staff = staff
        self.shown = start.replace(second=0, microsecond=0)
        self._last_key = now

    def expired(self, now: float) -> bool:
        return now - self._last_key > CLOCK_IDLE_S

    def key(self, action: Act, *, now: float) -> bool:
        """Apply a step key; False for a key that is not one."""
        step = STEPS.get(action)
        self._last_key = now
        if step is None:
            return False
        # wall-clock steps in the branch's zone: 01:59 + 1 min is 02:00 on the sign
        self.shown = (self.shown.replace(tzinfo=None) + timedelta(seconds=step)).replace(
            tzinfo=self.shown.tzinfo)
        return True

    def when(self) -> str:
        """The local time to set, as ``set_clock`` reads it."""
        return self.shown.strftime("%Y-%m-%d %H:%M")

    def text(self) -> str:
        return self.shown.strftime("T%H:%M")


__all__ = ["CLOCK_IDLE_S", "ClockEntry"]
