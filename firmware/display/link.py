"""Keeps every board on the line showing its desired content, through faults.

    link = BoardLink(lambda: AlphaBoard.open(url), clock, emit=outbox_emit)
    link.set_lines("01", [BoardLine("A023 → 3", True)])
    link.poll()      # from the role's tick: pings, retries with backoff

The link remembers what each address should show, so a board that stops
answering or a line that drops costs nothing but a ``device.fault`` event:
retries back off exponentially, and on recovery the full content (layout,
text, brightness) is re-sent before ``device.recovered``.

The periodic probe (one small read per board and ``ping_interval_s``) reads
the sign's memory configuration, not just a sign of life: a sign that lost
power while the line stayed up answers again with its factory memory, and its
layout is gone. That costs one ``device.fault`` (``memory-lost``), a full
resend (memory configuration, layout, text, brightness) and
``device.recovered`` at once, without a backoff: the sign is there.

With ``ping_interval_s = 0`` (a TX-only line: nothing can answer) a board is
never held back for lack of answers: the only fault is the line itself, and
once it is open again every board gets its content at once, without waiting
out a per-board backoff meant for boards that do not answer. Such a line
cannot notice a power-cycled sign either (docs/display.md says what to do).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tessera.clock import Clock
from tessera.drivers.alpha import PROBE_LOST, PROBE_SILENT, BoardError, BoardLine, CallerBoard
from tessera.drivers.backoff import Backoff

log = logging.getLogger(__name__)

Emit = Callable[[str, dict[str, Any]], None]


@dataclass
class _Address:
    kind: str  # "lines" | "field"
    content: Any = None
    brightness: int | None = None
    sent: Any = None  # content last written successfully
    sent_brightness: int | None = None
    faulted: bool = False
    retry_at: float = 0.0
    backoff: Backoff = field(default_factory=lambda: Backoff(0.5, 30.0))
    next_ping: float = 0.0
    needs_full: bool = True  # layout/memory not yet written (start-up, after recovery)


class BoardLink:
    """Desired content per board address, pushed through one CallerBoard."""

    def __init__(self, open_board: Callable[[], CallerBoard], clock: Clock, *,
                 emit: Emit | None = None, ping_interval_s: float = 10.0,
                 backoff_s: tuple[float, float] = (0.5, 30.0)) -> None:
        self._open = open_board
        self._clock = clock
        self._emit = emit or (lambda _t, _d: None)
        self._ping_interval = ping_interval_s
        self._backoff = backoff_s
        self._board: CallerBoard | None = None
        self._line_retry_at = 0.0
        self._line_backoff = Backoff(*backoff_s)
        self._line_faulted = False
        self._addrs: dict[str, _Address] = {}
        self._lock = threading.RLock()
        self.bytes_written = 0  # content bytes (pings not included)
        self.pings = 0
        self.memory_resyncs = 0  # full resends for a sign found without its configuration

    # ------------------------------------------------------------------ desired content

    def add(self, address: str, kind: str) -> None:
        with self._lock:
            self._addrs.setdefault(address, _Address(kind))

    def set_lines(self, address: str, lines: Sequence[BoardLine]) -> None:
        self._set(address, "lines", list(lines))

    def set_field(self, address: str, text: str) -> None:
        self._set(address, "field", text)

    def set_brightness(self, address: str, percent: int) -> None:
        with self._lock:
            a = self._addrs.setdefault(address, _Address("lines"))
            a.brightness = percent
            if not a.faulted and a.sent_brightness != percent:
                self._write(address, a, brightness_only=True)

    def content(self, address: str) -> Any:
        with self._lock:
            a = self._addrs.get(address)
            return None if a is None else a.content

    def faulted(self) -> list[str]:
        with self._lock:
            return [addr for addr, a in self._addrs.items() if a.faulted]

    def _set(self, address: str, kind: str, content: Any) -> None:
        with self._lock:
            a = self._addrs.setdefault(address, _Address(kind))
            a.kind, a.content = kind, content
            if not a.faulted and a.sent != content:
                self._write(address, a)

    # ------------------------------------------------------------------ writing

    def resync(self) -> None:
        """Send every board its full content (start-up, after a restart)."""
        with self._lock:
            for address, a in self._addrs.items():
                if not a.faulted:
                    self._write(address, a, full=True)

    def _write(self, address: str, a: _Address, *, full: bool = False,
               brightness_only: bool = False) -> bool:
        board = self._board_or_none()
        if board is None:
            self._fault(address, a, "line is down")
            return False
        full = full or a.needs_full
        try:
            if not brightness_only and a.content is not None:
                if a.kind == "lines":
                    self.bytes_written += board.show_lines(address, a.content, full=full)
                else:
                    self.bytes_written += board.show_field(address, a.content, full=full)
                a.sent, a.needs_full = a.content, False
            if a.brightness is not None and (full or brightness_only):
                self.bytes_written += board.set_brightness(address, a.brightness)
                a.sent_brightness = a.brightness
        except BoardError as e:
            self._line_down(str(e))
            return False
        return True

    def _board_or_none(self) -> CallerBoard | None:
        if self._board is None and not self._line_faulted:
            try:
                self._board = self._open()
            except BoardError as e:
                self._line_down(str(e))
        return self._board

    # ------------------------------------------------------------------ faults

    def _line_down(self, detail: str) -> None:
        if self._board is not None:
            self._board.close()
            self._board = None
        now = self._clock.monotonic()
        if not self._line_faulted:
            self._line_faulted = True
            self._line_backoff.reset()
            self._line_backoff.next()
            self._emit("device.fault", {"kind": "board", "state": "line-down",
                                        "detail": f"caller board line: {detail}"})
        self._line_retry_at = now + self._line_backoff.delay
        for address, a in self._addrs.items():
            self._fault(address, a, detail, event=False)

    def _fault(self, address: str, a: _Address, detail: str, *, event: bool = True) -> None:
        if self._ping_interval <= 0 and not self._line_faulted and self._board is not None:
            return  # no read-back on this line: a board cannot be "not answering"
        now = self._clock.monotonic()
        if not a.faulted:
            a.faulted = True
            a.backoff = Backoff(*self._backoff)
            a.backoff.next()
            log.warning("board %s fault: %s", address, detail)
            if event:
                self._emit("device.fault", {"kind": "board", "state": "not-answering",
                                            "detail": f"board {address}: {detail}"})
        a.retry_at = now + a.backoff.delay

    def _recovered(self, address: str, a: _Address) -> None:
        a.sent = a.sent_brightness = None
        a.faulted, a.needs_full = False, True
        if self._write(address, a, full=True):
            a.backoff.reset()
            a.next_ping = self._clock.monotonic() + self._ping_interval
            self._emit("device.recovered", {"kind": "board", "state": "ok",
                                            "detail": f"board {address}: content re-sent"})

    def poll(self) -> None:
        """Periodic: reopen a dropped line, ping boards, recover the ones answering again."""
        with self._lock:
            now = self._clock.monotonic()
            if self._line_faulted:
                if now < self._line_retry_at:
                    return
                try:
                    self._board = self._open()
                except BoardError as e:
                    self._line_retry_at = now + self._line_backoff.next()
                    log.debug("caller board line still down: %s", e)
                    return
                self._line_faulted = False
                log.info("caller board line reopened")
            for address, a in list(self._addrs.items()):
                if self._board is None:
                    return
                if a.faulted and (now >= a.retry_at or self._ping_interval <= 0):
                    self._retry(address, a, now)
                elif not a.faulted and self._ping_interval > 0 and now >= a.next_ping:
                    a.next_ping = now + self._ping_interval
                    found = self._probe(address)
                    if found == PROBE_SILENT:
                        self._fault(address, a, "does not answer read-back requests")
                    elif found == PROBE_LOST:
                        self._memory_lost(address, a)

    def _memory_lost(self, address: str, a: _Address) -> None:
        """The sign answers without its memory configuration: resend all of it now."""
        log.warning("board %s lost its memory configuration; re-sending its content", address)
        self.memory_resyncs += 1
        self._emit("device.fault", {
            "kind": "board", "state": "memory-lost",
            "detail": f"board {address}: answers without its layout (power cycle?)"})
        a.sent = a.sent_brightness = None
        a.needs_full = True
        if self._write(address, a, full=True):  # a write error: the line path takes over
            a.next_ping = self._clock.monotonic() + self._ping_interval
            self._emit("device.recovered", {"kind": "board", "state": "ok",
                                            "detail": f"board {address}: content re-sent"})

    def _retry(self, address: str, a: _Address, now: float) -> None:
        if self._ping_interval <= 0 or self._probe(address) != PROBE_SILENT:
            self._recovered(address, a)  # a full resend: a lost configuration heals too
        else:
            a.retry_at = now + a.backoff.next()

    def _probe(self, address: str) -> str:
        if self._board is None:
            return PROBE_SILENT
        self.pings += 1
        try:
            return self._board.probe(address)
        except BoardError as e:
            self._line_down(str(e))
            return PROBE_SILENT

    def close(self) -> None:
        with self._lock:
            if self._board is not None:
                self._board.close()
                self._board = None
