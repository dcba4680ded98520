"""The one place that picks real or simulated hardware and assembles the roles.

Assembly only: what the parts do lives with them (the simulated hardware of
``run --sim`` in ``tessera.demo.hardware``, the check-in reader in
``tessera.roles.checkin``, the retained state in ``tessera.roles.state``, the
display's rebuild retry in ``tessera.display.rebuild``).

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
from collections.abc import Callable
from typing import Any

from tessera.bus import Bus
from tessera.clock import Clock
from tessera.config import BranchConfig, Counter
from tessera.identity import RUN_ROLES, device_id
from tessera.roles.branch import Branch, db_path
from tessera.roles.checkin import follow_codes
from tessera.roles.counter import CounterRole
from tessera.roles.glue import ActionRouter, devices
from tessera.roles.kiosk import KioskRole
from tessera.roles.state import display_state, engine_state, kiosk_state

log = logging.getLogger(__name__)



# --------------------------------------------------------------------------- hardware


def pin_factory(cfg: BranchConfig, *, sim: bool, device: str = "main") -> Any:
    """The gpiozero pin factory of ``device`` (one Pi): gpiozero's MockFactory in
    simulation, else ``gpio.pin_factory``, else ``$GPIOZERO_PIN_FACTORY``, else None
    (gpiozero's default). ``tessera-sim`` joins the simulated bus as ``device``."""
    from tessera.drivers.gpio import make_pin_factory

    return make_pin_factory("mock" if sim else cfg.gpio.pin_factory, device=device)


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

    want = set(RUN_ROLES[1:]) if "all" in roles else set(roles)
    bus = Bus()
    router = ActionRouter()
    branch = Branch(cfg=cfg, clock=clock, bus=bus, router=router)
    branch.closers.append(bus.stop)
    try:
        if engine is None and "engine" in want:
            engine = open_engine(cfg, clock, bus)
            branch.closers.append(engine.close)
            # the roles of this process, the command server and device events read the
            # engine's time (the system clock, or the time staff set after a power cut)
            branch.clock = engine.clock
            branch.owns_engine = True
            from tessera.engine.upkeep import StoreUpkeep

            branch.upkeep = StoreUpkeep.for_branch(
                cfg, db_path(cfg, device_id(cfg, "engine")), clock)
            branch.closers.append(branch.upkeep.close)
        elif engine is None:
            engine = link.remote_engine(branch, link.role_device(cfg, want, device))
        branch.engine = engine
        if "display" in want:
            # the display role also drives the counters' own signs (from events)
            shown = device_id(cfg, "display", device)
            branch.display = build_display(branch, device_emitter(branch, shown))
            branch.state_sources.append(display_state(branch, shown))
            if cfg.alerts.lamp is not None and device in (None, cfg.board.device):
                branch.alert_lamp = build_alert_lamp(branch, sim=sim)
        if "counter" in want and engine is not None:
            for c in cfg.counters:
                if c.panel is None or (device is not None and c.device != device):
                    continue
                # what the teller is doing reaches the counter's sign as counter.notice
                notices = device_emitter(branch, device_id(cfg, "counter", c.device))
                role = CounterRole(cfg, c, engine, clock, rating_led=_rating_lamp(branch, c, sim),
                                   emit=notices)
                branch.counters[c.id] = role
                bus.subscribe(role.on_event, type_prefix="")
            router.counters = branch.counters
        if "kiosk" in want and engine is not None:
            branch.kiosk = build_kiosk(branch, sim=sim)
            router.kiosk = branch.kiosk
            bus.subscribe(branch.kiosk.on_event, type_prefix="ticket.reprinted")
            branch.state_sources.append(kiosk_state(branch))
        if branch.owns_engine:
            branch.state_sources.append(engine_state(branch))
        if "web" in want and engine is not None and ("all" not in roles or cfg.web.enabled):
            branch.web = build_web(branch)
        build_inputs(branch, sim=sim)
        if branch.kiosk is not None and cfg.kiosk.checkin:
            follow_codes(branch, cfg.kiosk.checkin)
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


def build_alert_lamp(branch: Branch, *, sim: bool) -> Any:
    """The manager's lamp (``alerts.lamp`` on the display's Pi), fed from the bus."""
    from tessera.drivers.gpio import GpioLamp
    from tessera.roles.alerts import AlertLamp

    cfg = branch.cfg
    assert cfg.alerts.lamp is not None
    lamp = GpioLamp(cfg.alerts.lamp, pin_factory=_device_factory(branch, cfg.board.device,
                                                                 sim=sim))
    branch.closers.append(lamp.close)
    role = AlertLamp(cfg, lamp, branch.clock)
    branch.bus.subscribe(role.on_event)
    return role


def build_display(branch: Branch, emit: Callable[[str, dict[str, Any]], None] | None) -> Any:
    """Hall board + counter boards + announcements (``tessera.display.factory``), fed
    from the bus."""
    from tessera.display.factory import build_role
    from tessera.display.rebuild import rebuild_when_reachable

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
        branch.closers.append(rebuild_when_reachable(role, snapshot))
    return role


def build_web(branch: Branch) -> Any:
    """The web role (``tessera.web.role``): served on its own thread, fed from the bus;
    its console actions are ``console.action`` events of device ``web-<web.device>``."""
    from tessera.web.role import WebRole

    emit = device_emitter(branch, device_id(branch.cfg, "web"))
    role = WebRole(branch.cfg, branch.engine, branch.clock, emit=emit)
    role.start()
    branch.closers.append(role.stop)
    branch.bus.subscribe(role.on_event, type_prefix="")
    return role


def build_inputs(branch: Branch, *, sim: bool) -> None:
    """GPIO buttons → ring → dispatcher → router, one set per device in this process."""
    from tessera.cext import Ring
    from tessera.dispatch import Dispatcher, Timing, bindings_from_config

    cfg = branch.cfg
    panels: list[Any] = []
    branch.closers.append(lambda: _close_all(panels))
    for device in devices(cfg):
        binds = [b for b in bindings_from_config(cfg, device)
                 if _wanted(branch, "kiosk." if b.action in ("issue", "reprint")
                            else f"counter.{b.target}")]
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
