"""Clock trust on a Pi without a real-time clock (issue 15, docs/engine.md "Clock trust").

A Pi without RTC boots with an old time (fake-hwclock, or timesyncd's saved stamp)
and an offline branch has no NTP to correct it. The engine keeps an **anchor**: a
moment whose true time is known (NTP said so, or a member of staff set it), with
the kernel's ``CLOCK_BOOTTIME`` at that moment and the boot it happened in
(``/proc/sys/kernel/random/boot_id``). While the Pi has not restarted, the true time
is the anchor's plus the boot time elapsed since, whatever the system clock does; a
restart (a power cut) ends the anchor, and the time must be confirmed again.

    clock = EngineClock(SystemClock(), SystemBoot())
    clock.adopt(Anchor.set_by_staff(true_ts, clock.boot, "r-amara"))
    clock.now()   # the staff's time plus CLOCK_BOOTTIME elapsed since
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from tessera.clock import Clock

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


class BootClock(Protocol):
    """Which boot this is and how long since it (suspend included)."""

    def boot_id(self) -> str:
        """Changes at every start of the kernel ("" when unknown: never matches)."""
        ...

    def boottime(self) -> float:
        """Seconds on ``CLOCK_BOOTTIME``: monotonic, counts suspend, reset by a restart."""
        ...


class SystemBoot:
    """The running kernel's boot id and ``CLOCK_BOOTTIME``."""

    def __init__(self, boot_id_path: Path = BOOT_ID) -> None:
        self._path = boot_id_path
        self._id: str | None = None

    def boot_id(self) -> str:
        if self._id is None:
            try:
                self._id = self._path.read_text().strip()
            except OSError:
                self._id = ""  # not Linux: no anchor survives a restart of the engine
        return self._id

    def boottime(self) -> float:
        return time.clock_gettime(time.CLOCK_BOOTTIME)


@dataclass(frozen=True)
class Anchor:
    """A moment whose true time is known: ``true_ts`` (epoch s) at ``boottime`` of boot
    ``boot_id``; ``source`` ``ntp`` (the sync source said so) or ``staff`` (set by
    ``staff`` through ``set-clock``). Stored as JSON in the store's ``meta``."""

    boot_id: str
    boottime: float
    true_ts: float
    source: str
    staff: str | None = None

    def at(self, boottime: float) -> float:
        """The true time at ``boottime`` of the same boot."""
        return self.true_ts + (boottime - self.boottime)

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def loads(cls, text: str | None) -> Anchor | None:
        """The stored anchor; None for none or an unreadable one (then it is not trusted)."""
        if not text:
            return None
        try:
            d = json.loads(text)
            return cls(str(d["boot_id"]), float(d["boottime"]), float(d["true_ts"]),
                       str(d["source"]), None if d.get("staff") is None else str(d["staff"]))
        except (ValueError, KeyError, TypeError):
            return None


class EngineClock:
    """The engine's time (a :class:`tessera.clock.Clock`): the system clock while the sync
    source vouches for it or nothing better is known, else the anchor's time plus the
    ``CLOCK_BOOTTIME`` elapsed since (same boot only). Monotonic time and sleeps are
    the system's."""

    def __init__(self, base: Clock, boot: BootClock) -> None:
        self.base = base
        self.boot = boot
        self.anchor: Anchor | None = None  # of this boot only
        self.synced = False  # the sync source's last answer (timedatectl / flag file)

    def adopt(self, anchor: Anchor | None) -> bool:
        """Use ``anchor`` if it is of this boot; returns whether it is."""
        if anchor is None or not anchor.boot_id or anchor.boot_id != self.boot.boot_id():
            return False
        self.anchor = anchor
        return True

    def anchored(self) -> bool:
        return self.anchor is not None

    def now(self) -> datetime:
        a = self.anchor
        if a is None or self.synced:
            return self.base.now()
        return datetime.fromtimestamp(a.at(self.boot.boottime()), UTC)

    def monotonic(self) -> float:
        return self.base.monotonic()

    def sleep(self, seconds: float) -> None:
        self.base.sleep(seconds)

    def anchor_now(self, true_ts: float, source: str, staff: str | None = None) -> Anchor:
        """An anchor saying it is ``true_ts`` now."""
        return Anchor(self.boot.boot_id(), self.boot.boottime(), true_ts, source, staff)


def parse_local_time(text: str, tz: object) -> datetime:
    """``"YYYY-MM-DD HH:MM"`` (or ``HH:MM:SS``, or ``T`` between) in the branch's zone, as
    aware UTC; ValueError saying what to write. A wall time that happens twice (DST
    fall-back) is its first occurrence."""
    raw = text.strip()
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            naive = datetime.strptime(raw, fmt)
            break
        except ValueError:
            continue
    else:
        raise ValueError(f"{text!r} is not a local date and time; write YYYY-MM-DD HH:MM, "
                         "e.g. 2026-12-02 09:14")
    if not 2000 <= naive.year <= 2999:
        raise ValueError(f"{text!r}: the year must be 2000-2999")
    local = naive.replace(tzinfo=tz)  # type: ignore[arg-type]
    back = local.astimezone(UTC).astimezone(local.tzinfo)
    if back.replace(tzinfo=None) != naive:
        raise ValueError(f"{text!r} does not exist in {tz} (the clocks went forward then); "
                         "write the time shown after the change")
    return local.astimezone(UTC)


@dataclass(frozen=True)
class ClockSet:
    """What ``set_clock`` did: the engine's time before and now (RFC 3339 UTC), the step
    (s) and who set it."""

    time: str
    previous: str
    step_s: float
    staff: str
    device: str


__all__ = ["Anchor", "BootClock", "ClockSet", "EngineClock", "SystemBoot", "parse_local_time"]
