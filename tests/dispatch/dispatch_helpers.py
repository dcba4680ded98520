"""Helpers shared by the dispatcher tests: a recorder and a bounded poll."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tessera.dispatch import ButtonAction


@dataclass
class Recorder:
    """Collects actions, faults and recoveries (thread-safe)."""

    actions: list[ButtonAction] = field(default_factory=list)
    faults: list[tuple[str, str]] = field(default_factory=list)
    recoveries: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self, action: ButtonAction) -> None:
        with self.lock:
            self.actions.append(action)

    def on_fault(self, kind: str, detail: str) -> None:
        with self.lock:
            self.faults.append((kind, detail))

    def on_recovered(self, kind: str, detail: str) -> None:
        with self.lock:
            self.recoveries.append((kind, detail))

    def names(self) -> list[str]:
        with self.lock:
            return [a.action for a in self.actions]


def wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``cond`` until true or ``timeout`` (bounded, for threaded tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return cond()
