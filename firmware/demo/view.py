"""What the demo shows while it runs: a rich live view, or plain progress lines.

The view only reads a ``DemoState`` the runner keeps up to date (from bus
events), so it never touches the engine or the hardware.

    view = make_view(state, total_s=8 * 3600, console=Console())
    view.start(); view.update(); view.stop()
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, Protocol

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


@dataclass
class DemoState:
    """Live figures, fed by bus events on the bus worker thread."""

    queues: dict[str, int] = field(default_factory=dict)  # service -> waiting
    counters: dict[str, str] = field(default_factory=dict)  # counter -> ticket / state
    hall: deque[str] = field(default_factory=lambda: deque(maxlen=4))
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=8))
    counts: dict[str, int] = field(default_factory=dict)
    now: datetime | None = None
    elapsed_s: float = 0.0
    engine_device: str = "engine"
    tz: tzinfo = UTC  # the branch's time zone, for the event log
    engine_events: int = 0  # engine envelopes with seq > engine_after_seq seen on the bus
    engine_after_seq: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_event(self, env: dict[str, Any]) -> None:
        t = str(env.get("type", ""))
        d = env.get("data", {})
        with self.lock:
            if env.get("device") == self.engine_device and \
                    int(env.get("seq", 0)) > self.engine_after_seq:
                self.engine_events += 1
            self.counts[t] = self.counts.get(t, 0) + 1
            svc, num, ctr = d.get("service"), d.get("number"), d.get("counter")
            if t == "ticket.printed" and svc:
                self.queues[svc] = self.queues.get(svc, 0) + 1
            elif t == "ticket.called" and svc:
                self.queues[svc] = max(0, self.queues.get(svc, 0) - 1)
                self.counters[str(ctr)] = str(num)
                self.hall.appendleft(f"{num} → {d.get('counter_number', ctr)}")
            elif t == "ticket.transferred":
                to = d.get("to_service")
                if to:
                    self.queues[to] = self.queues.get(to, 0) + 1
                self.counters[str(ctr)] = "—"
            elif t in ("ticket.done", "ticket.no_show") and ctr:
                self.counters[str(ctr)] = "—"
            elif t == "counter.paused":
                self.counters[str(ctr)] = "paused"
            elif t == "counter.opened":
                self.counters[str(ctr)] = "—"
            if t.startswith(("ticket.", "feedback.", "device.", "counter.")):
                ts = _local_hms(str(env.get("ts", "")), self.tz)
                self.recent.appendleft(f"{ts} {t} {num or ''} {ctr or ''}".rstrip())


def _local_hms(ts: str, tz: tzinfo) -> str:
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(tz).strftime(
            "%H:%M:%S")
    except ValueError:
        return ts[11:19]


class View(Protocol):
    def start(self) -> None: ...
    def update(self) -> None: ...
    def stop(self) -> None: ...


class RichView:
    """Queues, counters, hall board, recent events and a day progress bar."""

    def __init__(self, state: DemoState, total_s: float, console: Console) -> None:
        self.state = state
        self.total_s = total_s
        self.progress = Progress(TextColumn("simulated day"), BarColumn(),
                                 TextColumn("{task.percentage:>3.0f}%"),
                                 TextColumn("{task.fields[clock]}"), TimeElapsedColumn())
        self.task = self.progress.add_task("day", total=total_s, clock="")
        self.live = Live(self._render(), console=console, refresh_per_second=4,
                         transient=False)
        self._last = 0.0

    def start(self) -> None:
        self.live.start()

    def update(self) -> None:
        now = time.monotonic()
        if now - self._last < 0.2:
            return
        self._last = now
        self.live.update(self._render())

    def stop(self) -> None:
        self.live.update(self._render())
        self.live.stop()

    def _render(self) -> Group:
        s = self.state
        with s.lock:
            clock = s.now.strftime("%a %H:%M:%S") if s.now else ""
            self.progress.update(self.task, completed=s.elapsed_s, clock=clock)
            queues = Table(title="queues", expand=True)
            queues.add_column("service")
            queues.add_column("waiting", justify="right")
            for svc, n in sorted(s.queues.items()):
                queues.add_row(svc, str(n))
            counters = Table(title="counters", expand=True)
            counters.add_column("counter")
            counters.add_column("serving")
            for c, t in sorted(s.counters.items()):
                counters.add_row(c, t)
            hall = Panel("\n".join(s.hall) or "(empty)", title="hall board")
            recent = Panel("\n".join(s.recent) or "", title="recent events")
            totals = " ".join(f"{k.split('.')[-1]}={v}" for k, v in sorted(s.counts.items())
                              if k.startswith("ticket."))
        grid = Table.grid(expand=True)
        grid.add_row(queues, counters, hall)
        return Group(self.progress, grid, recent, totals)


class PlainView:
    """One progress line every ``every_s`` seconds of real time (for logs and CI)."""

    def __init__(self, state: DemoState, total_s: float, *, every_s: float = 2.0) -> None:
        self.state = state
        self.total_s = total_s
        self.every_s = every_s
        self._last = 0.0

    def start(self) -> None:
        self._print()

    def update(self) -> None:
        if time.monotonic() - self._last >= self.every_s:
            self._print()

    def stop(self) -> None:
        self._print()

    def _print(self) -> None:
        self._last = time.monotonic()
        s = self.state
        with s.lock:
            pct = 100.0 * s.elapsed_s / self.total_s if self.total_s else 100.0
            clock = s.now.strftime("%H:%M") if s.now else "--:--"
            c = s.counts
            waiting = sum(s.queues.values())
            line = (f"demo {pct:5.1f}% {clock} issued={c.get('ticket.issued', 0)} "
                    f"called={c.get('ticket.called', 0)} done={c.get('ticket.done', 0)} "
                    f"no_show={c.get('ticket.no_show', 0)} waiting={waiting}")
        print(line, flush=True)


def make_view(state: DemoState, total_s: float, *, console: Console | None = None,
              plain: bool | None = None) -> View:
    """Rich when stdout is a terminal (or asked), plain lines otherwise."""
    if plain is None:
        plain = not sys.stdout.isatty()
    if plain:
        return PlainView(state, total_s)
    return RichView(state, total_s, console or Console())
