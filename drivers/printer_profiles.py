"""Receipt-printer models as data: what each one can print natively.

python-escpos knows the command set of a model (its ``escpos_profile``); this
table adds what Tessera's encoder and driver need: the printable width in
dots, whether the ROM has a GB18030 (simplified Chinese) font, whether
``GS ( k`` QR codes work, the usual serial speed, the print speed that sets a
ticket's print-time budget, whether a cutter is fitted, and which real-time
commands the model executes while it is in a fault state.

    >>> get_profile("TM-T20II").width_dots
    576
    >>> get_profile("PT-210").cutter
    False

Real-time commands (Epson ESC/POS command reference, "DLE DC4", "DLE ENQ";
the same byte values in the Xprinter POS-80 programmer manual): a printer in
a fault state (paper out, cover open) executes no buffered command, only
these, as they arrive:

- ``DLE DC4 fn=8`` (``10 14 08 01 03 14 01 06 02 08``) clears the receive and
  print buffers and answers ``37 25 00``;
- ``DLE ENQ 2`` (``10 05 02``) recovers from the error after clearing the
  receive and print buffers (older models and most clones);
- ``DLE DC4 fn=1 m t`` (``10 14 01 m t``) pulses drawer-kick pin ``m`` for
  ``t`` x 100 ms: a buzzer wired to that port sounds even during a fault.

``clear`` is None for a model that has neither clear command: a job voided
mid-print then stays in its buffer and prints when the fault clears, and
``clear_note`` says so for the installer. ``realtime_beep`` is False where
the only buzzer is a buffered one (``ESC B`` / ``ESC p``): it cannot sound
during a fault, so the kiosk shows the refusal on its fault lamp instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from tessera.drivers.errors import ConfigError

DOTS_PER_MM = 8.0  # 203 dpi heads; the 180 dpi TM-T88V is close enough for budgets
CUT_S = 0.3  # feed-to-cutter and cut, measured on a TM-T20II with a stopwatch

CLEAR_DLE_DC4_8 = "dle-dc4-8"
CLEAR_DLE_ENQ_2 = "dle-enq-2"


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
    # the buzzer answers DLE DC4 fn=1 (real-time pulse): it sounds during a fault
    realtime_beep: bool = False
    # real-time command that empties the buffers of a voided job (CLEAR_*), or None
    clear: str | None = None
    clear_note: str = ""
    # an autocutter is fitted (python-escpos capabilities: paperFullCut/paperPartCut)
    cutter: bool = True
    # dots from the print head to the tear bar: a cutterless job ends with this feed
    tear_feed_dots: int = 0

    def print_time_s(self, length_dots: int) -> float:
        """Seconds the mechanism needs to print ``length_dots`` of paper and cut it."""
        end = CUT_S if self.cutter else self.tear_feed_dots / DOTS_PER_MM / self.speed_mm_s
        return length_dots / DOTS_PER_MM / self.speed_mm_s + end

    @property
    def beep_note(self) -> str:
        """What the installer should know about the refusal beep of this model."""
        if self.buzzer is None:
            return "no buzzer: the kiosk shows refusals on its lamps only"
        if self.realtime_beep:
            return ""
        return ("the buzzer takes buffered commands only, so it cannot sound while the "
                "printer is faulted; the kiosk shows those refusals on its fault lamp")


PROFILES: dict[str, PrinterProfile] = {
    p.name: p
    for p in (
        PrinterProfile("TM-T20II", "TM-T20II", 576, cjk_font=False, native_qr=True,
                       baudrate=38400, speed_mm_s=200.0, paper_mm=80, buzzer="drawer-pulse",
                       realtime_beep=True, clear=CLEAR_DLE_DC4_8),
        PrinterProfile("TM-T88V", "TM-T88V", 512, cjk_font=False, native_qr=True,
                       baudrate=38400, speed_mm_s=300.0, paper_mm=80, buzzer="drawer-pulse",
                       realtime_beep=True, clear=CLEAR_DLE_DC4_8),
        # cheap 58 mm printers: no native QR in their firmware, slow head, no cutter
        # (tear bar ~12 mm past the head), no documented real-time clear
        PrinterProfile("PT-210", "POS-5890", 384, cjk_font=False, native_qr=False,
                       baudrate=9600, speed_mm_s=60.0, paper_mm=58, cutter=False,
                       tear_feed_dots=96,
                       clear_note="the PT-210 has no real-time buffer clear: a ticket "
                                  "voided mid-print prints when the paper is reloaded; "
                                  "tear it off and discard it"),
        # Xprinter-class 80 mm printers sold in China: GB18030 ROM font (FS &);
        # DLE ENQ 2 clears the buffers, the built-in buzzer takes ESC B only
        PrinterProfile("XP-80C-CN", "TM-T20II", 576, cjk_font=True, native_qr=True,
                       baudrate=115200, speed_mm_s=200.0, paper_mm=80, buzzer="esc-b",
                       clear=CLEAR_DLE_ENQ_2),
    )
}


def get_profile(name: str) -> PrinterProfile:
    """The profile called ``name``; ConfigError listing the known names otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError([f"kiosk.printer.profile: unknown printer profile {name!r}; "
                           f"known: {', '.join(sorted(PROFILES))}"]) from None
