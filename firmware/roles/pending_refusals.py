"""Refusals a kiosk on its own Pi decided (printer fault, engine unreachable) and has not
yet seen the engine keep: a small JSON file, written (fsync) before the press returns.

The same pattern as the pending confirms of printed tickets (``tessera.roles.remote``):
each report is re-sent under the fixed command id ``refusal.{key}`` until the engine
answers, and the engine keeps one row per key, so a report is never lost (broker or
engine down, kiosk restarted) and never counted twice (answer lost, re-sent).

    pending = PendingRefusals(Path("var/kiosk-main.pending-refusals.json"))
    pending.add(Report("kiosk-main.0190…", "cash", "printer_fault", "2026-03-02T09:00:00Z"))
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Report:
    """One kiosk-decided refusal, as the ``report-refusal`` command carries it."""

    key: str
    service: str
    reason: str
    at: str  # RFC 3339 UTC: when the customer pressed


class PendingRefusals:
    """Reports not yet answered by the engine, oldest first, kept in ``path``."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._items: list[Report] = []
        if path is not None and path.exists():
            try:
                got = json.loads(path.read_text(encoding="utf-8"))
                self._items = [Report(**{k: str(x[k]) for k in ("key", "service", "reason",
                                                                 "at")})
                               for x in got] if isinstance(got, list) else []
            except (OSError, ValueError, KeyError, TypeError):
                log.exception("cannot read %s; its unreported refusals are lost", path)

    def items(self) -> list[Report]:
        with self._lock:
            return list(self._items)

    def add(self, report: Report) -> None:
        with self._lock:
            if all(r.key != report.key for r in self._items):
                self._items.append(report)
                self._save()

    def remove(self, key: str) -> None:
        with self._lock:
            kept = [r for r in self._items if r.key != key]
            if len(kept) != len(self._items):
                self._items = kept
                self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump([asdict(r) for r in self._items], f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
