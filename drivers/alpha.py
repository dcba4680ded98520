"""Caller boards: the ``CallerBoard`` port and an Alpha-protocol LED sign driver.

The Alpha Sign Communications Protocol (Adaptive Micro Systems: BetaBrite,
Alpha 200C/4200 and relatives) frames every command as::

    NUL×5  SOH  type  addr(2)  STX  cmd  data…  ETX  checksum(4 hex)  EOT

The checksum is the 16-bit sum of every byte from STX to ETX inclusive,
written as four upper-case hex digits. Several signs share one RS-485 line and
each only acts on frames carrying its own two-hex-digit address (``00`` is the
broadcast address, which we never use for content).

    board = AlphaBoard.open("/dev/ttyUSB1", sign="solar")   # 9600 7E1
    board.show_lines("01", [BoardLine("A023 → 3", highlight=True)])
    board.show_field("11", "A023")                   # fast STRING-file update

The encoder (``*_frame`` functions) is pure; ``AlphaBoard`` is a thin layer
over any pyserial-like transport opened with ``serial.serial_for_url``.
Everything here was written from the protocol description, Alpha Sign
Communications Protocol (Adaptive Micro Systems 97088061): command codes
A/E/F/G, control codes 0x07 flash, 0x0D new line, 0x10 call string, 0x1C
colour; special functions ``$`` (memory configuration) and ``/`` (Set Dimming
Register, Solar signs); read special functions (F) ``$`` (memory
configuration) and `` `` (time of day), labels as listed by adamhb123/NuInfoSys;
that the ``$`` reply (``E$``) carries the file table in the ``E$`` entry format
is our reading, not verified on a sign (see ``probe``). Cross-checked against
two open implementations of the same document: msparks/alphasign (memory
table entries ``label type lock size(4 hex) qqqq``; a 1 s pause after clearing
memory) and prototux/python-alphasign (``set_dimming_reg``: two hex digits of
dimming register, then a brightness level 00..04 = 100/86/72/58/44 %).

Why STRING files: writing a TEXT file makes the sign blank and restart its
display; a STRING file called from a TEXT file (``0x10`` + label) is redrawn
in place. So every board's TEXT file is a layout written once (start-up,
recovery) and all changing content goes into STRING files: a call, a recall
and the end of a highlight never blank the sign.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from tessera.drivers.errors import DeviceError

log = logging.getLogger(__name__)

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
SF_MEMORY = "$"  # memory configuration (clears every file); read back as the probe
SF_TIME = " "  # time of day; the probe of a sign that does not report its memory
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
# what a probe (``AlphaBoard.probe``) found
PROBE_OK = "ok"  # answers, and holds the memory configuration the driver wrote
PROBE_LOST = "memory-lost"  # answers, without that configuration (power cycle, reset)
PROBE_SILENT = "silent"  # no answer
MEMORY_ENTRY_CHARS = 11  # label, type, lock, size (4 hex), start/stop or 0000 (4)
REPLY_FRAME_CHARS = 20  # NUL*5 SOH '000' STX 'E' label ... ETX cksum*4 EOT, without the data
# a sign that answers the time but never its memory table, this many probes in a
# row, is taken not to support the memory read: it is probed by the time only
TABLE_MISSES_MAX = 3
# reply time allowed for the table of a sign this driver has not configured yet
UNKNOWN_TABLE_ENTRIES = 16


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

    def probe(self, address: str) -> str:
        """``PROBE_OK``, ``PROBE_LOST`` (answers without its configuration) or ``PROBE_SILENT``."""
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


MemoryFile = tuple[str, str, int]  # (label, kind 'A' text / 'B' string, size)


def memory_frame(address: str, files: Sequence[MemoryFile]) -> bytes:
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
    """Ask the sign to send back special function ``label`` (F: ``$`` memory, `` `` time)."""
    return frame(address, READ_SPECIAL, label.encode("ascii"))


def parse_memory_table(data: bytes) -> dict[str, tuple[str, int]]:
    """label -> (type, size) from the data of an ``E$`` reply (the ``$`` stripped).

    Entries are ``label type lock size(4 hex) qqqq``, as written by ``E$``;
    an entry that does not parse is left out (it then counts as missing).
    """
    files: dict[str, tuple[str, int]] = {}
    text = data.decode("ascii", "replace")
    for i in range(0, len(text) - MEMORY_ENTRY_CHARS + 1, MEMORY_ENTRY_CHARS):
        entry = text[i:i + MEMORY_ENTRY_CHARS]
        try:
            files[entry[0]] = (entry[1], int(entry[3:7], 16))
        except ValueError:
            continue
    return files


def table_holds(table: dict[str, tuple[str, int]], files: Sequence[MemoryFile]) -> bool:
    """Whether a sign's memory ``table`` still has every file of ``files``.

    Same label and type, and at least the size written (a sign may round a
    size up; extra files of its own do not matter).
    """
    for label, kind, size in files:
        got = table.get(label)
        if got is None or got[0] != kind or got[1] < size:
            return False
    return True


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


def hall_memory_files(slots: int, *, flash: bool = False) -> list[MemoryFile]:
    """The hall board's files: TEXT 'A' sized to its layout + 2 STRING files a line."""
    red, green = hall_labels(slots)
    files = [(HALL_TEXT_LABEL, "A", len(hall_layout_payload(slots, flash=flash)))]
    files += [(label, "B", HALL_STRING_SIZE) for label in red + green]
    return files


def hall_layout_frames(address: str, slots: int, *, flash: bool = False) -> list[bytes]:
    """Memory configuration (TEXT 'A' + 2 STRING files a line) and the hall layout."""
    layout = hall_layout_payload(slots, flash=flash)
    return [memory_frame(address, hall_memory_files(slots, flash=flash)),
            write_text_frame(address, HALL_TEXT_LABEL, layout)]


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


FIELD_MEMORY_FILES: list[MemoryFile] = [(HALL_TEXT_LABEL, "A", 64),
                                         (FIELD_STRING_LABEL, "B", FIELD_STRING_SIZE)]


def field_layout_frames(address: str) -> list[bytes]:
    """Memory + TEXT layout of a counter board whose text is STRING file '1'."""
    layout = COLOUR + AMBER.encode("ascii") + CALL_STRING + FIELD_STRING_LABEL.encode("ascii")
    return [memory_frame(address, FIELD_MEMORY_FILES),
            write_text_frame(address, HALL_TEXT_LABEL, layout)]


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

        board = AlphaBoard(transport=serial.serial_for_url("loop://"))
        board.show_field("11", "A023")    # first call: E$, 1 s pause, layout, text
        # -> 87

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
        # the memory table probe (see ``probe``): what each address was configured with,
        # whether its table has been read back as configured since, how many
        # configurations in a row were never read back as written, and the signs that
        # answer the time of day but not the memory read
        self._files: dict[str, list[MemoryFile]] = {}
        self._verified: set[str] = set()
        self._unmatched: dict[str, int] = {}
        self._unverifiable: set[str] = set()
        self._table_seen: set[str] = set()
        self._table_misses: dict[str, int] = {}
        self._time_only: set[str] = set()

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

    def _configure(self, address: str, memory: bytes, files: Sequence[MemoryFile]) -> int:
        """Send a memory configuration and wait until the sign can take content."""
        n = self._send(memory)
        self._files[address] = list(files)
        self._verified.discard(address)
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
            n += self._configure(addr, memory,
                                 hall_memory_files(self._hall_lines, flash=self._flash))
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
            n += self._configure(addr, memory, FIELD_MEMORY_FILES)
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
        """True when the sign at ``address`` answers (see ``probe``)."""
        return self.probe(address) != PROBE_SILENT

    def probe(self, address: str) -> str:
        """One small read-back: is the sign there, and does it still hold its configuration?

        Reads the memory configuration (``F$``; the sign answers ``E$`` + its file
        table) and compares it with the files this driver configured at
        ``address``: ``PROBE_LOST`` when one of them is gone or changed type or
        shrank (the sign lost power and came back with its factory memory, or was
        reset), ``PROBE_OK`` when it holds them, ``PROBE_SILENT`` without a reply.

        A sign that has never answered ``F$`` is asked the time of day as well, and
        after ``TABLE_MISSES_MAX`` such probes in a row (answers the time, never the
        table) only the time: it is alive, but a lost configuration goes unnoticed
        (logged once). A sign whose table never reads back as configured, twice in
        a row right after being configured, is taken to report its table in a form
        of its own: from then on the table is not compared (logged once), so a
        mismatch cannot turn into a resend at every probe.
        """
        addr = check_address(address)
        if addr not in self._time_only:
            files = self._files.get(addr)
            entries = len(files) if files is not None else UNKNOWN_TABLE_ENTRIES
            data = self._read_special(addr, SF_MEMORY, entries * MEMORY_ENTRY_CHARS)
            if data is not None and data[:1] == SF_MEMORY.encode("ascii"):
                self._table_seen.add(addr)
                self._table_misses.pop(addr, None)
                return self._compare(addr, parse_memory_table(data[1:]))
            if addr in self._table_seen:
                return PROBE_SILENT  # it did answer this before: not answering now
        data = self._read_special(addr, SF_TIME, 4)
        if data is None or data[:1] != SF_TIME.encode("ascii"):
            return PROBE_SILENT
        if addr not in self._time_only:
            misses = self._table_misses[addr] = self._table_misses.get(addr, 0) + 1
            if misses >= TABLE_MISSES_MAX:
                self._time_only.add(addr)
                log.warning("caller board %s answers the time of day but not the memory "
                            "configuration read (F$): a power-cycled sign at this address "
                            "is not detected", addr)
        return PROBE_OK

    def _compare(self, addr: str, table: dict[str, tuple[str, int]]) -> str:
        files = self._files.get(addr)
        if files is None or addr in self._unverifiable:
            return PROBE_OK  # nothing configured yet by us, or nothing to compare with
        if table_holds(table, files):
            self._verified.add(addr)
            self._unmatched.pop(addr, None)
            return PROBE_OK
        if addr not in self._verified:  # not read back as written since the last E$
            unmatched = self._unmatched[addr] = self._unmatched.get(addr, 0) + 1
            if unmatched >= 2:
                self._unverifiable.add(addr)
                log.warning("caller board %s never reports the memory configuration it "
                            "was sent (reports %s): its table is no longer compared, so a "
                            "power-cycled sign at this address is not detected",
                            addr, sorted(table.items()))
                return PROBE_OK
        return PROBE_LOST

    def _read_special(self, addr: str, label: str, data_chars: int) -> bytes | None:
        """Send read special function ``label``; the reply's data (after ``E``) or None."""
        request = read_special_frame(addr, label)
        reply_chars = REPLY_FRAME_CHARS + data_chars
        with self._lock:
            try:
                self._port.reset_input_buffer()
                self._port.write(request)
                self._port.flush()
                # the reply takes its own line time on top of the sign's answer delay
                reply = self._read_packet(
                    request, timeout=self._reply_timeout + 2 * reply_chars * self._char_s,
                    limit=256 + len(request) + 2 * reply_chars)
            except Exception as e:
                raise BoardError(f"caller board line failed during ping: {e}") from e
        parsed = parse_reply(reply) if reply else None
        if parsed is None or parsed[0] != WRITE_SPECIAL:
            return None
        return parsed[1]

    def _read_packet(self, request: bytes = b"", *, timeout: float | None = None,
                     limit: int | None = None) -> bytes:
        """The first packet that is not our own ``request`` echoed back.

        A two-wire RS-485 adapter often hears its own transmission: the request
        comes back before the sign's reply and ends with the same EOT.
        """
        deadline = time.monotonic() + (self._reply_timeout if timeout is None else timeout)
        limit = 256 + len(request) if limit is None else limit
        echo = request.lstrip(b"\x00")
        buf = bytearray()
        while time.monotonic() < deadline and len(buf) < limit:
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
