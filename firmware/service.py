"""systemd service protocol for ``tessera run``: ``READY=1`` and a health-gated watchdog.

    notifier = Notifier.from_env()          # $NOTIFY_SOCKET, $WATCHDOG_USEC
    notifier.ready()                        # once the role serves
    if not health(branch): notifier.watchdog()   # from the main loop, each tick

Without ``$NOTIFY_SOCKET`` (not under systemd, or ``Type=simple``) every call
is a no-op. ``WATCHDOG=1`` is sent only while :func:`health` finds nothing
wrong, so a hung MQTT thread or a dead dispatcher makes systemd restart the
role after ``WatchdogSec`` instead of leaving it silently broken.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)


class Notifier:
    """Datagrams to systemd's notify socket (sd_notify(3), without libsystemd)."""

    def __init__(self, path: str | None, *, watchdog_s: float | None = None) -> None:
        self.path = path
        self.watchdog_s = watchdog_s  # systemd's WatchdogSec, when it asked for pings
        self._last_ping = 0.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Notifier:
        e = os.environ if env is None else env
        path = e.get("NOTIFY_SOCKET") or None
        usec = e.get("WATCHDOG_USEC", "")
        pid = e.get("WATCHDOG_PID", "")
        watchdog = None
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            watchdog = int(usec) / 1e6
        return cls(path, watchdog_s=watchdog)

    def _send(self, text: str) -> bool:
        if not self.path:
            return False
        addr = "\0" + self.path[1:] if self.path.startswith("@") else self.path
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.sendto(text.encode(), addr)
            return True
        except OSError as e:
            log.warning("systemd notify socket %s: %s", self.path, e)
            return False

    def ready(self, status: str = "serving") -> bool:
        return self._send(f"READY=1\nSTATUS={status}")

    def status(self, text: str) -> bool:
        return self._send(f"STATUS={text}")

    def stopping(self) -> bool:
        return self._send("STOPPING=1")

    def watchdog(self) -> bool:
        """``WATCHDOG=1``, at most every half of ``WatchdogSec`` / 2 (systemd's advice)."""
        if self.watchdog_s is None:
            return False
        now = time.monotonic()
        if now - self._last_ping < self.watchdog_s / 4:
            return False
        self._last_ping = now
        return self._send("WATCHDOG=1")


def _thread_dead(obj: Any, attr: str) -> bool:
    t = getattr(obj, attr, None)
    return isinstance(t, threading.Thread) and not t.is_alive()


def health(branch: Any) -> list[str]:
    """What is wrong with a running branch (empty: healthy).

    Checked: every button dispatcher's thread, every MQTT link's loop thread (a
    broker that is down is fine: the loop keeps retrying), the bus worker, the
    display's tick thread. Each problem names the part, for the journal.
    """
    problems: list[str] = []
    for i, disp in enumerate(getattr(branch, "inputs", [])):
        if _thread_dead(disp, "_thread"):
            problems.append(f"button dispatcher {i} stopped")
    for device, link in getattr(branch, "links", {}).items():
        if _thread_dead(getattr(link, "uplink", None), "_thread"):
            problems.append(f"MQTT link of {device} stopped")
    if _thread_dead(getattr(branch, "bus", None), "_worker"):
        problems.append("event bus worker stopped")
    display = getattr(branch, "display", None)
    if display is not None and _thread_dead(display, "_thread"):
        problems.append("display tick thread stopped")
    return problems


class Watchdog:
    """The main loop's gate: ping while healthy, withhold (and say why, once) when not."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier
        self.reported: list[str] = []

    def tick(self, branch: Any) -> bool:
        """Check ``branch``; True when ``WATCHDOG=1`` may go out (and was offered)."""
        problems = health(branch)
        if problems:
            if problems != self.reported:
                log.error("unhealthy, withholding the watchdog ping: %s", "; ".join(problems))
                self.notifier.status("unhealthy: " + "; ".join(problems))
        else:
            if self.reported:
                log.info("healthy again")
                self.notifier.status("serving")
            self.notifier.watchdog()
        self.reported = problems
        return not problems


__all__ = ["Notifier", "Watchdog", "health"]
