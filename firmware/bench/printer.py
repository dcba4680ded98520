"""``tessera bench printer``: ticket render time and bytes on the wire.

Render time is the Pillow page of the bank example ticket (p50/p99), once
from scratch and once with the service's static part cached; the encoder's
auto-mode time is the whole template → bytes path. Bytes per mode and profile
are for the same ticket; transfer times follow from them (10 bits a byte on
serial; USB 1.1 full speed bulk at ~1 MB/s). Targets: render p50 ≤ 10 ms,
cached ÷ full ≤ 0.8, ≤ 1 KB on a CJK-capable printer, ≤ 4 KB on a Latin one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgspec

from tessera.config import BranchConfig, load_config
from tessera.drivers.escpos import USB_BYTES_PER_S
from tessera.drivers.escpos_encoder import EncodeError, TicketEncoder
from tessera.drivers.escpos_layout import TicketRenderer
from tessera.drivers.printer_profiles import PROFILES
from tessera.engine import Ticket
from tessera.printing.template import TicketTemplate
from tessera.stats import percentile

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BAUDS = (9600, 115200)


def _cfg(base: BranchConfig, profile: str) -> BranchConfig:
    printer = msgspec.structs.replace(base.kiosk.printer, profile=profile)
    return msgspec.structs.replace(base, kiosk=msgspec.structs.replace(base.kiosk,
                                                                       printer=printer))


def _ticket(i: int, service: str = "cash", prefix: str = "A") -> Ticket:
    return Ticket(f"01933b7e-8f7a-7c3e-9a1b-{i:012d}", f"{prefix}{i % 1000:03d}", service,
                  "issued", None, "2026-11-30", f"2026-11-30T01:{i % 60:02d}:00.000Z",
                  i % 40, 240.0 * (i % 40), None, 0, None)


def _pct(samples: list[float], q: float) -> float:
    return percentile(samples, q) * 1000


def _render_times(cfg: BranchConfig, n: int) -> dict[str, float]:
    tpl = TicketTemplate(cfg)
    r = TicketRenderer(cfg.ticket.font, PROFILES[cfg.kiosk.printer.profile].width_dots)
    full: list[float] = []
    cached: list[float] = []
    encode: list[float] = []
    enc = TicketEncoder(PROFILES[cfg.kiosk.printer.profile], r, "auto")
    r.render(tpl.doc(_ticket(0)))  # fonts loaded once, as on a running kiosk
    for i in range(1, n + 1):
        doc = tpl.doc(_ticket(i))
        r.clear()
        t0 = time.perf_counter()
        r.render(doc)
        full.append(time.perf_counter() - t0)
        doc = tpl.doc(_ticket(i + n))  # a different ticket: dynamic lines are new
        t0 = time.perf_counter()
        r.render(doc)
        cached.append(time.perf_counter() - t0)
        doc = tpl.doc(_ticket(i + 2 * n))
        t0 = time.perf_counter()
        enc.encode(doc)
        encode.append(time.perf_counter() - t0)
    return {"render_p50_ms": _pct(full, 0.5), "render_p99_ms": _pct(full, 0.99),
            "render_cached_p50_ms": _pct(cached, 0.5),
            "render_cached_p99_ms": _pct(cached, 0.99),
            "render_cached_ratio": statistics.median(cached) / statistics.median(full),
            "encode_auto_p50_ms": _pct(encode, 0.5)}


def _bytes(cfg: BranchConfig, ticket: Ticket) -> dict[str, dict[str, int | None]]:
    out: dict[str, dict[str, int | None]] = {}
    for mode in ("auto", "text", "raster"):
        out[mode] = {}
        for name, prof in PROFILES.items():
            c = _cfg(cfg, name)
            enc = TicketEncoder(prof, TicketRenderer(c.ticket.font, prof.width_dots), mode)
            try:
                out[mode][name] = len(enc.encode(TicketTemplate(c).doc(ticket)))
            except EncodeError:
                out[mode][name] = None  # this printer cannot print the ticket in this mode
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    bank = load_config(EXAMPLES / "bank.toml")
    clinic = load_config(EXAMPLES / "clinic.toml")
    n = 30 if getattr(args, "quick", False) else 300
    result: dict[str, Any] = _render_times(bank, n)
    sample = _ticket(23)
    result["bytes"] = _bytes(bank, sample)
    result["bytes_latin_clinic"] = _bytes(clinic, replace(sample, service="reception",
                                                          number="R023"))["auto"]
    result["transfer_ms"] = {
        mode: {name: None if b is None else {
            **{str(baud): round(b * 10 / baud * 1000, 1) for baud in BAUDS},
            "usb": round(b / USB_BYTES_PER_S * 1000, 2)} for name, b in per.items()}
        for mode, per in result["bytes"].items()}
    result["targets"] = {"render_p50_ms": 10.0, "render_cached_ratio": 0.8,
                         "bytes_cjk_printer": 1024, "bytes_latin_printer_bilingual": 4096}
    result["iterations"] = n
    result["loadavg_1m"] = os.getloadavg()[0]  # the machine may be shared: read times with it
    return result
