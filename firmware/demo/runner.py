"""Run a simulated branch day and write the output directory.

    summary = run_demo(DemoOptions(config=Path("examples/bank.toml"), out=Path("out"),
                                   minutes=60, speed=None, seed=1))
    summary["duplicate_numbers"]
    # -> 0

Output: ``tickets/`` (PNG + JSON per printed ticket, from the printer
emulator), ``board/`` (hall board snapshots), ``wav/`` (announcements),
``engine.db`` (the SQLite database) and ``summary.json``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
from PIL import Image

from tessera.clock import VirtualClock
from tessera.config import BranchConfig, load_config
from tessera.demo.hands import PinHands
from tessera.demo.setup import (
    day_minutes,
    default_customers,
)
from tessera.demo.summary import summarize
from tessera.demo.view import DemoState, make_view
from tessera.sim.scenario import KioskKey, Scenario, ScenarioSpec, StaffDesk, plan_bookings

log = logging.getLogger(__name__)


@dataclass
class DemoOptions:
    config: Path | BranchConfig
    out: Path
    minutes: float | None = None  # None = the whole opening day
    speed: float | None = 600.0  # virtual seconds per real second; None = as fast as possible
    seed: int = 1
    broker: str = ""
    customers: int | None = None
    plain: bool | None = None  # None = plain lines unless stdout is a terminal
    snapshot_every_s: float = 1800.0
    day: date | None = None  # override the simulated date (tests)
    voice: bool = True  # announcements as WAV files
    save_tickets: bool = True  # a PNG + JSON per printed ticket
    counters: int | None = None  # grow the branch to this many counters (copies)
    web: bool = True  # the web role on a free port (its URLs are printed)
    clips_dir: Path | None = None  # generated voice clips (default: ~/.cache/tessera/clips)
    spec_overrides: dict[str, Any] = field(default_factory=dict)  # ScenarioSpec fields


def scenario_spec(cfg: BranchConfig, start_hour: float, minutes: float,
                  customers: int) -> ScenarioSpec:
    buttons = [KioskKey(i, b.service, b.priority) for i, b in enumerate(cfg.kiosk.buttons)]
    desks = []
    for c in cfg.counters:
        if c.panel is None:
            continue
        keys = tuple(k for k in ("next", "recall", "transfer", "no_show", "done", "pause")
                     if getattr(c.panel, k) is not None)
        means = [cfg.service(cs.service).default_service_s for cs in c.services]
        desks.append(StaffDesk(c.id, keys, ratings=len(c.panel.ratings),
                               transfer_targets=len(c.panel.transfer_targets),
                               mean_service_s=sum(means) / len(means)))
    return ScenarioSpec(start_hour=start_hour, minutes=minutes, customers=customers,
                        buttons=buttons, counters=desks, service_share=capacity_share(cfg))


def capacity_share(cfg: BranchConfig) -> dict[str, float]:
    """Customers per hour each service can get through (weights split a counter's time),
    so the simulated demand matches the branch it runs on."""
    share: dict[str, float] = {}
    for c in cfg.counters:
        total = sum(cs.weight for cs in c.services)
        for cs in c.services:
            rate = 3600.0 / cfg.service(cs.service).default_service_s
            share[cs.service] = share.get(cs.service, 0.0) + rate * cs.weight / total
    return share


class _Pacer:
    """Hold the simulation to ``speed`` virtual seconds per real second."""

    def __init__(self, speed: float | None) -> None:
        self.speed = speed
        self.t0 = time.monotonic()

    def __call__(self, t_s: float) -> None:
        if not self.speed:
            return
        wait = self.t0 + t_s / self.speed - time.monotonic()
        if wait > 0:
            time.sleep(min(wait, 5.0))


def run_demo(opts: DemoOptions) -> dict[str, Any]:
    """Run the day; return (and write) the summary."""
    from tessera.demo.rig import default_clips_cache, sim_rig

    base = opts.config if isinstance(opts.config, BranchConfig) else load_config(opts.config)
    if opts.counters:
        base = with_counters(base, opts.counters)
    with sim_rig(base, opts.out, broker=opts.broker, day=opts.day, voice=opts.voice,
                 save_tickets=opts.save_tickets,
                 clips_dir=opts.clips_dir or default_clips_cache(), web=opts.web) as rig:
        cfg = rig.cfg
        if rig.branch.web is not None:
            url = rig.branch.web.url
            print(f"web: {url}/display (hall TV), {url}/manage (console), ticket pages "
                  f"{url}/t/<id>.<token> (the QR codes under tickets/ carry "
                  f"{cfg.web.base_url or url}/t/...)", flush=True)
        day = rig.start.astimezone(cfg.tz).date()
        minutes = opts.minutes if opts.minutes is not None else day_minutes(cfg, day)
        customers = opts.customers if opts.customers is not None \
            else default_customers(cfg, minutes)
        local = rig.start.astimezone(cfg.tz)
        spec = scenario_spec(cfg, local.hour + local.minute / 60, minutes, customers)
        spec = dataclasses.replace(spec, **opts.spec_overrides)
        spec = _book(rig.branch.engine, spec, cfg, rig.start, opts.seed)
        summary = _run(rig, opts, spec)
    summary.update(summarize(rig.engine_db(), rig.cfg))
    (opts.out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    return summary


def with_counters(cfg: BranchConfig, n: int) -> BranchConfig:
    """``cfg`` with ``n`` counters: extra ones copy the existing ones' services, no panel
    (the demo gives them simulated panels)."""
    have = list(cfg.counters)
    numbers = {c.number for c in have}
    i = 0
    while len(have) < n:
        model = cfg.counters[i % len(cfg.counters)]
        number = max(numbers) + 1
        numbers.add(number)
        have.append(msgspec.structs.replace(model, id=f"c{number}", number=number, panel=None,
                                            board_address=None, staff=""))
        i += 1
    return msgspec.structs.replace(cfg, counters=tuple(have[:n]))


def _book(engine: Any, spec: ScenarioSpec, cfg: BranchConfig, start: datetime,
          seed: int) -> ScenarioSpec:
    """Book the day's appointments in the engine; the scenario checks them in."""
    served = sorted({cs.service for c in cfg.counters for cs in c.services})
    plan = plan_bookings(spec, served, random.Random(seed ^ 0xB00C))
    for code, service, slot_s in plan:
        engine.book(code, service, start + timedelta(seconds=slot_s))
    return dataclasses.replace(spec, bookings=[(code, slot) for code, _, slot in plan])


def _run(rig: Any, opts: DemoOptions, spec: ScenarioSpec) -> dict[str, Any]:
    t_real = time.monotonic()
    cfg, branch, clock = rig.cfg, rig.branch, rig.clock
    seq0 = branch.engine.outbox.last_seq()  # count what the day commits from here on
    state = DemoState(engine_device=cfg.mqtt.device or "engine", tz=cfg.tz,
                      engine_after_seq=seq0)
    branch.bus.subscribe(state.on_event)
    scenario = Scenario.generate(spec, opts.seed)
    hands = PinHands(cfg, router=branch.router, counters=branch.counters,
                     factories=branch.factories, clock=clock, start=rig.start,
                     kiosk=branch.kiosk, scanner=rig.scanner, tick=branch.tick,
                     bus=branch.bus)
    view = make_view(state, scenario.span_s, plain=opts.plain)
    rss: dict[str, float] = {}
    next_snap = [0.0]

    def on_step(t_s: float) -> None:
        with state.lock:
            state.elapsed_s = t_s
            state.now = clock.now().astimezone(cfg.tz)
        if t_s >= next_snap[0]:
            next_snap[0] = t_s + opts.snapshot_every_s
            _snapshot(rig.board, cfg, opts.out, clock)
        hour = f"{int(t_s // 3600)}"
        if hour not in rss:
            rss[hour] = rss_mib()
        _release_images(rig.printer)
        view.update()

    view.start()
    try:
        with _interrupt_stops() as stop:
            stats = scenario.run(hands, stop=stop, on_step=on_step, pace=_Pacer(opts.speed))
        branch.bus.drain(30.0)
        if branch.display is not None and branch.display.announcer is not None:
            branch.display.announcer.drain(60.0)
    finally:
        view.stop()
        _snapshot(rig.board, cfg, opts.out, clock)
    rss["end"] = rss_mib()
    committed = branch.engine.outbox.last_seq() - seq0
    kiosk = branch.kiosk
    out: dict[str, Any] = {
        "customers_planned": len(scenario.arrivals),
        "appointments_booked": len(spec.bookings),
        "scenario": vars(stats),
        "kiosk_refused": dict(kiosk.refusals) if kiosk is not None else {},
        # refusal slips the kiosk printed (issue 15): PNGs in tickets/ beside the tickets
        "kiosk_slips": kiosk.slips if kiosk is not None else 0,
        "counter_refused": _merge(r.refusals for r in branch.counters.values()),
        "lost_presses": hands.lost_presses,
        "bus_drain_timeouts": hands.bus_timeouts,
        "bus_dropped": branch.bus.dropped,
        "bus_errors": branch.bus.errors,
        "bus_engine_events": state.engine_events,
        "bus_lost_events": committed - state.engine_events,
        "rss_mib_by_hour": rss,
        "sim_start": rig.start.isoformat(),
        "sim_minutes": spec.minutes,
        "customers": spec.customers,
        "counters": len(spec.counters),
        "real_s": round(time.monotonic() - t_real, 1),
        "seed": opts.seed,
        "tickets_printed_on_pty": len(rig.printer.tickets),
    }
    if branch.published is not None:
        out["events_published"] = branch.published()
    return out


@contextmanager
def _interrupt_stops() -> Iterator[threading.Event]:
    """Ctrl-C ends the simulated day early; the summary is still written."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _merge(counts: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            out[k] = out.get(k, 0) + v
    return out


def rss_mib() -> float:
    """This process's resident set size in MiB (Linux)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


_BLANK = Image.new("1", (1, 1))


def _release_images(printer: Any) -> None:
    """Drop the emulator's in-memory paper (image and decoded lines) once saved.

    The emulator keeps every ``PrintedTicket`` (files stay on disk); without this
    a 3,000-ticket day would hold every raster in RAM and grow all day. The
    last ticket is kept whole for the live view and the tests.
    """
    with printer._changed:
        for t in reversed(printer.tickets[:-1]):
            if t.image is _BLANK:
                break
            t.image = _BLANK
            t.record = {"text": t.record.get("text", [])[:3]}


def _snapshot(board_emu: Any, cfg: BranchConfig, out: Path, clock: VirtualClock) -> None:
    stamp = clock.now().astimezone(cfg.tz).strftime("%H%M")
    try:
        board_emu.render_png(cfg.board.hall_address, out / "board" / f"hall-{stamp}.png")
    except Exception as e:  # a snapshot is a nicety; the day goes on
        log.warning("board snapshot failed: %s", e)


