"""Ticket layout as blocks, and their Pillow rendering.

A ticket is a ``TicketDoc``: a static part that only depends on the service
(logo, branch name, service names) and a dynamic part (number, people ahead,
wait, time, QR, footer). The encoder sends lines a printer can print from its
ROM font as text and asks the ``TicketRenderer`` for raster bands of the rest;
full-raster mode renders the whole page, reusing the static part per service.

    >>> r = TicketRenderer("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 576)
    >>> r.band(Line("现金业务", scale=2)).mode
    '1'
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

import segno
from PIL import Image, ImageDraw, ImageFont

from tessera.drivers.errors import ConfigError

LINE_PX = 24  # one text line at scale 1: the height of the ROM font A cell
MARGIN = 8
# A fixed mask skips segno's scoring of all eight (6 ms a ticket on x86, far more
# on a Pi); every mask gives a valid code, and at 6 dots a module all of them scan.
QR_MASK = 2
QR_QUIET_MODULES = 4  # ISO/IEC 18004: a 4-module light margin on every side


class Align(IntEnum):
    LEFT = 0
    CENTER = 1
    RIGHT = 2


@dataclass(frozen=True)
class Line:
    """One line of text; ``scale`` multiplies the 12x24 ROM cell (1..8)."""

    text: str
    scale: int = 1
    bold: bool = False
    align: Align = Align.CENTER


@dataclass(frozen=True)
class Logo:
    path: str


@dataclass(frozen=True)
class QR:
    payload: str
    module: int = 6
    error: str = "M"


@dataclass(frozen=True)
class Gap:
    dots: int


Block = Line | Logo | QR | Gap


@dataclass(frozen=True)
class TicketDoc:
    """A ticket's blocks; ``key`` names the static part for caching (the service)."""

    key: str
    static: tuple[Block, ...]
    dynamic: tuple[Block, ...]

    @property
    def blocks(self) -> tuple[Block, ...]:
        return self.static + self.dynamic


class FontMissingError(ConfigError):
    """The configured ticket font cannot be read."""


@lru_cache(maxsize=32)
def load_font(path: str, px: int) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(path, px)
    except OSError as e:
        raise FontMissingError([
            f"ticket.font: cannot read font {path!r} ({e}); install fonts-wqy-microhei "
            "(apt-get install fonts-wqy-microhei) or set ticket.font to a TTF/TTC file "
            "with CJK glyphs"]) from None


def line_height(line: Line) -> int:
    """Nominal height of a line on paper (text plus line spacing), in dots."""
    return LINE_PX * line.scale + 6


def qr_image(qr: QR) -> Image.Image:
    """The QR code without quiet zone (the paper margin is one), ``module`` dots a module."""
    code = segno.make_qr(qr.payload, error=qr.error, mask=QR_MASK)
    n = len(code.matrix)
    modules = bytes(0 if bit else 255 for row in code.matrix for bit in row)
    img = Image.frombytes("L", (n, n), modules)
    return img.resize((n * qr.module, n * qr.module), Image.Resampling.NEAREST).convert("1")


MAX_WRAP_LINES = 2  # a line wraps over at most this many before it is shrunk
_TOKEN = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]|[^\s\u2e80-\u9fff"
                    r"\uf900-\ufaff\uff00-\uffef\u3000-\u303f]+|\s+")


def rom_width(text: str, scale: int = 1) -> int:
    """Dots the ROM font A takes for ``text`` (12 a character, 24 for a wide one)."""
    return sum(24 if ord(c) > 0x2e7f else 12 for c in text) * scale


def wrap(text: str, fits: Callable[[str], bool], *, break_words: bool = False
         ) -> list[str] | None:
    """Greedy wrap at spaces (and between CJK characters); None when a word is too wide
    and ``break_words`` is off."""
    lines: list[str] = []
    cur = ""
    for tok in _TOKEN.findall(text):
        if tok.isspace():
            if cur:
                cur += " "
            continue
        if fits(cur + tok):
            cur += tok
            continue
        if cur.strip():
            lines.append(cur.rstrip())
        cur = ""
        if fits(tok):
            cur = tok
            continue
        if not break_words:
            return None
        for ch in tok:  # a word wider than the paper: break it
            if cur and not fits(cur + ch):
                lines.append(cur)
                cur = ""
            cur += ch
    if cur.strip():
        lines.append(cur.rstrip())
    return lines or [""]


def fit_text(text: str, scale: int, width: Callable[[str, int], int], room: int
             ) -> tuple[list[str], int, bool]:
    """Wrap, then shrink: the lines and scale at which ``text`` fits ``room`` dots, and
    whether it fitted within the rules (at most ``MAX_WRAP_LINES`` lines, no broken
    word); when it did not, it is wrapped at scale 1 with words broken."""
    def fits_at(s: int) -> Callable[[str], bool]:
        return lambda t: width(t, s) <= room

    for s in range(max(scale, 1), 0, -1):
        lines = wrap(text, fits_at(s))
        if lines is not None and len(lines) <= MAX_WRAP_LINES:
            return lines, s, True
    return wrap(text, fits_at(1), break_words=True) or [text], 1, False


class TicketRenderer:
    """Pillow rendering at the printer's width; bands and static parts are cached."""

    def __init__(self, font_path: str, width_dots: int, *, cache_size: int = 256) -> None:
        load_font(font_path, LINE_PX)  # fail now, with the fix, not at the first customer
        self.font_path = font_path
        self.width = width_dots
        self._bands: OrderedDict[Line, Image.Image] = OrderedDict()
        self._static: dict[str, Image.Image] = {}
        self._fits: dict[Line, tuple[Line, ...]] = {}
        self._boxes: dict[tuple[str, int], tuple[float, float, float, float]] = {}
        self._cache_size = cache_size

    def clear(self) -> None:
        self._bands.clear()
        self._static.clear()
        self._fits.clear()
        self._boxes.clear()

    def _bbox(self, text: str, scale: int) -> tuple[float, float, float, float]:
        """The ink box of ``text`` at ``scale``, shared by ``fit`` and ``band`` (one
        Pillow layout a line: ~0.1 ms each)."""
        key = (text, scale)
        box = self._boxes.get(key)
        if box is None:
            box = load_font(self.font_path, LINE_PX * scale).getbbox(text)
            if len(self._boxes) > self._cache_size:
                self._boxes.clear()
            self._boxes[key] = box
        return box

    def text_width(self, text: str, scale: int) -> int:
        """Dots ``text`` takes at ``scale``: as ROM text or as a raster band, the wider."""
        left, _, right, _ = self._bbox(text, scale)
        return max(rom_width(text, scale), math.ceil(right - left) + scale)

    def fit(self, line: Line) -> tuple[Line, ...]:
        """``line`` as lines that never run past the paper: wrapped, then shrunk."""
        hit = self._fits.get(line)
        if hit is None:
            room = self.width - 2 * MARGIN
            if rom_width(line.text, line.scale) <= room and \
                    self.text_width(line.text, line.scale) <= room:
                hit = (line,)  # the common case: one measurement
            else:
                texts, scale, _ = fit_text(line.text, line.scale, self.text_width, room)
                hit = tuple(Line(t, scale, line.bold, line.align) for t in texts)
            if len(self._fits) > self._cache_size:
                self._fits.clear()
            self._fits[line] = hit
        return hit

    def band(self, line: Line) -> Image.Image:
        """The line drawn in mode '1', cropped to its ink (empty text: a 1x1 blank)."""
        hit = self._bands.get(line)
        if hit is not None:
            self._bands.move_to_end(line)
            return hit
        font = load_font(self.font_path, LINE_PX * line.scale)
        left, top, right, bottom = self._bbox(line.text, line.scale)
        img = Image.new("1", (max(int(right - left), 1), max(int(bottom - top), 1)), 1)
        ImageDraw.Draw(img).text((-left, -top), line.text, font=font, fill=0)
        if line.bold:
            ImageDraw.Draw(img).text((1 - left, -top), line.text, font=font, fill=0)
        if img.width > self.width:
            img = img.crop((0, 0, self.width, img.height))
        self._bands[line] = img
        if len(self._bands) > self._cache_size:
            self._bands.popitem(last=False)
        return img

    def block_image(self, block: Block) -> tuple[Image.Image | None, int, Align]:
        """(image or None, height on paper, alignment) of one block."""
        if isinstance(block, Gap):
            return None, block.dots, Align.LEFT
        if isinstance(block, Line):
            return self.band(block), line_height(block), block.align
        if isinstance(block, QR):
            img = qr_image(block)
            return img, img.height + 2 * QR_QUIET_MODULES * block.module, Align.CENTER
        logo = Image.open(block.path).convert("L")
        if logo.width > self.width:
            logo = logo.resize((self.width, logo.height * self.width // logo.width))
        return logo.convert("1"), logo.height + 8, Align.CENTER

    def _stack(self, blocks: tuple[Block, ...]) -> Image.Image:
        fitted = [f for b in blocks for f in (self.fit(b) if isinstance(b, Line) else (b,))]
        parts = [self.block_image(b) for b in fitted]
        page = Image.new("1", (self.width, max(sum(h for _, h, _ in parts), 1)), 1)
        y = 0
        for img, h, align in parts:
            if img is not None:
                free = self.width - img.width
                x = (MARGIN, free // 2, free - MARGIN)[align] if free > 2 * MARGIN else free // 2
                page.paste(img, (max(x, 0), y + (h - img.height) // 2))
            y += h
        return page

    def render(self, doc: TicketDoc, *, use_cache: bool = True) -> Image.Image:
        """The whole ticket as one mode-'1' image (full-raster mode, previews)."""
        head = self._static.get(doc.key) if use_cache else None
        if head is None:
            head = self._stack(doc.static)
            if use_cache:
                self._static[doc.key] = head
        body = self._stack(doc.dynamic)
        page = Image.new("1", (self.width, head.height + body.height), 1)
        page.paste(head, (0, 0))
        page.paste(body, (0, head.height))
        return page
