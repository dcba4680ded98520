"""Keep a long-lived engine store small: prune old business days, check the file.

Run from the engine role's loop (``Branch.tick`` calls ``maybe_run()``); each
run deletes at most ``batch`` rows per table in short transactions of its own
connection, so the engine's commands never wait long for the write lock, and a
store that grew for a year shrinks over a few minutes instead of freezing one
start. What goes (``engine.keep_days``, 31 by default):

* tickets, ``day_services`` rows and bookings of business days before the cutoff
  (never a ticket a counter still shows as current or last done);
* ratings older than the cutoff;
* ``service_times`` beyond the newest ``keep_service_times`` per service (the
  estimator reads the newest ``engine.recent_service_window``).

Reports read events from the outbox (kept by ``mqtt.delivered_keep_s``), not
these tables. A store larger than ``tessera.engine.store.FULL_CHECK_MAX_BYTES``
is not fully checked at start; its ``quick_check`` runs here once a day on a
read-only connection in a background thread, and a failure is logged as an error.

    up = StoreUpkeep(Path("var/engine.db"), clock=SystemClock(), keep_days=31)
    up.maybe_run()          # cheap when not due
    up.run().tickets        # one pass now
    # -> 0
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from tessera.clock import Clock
from tessera.config import BranchConfig, parse_hhmm
from tessera.engine.day import business_day
from tessera.engine.store import FULL_CHECK_MAX_BYTES, full_check
from tessera.outbox import connect

log = logging.getLogger(__name__)

DAY_S = 86400.0
UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True)
class UpkeepReport:
    cutoff_day: str
    tickets: int
    days: int
    bookings: int
    ratings: int
    service_times: int

    @property
    def total(self) -> int:
        return self.tickets + self.days + self.bookings + self.ratings + self.service_times


class StoreUpkeep:
    """Prunes the engine store by age on a schedule (see module docstring)."""

    def __init__(self, path: Path, *, clock: Clock, keep_days: int = 31,
                 tz: ZoneInfo = UTC_ZONE, rollover: dt.time = dt.time(0, 0),
                 every_s: float = 600.0, batch: int = 5000, keep_service_times: int = 5000,
                 check_every_s: float = DAY_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if keep_days < 1:
            raise ValueError(f"keep_days {keep_days} must be >= 1 (today is never pruned)")
        self.path, self.clock, self.keep_days = Path(path), clock, keep_days
        self.tz, self.rollover = tz, rollover
        self.every_s, self.batch, self.keep_service_times = every_s, batch, keep_service_times
        self.check_every_s = check_every_s
        self._mono = monotonic
        self._due = 0.0
        self._check_due = 0.0
        self._conn = connect(self.path)
        self.last: UpkeepReport | None = None
        self.check_result: str | None = None  # of the last background quick_check
        self._checker: threading.Thread | None = None

    def cutoff_day(self) -> str:
        """The oldest business day kept (ISO date): today minus ``keep_days``."""
        today = business_day(self.clock.now(), self.tz, self.rollover)
        return (today - dt.timedelta(days=self.keep_days)).isoformat()

    @classmethod
    def for_branch(cls, cfg: BranchConfig, path: Path, clock: Clock) -> StoreUpkeep:
        """The upkeep ``tessera run`` gives the engine of ``cfg`` (``engine.keep_days``)."""
        return cls(path, clock=clock, keep_days=cfg.engine.keep_days, tz=cfg.tz,
                   rollover=parse_hhmm(cfg.branch.day_rollover),
                   keep_service_times=max(5000, 4 * cfg.engine.recent_service_window))

    def maybe_run(self) -> UpkeepReport | None:
        """One pass when due; again soon while a pass still finds full batches."""
        now = self._mono()
        self._maybe_check(now)
        if now < self._due:
            return None
        try:
            report = self.run()
        except Exception:
            log.exception("engine store upkeep failed")
            self._due = now + self.every_s
            return None
        more = max(report.tickets, report.ratings, report.bookings, report.days,
                   report.service_times) >= self.batch
        self._due = now + (1.0 if more else self.every_s)
        return report

    def run(self) -> UpkeepReport:
        day = self.cutoff_day()
        cutoff_ts = self.clock.now().timestamp() - self.keep_days * DAY_S
        c = self._conn
        # counters' current and last-done tickets stay whatever their age
        keep = "SELECT current FROM counters WHERE current IS NOT NULL UNION " \
               "SELECT last_done FROM counters WHERE last_done IS NOT NULL"
        tickets = self._batch(
            "DELETE FROM tickets WHERE rowid IN (SELECT rowid FROM tickets "
            f"WHERE business_day < ? AND id NOT IN ({keep}) LIMIT ?)", (day, self.batch))
        days = self._batch("DELETE FROM day_services WHERE rowid IN (SELECT rowid FROM "
                           "day_services WHERE business_day < ? LIMIT ?)", (day, self.batch))
        bookings = self._batch("DELETE FROM bookings WHERE rowid IN (SELECT rowid FROM "
                               "bookings WHERE slot < ? AND state != 'booked' LIMIT ?)",
                               (cutoff_ts, self.batch))
        ratings = self._batch("DELETE FROM ratings WHERE id IN (SELECT id FROM ratings "
                              "WHERE at < ? LIMIT ?)", (cutoff_ts, self.batch))
        times = 0
        for (service,) in c.execute("SELECT DISTINCT service FROM service_times").fetchall():
            times += self._batch(
                "DELETE FROM service_times WHERE service = ?1 AND id <= (SELECT MAX(id) "
                "FROM service_times WHERE service = ?1) - ?2 AND id IN (SELECT id FROM "
                "service_times WHERE service = ?1 ORDER BY id LIMIT ?3)",
                (service, self.keep_service_times, self.batch))
        self.last = UpkeepReport(day, tickets, days, bookings, ratings, times)
        if self.last.total:
            log.info("engine store upkeep: pruned %d tickets, %d day rows, %d bookings, "
                     "%d ratings, %d service times before %s", tickets, days, bookings,
                     ratings, times, day)
        return self.last

    def _batch(self, sql: str, args: tuple[object, ...]) -> int:
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            n = int(c.execute(sql, args).rowcount)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return n

    # ------------------------------------------------------------------ the file check
    def _maybe_check(self, now: float) -> None:
        if now < self._check_due or (self._checker is not None and self._checker.is_alive()):
            return
        self._check_due = now + self.check_every_s
        try:
            big = self.path.stat().st_size > FULL_CHECK_MAX_BYTES
        except OSError:
            return
        if big:  # small stores had the full check at open
            self._checker = threading.Thread(target=self._check, name="store-check",
                                             daemon=True)
            self._checker.start()

    def _check(self) -> None:
        try:
            self.check_result = full_check(self.path)
        except Exception as e:  # a damaged file can raise instead of reporting
            self.check_result = f"{type(e).__name__}: {e}"
        if self.check_result != "ok":
            log.error("%s failed SQLite's integrity check (%s): restore it from a backup "
                      "at the next quiet moment", self.path, self.check_result)

    def close(self) -> None:
        self._conn.close()
