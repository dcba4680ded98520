"""Rebuild a display's boards once the engine answers its ``snapshot``.

A display started before the engine (a Pi that boots faster, a broker still
coming up) shows what it has and tries again with a bounded backoff, on a thread
of its own, until the snapshot arrives or the branch stops.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from tessera.display.role import DisplayRole
from tessera.drivers.backoff import Backoff

log = logging.getLogger(__name__)


def rebuild_when_reachable(role: DisplayRole, snapshot: Callable[[], dict[str, Any]]
                           ) -> Callable[[], None]:
    """A display that started while the engine was unreachable rebuilds its boards as
    soon as the engine answers (bounded backoff). Returns the function that stops it."""
    stop = threading.Event()

    def run() -> None:
        backoff = Backoff(1.0, 60.0)
        for _ in range(200):  # ~3 h at the 60 s cap, then the next restart tries again
            if stop.wait(backoff.next()):
                return
            try:
                role.rebuild(snapshot())
                log.info("display: boards rebuilt from the engine")
                return
            except Exception as e:
                log.warning("display: engine snapshot not available yet (%s)", e)

    threading.Thread(target=run, name="display-rebuild", daemon=True).start()
    return stop.set
