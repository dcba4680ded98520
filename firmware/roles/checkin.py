"""The kiosk's check-in input: booking codes from stdin, a serial scanner or a FIFO.

    follow_codes(branch, "/dev/ttyACM0")   # a reader thread; stops with the branch
"""

from __future__ import annotations

import logging
import sys
import threading

from tessera.roles.branch import Branch

log = logging.getLogger(__name__)


def follow_codes(branch: Branch, source: str) -> threading.Thread:
    """Read booking codes (one per line) from stdin, a serial/CDC scanner or a FIFO.

    USB HID scanners "type" the code and Enter; in keyboard-wedge mode point
    ``kiosk.checkin`` at the tty they type into, or use ``stdin``.
    """
    kiosk = branch.kiosk
    assert kiosk is not None
    stop = threading.Event()

    def run() -> None:
        try:
            if source == "stdin":
                kiosk.read_codes(sys.stdin, stop)
                return
            with open(branch.cfg.path(source), encoding="utf-8", errors="replace") as stream:
                kiosk.read_codes(stream, stop)
        except OSError as e:
            log.error("check-in input %s: %s", source, e)

    t = threading.Thread(target=run, name="kiosk-checkin", daemon=True)
    t.start()
    branch.closers.append(stop.set)
    return t
