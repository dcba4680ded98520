"""Outbox retention: prune delivered rows, police the undelivered disk budget.

Delivered rows are deleted when older than ``keep_s`` or beyond the newest
``keep_rows``, but never above the device's high-water mark (``mark()``, the
drainer's local copy of the last mark the broker echoed): a broker restored from
an older save sends back a lower mark, and every row above it is due again.
Undelivered rows are never pruned silently: when their bytes
exceed ``budget_bytes`` the device appends a ``device.fault`` event (``kind``
``outbox``) saying exactly which ``seq`` range it dropped, and drops per this
policy:

* keep the **oldest** undelivered rows up to ``keep_oldest_fraction`` of the
  budget (the start of the outage: what HQ needs to reconstruct it), and
* keep the **newest** rows (the current state of the branch),
* drop the middle, oldest first, until the undelivered bytes are back under
  ``target_fraction`` of the budget.

A ``device.recovered`` (``kind`` ``outbox``) follows once the backlog is back
under the budget.

    r = Retention(outbox, budget_bytes=256 << 20, clock=SystemClock())
    r.run()
    # -> RetentionReport(pruned=0, dropped=0, first_dropped=0, last_dropped=0, undelivered_bytes=0)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tessera.clock import Clock
from tessera.outbox import Outbox


@dataclass(frozen=True)
class RetentionReport:
    pruned: int
    dropped: int
    first_dropped: int
    last_dropped: int
    undelivered_bytes: int


class Retention:
    """Applies the retention policy above to one outbox (call ``run()`` now and then)."""

    def __init__(self, outbox: Outbox, *, budget_bytes: int, clock: Clock,
                 keep_s: float = 7 * 86400, keep_rows: int = 200_000,
                 keep_oldest_fraction: float = 0.25, target_fraction: float = 0.8,
                 mark: Callable[[], int] | None = None) -> None:
        self.outbox, self.clock = outbox, clock
        # rows above it may be re-sent: never pruned (None: no drainer, age and count only)
        self.mark = mark
        self.budget_bytes, self.keep_s, self.keep_rows = budget_bytes, keep_s, keep_rows
        self.keep_oldest_fraction, self.target_fraction = keep_oldest_fraction, target_fraction
        self.faulted = False

    def run(self, now: float | None = None) -> RetentionReport:
        pruned = self.prune_delivered(time.time() if now is None else now)
        used = self.undelivered_bytes()
        dropped, first, last = 0, 0, 0
        if used > self.budget_bytes:
            dropped, first, last = self._drop_middle(used)
            self.faulted = True
            self.outbox.append("device.fault", {
                "kind": "outbox", "state": "over-budget",
                "detail": (f"undelivered events used {used} bytes, over the budget of "
                           f"{self.budget_bytes}; dropped {dropped} events seq {first}..{last} "
                           "(kept the oldest and the newest)"),
                "dropped": dropped, "first_dropped_seq": first, "last_dropped_seq": last,
            }, ts=self.clock.now())
            used = self.undelivered_bytes()
        elif self.faulted:
            self.faulted = False
            self.outbox.append("device.recovered", {
                "kind": "outbox", "state": "ok",
                "detail": f"undelivered backlog back under budget ({used} bytes)",
            }, ts=self.clock.now())
        return RetentionReport(pruned, dropped, first, last, used)

    def prune_delivered(self, now: float) -> int:
        mark = self.mark() if self.mark is not None else 1 << 62
        with self.outbox.transaction() as c:
            # the newest row always stays: its seq is the outbox's next-seq floor
            (newest,) = c.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()
            # rows above the mark may be re-sent after a broker restore: never pruned
            top = min(newest, mark + 1)
            n = c.execute("DELETE FROM outbox WHERE seq < ? AND delivered_at IS NOT NULL "
                          "AND delivered_at < ?", (top, now - self.keep_s)).rowcount
            row = c.execute("SELECT seq FROM outbox WHERE delivered_at IS NOT NULL "
                            "ORDER BY seq DESC LIMIT 1 OFFSET ?", (self.keep_rows,)).fetchone()
            if row is not None:
                n += c.execute("DELETE FROM outbox WHERE seq <= ? AND seq < ? "
                               "AND delivered_at IS NOT NULL", (row[0], top)).rowcount
        return int(n)

    def undelivered_bytes(self) -> int:
        # every row at or below the mark is delivered: read the primary key above it only
        return self.outbox.undelivered_bytes(self.mark() if self.mark is not None else 0)

    def _drop_middle(self, used: int) -> tuple[int, int, int]:
        keep_old = int(self.budget_bytes * self.keep_oldest_fraction)
        excess = used - int(self.budget_bytes * self.target_fraction)
        with self.outbox.transaction() as c:
            rows = c.execute("SELECT seq, LENGTH(body) FROM outbox WHERE delivered_at IS NULL "
                             "ORDER BY seq").fetchall()
            acc, i = 0, 0
            while i < len(rows) and acc + rows[i][1] <= keep_old:
                acc += rows[i][1]
                i += 1
            i = max(i, 1)  # the very oldest is always kept
            victims: list[int] = []
            freed = 0
            # never drop the newest row: it is the latest state of the branch
            while i < len(rows) - 1 and freed < excess:
                victims.append(rows[i][0])
                freed += rows[i][1]
                i += 1
            if not victims:
                return 0, 0, 0
            c.execute("DELETE FROM outbox WHERE delivered_at IS NULL AND seq BETWEEN ? AND ?",
                      (victims[0], victims[-1]))
        return len(victims), victims[0], victims[-1]
