"""The one place that picks real or simulated hardware and assembles the roles.

    >>> branch = build_branch(cfg, clock, roles=("all",), sim=True)
    >>> branch.router.handle("kiosk.button.0")
    >>> branch.close()

Real vs simulated is decided here only: the pin factory (``gpio.pin_factory``,
``GPIOZERO_PIN_FACTORY`` or gpiozero's default; ``mock`` in simulation), the
printer and board URLs (the emulators' ptys in simulation), the audio output
(``aplay`` or ``dir:PATH``). Every other module receives ports.

All-in-one: the engine publishes each committed event on the in-process bus;
the display and the counters subscribe to it. The MQTT uplink (when
``mqtt.url`` is set) drains the engine's outbox on its own thread, so nothing
a customer or teller does waits for the broker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tessera.bus import Bus
from tessera.clock import Clock
from tessera.config import BranchConfig, Counter
from tessera.roles.counter import CounterRole
from tessera.roles.glue import ActionRouter, devices
from tessera.roles.kiosk import KioskRole

log = logging.getLogger(__name__)

ROLES = ("all", "kiosk", "counter", "display", "engine")


@dataclass
class Branch:
    """Everything one process runs, and how to stop it."""

    cfg: BranchConfig
    clock: Clock
    bus: Bus
    router: ActionRouter
    engine: Any = None
    owns_engine: bool = False  # the engine runs in this process (ticked here); else remote
    kiosk: KioskRole | None = None
    counters: dict[str, CounterRole] = field(default_factory=dict)
    display: Any = None
    factories: dict[str, Any] = field(default_factory=dict)
    inputs: list[Any] = field(default_factory=list)
    uplink: Any = None
    links: dict[str, Any] = field(default_factory=dict)  # MQTT device links by device name
    published: Callable[[], int] | None = None  # with an uplink: drain, then acked count
    emitters: dict[str, Callable[[str, dict[str, Any]], None]] = field(default_factory=dict)
    closers: list[Callable[[], None]] = field(default_factory=list)

    def tick(self) -> None:
        if self.owns_engine:
            self.engine.tick()
        if self.kiosk is not None:
            self.kiosk.refresh()
        for role in self.counters.values():
            role.tick()

    def close(self) -> None:
        for close in reversed(self.closers):
            try:
                close()
            except Exception:
                log.exception("closing %r", close)
        self.closers.clear()


# --------------------------------------------------------------------------- hardware


def pin_factory(cfg: BranchConfig, *, sim: bool) -> Any:
    """A gpiozero pin factory: mock in simulation, else the configured/default one."""
    if sim or cfg.gpio.pin_factory == "mock":
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    if cfg.gpio.pin_factory:
        from gpiozero import Device

        Device.pin_factory = None  # let gpiozero build the named factory from the env
        import os

        os.environ["GPIOZERO_PIN_FACTORY"] = cfg.gpio.pin_factory
    return None  # gpiozero's default


def audio_output(cfg: BranchConfig) -> Any:
    from tessera.drivers.audio import AplayOutput, DirectoryOutput

    out = cfg.voice.output
    if out.startswith("dir:"):
        return DirectoryOutput(cfg.path(out[4:]))
    return AplayOutput()


def open_board(cfg: BranchConfig) -> Any:
    from tessera.drivers.alpha import AlphaBoard

    b = cfg.board
    return AlphaBoard.open(b.url, baudrate=b.baudrate, bytesize=b.bytesize, parity=b.parity,
                           stopbits=b.stopbits)


@contextmanager
def simulated_hardware(cfg: BranchConfig, out: Path,
                       roles: tuple[str, ...] = ("all",)) -> Iterator[BranchConfig]:
    """``cfg`` on simulated hardware: printer and board emulators on ptys (tickets and
    board renders under ``out``; only those the ``roles`` use), mock pins,
    announcements as WAV files, trusted clock."""
    from tessera.demo.setup import demo_config

    want = set(ROLES[1:]) if "all" in roles else set(roles)
    out.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        printer_url = board_url = ""
        if "kiosk" in want:
            from tessera.sim.printer import PrinterEmulator

            printer = stack.enter_context(PrinterEmulator(out_dir=out / "tickets"))
            printer_url = printer.path
        if "display" in want:
            from tessera.sim.board import BoardEmulator

            board = stack.enter_context(BoardEmulator(baudrate=cfg.board.baudrate))
            board_url = board.path
        yield demo_config(cfg, out=out, printer_url=printer_url, board_url=board_url,
                          broker=cfg.mqtt.url, checkin=cfg.kiosk.checkin, fast_buttons=False)


def _device_factory(branch: Branch, device: str, *, sim: bool) -> Any:
    """The pin factory of ``device``: made on first use, then shared by its buttons and lamps."""
    factory = branch.factories.get(device) or pin_factory(branch.cfg, sim=sim)
    branch.factories[device] = factory
    return factory


# --------------------------------------------------------------------------- assembly


def db_path(cfg: BranchConfig, device: str) -> Path:
    return cfg.path(cfg.storage.dir) / f"{device}.db"


def open_engine(cfg: BranchConfig, clock: Clock, bus: Bus) -> Any:
    """The engine, with every committed event forwarded to the bus."""
    from tessera.engine import Engine

    def publish_all(events: list[dict[str, Any]]) -> None:
        for env in events:
            bus.publish(env)

    return Engine.open(cfg, clock, db_path(cfg, cfg.mqtt.device or "engine"),
                       on_commit=publish_all)


def device_emitter(branch: Branch, device: str) -> Callable[[str, dict[str, Any]], None]:
    """Events of a non-engine device: its own outbox (``<storage>/<device>.db``), then the bus."""
    from tessera.outbox import Outbox

    if device in branch.emitters:
        return branch.emitters[device]
    cfg = branch.cfg
    outbox = Outbox.open(db_path(cfg, device), tenant=cfg.branch.tenant,
                         branch=cfg.branch.branch, device=device)
    branch.closers.append(outbox.conn.close)

    def emit(type_: str, data: dict[str, Any]) -> None:
        branch.bus.publish(outbox.append(type_, data, ts=branch.clock.now()))

    branch.emitters[device] = emit
    return emit


def make_issuer(branch: Branch) -> Any:
    from tessera.printing.issuer import issuer_from_config
    from tessera.roles.kiosk_issuer import KioskIssuer

    emit = device_emitter(branch, f"kiosk-{branch.cfg.kiosk.device}")
    issuer = issuer_from_config(branch.cfg, branch.engine, on_device_event=emit)
    branch.closers.append(issuer.printer.close)
    return KioskIssuer(issuer, branch.engine)


def build_branch(cfg: BranchConfig, clock: Clock, *, roles: tuple[str, ...] = ("all",),
                 sim: bool = False, engine: Any = None, device: str | None = None) -> Branch:
    """Assemble the roles of one process (all-in-one when ``roles`` is ``("all",)``).

    Without ``engine`` among the roles, the roles reach the engine over MQTT
    (``mqtt.url`` must be set) and receive its events from the broker.
    ``device`` limits counters to those wired to that Pi.
    """
    from tessera.roles import link

    want = set(ROLES[1:]) if "all" in roles else set(roles)
    bus = Bus()
    router = ActionRouter()
    branch = Branch(cfg=cfg, clock=clock, bus=bus, router=router)
    branch.closers.append(bus.stop)
    try:
        if engine is None and "engine" in want:
            engine = open_engine(cfg, clock, bus)
            branch.closers.append(engine.close)
            branch.owns_engine = True
        elif engine is None:
            engine = link.remote_engine(branch, link.role_device(cfg, want, device))
        branch.engine = engine
        if "display" in want:
            # the display role also drives the counters' own signs (from events)
            branch.display = build_display(branch, device_emitter(branch, "display"))
        if "counter" in want and engine is not None:
            for c in cfg.counters:
                if c.panel is None or (device is not None and c.device != device):
                    continue
                role = CounterRole(cfg, c, engine, clock, rating_led=_rating_lamp(branch, c, sim))
                branch.counters[c.id] = role
                bus.subscribe(role.on_event, type_prefix="")
            router.counters = branch.counters
        if "kiosk" in want and engine is not None:
            branch.kiosk = build_kiosk(branch, sim=sim)
            router.kiosk = branch.kiosk
        build_inputs(branch, sim=sim)
        if branch.kiosk is not None and cfg.kiosk.checkin:
            start_checkin(branch, cfg.kiosk.checkin)
        if "engine" in want and cfg.mqtt.url:
            link.start_engine_link(branch)
        if cfg.mqtt.url:
            link.drain_emitters(branch)
        for role in branch.counters.values():
            role.start()
        if branch.kiosk is not None:
            branch.kiosk.refresh()
    except BaseException:
        branch.close()
        raise
    return branch


def build_kiosk(branch: Branch, *, sim: bool) -> KioskRole:
    from tessera.drivers.gpio import make_lamps

    cfg = branch.cfg
    factory = _device_factory(branch, cfg.kiosk.device, sim=sim)
    leds = make_lamps({k: getattr(cfg.kiosk.leds, k) for k in
                       ("ready", "printer_warning", "printer_fault", "closed")},
                      pin_factory=factory)
    button_leds = make_lamps({str(i): b.led for i, b in enumerate(cfg.kiosk.buttons)},
                             pin_factory=factory)
    for lamp in (*leds.values(), *button_leds.values()):
        branch.closers.append(lamp.close)
    return KioskRole(cfg, make_issuer(branch), clock=branch.clock, leds=dict(leds),
                     button_leds={int(k): v for k, v in button_leds.items()})


def _rating_lamp(branch: Branch, c: Counter, sim: bool) -> Any:
    if c.panel is None or c.panel.rating_led is None:
        return None
    from tessera.drivers.gpio import GpioLamp

    factory = _device_factory(branch, c.device, sim=sim)
    lamp = GpioLamp(c.panel.rating_led, pin_factory=factory)
    branch.closers.append(lamp.close)
    return lamp


def start_checkin(branch: Branch, source: str) -> threading.Thread:
    """Read booking codes (one per line) from stdin, a serial/CDC scanner or a FIFO.

    USB HID scanners "type" the code and Enter; in keyboard-wedge mode point
    ``kiosk.checkin`` at the tty they type into, or use ``stdin``.
    """
    import sys

    kiosk = branch.kiosk
    assert kiosk is not None
    stop = threading.Event()

    def run() -> None:
        try:
            if source == "stdin":
                kiosk.read_codes(sys.stdin, stop)
                return
            with open(branch.cfg.path(source), encoding="utf-8", errors="replace") as stream:
                kiosk.read_codes(stream, stop)
        except OSError as e:
            log.error("check-in input %s: %s", source, e)

    t = threading.Thread(target=run, name="kiosk-checkin", daemon=True)
    t.start()
    branch.closers.append(stop.set)
    return t


def build_display(branch: Branch, emit: Callable[[str, dict[str, Any]], None] | None) -> Any:
    """Hall board + counter boards + announcements, fed from the bus."""
    from tessera.display.link import BoardLink
    from tessera.display.role import DisplayRole

    cfg, clock = branch.cfg, branch.clock
    link = BoardLink(lambda: open_board(cfg), clock, emit=emit) if cfg.board.url else None
    if link is not None:
        branch.closers.append(link.close)
    announcer = build_announcer(cfg, clock, emit) if cfg.voice.enabled else None
    engine = branch.engine
    snapshot = getattr(engine, "snapshot", None)  # in-process, or the `snapshot` command
    role = DisplayRole(cfg, clock=clock, link=link, announcer=announcer, snapshot=snapshot)
    role.start()
    branch.closers.append(role.stop)
    branch.bus.subscribe(role.on_event)
    if snapshot is not None and not role.rebuilt:
        _rebuild_when_reachable(branch, role, snapshot)
    return role


def _rebuild_when_reachable(branch: Branch, role: Any,
                            snapshot: Callable[[], dict[str, Any]]) -> None:
    """A display that started while the engine was unreachable rebuilds its boards as
    soon as the engine answers (bounded backoff; stops with the branch)."""
    stop = threading.Event()

    def run() -> None:
        delay = 1.0
        for _ in range(200):  # ~3 h at the 60 s cap, then the next restart tries again
            if stop.wait(delay):
                return
            try:
                role.rebuild(snapshot())
                log.info("display: boards rebuilt from the engine")
                return
            except Exception as e:
                log.warning("display: engine snapshot not available yet (%s)", e)
                delay = min(delay * 2, 60.0)

    threading.Thread(target=run, name="display-rebuild", daemon=True).start()
    branch.closers.append(stop.set)


def build_announcer(cfg: BranchConfig, clock: Clock,
                    emit: Callable[[str, dict[str, Any]], None] | None) -> Any:
    from tessera.display.announcer import Announcer
    from tessera.display.voice import ClipLibrary, generate_clips, generated_clips_dir

    v = cfg.voice
    langs = v.languages or cfg.branch.languages
    clips = cfg.path(v.clips_dir) if v.clips_dir else generated_clips_dir(cfg.path(cfg.storage.dir))
    generate_clips(clips, langs)  # only the missing ones; installer clips are kept

    def on_fault(kind: str, detail: str) -> None:
        if emit is not None:
            emit("device.fault", {"kind": "audio", "state": kind, "detail": detail})

    return Announcer(ClipLibrary(clips), audio_output(cfg), clock, languages=tuple(langs),
                     tz=cfg.tz, repeat=v.repeat, chime=v.chime, quiet_hours=v.quiet_hours,
                     volume=v.volume, max_age_s=v.max_age_s, on_fault=on_fault)


def build_inputs(branch: Branch, *, sim: bool) -> None:
    """GPIO buttons → ring → dispatcher → router, one set per device in this process."""
    from tessera.cext import Ring
    from tessera.dispatch import Dispatcher, Timing, bindings_from_config

    cfg = branch.cfg
    panels: list[Any] = []
    branch.closers.append(lambda: _close_all(panels))
    for device in devices(cfg):
        binds = [b for b in bindings_from_config(cfg, device)
                 if _wanted(branch, "kiosk." if b.action == "issue" else f"counter.{b.target}")]
        if not binds:
            continue
        factory = _device_factory(branch, device, sim=sim)
        ring = Ring(cfg.gpio.ring_capacity)
        panels.append(open_buttons([b.pin for b in binds], ring, factory))
        disp = Dispatcher(ring, binds, branch.router.on_button, timing=Timing.from_config(cfg.gpio),
                          on_fault=_device_event(branch, "device.fault", device),
                          on_recovered=_device_event(branch, "device.recovered", device))
        disp.start()
        branch.inputs.append(disp)
        branch.closers.append(disp.stop)


def _close_all(panels: list[Any]) -> None:
    """Close button panels side by side (gpiozero joins a thread per button)."""
    threads = [threading.Thread(target=p.close, daemon=True) for p in panels]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)


def open_buttons(pins: list[int], ring: Any, factory: Any) -> Any:
    """The input driver: gpiozero buttons whose callbacks only push into ``ring``."""
    from tessera.drivers.gpio import ButtonPanel

    return ButtonPanel(ring, pins, pin_factory=factory)


def _device_event(branch: Branch, type_: str, device: str) -> Callable[[str, str], None]:
    cfg = branch.cfg
    role = "kiosk" if device == cfg.kiosk.device and branch.kiosk is not None else "counter"
    emit = device_emitter(branch, f"{role}-{device}")

    def report(kind: str, detail: str) -> None:
        state = "fault" if type_ == "device.fault" else "ok"
        emit(type_, {"kind": kind, "state": state, "detail": detail})

    return report


def _wanted(branch: Branch, action: str) -> bool:
    if action.startswith("kiosk."):
        return branch.kiosk is not None
    return action.split(".")[1] in branch.counters
