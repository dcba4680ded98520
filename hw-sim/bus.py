"""The simulator's end of the simulated GPIO bus (``tessera.sim.gpio`` is the firmware's).

    with GpioBus(path, devices=["main"]) as bus:
        bus.wait_listening("main", 17)          # the firmware has opened its button
        bus.press("main", 17, duration_s=0.12)  # falling edge, 120 ms, rising edge
        bus.outputs("main")[4].state            # the lamp on pin 4, as the firmware set it

One Unix socket serves two kinds of client. A connection whose first line is
``{"op":"hello",...}`` is a firmware pin factory (protocol in
``tessera.sim.gpio``); any other first line is a control request, answered
by ``control(request) -> reply`` one line each (``tessera.sim.control``).

Per device the bus keeps what it drives onto each pin (0, 1 or nothing) and
sends every change to each firmware connection of that device, in order,
stamped with CLOCK_MONOTONIC; what the firmware reports (pin set-up, output
levels) is kept per device and handed to ``on_event`` as it arrives.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from tessera.sim.gpio import PROTOCOL, LineReader, encode

log = logging.getLogger(__name__)

PINS = range(28)  # BCM GPIO numbers a Pi's header carries
FIRST_LINE_TIMEOUT_S = 5.0
Event = dict[str, Any]


class BusError(ValueError):
    """A request names a device or pin the bus does not have; says which it has."""


@dataclass
class PinView:
    """What the firmware reported for one pin (``function`` "" until it opens the pin)."""

    function: str = ""
    pull: str = ""
    state: int = 0
    t: float = 0.0  # firmware's CLOCK_MONOTONIC of the report
    t_rx: float = 0.0  # when the bus received it
    changes: int = 0  # output changes reported


@dataclass
class _Session:
    sock: socket.socket
    device: str
    pid: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    pins: dict[int, PinView] = field(default_factory=dict)
    alive: bool = True

    def send(self, data: bytes) -> bool:
        with self.lock:
            if not self.alive:
                return False
            try:
                self.sock.sendall(data)
                return True
            except OSError:
                self.alive = False
                return False


class GpioBus:
    """The bus server; see module docstring. ``devices=None`` accepts any device name."""

    def __init__(self, path: Path, *, devices: Iterable[str] | None = None,
                 control: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 on_event: Callable[[Event], None] | None = None) -> None:
        self.path = Path(path)
        self.devices: tuple[str, ...] | None = tuple(devices) if devices is not None else None
        self.control = control
        self.on_event = on_event
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._drives: dict[str, dict[int, int | None]] = {}
        self._sessions: list[_Session] = []
        self._pin_locks: dict[tuple[str, int], threading.Lock] = {}
        self._conns: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._rng = random.Random()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> GpioBus:
        self._listener = _listen(self.path)
        self._stop.clear()
        t = threading.Thread(target=self._accept, name="sim-bus-accept", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # wakes every connection thread blocked in recv
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for t in list(self._threads):
            t.join(2.0)

    def __enter__(self) -> GpioBus:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------------ driving

    def check(self, device: str, pin: int) -> None:
        """Raise BusError unless ``device`` is one of the bus's and ``pin`` a BCM GPIO."""
        if self.devices is not None and device not in self.devices:
            raise BusError(f"unknown device {device!r}; valid: {', '.join(self.devices)}")
        if pin not in PINS:
            raise BusError(f"pin {pin} is not a BCM GPIO number; valid: 0-27")

    def drive(self, device: str, pin: int, level: int | None) -> float:
        """Put ``level`` on the wire (0/1; None lets go); returns its monotonic time."""
        self.check(device, pin)
        with self._lock:  # sent under the lock: every connection sees edges in bus order
            t = time.monotonic()
            self._drives.setdefault(device, {})[pin] = level
            data = encode({"op": "drive", "pin": pin, "level": level, "t": t})
            for s in self._sessions:
                if s.device == device:
                    s.send(data)  # bounded: SO_SNDTIMEO on every firmware connection
        self._event({"kind": "input", "device": device, "pin": pin, "level": level, "t": t})
        return t

    def press(self, device: str, pin: int, *, duration_s: float = 0.12,
              bounce: int = 0) -> tuple[float, float]:
        """A button to GND: falling edge, ``duration_s``, rising edge; at each end first
        ``bounce`` contact bounces (two edges each, ~0.3-1.5 ms apart). Returns the
        times of the settling edges (t_down, t_up)."""
        self.check(device, pin)
        with self._pin_lock(device, pin):
            self._chatter(device, pin, bounce)
            t_down = self.drive(device, pin, 0)
            time.sleep(max(0.0, duration_s))
            self._chatter(device, pin, bounce, releasing=True)
            t_up = self.drive(device, pin, None)
        return t_down, t_up

    def _chatter(self, device: str, pin: int, bounces: int, releasing: bool = False) -> None:
        """Contact bounce before the level settles: each bounce touches and springs back."""
        for _ in range(bounces):
            for level in ((None, 0) if releasing else (0, None)):
                self.drive(device, pin, level)
                time.sleep(self._rng.uniform(0.0003, 0.0015))

    def _pin_lock(self, device: str, pin: int) -> threading.Lock:
        with self._lock:
            return self._pin_locks.setdefault((device, pin), threading.Lock())

    # ------------------------------------------------------------------ what the firmware did

    def level(self, device: str, pin: int) -> int:
        """What the pin reads: the driven level, else the pull the firmware set (up: 1)."""
        with self._lock:
            driven = self._drives.get(device, {}).get(pin)
            if driven is not None:
                return driven
            views = [s.pins[pin] for s in self._sessions if s.device == device and pin in s.pins]
        return int(any(v.function == "input" and v.pull == "up" for v in views))

    def listening(self, device: str, pin: int) -> bool:
        """Some firmware connection of ``device`` has ``pin`` open as an input."""
        with self._lock:
            return any(s.device == device and s.pins.get(pin, PinView()).function == "input"
                       for s in self._sessions)

    def wait_listening(self, device: str, pin: int, timeout_s: float = 10.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.listening(device, pin), timeout_s)

    def wait_connected(self, device: str, timeout_s: float = 10.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: device in self.connected(), timeout_s)

    def connected(self) -> dict[str, list[int]]:
        """Device -> pids of its firmware connections."""
        with self._lock:
            out: dict[str, list[int]] = {}
            for s in self._sessions:
                out.setdefault(s.device, []).append(s.pid)
            return out

    def outputs(self, device: str) -> dict[int, PinView]:
        """Pins of ``device`` some connection set as outputs, with their last state."""
        with self._lock:
            out: dict[int, PinView] = {}
            for s in self._sessions:
                if s.device == device:
                    out.update({p: v for p, v in s.pins.items() if v.function == "output"})
            return out

    def pins(self, device: str) -> dict[int, PinView]:
        with self._lock:
            out: dict[int, PinView] = {}
            for s in self._sessions:
                if s.device == device:
                    out.update(s.pins)
            return out

    def _event(self, ev: Event) -> None:
        if self.on_event is not None:
            try:
                self.on_event(ev)
            except Exception:
                log.exception("sim bus: event handler failed on %r", ev)

    # ------------------------------------------------------------------ connections

    def _accept(self) -> None:
        assert self._listener is not None
        listener = self._listener
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), name="sim-bus-conn",
                                 daemon=True)
            t.start()
            self._threads = [x for x in self._threads if x.is_alive()] + [t]

    def _serve(self, conn: socket.socket) -> None:
        reader = LineReader(conn)
        with self._lock:
            self._conns.add(conn)
        try:
            conn.settimeout(FIRST_LINE_TIMEOUT_S)
            first = reader.read()
            conn.settimeout(None)
            if first is None:
                return
            if first.get("op") == "hello":
                self._firmware(conn, reader, first)
            else:
                self._controller(conn, reader, first)
        except (OSError, ValueError) as e:
            log.info("sim bus: connection dropped (%s)", e)
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def _controller(self, conn: socket.socket, reader: LineReader,
                    first: dict[str, Any]) -> None:
        msg: dict[str, Any] | None = first
        while msg is not None and not self._stop.is_set():
            if self.control is None:
                reply: dict[str, Any] = {"ok": False, "code": "bad-input",
                                         "error": "this bus takes no control requests"}
            else:
                try:
                    reply = self.control(msg)
                except Exception as e:  # a control request never kills the simulator
                    log.exception("sim control %r failed", msg)
                    reply = {"ok": False, "code": "failed", "error": f"{type(e).__name__}: {e}"}
            conn.sendall(encode(reply))
            msg = reader.read()

    def _firmware(self, conn: socket.socket, reader: LineReader, hello: dict[str, Any]) -> None:
        device = str(hello.get("device", ""))
        refusal = ""
        if hello.get("v") != PROTOCOL:
            refusal = f"protocol v{hello.get('v')} is not v{PROTOCOL}; update tessera"
        elif self.devices is not None and device not in self.devices:
            refusal = (f"unknown device {device!r}; this simulator has "
                       f"{', '.join(self.devices)} (set --device / $TESSERA_DEVICE)")
        if refusal:
            conn.sendall(encode({"op": "error", "error": refusal}))
            return
        pid = int(hello.get("pid", 0) or 0)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 2, 0))
        session = _Session(conn, device, pid)
        with self._lock:
            drives = dict(self._drives.get(device, {}))
            session.send(encode({"op": "welcome", "v": PROTOCOL, "device": device,
                                 "drives": {str(p): v for p, v in drives.items()}}))
            self._sessions.append(session)
            self._changed.notify_all()
        self._event({"kind": "connect", "device": device, "pid": pid, "t": time.monotonic()})
        try:
            while (msg := reader.read()) is not None:
                self._report(session, msg)
        finally:
            with self._lock:
                session.alive = False
                self._sessions.remove(session)
                self._changed.notify_all()
            self._event({"kind": "disconnect", "device": device, "pid": pid,
                         "t": time.monotonic()})

    def _report(self, session: _Session, msg: Mapping[str, Any]) -> None:
        op = msg.get("op")
        if op not in ("setup", "out"):
            return
        t_rx = time.monotonic()
        try:
            pin, state, t = int(msg["pin"]), int(msg["state"]), float(msg["t"])
        except (KeyError, TypeError, ValueError):
            log.warning("sim bus: bad report from %s: %r", session.device, msg)
            return
        with self._lock:
            view = session.pins.setdefault(pin, PinView())
            if op == "setup":
                view.function, view.pull = str(msg.get("function", "")), str(msg.get("pull", ""))
            if op == "out":
                view.changes += 1
            view.state, view.t, view.t_rx = state, t, t_rx
            self._changed.notify_all()
        self._event({"kind": op if op == "setup" else "output", "device": session.device,
                     "pin": pin, "state": state, "function": view.function, "t": t,
                     "t_rx": t_rx})


def _listen(path: Path) -> socket.socket:
    """Bind ``path`` (a stale socket left by a killed simulator is replaced; a live one is
    an error: two simulators would split the firmware between them)."""
    if len(os.fsencode(path)) >= 104:
        raise OSError(f"socket path {path} is too long for a Unix socket (max 103 bytes); "
                      "use a shorter --socket / $TESSERA_SIM_SOCKET")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise OSError(f"{path} exists and is not a socket; remove it or pick another path")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # nobody listens: a stale socket
        else:
            raise OSError(f"another simulator is already running on {path}; stop it or use "
                          "another --socket / $TESSERA_SIM_SOCKET")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    os.chmod(path, 0o600)
    sock.listen(16)
    return sock
