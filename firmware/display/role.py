"""The display role: engine events in, caller boards and announcements out.

    role = DisplayRole(cfg, clock=clock, link=link, announcer=announcer,
                       snapshot=engine.snapshot)
    role.start()               # rebuilds boards from the engine, then follows events
    bus.subscribe(role.on_event)
    role.stop()

It runs inside the all-in-one process (events from the in-process bus) or
alone (the same envelopes from MQTT). Board content is derived state: after a
restart ``rebuild(snapshot)`` restores it from the engine, so a board never
goes stale or blank; announcements are never replayed by a rebuild.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from tessera.clock import Clock
from tessera.config import BranchConfig
from tessera.display.announcer import Announcer
from tessera.display.content import CounterContent, HallContent, _parse_ts, scheduled
from tessera.display.link import BoardLink

log = logging.getLogger(__name__)

Snapshot = Mapping[str, Any]
CALL_EVENTS = ("ticket.called", "ticket.recalled")
GONE_EVENTS = ("ticket.no_show", "ticket.void")
LEAVE_EVENTS = ("ticket.done", "ticket.transferred", *GONE_EVENTS)
COUNTER_STATES = {"counter.opened": "open", "counter.closed": "closed",
                  "counter.paused": "paused", "counter.resumed": "open"}
PENDING_PAUSE = {"counter.pause_pending": True, "counter.pause_cancelled": False}
NOTICE = "counter.notice"  # a counter panel's own event: what the teller is doing
ALERT = "feedback.alert"


class DisplayRole:
    """Drives the hall board, the counter boards and the voice queue from events."""

    def __init__(self, cfg: BranchConfig, *, clock: Clock, link: BoardLink | None = None,
                 announcer: Announcer | None = None,
                 snapshot: Callable[[], Snapshot] | None = None,
                 tick_s: float = 0.1) -> None:
        self.cfg, self.clock, self.link, self.announcer = cfg, clock, link, announcer
        self._snapshot = snapshot
        self.rebuilt = False  # True once the boards were rebuilt from an engine snapshot
        self._tick_s = tick_s
        self.hall = HallContent(cfg.board.history, cfg.board.highlight_s)
        self.counters = {c.id: CounterContent(login=c.panel is not None and c.panel.login)
                         for c in cfg.counters}
        self._board_of = {c.id: c.board_address.upper() for c in cfg.counters if c.board_address}
        self._hall_addr = cfg.board.hall_address.upper()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_change: datetime | None = None
        # the manager's sign (alerts.board_address): the last alert, for alerts.hold_s
        self._alert_addr = (cfg.alerts.board_address or "").upper() or None
        self.alert_text = ""
        self._alert_until: datetime | None = None
        if link is not None:
            link.add(self._hall_addr, "lines")
            for addr in self._board_of.values():
                link.add(addr, "field")
            if self._alert_addr is not None:
                link.add(self._alert_addr, "field")

    # ------------------------------------------------------------------ lifecycle

    def start(self, *, thread: bool = True) -> None:
        """Rebuild from the engine (when a snapshot source is given), push, then run."""
        if self._snapshot is not None:
            try:
                self.rebuild(self._snapshot(), push=False)
                self.rebuilt = True
            except Exception as e:  # engine not reachable yet: the caller rebuilds later
                log.warning("display: no engine snapshot at start (%s); the boards are "
                            "rebuilt as soon as the engine answers", e)
        self._push_all()
        if self.announcer is not None:
            self.announcer.start()
        if thread and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="display-role", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self.announcer is not None:
            self.announcer.stop()
        if self.link is not None:
            self.link.close()

    def _run(self) -> None:
        while not self._stop.wait(self._tick_s):
            try:
                self.tick()
            except Exception:  # the board loop must outlive any single failure
                log.exception("display tick failed")

    # ------------------------------------------------------------------ events

    def on_event(self, envelope: Mapping[str, Any]) -> None:
        """Apply one engine event (bus or MQTT envelope); never raises on bad input."""
        try:
            self._apply(str(envelope.get("type", "")), envelope.get("data") or {},
                        _parse_ts(envelope.get("ts"), self.clock.now()))
        except (KeyError, TypeError, ValueError) as e:
            log.warning("ignored malformed %s event: %s", envelope.get("type"), e)

    def _apply(self, etype: str, data: Mapping[str, Any], ts: datetime) -> None:
        now = self.clock.now()
        with self._lock:
            if etype in CALL_EVENTS:
                tid, number = str(data["ticket_id"]), str(data["number"])
                cno, counter = int(data["counter_number"]), str(data["counter"])
                if etype == "ticket.called":
                    self.hall.call(tid, number, counter_number=cno, at=now)
                else:
                    self.hall.recall(tid, number, counter_number=cno, at=now)
                if counter in self.counters:
                    self.counters[counter].serve(tid, number)
                self._push_hall()
                self._push_counter(counter)
            elif etype in LEAVE_EVENTS:
                tid = str(data["ticket_id"])
                if etype in GONE_EVENTS and self.hall.remove(tid):
                    self._push_hall()
                for cid, c in self.counters.items():
                    if c.ticket_id == tid:
                        c.release(tid)
                        self._push_counter(cid)
            elif etype in COUNTER_STATES:
                cid = str(data["counter"])
                if cid in self.counters:
                    self.counters[cid].state = COUNTER_STATES[etype]
                    self.counters[cid].pause_pending = False
                    self._push_counter(cid)
            elif etype in PENDING_PAUSE:
                cid = str(data["counter"])
                if cid in self.counters:
                    self.counters[cid].pause_pending = PENDING_PAUSE[etype]
                    self._push_counter(cid)
            elif etype == NOTICE:
                self._notice(str(data["counter"]), str(data["kind"]), str(data["text"]), now)
            elif etype == ALERT:
                self._alert(data, now)
            else:
                return
        if etype in CALL_EVENTS and self.announcer is not None:
            self.announcer.announce_call(str(data["number"]), int(data["counter_number"]),
                                         at=ts, recall=etype == "ticket.recalled")

    def _notice(self, cid: str, kind: str, text: str, now: datetime) -> None:
        """``counter.notice`` from the counter's panel: ``choosing`` (the transfer target,
        until the choice ends; empty text ends it) or ``refused`` (``board.notice_s``)."""
        c = self.counters.get(cid)
        if c is None:
            return
        if kind == "choosing":
            c.choosing = text or None
        elif kind == "refused":
            c.show_notice(text, now + timedelta(seconds=self.cfg.board.notice_s))
        else:
            raise ValueError(f"unknown counter.notice kind {kind!r}")
        self._push_counter(cid)

    def _alert(self, data: Mapping[str, Any], now: datetime) -> None:
        """``feedback.alert`` on the manager's sign: counter and ticket, for hold_s."""
        if self._alert_addr is None:
            return
        cno = data.get("counter_number") or data.get("counter")
        self.alert_text = f"ALERT {cno} {data.get('number') or ''}".strip()
        self._alert_until = now + timedelta(seconds=self.cfg.alerts.hold_s)
        if self.link is not None:
            self.link.set_field(self._alert_addr, self.alert_text)

    # ------------------------------------------------------------------ state

    def rebuild(self, snap: Snapshot, *, push: bool = True) -> None:
        """Board content from an engine snapshot (after a restart or a reconnect)."""
        with self._lock:
            self.hall.rebuild(list(snap.get("recent_calls", [])), self.clock.now())
            for cid, csnap in (snap.get("counters") or {}).items():
                if cid in self.counters:
                    self.counters[cid].rebuild(csnap)
            if push:
                self._push_all()

    def tick(self) -> None:
        """Expire highlights, follow the brightness schedule, keep boards alive."""
        now = self.clock.now()
        with self._lock:
            if self._next_change is not None and now >= self._next_change:
                self._push_hall()
            for cid, c in self.counters.items():
                if c.expire(now):
                    self._push_counter(cid)
            if self._alert_until is not None and now >= self._alert_until:
                self._alert_until, self.alert_text = None, ""
                if self.link is not None and self._alert_addr is not None:
                    self.link.set_field(self._alert_addr, "")
            level = scheduled(self.cfg.board.brightness, now.astimezone(self.cfg.tz).time())
            if level is not None and self.link is not None:
                for addr in (self._hall_addr, *self._board_of.values()):
                    self.link.set_brightness(addr, level)
        if self.link is not None:
            self.link.poll()

    def content(self) -> dict[str, Any]:
        """What every board shows, for ``state/board`` and for tests."""
        now = self.clock.now()
        with self._lock:
            return {
                "hall": [{"text": ln.text, "highlight": ln.highlight}
                         for ln in self.hall.lines(now)],
                "counters": {cid: c.text for cid, c in self.counters.items()},
            }

    def _push_all(self) -> None:
        with self._lock:
            self._push_hall()
            for cid in self.counters:
                self._push_counter(cid)
            if self._alert_addr is not None and self.link is not None:
                self.link.set_field(self._alert_addr, self.alert_text)

    def _push_hall(self) -> None:
        now = self.clock.now()
        self._next_change = self.hall.next_change(now)
        if self.link is not None:
            self.link.set_lines(self._hall_addr, self.hall.lines(now))

    def _push_counter(self, counter_id: str) -> None:
        addr = self._board_of.get(counter_id)
        if addr is not None and self.link is not None:
            self.link.set_field(addr, self.counters[counter_id].text)
