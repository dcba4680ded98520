"""Receipt-printer models as data: what each one can print natively.

python-escpos knows the command set of a model (its ``escpos_profile``); this
table adds what Tessera's encoder needs to choose between native commands and
raster: the printable width in dots, whether the ROM has a GB18030 (simplified
Chinese) font, whether ``GS ( k`` QR codes work, the usual serial speed and
the print speed that sets a ticket's print-time budget.

    >>> get_profile("TM-T20II").width_dots
    576
"""

from __future__ import annotations

from dataclasses import dataclass

from tessera.drivers.errors import ConfigError

DOTS_PER_MM = 8.0  # 203 dpi heads; the 180 dpi TM-T88V is close enough for budgets
CUT_S = 0.3  # feed-to-cutter and cut, measured on a TM-T20II with a stopwatch


@dataclass(frozen=True)
class PrinterProfile:
    """One printer model. ``escpos_profile`` names python-escpos' capability entry."""

    name: str
    escpos_profile: str
    width_dots: int
    cjk_font: bool
    native_qr: bool
    baudrate: int
    speed_mm_s: float
    paper_mm: int
    # how the printer beeps: "esc-b" = built-in buzzer (ESC B n t, Xprinter-class),
    # "drawer-pulse" = an external buzzer on the drawer-kick port (ESC p, Epson TM),
    # None = no buzzer
    buzzer: str | None = None

    def print_time_s(self, length_dots: int) -> float:
        """Seconds the mechanism needs to print ``length_dots`` of paper and cut it."""
        return length_dots / DOTS_PER_MM / self.speed_mm_s + CUT_S


PROFILES: dict[str, PrinterProfile] = {
    p.name: p
    for p in (
        PrinterProfile("TM-T20II", "TM-T20II", 576, cjk_font=False, native_qr=True,
                       baudrate=38400, speed_mm_s=200.0, paper_mm=80, buzzer="drawer-pulse"),
        PrinterProfile("TM-T88V", "TM-T88V", 512, cjk_font=False, native_qr=True,
                       baudrate=38400, speed_mm_s=300.0, paper_mm=80, buzzer="drawer-pulse"),
        # cheap 58 mm printers: no native QR in their firmware, slow head
        PrinterProfile("PT-210", "POS-5890", 384, cjk_font=False, native_qr=False,
                       baudrate=9600, speed_mm_s=60.0, paper_mm=58),
        # Xprinter-class 80 mm printers sold in China: GB18030 ROM font (FS &)
        PrinterProfile("XP-80C-CN", "TM-T20II", 576, cjk_font=True, native_qr=True,
                       baudrate=115200, speed_mm_s=200.0, paper_mm=80, buzzer="esc-b"),
    )
}


def get_profile(name: str) -> PrinterProfile:
    """The profile called ``name``; ConfigError listing the known names otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError([f"kiosk.printer.profile: unknown printer profile {name!r}; "
                           f"known: {', '.join(sorted(PROFILES))}"]) from None
