"""Caller-board emulator: Alpha-protocol signs behind a pty.

    >>> with BoardEmulator(baudrate=9600, throttle=True) as emu:
    ...     board = AlphaBoard.open(emu.path)
    ...     board.show_field("11", "A023")
    ...     emu.wait_frames(2)
    ...     emu.text("11")
    'A023'

The parser here is written separately from ``tessera.drivers.alpha`` (it
imports no encoder), so it is an independent check of the bytes the driver
sends. Frames with a bad checksum or a broken structure are rejected and
counted in ``rejected`` (reason -> count); the board content is untouched.
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


@dataclass
class SignState:
    """What one addressed sign holds in memory."""

    texts: dict[str, bytes] = field(default_factory=dict)  # label -> raw TEXT data
    strings: dict[str, str] = field(default_factory=dict)
    memory: str = ""
    brightness: int = 100
    frames: int = 0


class BoardEmulator:
    """Alpha signs on a pty: parse, check, answer (or not), render as text and PNG."""

    def __init__(self, *, baudrate: int = 9600, throttle: bool = False) -> None:
        self.baudrate = baudrate
        self.throttle = throttle
        self.signs: dict[str, SignState] = {}
        self.rejected: dict[str, int] = {}
        self.silent: set[str] = set()  # addresses that do not answer read requests
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
        with self._cond:
            for addr in targets:
                sign = self.signs.setdefault(addr, SignState())
                sign.frames += 1
                label = chr(rest[0])
                if code == "A":
                    sign.texts[label] = rest[1:]
                elif code == "G":
                    sign.strings[label] = rest[1:].decode("ascii")
                elif code == "E" and label == "$":
                    sign.memory = rest[1:].decode("ascii")
                    sign.texts.clear()
                    sign.strings.clear()
                elif code == "E" and label == "/":
                    sign.brightness = int(rest[1:3], 16)
        if code == "F" and address != "00":
            self._answer(address, chr(rest[0]))
        return True

    def _answer(self, address: str, label: str) -> None:
        if not self.answer or address in self.silent or label != " ":
            return
        body = b"\x02E " + time.strftime("%H%M").encode("ascii") + b"\x03"
        check = f"{sum(body) % 65536:04X}".encode()
        reply = b"\x00" * 5 + b"\x01" + b"000" + body + check + b"\x04"
        try:
            os.write(self._master, reply)
        except OSError:
            pass

    # ------------------------------------------------------------------ content

    def lines(self, address: str) -> list[list[Segment]]:
        """The sign's visible content: lines of coloured segments (TEXT file 'A')."""
        with self._cond:
            sign = self.signs.get(address.upper())
            if sign is None or "A" not in sign.texts:
                return []
            return _render(sign.texts["A"], sign.strings)

    def text(self, address: str) -> str:
        """Visible text, lines joined with newlines; highlighted lines marked with '*'."""
        out = []
        for line in self.lines(address):
            txt = "".join(s.text for s in line)
            hi = any(s.colour == "red" or s.flash for s in line if s.text)
            out.append(f"*{txt}" if hi else txt)
        return "\n".join(out)

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
