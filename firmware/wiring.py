"""The one place that picks real or simulated hardware and assembles the roles.

    branch = build_branch(cfg, clock, roles=("all",), sim=True)
    branch.factories["main"].pin(17).drive_low()   # the kiosk's first button (mock pins)
    branch.close()

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
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from tessera.bus import Bus
from tessera.clock import Clock
from tessera.config import BranchConfig, Counter
from tessera.identity import device_id
from tessera.roles.branch import Branch, db_path
from tessera.roles.counter import CounterRole
from tessera.roles.glue import ActionRouter, devices
from tessera.roles.kiosk import KioskRole

log = logging.getLogger(__name__)

ROLES = ("all", "kiosk", "counter", "display", "engine")


# --------------------------------------------------------------------------- hardware


def pin_factory(cfg: BranchConfig, *, sim: bool, device: str = "main") -> Any:
    """The gpiozero pin factory of ``device`` (one Pi): gpiozero's MockFactory in
    simulation, else ``gpio.pin_factory``, else ``$GPIOZERO_PIN_FACTORY``, else None
    (gpiozero's default). ``tessera-sim`` joins the simulated bus as ``device``."""
    from tessera.drivers.gpio import make_pin_factory

    return make_pin_factory("mock" if sim else cfg.gpio.pin_factory, device=device)


@contextmanager
def simulated_hardware(cfg: BranchConfig, out: Path,
                       roles: tuple[str, ...] = ("all",)) -> Iterator[BranchConfig]:
    """``cfg`` on simulated hardware: printer and board emulators on ptys (tickets and
    board renders under ``out``; only those the ``roles`` use), mock pins,
    announcements as WAV files, trusted clock."""
    import msgspec
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
        sim = demo_config(cfg, out=out, printer_url=printer_url, board_url=board_url,
                          broker=cfg.mqtt.url, checkin=cfg.kiosk.checkin, fast_buttons=False)
        # real time here, not the demo's virtual day: the configured announcement age and
        # quiet hours apply (only the speaker is simulated)
        yield msgspec.structs.replace(sim, voice=msgspec.structs.replace(
            sim.voice, max_age_s=cfg.voice.max_age_s, quiet_hours=cfg.voice.quiet_hours))


def _device_factory(branch: Branch, device: str, *, sim: bool) -> Any:
    """The pin factory of ``device``: made on first use, then shared by its buttons and
    lamps; closed after everything on it (the first closer runs last)."""
    if device not in branch.factories:
        factory = pin_factory(branch.cfg, sim=sim, device=device)
        branch.factories[device] = factory
        if factory is not None:
            branch.closers.insert(0, factory.close)
    return branch.factories[device]


# --------------------------------------------------------------------------- assembly


def open_engine(cfg: BranchConfig, clock: Clock, bus: Bus) -> Any:
    """The engine, with every committed event forwarded to the bus."""
    from tessera.engine import Engine

    def publish_all(events: list[dict[str, Any]]) -> None:
        for env in events:
            bus.publish(env)

    return Engine.open(cfg, clock, db_path(cfg, device_id(cfg, "engine")),
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

    emit = device_emitter(branch, device_id(branch.cfg, "kiosk"))
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
            shown = device_id(cfg, "display", device)
            branch.display = build_display(branch, device_emitter(branch, shown))
            branch.state_sources.append(_display_state(branch, shown))
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
            branch.state_sources.append(_kiosk_state(branch))
        if branch.owns_engine:
            branch.state_sources.append(_engine_state(branch))
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
    """Hall board + counter boards + announcements (``tessera.display.factory``), fed
    from the bus."""
    from tessera.display.factory import build_role

    cfg, clock = branch.cfg, branch.clock
    engine = branch.engine
    snapshot = getattr(engine, "snapshot", None)  # in-process, or the `snapshot` command
    role = build_role(cfg, clock, emit=emit, snapshot=snapshot)
    if role.link is not None:
        branch.closers.append(role.link.close)
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
    emit = device_emitter(branch, device_id(cfg, role, device))

    def report(kind: str, detail: str) -> None:
        state = "fault" if type_ == "device.fault" else "ok"
        emit(type_, {"kind": kind, "state": state, "detail": detail})

    return report


def _wanted(branch: Branch, action: str) -> bool:
    if action.startswith("kiosk."):
        return branch.kiosk is not None
    return action.split(".")[1] in branch.counters


# --------------------------------------------------------------------------- retained state

State = Iterable[tuple[str, str, dict[str, Any]]]

# what the kiosk's last printer status read means for the retained state/printer
_PRINTER_STATE = {
    "ok": {"paper": "ok", "cover": "closed", "online": True},
    "near_end": {"paper": "near-end", "cover": "closed", "online": True},
    "out": {"paper": "out", "cover": "closed", "online": True},
    "cover_open": {"paper": "unknown", "cover": "open", "online": True},
    "offline": {"paper": "unknown", "cover": "unknown", "online": False},
}


def _kiosk_state(branch: Branch) -> Callable[[], State]:
    device = device_id(branch.cfg, "kiosk")

    def report() -> State:
        kiosk = branch.kiosk
        assert kiosk is not None
        state = kiosk.printer_state
        info = _PRINTER_STATE.get(state, {"paper": "unknown", "cover": "unknown",
                                          "online": False})
        yield device, "printer", {"state": state, **info}
    return report


def _engine_state(branch: Branch) -> Callable[[], State]:
    """``state/queue-{service}`` and ``state/counter-{counter}`` from the engine."""
    device = device_id(branch.cfg, "engine")

    def report() -> State:
        snap = branch.engine.snapshot()
        for sid, q in snap["services"].items():
            yield device, f"queue-{sid}", {"service": sid, **q}
        for cid, c in snap["counters"].items():
            yield device, f"counter-{cid}", {"counter": cid, **c}
    return report


def _display_state(branch: Branch, device: str) -> Callable[[], State]:
    def report() -> State:
        yield device, "board", branch.display.content()
    return report
