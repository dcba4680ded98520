"""A whole branch on simulated hardware: emulators on ptys, mock pins, virtual clock.

Used by ``tessera demo``, the end-to-end tests and ``tessera bench branch``:

    with sim_rig(load_config("examples/bank.toml"), out=Path("out")) as rig:
        rig.press("main", 17)                  # a customer takes a cash ticket
        rig.printer.wait_tickets(1)
        rig.press("main", 5)                   # counter 1: NEXT
        rig.board.text("01")

The printer emulator writes PNG + JSON per ticket into ``out/tickets``, the
board emulator renders the hall sign on demand, announcements land as WAVs in
``out/wav``, the engine database is ``out/engine.db``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

import msgspec

from tessera.clock import VirtualClock
from tessera.config import BranchConfig
from tessera.demo.setup import demo_config, first_weekday, opening_time
from tessera.roles.branch import Branch
from tessera.sim.scenario import press_pin
from tessera.wiring import build_branch


@dataclass
class SimRig:
    """The running branch plus its emulators (see module docstring)."""

    cfg: BranchConfig
    branch: Branch
    printer: Any  # tessera.sim.printer.PrinterEmulator
    board: Any  # tessera.sim.board.BoardEmulator
    clock: VirtualClock
    start: datetime
    out: Path
    scanner: IO[str]

    @property
    def settle_s(self) -> float:
        return self.cfg.gpio.debounce_ms / 1000.0 + 0.0005

    def press(self, device: str, pin: int, *, hold_s: float = 0.0,
              timeout_s: float = 20.0) -> bool:
        """Press and release a mock button; True once the router handled its action."""
        expected = self.branch.router.handled + 1
        press_pin(self.branch.factories[device].pin(pin), hold_s=hold_s,
                  settle_s=self.settle_s)
        return self.branch.router.wait_for(expected, timeout_s)

    def scan(self, code: str, timeout_s: float = 20.0) -> bool:
        """The booking-code scanner types ``code`` and Enter."""
        kiosk = self.branch.kiosk
        assert kiosk is not None
        expected = kiosk.attempts + 1
        self.scanner.write(code + "\n")
        self.scanner.flush()
        return kiosk.wait_attempts(expected, timeout_s)

    def engine_db(self) -> Path:
        from tessera.roles.branch import db_path

        return db_path(self.cfg, self.cfg.mqtt.device or "engine")


def default_clips_cache() -> Path:
    """Where generated announcement clips are kept between demo runs."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "tessera" / "clips"


@contextmanager
def sim_rig(base: BranchConfig, out: Path, *, broker: str = "", day: date | None = None,
            voice: bool = True, save_tickets: bool = True,
            printer_baud: int | None = None, clips_dir: Path | None = None,
            web: bool = False) -> Iterator[SimRig]:
    """Start the emulators, the branch (all-in-one) and the scanner input; stop them all.
    ``web``: also the web role, on ``web.bind`` at any free port (``branch.web.url``)."""
    from tessera.sim.board import BoardEmulator
    from tessera.sim.printer import PrinterEmulator

    for sub in ("tickets", "board", "wav"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    fifo = out / "scanner.fifo"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    printer = PrinterEmulator(out_dir=out / "tickets" if save_tickets else None,
                              baudrate=printer_baud)
    printer.start()
    board = BoardEmulator(baudrate=base.board.baudrate).start()
    branch: Branch | None = None
    scanner: IO[str] | None = None
    try:
        cfg = demo_config(base, out=out, printer_url=printer.path, board_url=board.path,
                          broker=broker, checkin=str(fifo.resolve()))
        rep = msgspec.structs.replace
        if not voice:
            cfg = rep(cfg, voice=rep(cfg.voice, enabled=False))
        elif clips_dir is not None and not base.voice.clips_dir:
            # generated clips are the same for every run: keep them out of the output
            cfg = rep(cfg, voice=rep(cfg.voice, clips_dir=str(clips_dir.resolve())))
        if web:
            cfg = rep(cfg, web=rep(cfg.web, enabled=True, port=0))
        the_day = day or first_weekday(datetime.now(cfg.tz).date())
        start = opening_time(cfg, the_day)
        clock = VirtualClock(start)
        branch = build_branch(cfg, clock, sim=True)
        # opening a FIFO for writing waits for its reader (the kiosk's check-in thread)
        scanner = open(fifo, "w", encoding="utf-8")  # noqa: SIM115 - closed below
        yield SimRig(cfg, branch, printer, board, clock, start, out, scanner)
    finally:
        if scanner is not None:
            scanner.close()
        if branch is not None:
            branch.close()
        board.stop()
        printer.stop()
        fifo.unlink(missing_ok=True)
