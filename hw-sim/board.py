"""Caller-board emulator: Alpha-protocol signs behind a pty.

    with BoardEmulator(baudrate=9600, throttle=True) as emu:
        board = AlphaBoard.open(emu.path)
        board.show_field("11", "A023")
        emu.wait_frames(2)
        emu.text("11")
    # -> 'A023'

The parser here is written separately from ``tessera.drivers.alpha`` (it
imports no encoder), so it is an independent check of the bytes the driver
sends. Frames with a bad checksum or a broken structure are rejected and
counted in ``rejected`` (reason -> count); the board content is untouched.

It behaves like a sign where the Alpha protocol (97088061) says a sign
differs from a plain decoder:

- writing a TEXT file (``A``) or the memory configuration (``E$``) blanks
  the display and restarts it: each one counts in ``SignState.blanks``;
  STRING writes (``G``) are redrawn in place and do not;
- after ``E$`` the sign rebuilds its memory for ``memory_busy_s`` and drops
  frames addressed to it meanwhile (``rejected["busy-after-memory-config"]``);
- once configured, only files in its memory table can be written (unknown
  label or STRING longer than its size: rejected);
- ``E/`` is Set Dimming Register: a threshold (2 hex digits) and a level
  00..04 (100/86/72/58/44 %); anything else is rejected;
- ``echo=True`` plays a two-wire RS-485 adapter that hears its own
  transmission: every byte the driver sends comes back to it;
- read special functions (``F``): `` `` answers the time of day, ``$`` the
  memory configuration (``E$`` + the file table as ``E$`` wrote it; empty
  for factory memory). ``time_only`` holds addresses of signs that answer
  the time but not ``$`` (older firmware);
- ``power_cycle(address)`` plays a sign without battery-backed memory that
  lost power while the line stayed up: memory table, files and brightness are
  gone (factory memory, display empty), and it keeps answering.
"""

from __future__ import annotations

import fcntl
import os
import select
import struct
import termios
import threading
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

MAX_FRAME = 4096
COLOURS = {"1": "red", "2": "green", "3": "amber", "4": "dimred", "5": "dimgreen",
           "6": "brown", "7": "orange", "8": "yellow"}
RGB = {"red": (255, 40, 30), "green": (40, 230, 60), "amber": (255, 170, 0),
       "dimred": (150, 20, 15), "dimgreen": (20, 130, 30), "brown": (140, 80, 20),
       "orange": (255, 120, 0), "yellow": (255, 240, 40)}


@dataclass
class Segment:
    text: str
    colour: str = "red"
    flash: bool = False


DIM_PERCENT = (100, 86, 72, 58, 44)  # Set Dimming Register levels 00..04
MEMORY_BUSY_S = 0.5


@dataclass
class SignState:
    """What one addressed sign holds in memory."""

    texts: dict[str, bytes] = field(default_factory=dict)  # label -> raw TEXT data
    strings: dict[str, str] = field(default_factory=dict)
    memory: str = ""
    files: dict[str, tuple[str, int]] = field(default_factory=dict)  # label -> (type, size)
    brightness: int = 100
    frames: int = 0
    blanks: int = 0  # times the display blanked (TEXT write, memory configuration)
    busy_until: float = 0.0
    power_cycles: int = 0


class BoardEmulator:
    """Alpha signs on a pty: parse, check, answer (or not), render as text and PNG."""

    def __init__(self, *, baudrate: int = 9600, throttle: bool = False, echo: bool = False,
                 memory_busy_s: float = MEMORY_BUSY_S) -> None:
        self.baudrate = baudrate
        self.throttle = throttle
        self.echo = echo
        self.memory_busy_s = memory_busy_s
        self.signs: dict[str, SignState] = {}
        self.rejected: dict[str, int] = {}
        self.silent: set[str] = set()  # addresses that do not answer read requests
        self.time_only: set[str] = set()  # answer the time of day, not the memory table
        self.answer = True  # False: no sign answers (line cut on the receive side)
        self.frame_times: list[float] = []  # monotonic time each good frame's EOT arrived
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self._master)
        self.path = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._buf = bytearray()
        self._busy = False
        self.bytes_received = 0
        self._line_free_at = 0.0
        self._thread = threading.Thread(target=self._run, name="board-emulator", daemon=True)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> BoardEmulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> BoardEmulator:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------------ reading

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], 0.05)
                if not ready:
                    self._unstick_line()
                    continue
                self._busy = True
                chunk = os.read(self._master, 4096)
                if self.echo:  # the adapter's receiver hears our transmitter
                    os.write(self._master, chunk)
            except OSError:
                self._busy = False
                return
            self._receive(chunk)
            with self._cond:
                self.bytes_received += len(chunk)
                self._busy = False
                self._cond.notify_all()

    def _unstick_line(self) -> None:
        """Put the pty's line speed back to its opening value between frames.

        A Linux pty keeps CS8 and no parity whatever a client asks, and refuses
        (EINVAL) a ``tcsetattr`` that changes nothing it supports: the next client
        asking for 7E1 at the speed the previous one left would fail to open the
        line (seen when a display process restarts). A real USB adapter has no such
        memory; resetting the speed makes every client's setting a change again.
        """
        try:
            a = termios.tcgetattr(self._slave)
            if a[4] != termios.B38400 or a[5] != termios.B38400:
                a[2] = (a[2] & ~termios.CBAUD) | termios.B38400
                a[4] = a[5] = termios.B38400
                termios.tcsetattr(self._slave, termios.TCSANOW, a)
        except (OSError, termios.error):
            pass

    def _receive(self, chunk: bytes) -> None:
        for i, b in enumerate(chunk):
            if self.throttle:
                self._pace(i == 0)
            self._buf.append(b)
            if b == 0x04:  # EOT ends a packet
                self._packet(bytes(self._buf))
                self._buf.clear()
            elif len(self._buf) > MAX_FRAME:
                self._reject("too-long")
                self._buf.clear()

    def _pace(self, first: bool) -> None:
        # each 7E1 character is 10 bits on the wire: start + 7 data + parity + stop
        now = time.monotonic()
        if first and self._line_free_at < now:
            self._line_free_at = now
        self._line_free_at += 10.0 / self.baudrate
        delay = self._line_free_at - time.monotonic()
        if delay > 0.0005:
            time.sleep(delay)

    def _reject(self, reason: str) -> None:
        with self._cond:
            self.rejected[reason] = self.rejected.get(reason, 0) + 1
            self._cond.notify_all()

    # ------------------------------------------------------------------ parsing

    def _packet(self, raw: bytes) -> None:
        data = raw.lstrip(b"\x00")
        if not data.startswith(b"\x01") or len(data) < 11:
            self._reject("no-soh" if data[:1] != b"\x01" else "truncated")
            return
        type_code, address = chr(data[1]), data[2:4].decode("ascii", "replace")
        if data[4:5] != b"\x02":
            self._reject("no-stx")
            return
        etx = data.rfind(b"\x03")
        if etx < 5 or len(data) != etx + 6:
            self._reject("no-etx")
            return
        body, check = data[4:etx + 1], data[etx + 1:etx + 5]
        try:
            expected = int(check.decode("ascii"), 16)
        except ValueError:
            self._reject("bad-checksum")
            return
        if sum(body) % 65536 != expected:
            self._reject("bad-checksum")
            return
        if type_code not in "Z!?" or not _is_address(address):
            self._reject("bad-address")
            return
        if not self._apply(address.upper(), body[1:-1]):
            return
        with self._cond:
            self.frame_times.append(time.monotonic())
            self._cond.notify_all()

    def _apply(self, address: str, cmd: bytes) -> bool:
        code, rest = chr(cmd[0]) if cmd else "", cmd[1:]
        if code not in "AEFG" or not rest:
            self._reject("bad-command")
            return False
        if any(b > 0x7F for b in rest):
            self._reject("not-7-bit")
            return False
        targets = list(self.signs) if address == "00" else [address]
        now = time.monotonic()
        with self._cond:
            for addr in targets:
                sign = self.signs.setdefault(addr, SignState())
                if now < sign.busy_until:
                    self.rejected["busy-after-memory-config"] = \
                        self.rejected.get("busy-after-memory-config", 0) + 1
                    self._cond.notify_all()
                    return False
                problem = _check(sign, code, rest)
                if problem:
                    self.rejected[problem] = self.rejected.get(problem, 0) + 1
                    self._cond.notify_all()
                    return False
                sign.frames += 1
                label = chr(rest[0])
                if code == "A":
                    sign.texts[label] = rest[1:]
                    sign.blanks += 1
                elif code == "G":
                    sign.strings[label] = rest[1:].decode("ascii")
                elif code == "E" and label == "$":
                    sign.memory = rest[1:].decode("ascii")
                    sign.files = _memory_table(sign.memory)
                    sign.texts.clear()
                    sign.strings.clear()
                    sign.blanks += 1
                    sign.busy_until = now + self.memory_busy_s
                elif code == "E" and label == "/":
                    sign.brightness = DIM_PERCENT[int(rest[3:5].decode("ascii"))]
        if code == "F" and address != "00":
            self._answer(address, chr(rest[0]))
        return True

    def _answer(self, address: str, label: str) -> None:
        if not self.answer or address in self.silent:
            return
        if label == " ":
            data = time.strftime("%H%M").encode("ascii")
        elif label == "$" and address not in self.time_only:
            with self._cond:
                sign = self.signs.get(address)
                data = (sign.memory if sign is not None else "").encode("ascii")
        else:
            return
        body = b"\x02E" + label.encode("ascii") + data + b"\x03"
        check = f"{sum(body) % 65536:04X}".encode()
        reply = b"\x00" * 5 + b"\x01" + b"000" + body + check + b"\x04"
        try:
            os.write(self._master, reply)
        except OSError:
            pass

    # ------------------------------------------------------------------ faults

    def power_cycle(self, address: str | None = None) -> None:
        """The sign at ``address`` (every sign: None) loses power and comes back.

        Memory table, TEXT and STRING files and brightness return to factory
        state: the display is empty, a ``F$`` read reports no files, and the
        sign keeps answering reads. Frame and blank counts carry on.
        """
        with self._cond:
            targets = list(self.signs) if address is None else [address.upper()]
            for addr in targets:
                old = self.signs.get(addr, SignState())
                self.signs[addr] = SignState(frames=old.frames, blanks=old.blanks,
                                             power_cycles=old.power_cycles + 1)
            self._cond.notify_all()

    # ------------------------------------------------------------------ content

    def lines(self, address: str) -> list[list[Segment]]:
        """The sign's visible content: lines of coloured segments (TEXT file 'A')."""
        with self._cond:
            sign = self.signs.get(address.upper())
            if sign is None or "A" not in sign.texts:
                return []
            return _render(sign.texts["A"], sign.strings)

    def text(self, address: str) -> str:
        """Visible text, lines joined with newlines; highlighted lines marked with '*'.

        Blank lines at the bottom (a hall layout with fewer calls than lines)
        show nothing and are left out.
        """
        out = []
        for line in self.lines(address):
            txt = "".join(s.text for s in line)
            hi = any(s.colour == "red" or s.flash for s in line if s.text)
            out.append(f"*{txt}" if hi else txt)
        while out and out[-1] == "":
            out.pop()
        return "\n".join(out)

    def blanks(self, address: str | None = None) -> int:
        """How often the sign at ``address`` (or every sign) blanked."""
        with self._cond:
            if address is not None:
                sign = self.signs.get(address.upper())
                return 0 if sign is None else sign.blanks
            return sum(s.blanks for s in self.signs.values())

    def wait_frames(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until at least ``count`` good frames arrived in total."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.frame_times) >= count, timeout)

    def wait_bytes(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until ``count`` bytes in total have been received and parsed."""
        with self._cond:
            return self._cond.wait_for(lambda: self.bytes_received >= count, timeout)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until every byte written to the pty so far has been parsed."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while time.monotonic() < deadline:
            try:
                raw = fcntl.ioctl(self._master, termios.FIONREAD, b"\0\0\0\0")
            except OSError:
                return False
            pending = struct.unpack("i", raw)[0]
            # the kernel hands written bytes to the master side asynchronously, so
            # "nothing pending" must hold for a while before it means idle
            quiet = quiet + 1 if pending == 0 and not self._busy else 0
            if quiet >= 10:
                return True
            time.sleep(0.005)
        return False

    def wait_rejected(self, count: int, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: sum(self.rejected.values()) >= count, timeout)

    def render_png(self, address: str, path: str | Path, *, width_chars: int = 16) -> Path:
        """Draw the sign as LEDs on black; brightness dims the colours."""
        from PIL import Image, ImageDraw, ImageFont

        rows = self.lines(address) or [[]]
        sign = self.signs.get(address.upper(), SignState())
        font: ImageFont.FreeTypeFont | ImageFont.ImageFont
        try:
            font = ImageFont.truetype("DejaVuSansMono-Bold.ttf", 28)
        except OSError:
            font = ImageFont.load_default()
        img = Image.new("RGB", (20 + width_chars * 17, 16 + 36 * len(rows)), (0, 0, 0))
        draw = ImageDraw.Draw(img)
        scale = max(sign.brightness, 10) / 100
        for r, row in enumerate(rows):
            x = 10
            for seg in row:
                rgb = RGB.get(seg.colour, (255, 255, 255))
                draw.text((x, 8 + r * 36), seg.text, font=font,
                          fill=tuple(int(c * scale) for c in rgb))
                x += int(draw.textlength(seg.text, font=font))
        out = Path(path)
        img.save(out)
        return out


def _memory_table(spec: str) -> dict[str, tuple[str, int]]:
    """E$ entries: label, type (A text, B string, D dots), lock, size (4 hex), 4 more."""
    files: dict[str, tuple[str, int]] = {}
    for i in range(0, len(spec) - 10, 11):
        entry = spec[i:i + 11]
        try:
            files[entry[0]] = (entry[1], int(entry[3:7], 16))
        except ValueError:
            continue
    return files


def _check(sign: SignState, code: str, rest: bytes) -> str | None:
    """Why a configured sign would not take this command (None: it does)."""
    label = chr(rest[0])
    if code == "E" and label == "/":
        arg = rest[1:]
        ok = (len(arg) == 4 and all(c in b"0123456789ABCDEFabcdef" for c in arg[:2])
              and arg[2:4] in (b"00", b"01", b"02", b"03", b"04"))
        return None if ok else "bad-dimming"
    if not sign.files or code not in "AG":
        return None  # factory memory: the sign takes any file
    kind, size = sign.files.get(label, ("", 0))
    if kind != ("A" if code == "A" else "B"):
        return "unallocated-file"
    data = rest[1:]
    if code == "A" and data[:1] == b"\x1b":
        data = data[3:]  # ESC position mode: the header is not file content
    if len(data) > size:
        return "file-too-long"
    return None


def _is_address(text: str) -> bool:
    return len(text) == 2 and all(c in "0123456789abcdefABCDEF" for c in text)


def _render(data: bytes, strings: dict[str, str]) -> list[list[Segment]]:
    """Interpret a TEXT file: ESC pos mode header, then text with control codes."""
    if data[:1] == b"\x1b":
        data = data[3:]
    lines: list[list[Segment]] = [[]]
    colour, flash, i = "red", False, 0
    while i < len(data):
        b = data[i]
        if b == 0x1C and i + 1 < len(data):
            colour, i = COLOURS.get(chr(data[i + 1]), colour), i + 2
        elif b == 0x07 and i + 1 < len(data):
            flash, i = data[i + 1] == ord("1"), i + 2
        elif b == 0x10 and i + 1 < len(data):
            lines[-1].append(Segment(strings.get(chr(data[i + 1]), ""), colour, flash))
            i += 2
        elif b == 0x1A and i + 1 < len(data):
            i += 2  # font selection does not change the text
        elif b in (0x0D, 0x0C):
            lines.append([])
            i += 1
        elif b >= 0x20:
            j = i
            while j < len(data) and data[j] >= 0x20:
                j += 1
            lines[-1].append(Segment(data[i:j].decode("ascii"), colour, flash))
            i = j
        else:
            i += 1
    return lines
