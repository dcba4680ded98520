"""What a standalone device has done and the engine has not yet answered: a small JSON
file per kind, written (fsync) before the press returns.

Printed tickets not yet confirmed (``PendingConfirms``) and refusals the kiosk decided
itself (``PendingRefusals``) are each re-sent under a fixed command id until the engine
answers (``tessera.roles.remote``); the engine keeps one record per id, so nothing is
lost (broker or engine down, kiosk restarted) and nothing counted twice (answer lost,
re-sent).

    pending = PendingRefusals(Path("var/kiosk-main.pending-refusals.json"))
    pending.add(Report("kiosk-main.0190…", "cash", "printer_fault", "2026-03-02T09:00:00Z"))
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class PendingFile(Generic[T]):
    """Items not yet answered by the engine, oldest first, one per key, kept in ``path``
    (None: in memory only). ``what`` names them in the log when the file is unreadable."""

    def __init__(self, path: Path | None, *, key: Callable[[T], str],
                 encode: Callable[[T], object], decode: Callable[[object], T],
                 what: str) -> None:
        self.path = path
        self._key, self._encode = key, encode
        self._lock = threading.Lock()
        self._items: list[T] = []
        if path is not None and path.exists():
            try:
                got = json.loads(path.read_text(encoding="utf-8"))
                self._items = [decode(x) for x in got] if isinstance(got, list) else []
            except (OSError, ValueError, KeyError, TypeError):
                log.exception("cannot read %s; its %s are lost", path, what)

    def items(self) -> list[T]:
        with self._lock:
            return list(self._items)

    def add(self, item: T) -> None:
        with self._lock:
            k = self._key(item)
            if all(self._key(x) != k for x in self._items):
                self._items.append(item)
                self._save()

    def remove(self, key: str) -> None:
        with self._lock:
            kept = [x for x in self._items if self._key(x) != key]
            if len(kept) != len(self._items):
                self._items = kept
                self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump([self._encode(x) for x in self._items], f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


class PendingConfirms(PendingFile[str]):
    """Ticket ids printed but not yet confirmed to the engine (``confirm.{ticket_id}``)."""

    def __init__(self, path: Path | None) -> None:
        super().__init__(path, key=str, encode=str, decode=str,
                         what="unconfirmed tickets")

    def ids(self) -> list[str]:
        return self.items()


@dataclass(frozen=True)
class Report:
    """One kiosk-decided refusal, as the ``report-refusal`` command carries it."""

    key: str
    service: str
    reason: str
    at: str  # RFC 3339 UTC: when the customer pressed


def _report(x: object) -> Report:
    if not isinstance(x, dict):
        raise TypeError(f"not a refusal report: {x!r}")
    return Report(**{k: str(x[k]) for k in ("key", "service", "reason", "at")})


class PendingRefusals(PendingFile[Report]):
    """Kiosk-decided refusals not yet kept by the engine (``refusal.{key}``)."""

    def __init__(self, path: Path | None) -> None:
        super().__init__(path, key=lambda r: r.key, encode=asdict, decode=_report,
                         what="unreported refusals")
