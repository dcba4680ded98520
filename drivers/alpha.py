"""Caller boards: the ``CallerBoard`` port and an Alpha-protocol LED sign driver.

The Alpha Sign Communications Protocol (Adaptive Micro Systems: BetaBrite,
Alpha 200C/4200 and relatives) frames every command as::

    NUL×5  SOH  type  addr(2)  STX  cmd  data…  ETX  checksum(4 hex)  EOT

The checksum is the 16-bit sum of every byte from STX to ETX inclusive,
written as four upper-case hex digits. Several signs share one RS-485 line and
each only acts on frames carrying its own two-hex-digit address (``00`` is the
broadcast address, which we never use for content).

    >>> board = AlphaBoard.open("/dev/ttyUSB1", sign="solar")   # 9600 7E1
    >>> board.show_lines("01", [BoardLine("A023 → 3", highlight=True)])
    >>> board.show_field("11", "A023")                   # fast STRING-file update

The encoder (``*_frame`` functions) is pure; ``AlphaBoard`` is a thin layer
over any pyserial-like transport opened with ``serial.serial_for_url``.
Everything here was written from the protocol description, Alpha Sign
Communications Protocol (Adaptive Micro Systems 97088061): command codes
A/E/F/G, control codes 0x07 flash, 0x0D new line, 0x10 call string, 0x1C
colour; special functions ``$`` (memory configuration) and ``/`` (Set Dimming
Register, Solar signs). Cross-checked against two open implementations of the
same document: msparks/alphasign (memory table entries ``label type lock
size(4 hex) qqqq``; a 1 s pause after clearing memory) and
prototux/python-alphasign (``set_dimming_reg``: two hex digits of dimming
register, then a brightness level 00..04 = 100/86/72/58/44 %).

Why STRING files: writing a TEXT file makes the sign blank and restart its
display; a STRING file called from a TEXT file (``0x10`` + label) is redrawn
in place. So every board's TEXT file is a layout written once (start-up,
recovery) and all changing content goes into STRING files: a call, a recall
and the end of a highlight never blank the sign.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from tessera.drivers.errors import DeviceError

SYNC = b"\x00" * 5
SOH, STX, ETX, EOT, ESC = b"\x01", b"\x02", b"\x03", b"\x04", b"\x1b"
TYPE_ALL = "Z"  # "all sign types": every sign with a matching address accepts it

# command codes
WRITE_TEXT, WRITE_SPECIAL, READ_SPECIAL, WRITE_STRING = "A", "E", "F", "G"
# display positions and modes used here
POS_MIDDLE, POS_FILL = " ", "0"
MODE_HOLD, MODE_ROTATE, MODE_FLASH = "b", "a", "c"
# control codes inside a TEXT file
FLASH_ON, FLASH_OFF = b"\x071", b"\x070"
NEW_LINE = b"\x0d"
CALL_STRING = b"\x10"
COLOUR = b"\x1c"
RED, GREEN, AMBER = "1", "2", "3"
# special function labels
SF_MEMORY = "$"  # memory configuration (clears every file)
SF_TIME = " "  # time of day; read back as liveness probe
SF_DIMMING = "/"  # Set Dimming Register (Solar signs): threshold + level 00..04

HALL_TEXT_LABEL = "A"
FIELD_STRING_LABEL = "1"
FIELD_STRING_SIZE = 16
# hall board: each line is a red STRING (highlighted text) followed by a green one
# (older text), exactly one of them non-empty. Labels: printable, never 'A' (the
# TEXT layout) nor '0' (the protocol's priority TEXT file).
HALL_STRING_LABELS = "123456789:;<=>?@BCDEFGHIJKLMNOPQRSTUVWXYZ"
HALL_STRING_SIZE = 16
# the sign rebuilds its memory after E$ and drops what arrives meanwhile;
# msparks/alphasign waits 1 s after clearing memory, we wait that long after the
# last byte of the E$ frame has left the line
MEMORY_SETTLE_S = 1.0
DIM_LEVELS = (100, 86, 72, 58, 44)  # Set Dimming Register brightness codes 00..04, in %
# Set Dimming Register threshold: FF = the level applies whatever the light sensor
# reads (our reading of the protocol; see docs/display.md)
DIM_THRESHOLD = "FF"


class SignType(NamedTuple):
    """What one family of Alpha signs can do that differs between families."""

    name: str
    dimming: str | None  # "register" = Set Dimming Register (E/); None = cannot dim
    note: str


SIGN_TYPES: dict[str, SignType] = {t.name: t for t in (
    SignType("betabrite", None, "BetaBrite and other Alpha 1.0 signs have no dimming "
             "command: brightness frames are not sent"),
    SignType("alpha-2.0", None, "Alpha 2.0 protocol signs dim with their own command, "
             "which Tessera does not implement: brightness frames are not sent"),
    SignType("solar", "register", "Solar signs: Set Dimming Register (E/), five levels "
             "100/86/72/58/44 %"),
)}

# characters the sign's standard set can show that look like our domain text
TRANSLIT = {"→": ">", "—": "-", "–": "-", "·": ".", "\u00a0": " "}
REPLACEMENT = "?"


class BoardLine(NamedTuple):
    """One line of board content; ``highlight`` asks for colour/flash."""

    text: str
    highlight: bool = False


class CallerBoard(Protocol):
    """Port for caller boards on one line; other protocols can fill it.

    Every write raises :class:`BoardError` when the line is down.
    """

    def show_lines(self, address: str, lines: Sequence[BoardLine], *, full: bool = False) -> int:
        """Replace a multi-line board's content; ``full`` re-sends its layout. Returns bytes."""
        ...

    def show_field(self, address: str, text: str, *, full: bool = False) -> int:
        """Update a one-field board (counter board) quickly. Returns bytes written."""
        ...

    def set_brightness(self, address: str, percent: int) -> int:
        """Set the LED brightness (0-100 %); 0 bytes on a sign that cannot dim."""
        ...

    def ping(self, address: str) -> bool:
        """True when the board at ``address`` answers a read-back request."""
        ...

    def close(self) -> None: ...


class Transport(Protocol):
    """The part of ``serial.Serial`` the driver uses."""

    def write(self, data: bytes, /) -> int | None: ...

    def read(self, size: int = 1, /) -> bytes: ...

    def flush(self) -> None: ...

    def reset_input_buffer(self) -> None: ...

    def close(self) -> None: ...


class BoardError(DeviceError):
    """The board line failed (port gone, write error)."""


class BoardAddressError(DeviceError, ValueError):
    """A board address is not two hex digits in 01..FF."""


# --------------------------------------------------------------------------- encoder


def check_address(address: str) -> str:
    """Return ``address`` upper-cased, or raise BoardAddressError saying what to fix."""
    ok = len(address) == 2 and all(c in "0123456789abcdefABCDEF" for c in address)
    if not ok or int(address, 16) == 0:
        raise BoardAddressError(
            f"board address {address!r} is out of range; use two hex digits 01..FF "
            "(00 is the broadcast address)")
    return address.upper()


def checksum(body: bytes) -> bytes:
    """Four hex digits of the 16-bit sum of ``body`` (which runs STX..ETX inclusive)."""
    return b"%04X" % (sum(body) & 0xFFFF)


def frame(address: str, command: str, data: bytes, *, type_code: str = TYPE_ALL) -> bytes:
    """One complete packet carrying one command to the sign at ``address``."""
    addr = check_address(address).encode("ascii")
    body = STX + command.encode("ascii") + data + ETX
    return SYNC + SOH + type_code.encode("ascii") + addr + body + checksum(body) + EOT


def sign_text(text: str) -> bytes:
    """``text`` in the sign's printable set; anything else becomes a visible '?'."""
    out = bytearray()
    for ch in text:
        ch = TRANSLIT.get(ch, ch)
        out += ch.encode("ascii") if len(ch) == 1 and 0x20 <= ord(ch) <= 0x7E else b"?"
    return bytes(out)


def text_payload(lines: Sequence[BoardLine], *, flash: bool = False) -> bytes:
    """The TEXT-file body of a multi-line board: one coloured line per entry."""
    parts = []
    for line in lines:
        colour = COLOUR + (RED if line.highlight else GREEN).encode("ascii")
        blink = FLASH_ON if (flash and line.highlight) else b""
        unblink = FLASH_OFF if blink else b""
        parts.append(colour + blink + sign_text(line.text) + unblink)
    return NEW_LINE.join(parts)


def write_text_frame(address: str, label: str, payload: bytes, *,
                     position: str = POS_FILL, mode: str = MODE_HOLD) -> bytes:
    """Write TEXT file ``label`` (command A): ESC + position + mode, then the text."""
    data = label.encode("ascii") + ESC + position.encode("ascii") + mode.encode("ascii") + payload
    return frame(address, WRITE_TEXT, data)


def write_string_frame(address: str, label: str, text: str) -> bytes:
    """Write STRING file ``label`` (command G): the sign redraws it without a blank."""
    return frame(address, WRITE_STRING, label.encode("ascii") + sign_text(text))


def memory_frame(address: str, files: Sequence[tuple[str, str, int]]) -> bytes:
    """Memory configuration (E$) for ``(label, kind 'A' text / 'B' string, size)`` files.

    TEXT files run always (start FF, stop 00); STRING files carry 0000 there.
    """
    data = bytearray(SF_MEMORY.encode("ascii"))
    for label, kind, size in files:
        data += f"{label}{kind}{'U' if kind == 'A' else 'L'}{size:04X}".encode("ascii")
        data += b"FF00" if kind == "A" else b"0000"
    return frame(address, WRITE_SPECIAL, bytes(data))


def dim_level(percent: int) -> int:
    """The Set Dimming Register brightness code (0..4) nearest to ``percent``."""
    if not 0 <= percent <= 100:
        raise ValueError(f"brightness {percent} % is out of range; use 0..100")
    return min(range(len(DIM_LEVELS)), key=lambda i: (abs(DIM_LEVELS[i] - percent), i))


def brightness_frame(address: str, percent: int) -> bytes:
    """Set Dimming Register (E/): threshold as two hex digits, then the level 00..04."""
    data = f"{SF_DIMMING}{DIM_THRESHOLD}{dim_level(percent):02d}".encode("ascii")
    return frame(address, WRITE_SPECIAL, data)


def read_special_frame(address: str, label: str = SF_TIME) -> bytes:
    """Ask the sign to send back special function ``label`` (used as a ping)."""
    return frame(address, READ_SPECIAL, label.encode("ascii"))


def hall_labels(slots: int) -> tuple[str, str]:
    """(red labels, green labels) of a hall board with ``slots`` lines."""
    if not 1 <= slots <= len(HALL_STRING_LABELS) // 2:
        raise ValueError(f"a hall board holds 1..{len(HALL_STRING_LABELS) // 2} lines")
    return HALL_STRING_LABELS[:slots], HALL_STRING_LABELS[slots:2 * slots]


def hall_layout_payload(slots: int, *, flash: bool = False) -> bytes:
    """The hall TEXT file: per line, red STRING (blinking with ``flash``), green STRING."""
    red, green = hall_labels(slots)
    parts = []
    for r, g in zip(red, green, strict=True):
        hot = CALL_STRING + r.encode("ascii")
        if flash:
            hot = FLASH_ON + hot + FLASH_OFF
        parts.append(COLOUR + RED.encode("ascii") + hot
                     + COLOUR + GREEN.encode("ascii") + CALL_STRING + g.encode("ascii"))
    return NEW_LINE.join(parts)


def hall_layout_frames(address: str, slots: int, *, flash: bool = False) -> list[bytes]:
    """Memory configuration (TEXT 'A' + 2 STRING files a line) and the hall layout."""
    layout = hall_layout_payload(slots, flash=flash)
    red, green = hall_labels(slots)
    files = [(HALL_TEXT_LABEL, "A", len(layout))]
    files += [(label, "B", HALL_STRING_SIZE) for label in red + green]
    return [memory_frame(address, files), write_text_frame(address, HALL_TEXT_LABEL, layout)]


def hall_strings(lines: Sequence[BoardLine], slots: int) -> dict[str, str]:
    """STRING label -> text for ``lines`` on a hall board of ``slots`` lines."""
    red, green = hall_labels(slots)
    out: dict[str, str] = {}
    for i in range(slots):
        line = lines[i] if i < len(lines) else BoardLine("")
        text = line.text[:HALL_STRING_SIZE]
        out[red[i]] = text if line.highlight else ""
        out[green[i]] = "" if line.highlight else text
    return out


def field_layout_frames(address: str) -> list[bytes]:
    """Memory + TEXT layout of a counter board whose text is STRING file '1'."""
    layout = COLOUR + AMBER.encode("ascii") + CALL_STRING + FIELD_STRING_LABEL.encode("ascii")
    return [
        memory_frame(address, [(HALL_TEXT_LABEL, "A", 64),
                               (FIELD_STRING_LABEL, "B", FIELD_STRING_SIZE)]),
        write_text_frame(address, HALL_TEXT_LABEL, layout),
    ]


def parse_reply(packet: bytes) -> tuple[str, bytes] | None:
    """(command, data) of a well-formed reply packet, or None (bad checksum, truncated)."""
    start = packet.find(SOH)
    stx = packet.find(STX, start + 1)
    etx = packet.find(ETX, stx + 1)
    if start < 0 or stx < 0 or etx < 0 or len(packet) < etx + 6:
        return None
    body = packet[stx:etx + 1]
    if packet[etx + 1:etx + 5] != checksum(body) or packet[etx + 5:etx + 6] != EOT:
        return None
    return chr(body[1]), body[2:-1]


# --------------------------------------------------------------------------- driver


class AlphaBoard:
    """Alpha-protocol signs on one serial line (RS-485 multidrop by address).

        >>> board = AlphaBoard(transport=serial.serial_for_url("loop://"))
        >>> board.show_field("11", "A023")    # first call: E$, 1 s pause, layout, text
        87

    ``flash=True`` also blinks highlighted lines (signs that cannot blink
    ignore the code). ``sign`` names the sign family (``SIGN_TYPES``): only
    a family with a dimming command gets brightness frames. ``hall_lines``
    sizes the hall layout (``board.history``). Writes are serialised with a
    lock so a ping never interleaves with a content frame on the shared line.
    After a memory configuration the driver waits ``memory_settle_s`` past the
    frame's line time before content follows.
    """

    def __init__(self, *, transport: Transport, flash: bool = False,
                 reply_timeout: float = 0.3, sign: str = "betabrite", hall_lines: int = 4,
                 char_s: float = 10 / 9600, memory_settle_s: float = MEMORY_SETTLE_S) -> None:
        if sign not in SIGN_TYPES:
            raise ValueError(f"unknown sign type {sign!r}; known: {', '.join(SIGN_TYPES)}")
        hall_labels(hall_lines)  # refuses a layout the label set cannot hold
        self._port = transport
        self._flash = flash
        self._reply_timeout = reply_timeout
        self.sign = SIGN_TYPES[sign]
        self._hall_lines = hall_lines
        self._char_s = char_s
        self._settle_s = memory_settle_s
        self._lock = threading.Lock()
        self._ready: set[str] = set()
        self._hall: dict[str, dict[str, str]] = {}  # address -> STRING label -> text sent

    @classmethod
    def open(cls, url: str, *, baudrate: int = 9600, bytesize: int = 7, parity: str = "E",
             stopbits: int = 1, flash: bool = False, sign: str = "betabrite",
             hall_lines: int = 4) -> AlphaBoard:
        import termios

        import serial

        try:
            port = serial.serial_for_url(url, baudrate=baudrate, bytesize=bytesize,
                                         parity=parity, stopbits=stopbits, timeout=0.05,
                                         write_timeout=2.0)
        # termios.error is no OSError: a pty or adapter refusing the line settings
        # (seen right after the previous owner of the line was SIGKILLed)
        except (serial.SerialException, OSError, ValueError, termios.error) as e:
            raise BoardError(f"cannot open caller board line {url!r}: {e}; "
                             "check board.url and that the adapter is plugged in") from e
        bits = 1 + bytesize + (parity != "N") + stopbits  # start, data, parity, stop
        return cls(transport=port, flash=flash, sign=sign, hall_lines=hall_lines,
                   char_s=bits / baudrate)

    def _send(self, *frames: bytes) -> int:
        data = b"".join(frames)
        if not data:
            return 0
        with self._lock:
            try:
                # no flush (tcdrain) here: it would block the caller for the whole line
                # time; the kernel queue keeps frames in order on the wire anyway
                self._port.write(data)
            except Exception as e:  # pyserial raises SerialException, OSError or its own
                raise BoardError(f"caller board line write failed: {e}") from e
        return len(data)

    def _configure(self, memory: bytes) -> int:
        """Send a memory configuration and wait until the sign can take content."""
        n = self._send(memory)
        # the write returns once the kernel has the bytes: wait for the line, then settle
        time.sleep(len(memory) * self._char_s + self._settle_s)
        return n

    def show_lines(self, address: str, lines: Sequence[BoardLine], *, full: bool = False) -> int:
        addr = check_address(address)
        wanted = hall_strings(lines, self._hall_lines)
        sent = None if full else self._hall.get(addr)
        n = 0
        if sent is None:
            self._hall.pop(addr, None)
            memory, layout = hall_layout_frames(addr, self._hall_lines, flash=self._flash)
            n += self._configure(memory)
            n += self._send(layout, *(write_string_frame(addr, label, text)
                                      for label, text in wanted.items()))
        else:
            n += self._send(*(write_string_frame(addr, label, text)
                              for label, text in wanted.items() if sent.get(label) != text))
        self._hall[addr] = wanted
        return n

    def show_field(self, address: str, text: str, *, full: bool = False) -> int:
        addr = check_address(address)
        n = 0
        if full or addr not in self._ready:
            self._ready.discard(addr)
            memory, layout = field_layout_frames(addr)
            n += self._configure(memory)
            n += self._send(layout)
        n += self._send(write_string_frame(addr, FIELD_STRING_LABEL, text[:FIELD_STRING_SIZE]))
        self._ready.add(addr)
        return n

    def set_brightness(self, address: str, percent: int) -> int:
        if self.sign.dimming != "register":
            dim_level(percent)  # still refuse an impossible value
            return 0
        return self._send(brightness_frame(address, percent))

    def ping(self, address: str) -> bool:
        request = read_special_frame(address)
        with self._lock:
            try:
                self._port.reset_input_buffer()
                self._port.write(request)
                self._port.flush()
                reply = self._read_packet(request)
            except Exception as e:
                raise BoardError(f"caller board line failed during ping: {e}") from e
        parsed = parse_reply(reply) if reply else None
        return parsed is not None and parsed[0] == WRITE_SPECIAL and parsed[1][:1] == b" "

    def _read_packet(self, request: bytes = b"") -> bytes:
        """The first packet that is not our own ``request`` echoed back.

        A two-wire RS-485 adapter often hears its own transmission: the request
        comes back before the sign's reply and ends with the same EOT.
        """
        deadline = time.monotonic() + self._reply_timeout
        echo = request.lstrip(b"\x00")
        buf = bytearray()
        while time.monotonic() < deadline and len(buf) < 256 + len(request):
            chunk = self._port.read(64)
            if not chunk:
                continue
            buf += chunk
            while EOT in buf:
                end = buf.index(EOT) + 1
                packet = bytes(buf[:end])
                del buf[:end]
                if echo and packet.lstrip(b"\x00") == echo:
                    continue  # our own request, heard on the shared pair
                return packet
        return bytes(buf)

    def close(self) -> None:
        with self._lock:
            try:
                self._port.close()
            except Exception:  # closing a dead port must not mask the original fault
                pass
