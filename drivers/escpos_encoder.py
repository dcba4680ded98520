"""Ticket → ESC/POS bytes, choosing per printer what to send natively.

Bytes on the wire are the budget: a full-raster 80 mm ticket is ~50 KB (52 s
at 9600 baud) while the printer needs a fraction of a second to print it. So in
``auto`` mode the encoder sends:

- text the ROM font can print as text: ASCII always, Chinese only when the
  profile has a GB18030 font, wrapped in ``FS &`` … ``FS .`` every time (a
  printer may have been left in either mode);
- the number with native character size (``GS !``);
- the QR code with native ``GS ( k`` when the profile supports it;
- everything else (CJK on a non-CJK printer, the logo, QR on printers without
  native QR) as ``GS v 0`` raster cropped to its ink, blank rows sent as feed.

The QR code gets the 4-module quiet zone ISO/IEC 18004 asks for as paper feed
above and below it (``QR_QUIET_MODULES``; the paper beyond the printable
width gives more than that at the sides). A job ends with ``GS V 65`` (feed
to the cutter, cut) on a printer with a cutter and with a feed that brings
the last line past the tear bar on one without (``PrinterProfile.cutter``).

``raster`` renders the whole page; ``text`` never sends raster and fails on
content that would need it (the config check catches that at start-up).

    >>> data = TicketEncoder(get_profile("XP-80C-CN"), renderer).encode(doc)  # doctest: +SKIP
"""

from __future__ import annotations

import re
from enum import StrEnum

from PIL import Image

from tessera.drivers.errors import TesseraError
from tessera.drivers.escpos_layout import (
    QR,
    QR_QUIET_MODULES,
    Align,
    Block,
    Gap,
    Line,
    Logo,
    TicketDoc,
    TicketRenderer,
    line_height,
    qr_image,
)
from tessera.drivers.printer_profiles import PrinterProfile

INIT = b"\x1b@"
CJK_ON = b"\x1c&"  # FS &: GB18030 double-byte mode
CJK_OFF = b"\x1c."  # FS .
CUT = b"\x1dVA\x10"  # GS V 65 n: feed n dots to the cutter, then cut
QR_EC = {"L": 48, "M": 49, "Q": 50, "H": 51}
MAX_BAND_ROWS = 255  # rows per GS v 0: small enough for every printer's buffer
BLANK_RUN = 8  # blank rows at least this long inside a band become paper feed
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]")


class Mode(StrEnum):
    AUTO = "auto"
    RASTER = "raster"
    TEXT = "text"


class EncodeError(TesseraError, ValueError):
    """The ticket cannot be printed in the chosen mode on this printer."""


def align(n: Align) -> bytes:
    return b"\x1ba" + bytes([int(n)])


def size(scale: int) -> bytes:
    """GS ! n: width and height multipliers (1..8) in the high and low nibble."""
    return b"\x1d!" + bytes([(scale - 1) << 4 | (scale - 1)])


def bold(on: bool) -> bytes:
    return b"\x1bE" + (b"\x01" if on else b"\x00")


def feed(dots: int) -> bytes:
    """ESC J n, split into steps of at most 255 dots."""
    out = bytearray()
    while dots > 0:
        step = min(dots, 255)
        out += b"\x1bJ" + bytes([step])
        dots -= step
    return bytes(out)


def qr_native(payload: str, module: int, error: str) -> bytes:
    """GS ( k: model 2, module size, error level, store, print."""
    data = payload.encode("utf-8")
    n = len(data) + 3
    return (b"\x1d(k\x04\x001A2\x00"
            + b"\x1d(k\x03\x001C" + bytes([module])
            + b"\x1d(k\x03\x001E" + bytes([QR_EC[error]])
            + b"\x1d(k" + bytes([n & 0xFF, n >> 8]) + b"1P0" + data
            + b"\x1d(k\x03\x001Q0")


def raster(img: Image.Image, *, crop_x: bool = True) -> bytes:
    """GS v 0 bands of a mode-'1' image (0 = ink); blank rows become ESC J feed."""
    img = img.convert("1")
    if crop_x:
        inv = Image.eval(img.convert("L"), lambda v: 255 - v)
        box = inv.getbbox()
        if box is None:
            return feed(img.height)
        x0 = box[0] - box[0] % 8  # whole bytes, so alignment is not shifted
        img = img.crop((x0, 0, box[2], img.height))
    xbytes = (img.width + 7) // 8
    # PIL packs mode '1' rows MSB-first with 1 = white; ESC/POS wants 1 = ink
    packed = bytes(b ^ 0xFF for b in img.tobytes())
    pad = xbytes * 8 - img.width
    rows = [packed[i * xbytes:(i + 1) * xbytes] for i in range(img.height)]
    if pad:
        mask = (0xFF << pad) & 0xFF
        rows = [r[:-1] + bytes([r[-1] & mask]) for r in rows]
    out = bytearray()
    start: int | None = None
    blank = 0

    def flush(end: int) -> None:
        nonlocal start
        if start is None:
            return
        for s in range(start, end, MAX_BAND_ROWS):
            e = min(s + MAX_BAND_ROWS, end)
            out.extend(b"\x1dv0\x00" + bytes([xbytes & 0xFF, xbytes >> 8,
                                              (e - s) & 0xFF, (e - s) >> 8]))
            out.extend(b"".join(rows[s:e]))
        start = None

    zero = bytes(xbytes)
    for i, row in enumerate(rows):
        if row == zero:
            blank += 1
            continue
        if start is not None and blank >= BLANK_RUN:
            flush(i - blank)
            out += feed(blank)
        elif start is None:
            out += feed(blank)
        if start is None:
            start = i
        blank = 0
    if start is not None:
        flush(len(rows) - blank)
    return bytes(out + feed(blank))


# Typographic punctuation a ROM font lacks, as the ASCII it prints as text (otherwise one
# dash would send a Latin line as raster)
ASCII_PUNCTUATION = str.maketrans({"—": "-", "–": "-", "‘": "'", "’": "'", "“": '"',
                                   "”": '"', "…": "..."})


def needs_cjk(text: str) -> bool:
    return any(ord(c) > 0x7F for c in text)


def split_for_latin_printer(line: Line) -> list[Line]:
    """Split ``"请留意 / Please wait"`` or ``"Acme 浦东支行"`` into one-script lines.

    Only for printers without a CJK font: the Latin part then stays native
    text and only the CJK part costs raster bytes.
    """
    parts = [p.strip() for p in line.text.split(" / ")] if " / " in line.text else [line.text]
    out: list[Line] = []
    for part in parts:
        runs = re.findall(r"[\x00-\x7f]+|[^\x00-\x7f]+(?:[\s\d:.,-]*[^\x00-\x7f]+)*", part)
        if len(runs) > 1 and needs_cjk(part) and not all(needs_cjk(r) for r in runs):
            out.extend(Line(r.strip(), line.scale, line.bold, line.align)
                       for r in runs if r.strip())
        elif part:
            out.append(Line(part, line.scale, line.bold, line.align))
    return out


class TicketEncoder:
    """Encodes ``TicketDoc``s for one printer profile in one mode."""

    def __init__(self, profile: PrinterProfile, renderer: TicketRenderer,
                 mode: Mode | str = Mode.AUTO) -> None:
        self.profile = profile
        self.renderer = renderer
        self.mode = Mode(mode)

    def encode(self, doc: TicketDoc) -> bytes:
        if self.mode is Mode.RASTER:
            page = self.renderer.render(doc)
            return INIT + align(Align.LEFT) + raster(page, crop_x=False) + self.job_end()
        out = bytearray(INIT)
        self._state: tuple[Align, int, bool] = (Align.LEFT, 1, False)
        for block in doc.blocks:
            out += self._block(block)
        out += self.job_end()
        return bytes(out)

    def job_end(self) -> bytes:
        """Cut, or feed the last line past the tear bar on a printer without a cutter."""
        return CUT if self.profile.cutter else feed(self.profile.tear_feed_dots)

    def _block(self, block: Block) -> bytes:
        if isinstance(block, Gap):
            return feed(block.dots)
        if isinstance(block, QR):
            quiet = feed(QR_QUIET_MODULES * block.module)
            if self.profile.native_qr:
                return self._style(Align.CENTER, 1, False) + quiet + qr_native(
                    block.payload, block.module, block.error) + quiet
            return quiet + self._raster(qr_image(block), Align.CENTER, "the QR code") + quiet
        if isinstance(block, Logo):
            img, _, _ = self.renderer.block_image(block)
            assert img is not None
            return self._raster(img, Align.CENTER, "the logo") + feed(8)
        return b"".join(self._line(f) for f in self.renderer.fit(block))  # never past the paper

    def _style(self, a: Align, scale: int, b: bool) -> bytes:
        out = bytearray()
        cur_a, cur_s, cur_b = self._state
        if a != cur_a:
            out += align(a)
        if scale != cur_s:
            out += size(scale)
        if b != cur_b:
            out += bold(b)
        self._state = (a, scale, b)
        return bytes(out)

    def _line(self, line: Line) -> bytes:
        latin = line.text.translate(ASCII_PUNCTUATION)  # "Loans closes at 16:30 — please…"
        if not needs_cjk(latin) and latin.isprintable():
            return self._style(line.align, line.scale, line.bold) + latin.encode() + b"\n"
        if self.profile.cjk_font:
            try:
                gb = line.text.encode("gb18030")
            except UnicodeEncodeError:
                gb = b""
            if gb:
                return (self._style(line.align, line.scale, line.bold)
                        + CJK_ON + gb + CJK_OFF + b"\n")
        parts = split_for_latin_printer(line)
        if len(parts) > 1 or parts[0] != line:
            return b"".join(self._line(p) for p in parts)
        band = self.renderer.band(line)
        gap = line_height(line) - band.height
        return (feed(gap // 2) + self._raster(band, line.align, repr(line.text))
                + feed(gap - gap // 2))

    def _raster(self, img: Image.Image, a: Align, what: str) -> bytes:
        if self.mode is Mode.TEXT:
            raise EncodeError(f"{what} needs raster graphics on a {self.profile.name}, but "
                              "kiosk.printer.mode is 'text'; use mode 'auto'")
        return self._style(a, self._state[1], self._state[2]) + raster(img)
