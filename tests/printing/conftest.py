"""Printing fixtures: the printer emulator on a real pty, configs, an engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tessera.clock import VirtualClock
from tessera.config import BranchConfig, load_config
from tessera.engine import Engine, Ticket, always_trusted
from tessera.sim.printer import PrinterEmulator

ROOT = Path(__file__).resolve().parents[2]


def with_printer(cfg: BranchConfig, **changes: Any) -> BranchConfig:
    """``cfg`` with fields of ``[kiosk.printer]`` replaced."""
    printer = msgspec.structs.replace(cfg.kiosk.printer, **changes)
    return msgspec.structs.replace(cfg, kiosk=msgspec.structs.replace(cfg.kiosk,
                                                                      printer=printer))


@pytest.fixture
def bank_cfg() -> BranchConfig:
    return load_config(ROOT / "examples" / "bank.toml")


@pytest.fixture
def clinic_cfg() -> BranchConfig:
    return load_config(ROOT / "examples" / "clinic.toml")


@pytest.fixture
def emulator_factory(tmp_path: Path) -> Iterator[Callable[..., PrinterEmulator]]:
    """Start emulators (stopped after the test); keyword args go to PrinterEmulator."""
    started: list[PrinterEmulator] = []

    def make(**kw: Any) -> PrinterEmulator:
        kw.setdefault("out_dir", tmp_path / f"out{len(started)}")
        emu = PrinterEmulator(**kw)
        emu.start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


@pytest.fixture
def emulator(emulator_factory: Callable[..., PrinterEmulator]) -> PrinterEmulator:
    return emulator_factory()


# ----------------------------------------------------------------- engine


@pytest.fixture
def engine(bank_cfg: BranchConfig, tmp_path: Path) -> Iterator[Engine]:
    """The real engine on a real SQLite file, at 10:00 Shanghai time on a Monday."""
    eng = Engine.open(bank_cfg, VirtualClock(datetime(2026, 11, 30, 2, 0, tzinfo=UTC)),
                      tmp_path / "engine.db", trust=always_trusted)
    yield eng
    eng.close()


def ticket_log(engine: Engine) -> list[tuple[str, str, str | None]]:
    """(event type, number, void reason) of every ticket event the engine committed."""
    return [(e["type"], e["data"]["number"], e["data"].get("reason"))
            for e in engine.outbox.all_events() if e["type"].startswith("ticket.")]


@pytest.fixture
def tickets_of() -> Callable[[Engine], list[tuple[str, str, str | None]]]:
    return ticket_log


@pytest.fixture
def sample_ticket() -> Ticket:
    return Ticket("01933b7e-8f7a-7c3e-9a1b-2c3d4e5f6a7b", "A023", "cash", "issued", None,
                  "2026-11-30", "2026-11-30T01:05:00.000Z", 7, 840.0, None, 0, None)


@pytest.fixture
def printer_cfg() -> Callable[..., BranchConfig]:
    """``printer_cfg(cfg, profile=..., url=...)``: cfg with [kiosk.printer] fields replaced."""
    return with_printer
