"""An independent ESC/POS decoder and ticket renderer for the printer emulator.

Written from the Epson ESC/POS reference, not from Tessera's encoder (which it
must never import): it is the check that what the driver sends is what a
printer would print. Feed it bytes; each cut yields a ``PrintedTicket`` with a
PNG-ready image and a record of the decoded content.

    >>> dec = EscPosDecoder(width_dots=576)
    >>> [t.record["lines"][0]["text"] for t in dec.feed(b"\\x1b@HELLO\\n\\x1dV\\x00")]
    ['HELLO']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import segno
from PIL import Image, ImageDraw, ImageFont

ESC, GS, FS, DLE, LF = 0x1B, 0x1D, 0x1C, 0x10, 0x0A
MONO_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
CJK_FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
LINE_SPACING = 30  # default 1/6 inch on a 180/203 dpi head, rounded
# ESC commands with a fixed number of parameter bytes that we accept and ignore
_ESC_SKIP = {0x20: 1, 0x25: 1, 0x32: 0, 0x33: 1, 0x47: 1, 0x4D: 1, 0x52: 1, 0x56: 1,
             0x63: 2, 0x70: 3, 0x74: 1, 0x7B: 1, 0x3D: 1, 0x55: 1}
_GS_SKIP = {0x42: 1, 0x48: 1, 0x4C: 2, 0x57: 2, 0x61: 1, 0x66: 1, 0x68: 1, 0x77: 1,
            0x49: 1, 0x72: 1}
_QR_EC = {48: "L", 49: "M", 50: "Q", 51: "H"}


class Incomplete(Exception):
    """More bytes are needed to decode the command at the current position."""


@dataclass
class _Style:
    bold: bool = False
    underline: bool = False
    width: int = 1
    height: int = 1
    align: int = 0
    chinese: bool = False


@dataclass
class _Element:
    kind: str  # "text", "image", "feed"
    height: int
    image: Image.Image | None = None
    align: int = 0
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class PrintedTicket:
    """What one cut produced: the paper as an image and what was decoded."""

    image: Image.Image
    record: dict[str, Any]

    def save(self, out_dir: Path, index: int) -> tuple[Path, Path]:
        import json

        out_dir.mkdir(parents=True, exist_ok=True)
        png, js = out_dir / f"ticket-{index:04d}.png", out_dir / f"ticket-{index:04d}.json"
        self.image.save(png)
        js.write_text(json.dumps(self.record, ensure_ascii=False, indent=1), encoding="utf-8")
        return png, js


@lru_cache(maxsize=8)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _glyph_cell(ch: str) -> tuple[int, str, int]:
    """(cell width, font path, font px) of a ROM-font character: 12x24 or 24x24 for CJK."""
    if ord(ch) > 0x2E7F:
        return 24, CJK_FONT, 22
    return 12, MONO_FONT, 20


class EscPosDecoder:
    """Incremental ESC/POS decoder. ``feed`` returns the tickets completed by a cut.

    ``on_status(n)`` is called for every real-time ``DLE EOT n`` request.
    """

    def __init__(self, width_dots: int = 576,
                 on_status: Callable[[int], None] | None = None, *,
                 cutter: bool = True) -> None:
        self.width = width_dots
        self.on_status = on_status or (lambda n: None)
        self.cutter = cutter  # False: GS V is ignored, ``tear()`` ends a ticket
        self._buf = bytearray()
        self.beeps = 0  # buzzer commands heard (ESC B beeps, ESC p pulses, DLE DC4 1)
        self.ignored_cuts = 0  # GS V received by a printer without a cutter
        self.clear_requests = 0  # DLE DC4 8 seen in the data stream (online: nothing held)
        self._reset_page()
        self.style = _Style()

    # ---------------------------------------------------------------- state

    def _reset_page(self) -> None:
        self.elements: list[_Element] = []
        self.segments: list[tuple[str, _Style]] = []
        self.qr_data = b""
        self.qr_module = 3
        self.qr_ec = "L"
        self.stored_graphic: Image.Image | None = None
        self.stats: dict[str, Any] = {"bytes": 0, "raster_bands": 0, "graphics": 0,
                                      "chinese_mode_on": 0, "chinese_mode_off": 0,
                                      "qr": [], "unknown": []}

    def feed(self, data: bytes) -> list[PrintedTicket]:
        self._buf += data
        done: list[PrintedTicket] = []
        pos = 0
        while pos < len(self._buf):
            try:
                used, ticket = self._command(pos)
            except Incomplete:
                break
            if ticket is not None:  # the cut itself belongs to the ticket it ends
                ticket.record["bytes"] += used
                done.append(ticket)
            elif not _is_status_request(self._buf, pos):
                self.stats["bytes"] += used
            pos += used
        del self._buf[:pos]
        return done

    def clear(self) -> None:
        """Empty the receive and print buffers (real-time DLE DC4 8 / DLE ENQ 2)."""
        self._buf.clear()
        self._reset_page()

    def tear(self) -> PrintedTicket | None:
        """The paper torn off at the tear bar (a printer without a cutter)."""
        self._flush_line()
        if not any(e.kind != "feed" for e in self.elements):
            return None
        fed = self.trailing_feed()
        ticket = self._cut("tear")
        ticket.record["feed_after_dots"] = fed
        return ticket

    def trailing_feed(self) -> int:
        """Dots fed after the last ink of the page so far (what passes the tear bar)."""
        total = 0
        for e in reversed(self.elements):
            if e.kind != "feed":
                break
            total += e.height
        return total

    def _need(self, pos: int, n: int) -> bytes:
        if pos + n > len(self._buf):
            raise Incomplete
        return bytes(self._buf[pos:pos + n])

    # ---------------------------------------------------------------- dispatch

    def _command(self, pos: int) -> tuple[int, PrintedTicket | None]:
        b = self._buf[pos]
        if b == LF:
            self._newline()
            return 1, None
        if b in (0x0D, 0x00):
            return 1, None
        if b == ESC:
            return self._esc(pos), None
        if b == GS:
            return self._gs(pos)
        if b == FS:
            return self._fs(pos), None
        if b == DLE:
            return self._dle(pos), None
        return self._text(pos), None

    def _text(self, pos: int) -> int:
        b = self._buf[pos]
        if b < 0x20:
            self.stats["unknown"].append(f"0x{b:02x}")
            return 1
        if b < 0x80:
            self._add_char(chr(b))
            return 1
        if self.style.chinese:  # GB18030: 2 bytes, or 4 when the 2nd is a digit
            second = self._need(pos, 2)[1]
            n = 4 if 0x30 <= second <= 0x39 else 2
            raw = self._need(pos, n)
            self._add_char(raw.decode("gb18030", errors="replace"))
            return n
        self._add_char(bytes([b]).decode("cp437"))
        return 1

    def _add_char(self, ch: str) -> None:
        s = self.style
        self.segments.append((ch, _Style(s.bold, s.underline, s.width, s.height, s.align,
                                         s.chinese)))

    def _esc(self, pos: int) -> int:
        cmd = self._need(pos, 2)[1]
        s = self.style
        if cmd == 0x40:  # ESC @ initialise
            self.style = _Style()
            return 2
        if cmd in (0x21, 0x45, 0x2D, 0x61, 0x64, 0x4A):
            n = self._need(pos, 3)[2]
            if cmd == 0x21:
                s.bold, s.underline = bool(n & 0x08), bool(n & 0x80)
                s.height, s.width = (2 if n & 0x10 else 1), (2 if n & 0x20 else 1)
            elif cmd == 0x45:
                s.bold = bool(n & 1)
            elif cmd == 0x2D:
                s.underline = bool(n & 3)
            elif cmd == 0x61:
                s.align = n - 48 if n >= 48 else n
            elif cmd == 0x64:
                self._flush_line()
                self.elements.append(_Element("feed", n * LINE_SPACING))
            else:
                self._flush_line()
                self.elements.append(_Element("feed", n))
            return 3
        if cmd == 0x42:  # ESC B n t: built-in buzzer, n beeps
            self.beeps += self._need(pos, 4)[2]
            return 4
        if cmd == 0x70:  # ESC p m t1 t2: drawer-kick pulse (an external buzzer)
            self._need(pos, 5)
            self.beeps += 1
            return 5
        if cmd in _ESC_SKIP:
            self._need(pos, 2 + _ESC_SKIP[cmd])
            return 2 + _ESC_SKIP[cmd]
        if cmd == 0x2A:  # ESC * bit image: m nL nH data
            m, nl, nh = self._need(pos, 5)[2:5]
            per_col = 3 if m in (32, 33) else 1
            return 5 + len(self._need(pos + 5, (nl + 256 * nh) * per_col))
        self.stats["unknown"].append(f"ESC 0x{cmd:02x}")
        return 2

    def _gs(self, pos: int) -> tuple[int, PrintedTicket | None]:
        cmd = self._need(pos, 2)[1]
        if cmd == 0x21:  # GS ! size
            n = self._need(pos, 3)[2]
            self.style.width, self.style.height = (n >> 4) + 1, (n & 7) + 1
            return 3, None
        if cmd == 0x56:  # GS V cut
            m = self._need(pos, 3)[2]
            used = 4 if m in (65, 66, 97, 98, 103, 104) else 3
            if used == 4:
                self._need(pos, 4)
                self._flush_line()
                self.elements.append(_Element("feed", self._buf[pos + 3]))
            if not self.cutter:
                self.ignored_cuts += 1
                return used, None
            return used, self._cut("partial" if m in (1, 49, 66) else "full")
        if cmd == 0x76:  # GS v 0 raster
            hdr = self._need(pos, 8)
            xb, rows = hdr[4] + 256 * hdr[5], hdr[6] + 256 * hdr[7]
            data = self._need(pos + 8, xb * rows)
            self._raster(data, xb, rows, "raster_bands")
            return 8 + xb * rows, None
        if cmd == 0x28:  # GS ( x pL pH ...
            hdr = self._need(pos, 5)
            n = hdr[3] + 256 * hdr[4]
            body = self._need(pos + 5, n)
            if hdr[2] == 0x6B:
                self._qr(body)
            elif hdr[2] == 0x4C:
                self._graphics(body)
            else:
                self.stats["unknown"].append(f"GS ( 0x{hdr[2]:02x}")
            return 5 + n, None
        if cmd in _GS_SKIP:
            return 2 + len(self._need(pos + 2, _GS_SKIP[cmd])), None
        self.stats["unknown"].append(f"GS 0x{cmd:02x}")
        return 2, None

    def _fs(self, pos: int) -> int:
        cmd = self._need(pos, 2)[1]
        if cmd == 0x26:  # FS & Chinese character mode on
            self.style.chinese = True
            self.stats["chinese_mode_on"] += 1
            return 2
        if cmd == 0x2E:  # FS . Chinese character mode off
            self.style.chinese = False
            self.stats["chinese_mode_off"] += 1
            return 2
        if cmd in (0x21, 0x2D, 0x57, 0x43):
            self._need(pos, 3)
            return 3
        self.stats["unknown"].append(f"FS 0x{cmd:02x}")
        return 2

    def _dle(self, pos: int) -> int:
        cmd = self._need(pos, 2)[1]
        if cmd == 0x04:
            n = self._need(pos, 3)[2]
            self.on_status(n)
            return 3
        if cmd == 0x14:  # DLE DC4 fn ...: fn=8 has 7 parameter bytes, fn=1/2 two
            fn = self._need(pos, 3)[2]
            if fn == 8:
                self._need(pos, 10)
                self.clear_requests += 1
                self._reset_page()  # what was buffered before it never prints
                return 10
            self._need(pos, 5)
            if fn == 1:
                self.beeps += 1
            return 5
        if cmd == 0x05:  # DLE ENQ n
            self._need(pos, 3)
            return 3
        return 1

    # ---------------------------------------------------------------- content

    def _raster(self, data: bytes, xbytes: int, rows: int, counter: str) -> None:
        self._flush_line()
        img = Image.frombytes("1", (xbytes * 8, rows), data)
        img = Image.eval(img.convert("L"), lambda v: 255 - v)  # 1 bits are ink
        self.elements.append(_Element("image", rows, img, self.style.align))
        self.stats[counter] += 1

    def _graphics(self, body: bytes) -> None:
        # GS ( L m fn ...: fn 112 stores a raster graphic, fn 50 / 2 prints it
        if len(body) < 2:
            return
        fn = body[1]
        if fn == 112 and len(body) >= 10:
            xdots, ydots = body[6] + 256 * body[7], body[8] + 256 * body[9]
            xb = (xdots + 7) // 8
            img = Image.frombytes("1", (xb * 8, ydots), bytes(body[10:10 + xb * ydots]))
            self.stored_graphic = Image.eval(img.convert("L"), lambda v: 255 - v)
        elif fn in (50, 2) and self.stored_graphic is not None:
            self._flush_line()
            g = self.stored_graphic
            self.elements.append(_Element("image", g.height, g, self.style.align))
            self.stats["graphics"] += 1

    def _qr(self, body: bytes) -> None:
        if len(body) < 2 or body[0] != 49:
            return
        fn = body[1]
        if fn == 67:
            self.qr_module = body[2]
        elif fn == 69:
            self.qr_ec = _QR_EC.get(body[2], "L")
        elif fn == 80:
            self.qr_data = bytes(body[3:])
        elif fn == 81:
            self._flush_line()
            payload = self.qr_data.decode("utf-8", errors="replace")
            qr = segno.make_qr(payload, error=self.qr_ec)
            n = len(qr.matrix) + 8  # with the 4-module quiet zone a scanner needs
            modules = Image.new("L", (n, n), 255)
            modules.paste(Image.frombytes("L", (n - 8, n - 8), bytes(
                0 if bit else 255 for row in qr.matrix for bit in row)), (4, 4))
            size = n * self.qr_module
            img = modules.resize((size, size), Image.Resampling.NEAREST)
            self.elements.append(_Element("image", size, img, self.style.align))
            self.stats["qr"].append(payload)

    def _newline(self) -> None:
        if not self.segments:
            self.elements.append(_Element("feed", LINE_SPACING))
        self._flush_line()

    def _flush_line(self) -> None:
        if not self.segments:
            return
        segs, self.segments = self.segments, []
        height = max(24 * st.height for _, st in segs) + 6
        img = Image.new("L", (self.width, height), 255)
        draw = ImageDraw.Draw(img)
        x = 0
        for ch, st in segs:
            cell, path, px = _glyph_cell(ch)
            glyph = Image.new("L", (cell, 24), 255)
            ImageDraw.Draw(glyph).text((0, 1), ch, font=_font(path, px), fill=0)
            big = glyph.resize((cell * st.width, 24 * st.height), Image.Resampling.NEAREST)
            top = height - 3 - big.height
            img.paste(big, (x, top))
            if st.bold:
                img.paste(big, (x + 1, top), Image.eval(big, lambda v: 255 - v))
            if st.underline:
                draw.line([(x, height - 2), (x + big.width, height - 2)], fill=0)
            x += big.width
        used = img.crop((0, 0, min(x, self.width), height))
        text = "".join(ch for ch, _ in segs)
        first = segs[0][1]
        self.elements.append(_Element("text", height, used, first.align, {
            "text": text, "width": max(st.width for _, st in segs),
            "height": max(st.height for _, st in segs),
            "bold": any(st.bold for _, st in segs), "align": first.align,
            "chinese": any(st.chinese for _, st in segs)}))

    def _cut(self, kind: str) -> PrintedTicket:
        self._flush_line()
        total = sum(e.height for e in self.elements) or 1
        page = Image.new("L", (self.width, total), 255)
        y = 0
        for e in self.elements:
            if e.image is not None:
                w = min(e.image.width, self.width)
                x = (0, (self.width - w) // 2, self.width - w)[min(e.align, 2)]
                page.paste(e.image.crop((0, 0, w, e.image.height)), (x, y))
            y += e.height
        record: dict[str, Any] = {
            "lines": [e.data for e in self.elements if e.kind == "text"],
            "text": [e.data["text"] for e in self.elements if e.kind == "text"],
            "cut": kind, "height_dots": total, **self.stats,
        }
        ticket = PrintedTicket(page.convert("1"), record)
        self._reset_page()
        return ticket


def _is_status_request(buf: bytearray, pos: int) -> bool:
    return buf[pos] == DLE and pos + 1 < len(buf) and buf[pos + 1] == 0x04
