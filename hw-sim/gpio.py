"""``tessera-sim``: a gpiozero pin factory whose wires run to a simulator process.

An unmodified firmware process (``tessera run``) opens its buttons and lamps
on this factory; ``tessera sim hardware`` (a :class:`tessera.sim.bus.GpioBus`)
sits at the other end of a Unix socket and plays the branch's hardware: it
presses buttons and records every lamp the firmware drives.

    GPIOZERO_PIN_FACTORY=tessera-sim TESSERA_DEVICE=main python -c \\
        "from gpiozero import LED; LED(4).on()"

    factory = SimFactory(device="main")      # or make_pin_factory("tessera-sim", device=...)
    button = DigitalInputDevice(17, pull_up=True, pin_factory=factory)

Which Pi: ``device=``, else ``$TESSERA_DEVICE``, else ``main``. Which socket:
``$TESSERA_SIM_SOCKET``, else ``$XDG_RUNTIME_DIR/tessera-sim/bus.sock``, else
``/tmp/tessera-sim-$UID/bus.sock`` (:func:`sim_socket_path`). Nothing
listening there is a :class:`SimulatorNotRunning` (a ``DeviceError``) that
says how to start the simulator.

Wire protocol: JSON objects, one per line (UTF-8), ``t`` in seconds of
CLOCK_MONOTONIC (one clock for every process on the machine)::

    factory → bus  {"op":"hello","v":1,"device":"main","pid":4242}
    bus → factory  {"op":"welcome","v":1,"device":"main","drives":{"17":0}}
                   {"op":"error","error":"unknown device 'x'; valid: main, sim-c3"}
    factory → bus  {"op":"setup","pin":17,"function":"input","pull":"up","state":1,"t":..}
                   {"op":"out","pin":4,"state":1,"t":12.345678}
    bus → factory  {"op":"drive","pin":17,"level":0,"t":12.3456}   (level null: let go)

Pins behave like a Pi's: what the simulator drives onto the wire is an
external level (a button to GND pressed: 0) or nothing (``null``: released);
with nothing driven the pin reads its pull (``up``: 1, ``down``/floating: 0).
So a button wired to GND reads high at rest only if the firmware asked for
the pull-up, as on the board. Edges reach gpiozero in the order the
simulator sent them, through the pin's ``when_changed`` path with the
simulator's timestamp as ``ticks``. PWM is not simulated.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gpiozero.exc import PinFixedPull, PinInvalidPull
from gpiozero.pins.mock import MockFactory, MockPin, PinState

from tessera.drivers.errors import DeviceError

log = logging.getLogger(__name__)

SOCKET_ENV = "TESSERA_SIM_SOCKET"
DEVICE_ENV = "TESSERA_DEVICE"
PROTOCOL = 1
MAX_LINE = 1 << 20  # bytes; a longer line is a broken peer
CONNECT_TIMEOUT_S = 2.0
WELCOME_TIMEOUT_S = 5.0
SEND_TIMEOUT_S = 2.0  # a stalled simulator never blocks a firmware thread for longer
START_HINT = "start it with: tessera sim hardware --config FILE"


def default_socket_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_RUNTIME_DIR/tessera-sim/bus.sock``, else ``/tmp/tessera-sim-$UID/bus.sock``."""
    environ = os.environ if env is None else env
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "tessera-sim" / "bus.sock"
    return Path(f"/tmp/tessera-sim-{os.getuid()}") / "bus.sock"


def sim_socket_path(env: Mapping[str, str] | None = None) -> Path:
    """The bus socket: ``$TESSERA_SIM_SOCKET``, else :func:`default_socket_path`."""
    environ = os.environ if env is None else env
    given = environ.get(SOCKET_ENV, "").strip()
    return Path(given) if given else default_socket_path(environ)


class SimulatorNotRunning(DeviceError):
    """Nothing listens on the bus socket (or it did not answer). A ``DeviceError``
    (an OSError), not gpiozero's BadPinFactory: that one is an ImportError, and the
    two cannot share an instance layout."""

    def __init__(self, path: Path, detail: str = "") -> None:
        why = f" ({detail})" if detail else ""
        super().__init__(f"the GPIO simulator is not running: nothing answers on {path}{why}; "
                         f"{START_HINT} (firmware and simulator must agree on ${SOCKET_ENV})")


class SimBusRefused(DeviceError):
    """The simulator answered but refused this factory (unknown device, bad protocol)."""


def encode(msg: Mapping[str, Any]) -> bytes:
    return json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


class LineReader:
    """JSON objects, one per line, from a stream socket (keeps partial lines across timeouts)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()

    def read(self) -> dict[str, Any] | None:
        """The next object; None at EOF. Raises ValueError for a line that is not one,
        and the socket's TimeoutError/OSError."""
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[:end + 1]
                msg = json.loads(line)
                if not isinstance(msg, dict):
                    raise ValueError(f"expected a JSON object, got {line[:80]!r}")
                return msg
            if len(self._buf) > MAX_LINE:
                raise ValueError(f"line longer than {MAX_LINE} bytes")
            chunk = self._sock.recv(65536)
            if not chunk:
                return None
            self._buf += chunk


def connect(path: Path, timeout_s: float = CONNECT_TIMEOUT_S) -> socket.socket:
    """A connected stream socket to the bus at ``path``, or :class:`SimulatorNotRunning`."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        raise SimulatorNotRunning(path) from None
    except OSError as e:
        sock.close()
        raise SimulatorNotRunning(path, e.strerror or str(e)) from None
    return sock


class SimPin(MockPin):  # type: ignore[misc]
    """A pin of a :class:`SimFactory`: as an input it reads the simulator's wire (or its
    pull), as an output every change is reported to the simulator."""

    _state: bool  # MockPin's level and the ticks of its last change
    _last_change: float

    def __init__(self, factory: SimFactory, info: Any) -> None:
        self._external: int | None = None  # what the simulator drives; None: nothing
        super().__init__(factory, info)
        self._factory: SimFactory = factory
        factory._attach(self)

    @property
    def pin_number(self) -> int:
        return int(self._number)

    def _level(self) -> bool:
        if self._external is not None:
            return bool(self._external)
        return bool(self._pull == "up")  # floating reads low here; on a board it is undefined

    def _set_function(self, value: str) -> None:
        with self._factory._lock:
            super()._set_function(value)  # back to input re-applies the pull (our _set_pull)
            if value == "output":
                self._factory._report_setup(self)

    def _set_pull(self, value: str) -> None:
        if self._function != "input":
            raise PinFixedPull(f"cannot set pull on non-input pin {self!r}")
        if self.info.pull and value != self.info.pull:
            raise PinFixedPull(f"{self!r} has a fixed pull resistor")
        if value not in ("floating", "up", "down"):
            raise PinInvalidPull("pull must be floating, up, or down")
        with self._factory._lock:
            self._pull = value
            self._settle(self._factory.ticks())
            self._factory._report_setup(self)

    def _change_state(self, value: bool) -> bool:
        changed = bool(super()._change_state(value))
        if changed and self._function == "output":
            self._factory._report_output(self, self._last_change)
        return changed

    def _wire(self, level: int | None, ticks: float) -> None:
        """The simulator drove ``level`` onto the wire at ``ticks``."""
        self._external = level
        self._settle(ticks)

    def _settle(self, ticks: float) -> None:
        if self._function != "input":
            return
        new = self._level()
        if new == self._state:
            return
        self._state = new
        self.states.append(PinState(ticks - self._last_change, new))
        self._last_change = ticks
        if self._when_changed is not None and self._edges in (
                "both", "rising" if new else "falling"):
            self._call_when_changed()  # MockPin's: (ticks, state) to gpiozero's handler

    # MockPin's test helpers, with the wire's meaning (this process only; the bus
    # is not told): drive_low() is a button to GND held down, release() lets go.
    def drive_low(self) -> None:
        with self._factory._lock:
            self._wire(0, self._factory.ticks())

    def drive_high(self) -> None:
        with self._factory._lock:
            self._wire(1, self._factory.ticks())

    def release(self) -> None:
        with self._factory._lock:
            self._wire(None, self._factory.ticks())


class SimFactory(MockFactory):  # type: ignore[misc]
    """Pins of one device (Pi) on the simulated GPIO bus (see module docstring).

        factory = SimFactory(device="main")
        led = LED(4, pin_factory=factory); led.on()      # the simulator records it
        factory.close()
    """

    def __init__(self, device: str | None = None, *, socket_path: str | Path | None = None,
                 env: Mapping[str, str] | None = None, revision: str | None = None,
                 timeout_s: float = WELCOME_TIMEOUT_S) -> None:
        environ = os.environ if env is None else env
        super().__init__(revision=revision, pin_class=SimPin)
        self.device = device or environ.get(DEVICE_ENV, "").strip() or "main"
        self.socket_path = Path(socket_path) if socket_path else sim_socket_path(environ)
        self._lock = threading.RLock()  # pin levels: the reader thread vs the firmware's
        self._send_lock = threading.Lock()
        self._by_number: dict[int, SimPin] = {}
        self._drives: dict[int, int | None] = {}
        self._closed = False
        self.lost = False  # the simulator went away: inputs freeze, outputs go nowhere
        self._sock = connect(self.socket_path)
        try:
            self._handshake(timeout_s)
        except BaseException:
            self._sock.close()
            raise
        self._sock.settimeout(None)  # the reader blocks; sends are bounded by SO_SNDTIMEO
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                              struct.pack("ll", int(SEND_TIMEOUT_S), 0))
        self._reader = threading.Thread(target=self._read, name=f"sim-gpio-{self.device}",
                                        daemon=True)
        self._reader.start()

    def _handshake(self, timeout_s: float) -> None:
        self._sock.settimeout(timeout_s)
        try:
            self._sock.sendall(encode({"op": "hello", "v": PROTOCOL, "device": self.device,
                                       "pid": os.getpid(), "t": time.monotonic()}))
            self._lines = LineReader(self._sock)
            msg = self._lines.read()
        except (TimeoutError, OSError, ValueError) as e:
            raise SimulatorNotRunning(self.socket_path, f"no welcome: {e}") from None
        if msg is None:
            raise SimulatorNotRunning(self.socket_path, "it hung up")
        if msg.get("op") == "error":
            raise SimBusRefused(f"the GPIO simulator at {self.socket_path} refused device "
                                f"{self.device!r}: {msg.get('error')}")
        if msg.get("op") != "welcome" or msg.get("v") != PROTOCOL:
            raise SimBusRefused(f"the GPIO simulator at {self.socket_path} speaks another "
                                f"protocol ({str(msg)[:120]}); this factory speaks v{PROTOCOL}")
        self._drives = {int(k): _level(v) for k, v in dict(msg.get("drives") or {}).items()}

    # ------------------------------------------------------------- pins

    def _attach(self, pin: SimPin) -> None:
        with self._lock:
            self._by_number[pin.pin_number] = pin
            pin._external = self._drives.get(pin.pin_number)
            pin._state = pin._level()
            pin.clear_states()

    def _report_setup(self, pin: SimPin) -> None:
        self._send({"op": "setup", "pin": pin.pin_number, "function": pin._function,
                    "pull": pin._pull, "state": int(bool(pin._state)), "t": self.ticks()})

    def _report_output(self, pin: SimPin, ticks: float) -> None:
        self._send({"op": "out", "pin": pin.pin_number, "state": int(bool(pin._state)),
                    "t": ticks})

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._by_number.clear()

    # ------------------------------------------------------------- socket

    def _send(self, msg: Mapping[str, Any]) -> None:
        with self._send_lock:
            if self._closed or self.lost:
                return
            try:
                self._sock.sendall(encode(msg))
            except OSError as e:
                self._lose(f"cannot send ({e})")

    def _lose(self, why: str) -> None:
        if not self.lost and not self._closed:
            self.lost = True
            log.error("GPIO simulator at %s lost (%s): device %s's inputs stay as they are, "
                      "its outputs are no longer reported", self.socket_path, why, self.device)

    def _read(self) -> None:
        why = "it hung up"
        while True:
            try:
                msg = self._lines.read()
            except (OSError, ValueError) as e:
                why = str(e)
                break
            if msg is None:
                break
            if msg.get("op") == "drive":
                self._on_drive(msg)
        self._lose(why)

    def _on_drive(self, msg: Mapping[str, Any]) -> None:
        try:
            pin, level = int(msg["pin"]), _level(msg.get("level"))
            ticks = float(msg.get("t", self.ticks()))
        except (KeyError, TypeError, ValueError):
            log.warning("GPIO simulator sent a bad drive message: %r", msg)
            return
        with self._lock:
            self._drives[pin] = level
            target = self._by_number.get(pin)
            if target is not None:
                target._wire(level, ticks)

    def close(self) -> None:
        if self._closed:
            return
        super().close()  # closes every pin (each reports itself back to input)
        with self._send_lock:
            self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        if self._reader is not threading.current_thread():
            self._reader.join(2.0)


def _level(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and value in (0, 1):
        return int(value)
    raise ValueError(f"level must be 0, 1 or null, not {value!r}")
