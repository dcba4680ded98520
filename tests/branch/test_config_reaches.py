"""Every config option reaches the object that uses it (issue 11, "one assembly path").

Each row of ``ROWS`` writes one option of ``BranchConfig`` into a TOML file with a
value that is not its default, builds the branch from that file the way
``tessera run`` does (``load_config``, ``simulated_hardware``, ``build_branch``:
commands/run_cmd.py) and probes the built ``Branch``: a probe returns the value
as it arrived in the object that uses it (the AlphaBoard's serial line, the
Dispatcher's Timing, the PahoClient's settings, the engine's rules, the blocks
the ticket template lays out...). Options only ``tessera broker config`` or
``tessera report`` use are probed in what those produce.

The option list is derived from the schema: a new option anywhere in
``BranchConfig`` fails ``test_every_option_has_a_row_or_a_reason`` until it has
a row (or, when nothing can use it, an entry in ``EXEMPT`` saying why).

Rows are grouped into four builds (``GROUPS``): ``run all --sim`` twice (one
with a plain loopback mosquitto, one with a TLS listener, as the options need),
``run all`` without ``--sim`` on the emulators' ptys and mock pins for what
``--sim`` replaces (ports, pins, speaker, clock trust), and ``run kiosk --sim``
for the engine command client that only a role on its own Pi has. The brokers
are anonymous throw-away mosquittos; the shipped broker files are tested in
tests/mqtt.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from PIL import Image

from tessera.clock import SystemClock
from tessera.config import BranchConfig, load_config
from tessera.demo.hardware import simulated_hardware
from tessera.dispatch import Binding
from tessera.display.voice import generate_clips
from tessera.drivers.escpos_layout import QR, Line, Logo, TicketDoc
from tessera.engine.models import Ticket
from tessera.mqtt.broker import acl_text, bridge_lines, write_broker_files
from tessera.roles.branch import Branch
from tessera.roles.kiosk import KioskRole
from tessera.sim.board import BoardEmulator
from tessera.sim.printer import PrinterEmulator
from tessera.wiring import build_branch

pytestmark = pytest.mark.mqtt

# --------------------------------------------------------------------------- the schema


def option_defaults() -> dict[str, Any]:
    """Every leaf option of ``BranchConfig`` by path (``counters[].panel.next``), with its
    default (``msgspec.NODEFAULT`` when required). Sub-sections, optional sections and
    arrays of tables are followed into their own fields."""
    out: dict[str, Any] = {}

    def walk(t: mi.Type, path: str, default: Any) -> None:
        if isinstance(t, mi.UnionType):
            struct = [x for x in t.types if isinstance(x, mi.StructType)]
            t = struct[0] if struct else t
        if isinstance(t, (mi.VarTupleType, mi.ListType)) and isinstance(t.item_type,
                                                                      mi.StructType):
            t, path = t.item_type, path + "[]"
        if isinstance(t, mi.StructType):
            for f in t.fields:
                d = f.default_factory() if f.default_factory is not msgspec.NODEFAULT \
                    else f.default
                walk(f.type, f"{path}.{f.name}" if path else f.name, d)
            return
        out[path] = default

    walk(mi.type_info(BranchConfig), "", msgspec.NODEFAULT)
    return out


# --------------------------------------------------------------------------- builds

# Placeholders in values, replaced when the TOML is written and in the expectations.
ROOT, CLIPS, DIR, BROKER, PRINTER, BOARD = ("@ROOT@", "@CLIPS@", "@DIR@", "@BROKER@",
                                            "@PRINTER@", "@BOARD@")
FONT = "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"  # not the default wqy
# a console login's hash (tessera web hash-password), cheap parameters: made at import
WEB_HASH = "scrypt$1024$8$1$c2FsdHNhbHRzYWx0$" + "A" * 43 + "="
SIM_DEVICES = ("hub", "kiosk-front", "counter-desk-1", "display-hall")  # MQTT devices of "sim"


@dataclass
class Built:
    """One group's branch as ``tessera run all`` built it, and what it was built from."""

    group: str
    dir: Path  # where branch.toml is
    loaded: BranchConfig  # load_config's result: what broker config and report read
    branch: Branch
    subs: dict[str, str]
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def cfg(self) -> BranchConfig:
        return self.branch.cfg


@dataclass(frozen=True)
class Group:
    sim: bool  # through simulated_hardware + build_branch(sim=True), as `run --sim`
    broker: str  # "" none, "plain" anonymous loopback, "tls" TLS listener
    base: dict[str, Any]  # TOML before the rows: what a config needs to load at all
    extras: tuple[tuple[str, Any], ...] = ()  # settings the build needs that are not rows
    roles: tuple[str, ...] = ("all",)  # `tessera run ROLE`


SERVICES = [{"id": "cash", "prefix": "A", "names": {"en": "Cash", "zh": "现金"}},
            {"id": "loans", "prefix": "L", "names": {"en": "Loans", "zh": "贷款"}}]
BASE = {"branch": {"tenant": "acme", "branch": "b1"}, "services": SERVICES,
        "kiosk": {"buttons": [{"pin": 17, "service": "cash"}]}}
GROUPS: dict[str, Group] = {
    "sim": Group(sim=True, broker="plain", base={
        **BASE,
        "counters": [{"id": "k1", "number": 1, "panel": {"next": 5},
                      "services": [{"service": "cash"}, {"service": "loans"}]}],
        "staff": [{"id": "t-1", "code": "1231"}],
    }, extras=(("branch.languages", ["zh", "en"]), ("mqtt.url", BROKER))),
    # what cannot share a config with "sim": a TLS broker with one shared login, no voice,
    # a service closed all week, the ticket's languages left to the branch's
    "alt": Group(sim=True, broker="tls", base=BASE, extras=(("mqtt.url", BROKER),)),
    # what --sim replaces (ports, pins, speaker, clock trust): `tessera run all` on the
    # emulators' ptys and gpio.pin_factory = "mock"
    "hw": Group(sim=False, broker="", base=BASE, extras=(
        ("voice.clips_dir", CLIPS), ("kiosk.printer.mode", "raster"))),
    # the web role (web.enabled: part of `run all`) on a free port
    "web": Group(sim=True, broker="", base=BASE),
    # the engine's command client exists only in a role on its own Pi
    "kiosk": Group(sim=True, broker="plain", base=BASE, extras=(("mqtt.url", BROKER),),
                   roles=("kiosk",)),
}


def _subst(value: Any, subs: dict[str, str]) -> Any:
    if isinstance(value, str):
        for k, v in subs.items():
            value = value.replace(k, v)
        return value
    if isinstance(value, list):
        return [_subst(v, subs) for v in value]
    if isinstance(value, tuple):
        return tuple(_subst(v, subs) for v in value)
    if isinstance(value, (set, frozenset)):
        return {_subst(v, subs) for v in value}
    if isinstance(value, dict):
        return {_subst(k, subs): _subst(v, subs) for k, v in value.items()}
    return value


def _set(raw: dict[str, Any], path: str, value: Any) -> None:
    """Write ``value`` at ``path``; ``name[]`` is the first table of that array."""
    *parents, leaf = path.split(".")
    node = raw
    for part in parents:
        if part.endswith("[]"):
            node = node.setdefault(part[:-2], [{}])[0]
        else:
            node = node.setdefault(part, {})
    node[leaf] = value


def _toml(value: Any) -> str:
    """A TOML value; tables inline (one line each), which TOML allows at any depth."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's escapes are TOML's
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {_toml(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {value!r}")


def write_config(group: str, path: Path, subs: dict[str, str]) -> Path:
    g = GROUPS[group]
    raw: dict[str, Any] = json.loads(json.dumps(g.base))  # a deep copy
    for p, v in g.extras:
        _set(raw, p, v)
    for p, row in rows_of(group):
        if row.value is not FROM_FILE:
            _set(raw, p, row.value)
    path.write_text("".join(f"{k} = {_toml(v)}\n" for k, v in _subst(raw, subs).items()),
                    encoding="utf-8")
    return path


@contextmanager
def built(group: str, d: Path, files: Path, clips: Path, mosquitto: Any) -> Iterator[Built]:
    """The branch of ``group``, built the way ``tessera run ROLE [--sim]`` builds it
    (commands/run_cmd.py), closed on exit."""
    g = GROUPS[group]
    subs = {ROOT: str(files), CLIPS: str(clips), DIR: str(d)}
    with ExitStack() as stack:
        if g.broker == "plain":
            broker = mosquitto()
            subs[BROKER] = f"mqtt://{broker.host}:{broker.port}"
        elif g.broker == "tls":
            broker = mosquitto(extra_conf=f"certfile {files / 'server.crt'}\n"
                                          f"keyfile {files / 'server.key'}")
            subs[BROKER] = f"mqtts://{broker.host}:{broker.port}"
        if not g.sim:  # real ports, on the emulators' ptys
            subs[PRINTER] = stack.enter_context(PrinterEmulator(out_dir=d / "tickets")).path
            subs[BOARD] = stack.enter_context(BoardEmulator()).path
        loaded = load_config(write_config(group, d / "branch.toml", subs), roles=g.roles)
        cfg = loaded
        if g.sim:
            cfg = stack.enter_context(simulated_hardware(cfg, cfg.path(cfg.storage.dir) / "sim",
                                                         roles=g.roles))
        branch = build_branch(cfg, SystemClock(), roles=g.roles, sim=g.sim, device=None)
        stack.callback(branch.close)
        yield Built(group, d, loaded, branch, subs)


# --------------------------------------------------------------------------- probes


def _until(cond: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (got := cond()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return got


def _eng(b: Built) -> Any:
    return b.branch.engine


def _links(b: Built, fn: Callable[[Any], Any]) -> set[Any]:
    """``fn`` of every device link of the process (one value when all got the option)."""
    assert b.branch.links, "no MQTT links were built"
    return {fn(link) for link in b.branch.links.values()}


def _elink(b: Built) -> Any:
    return b.branch.links[b.cfg.mqtt.device]


def _kiosk(b: Built) -> KioskRole:
    assert b.branch.kiosk is not None, "no kiosk built"
    return b.branch.kiosk


def _issuer(b: Built) -> Any:
    kiosk_issuer: Any = _kiosk(b).issuer  # tessera.roles.kiosk_issuer.KioskIssuer
    return kiosk_issuer.issuer  # its TicketIssuer


def _printer(b: Built) -> Any:
    return _issuer(b).printer


def _ticket(b: Built) -> Ticket:
    return Ticket(id="0190d5f0-0000-7000-8000-000000000001", number="A001",
                  service=b.cfg.services[0].id, state="issued", priority=None,
                  business_day="2026-03-02", issued_at="2026-03-02T09:00:00+00:00",
                  people_ahead=2, est_wait_s=240.0, counter=None, recalls=0, appointment=None)


def _doc(b: Built) -> TicketDoc:
    """The kiosk's template laying out a ticket A001 of the first service."""
    doc: TicketDoc = _issuer(b).template.doc(_ticket(b))
    return doc


def _static_lines(b: Built) -> list[str]:
    return [x.text for x in _doc(b).static if isinstance(x, Line)]


def _qr(b: Built) -> QR:
    return next(x for x in _doc(b).dynamic if isinstance(x, QR))


def _web(b: Built) -> Any:
    assert b.branch.web is not None, "no web role built"
    return b.branch.web


def _binds(b: Built, action: str) -> list[Binding]:
    """Bindings of ``action`` in the dispatchers the branch runs."""
    return [p.binding for disp in b.branch.inputs for p in disp._pins.values()
            if p.binding.action == action]


def _pin(b: Built, action: str) -> int:
    (bind,) = _binds(b, action)
    return bind.pin


def _role(b: Built) -> Any:
    return next(iter(b.branch.counters.values()))


def _lamp_pin(lamp: Any) -> int:
    return int(lamp._led.pin.info.name.removeprefix("GPIO"))  # the BCM number


def _lamp_device(b: Built, lamp: Any) -> str:
    """The Pi whose pin factory drives ``lamp``."""
    return next(d for d, f in b.branch.factories.items() if f is lamp._led.pin_factory)


def _kiosk_led(name: str) -> Callable[[Built], int]:
    return lambda b: _lamp_pin(_kiosk(b).leds[name])


def _timing(name: str) -> Callable[[Built], set[float]]:
    return lambda b: {getattr(d._timing, name) for d in b.branch.inputs}


def _board(b: Built) -> Any:
    board = _until(lambda: b.branch.display.link._board, 5)  # opened by the first push
    assert board is not None, "the display never opened its board line"
    return board


def _announcer(b: Built) -> Any:
    assert b.branch.display.announcer is not None, "no announcer built"
    return b.branch.display.announcer


def _addresses(b: Built, kind: str) -> list[str]:
    return [a for a, x in b.branch.display.link._addrs.items() if x.kind == kind]


def _hall_brightness(b: Built) -> Any:
    hall = _addresses(b, "lines")[0]
    return _until(lambda: b.branch.display.link._addrs[hall].brightness, 5)


def _settings(name: str) -> Callable[[Built], set[Any]]:
    return lambda b: _links(b, lambda link: getattr(link.port.settings, name))


def _connected(b: Built) -> bool:
    return bool(_until(lambda: all(x.port.connected for x in b.branch.links.values())))


def _issue(b: Built, service: str) -> Any:
    """A ticket issued by the engine (voided again: probes leave no customer waiting)."""
    t = _eng(b).issue(service)
    _eng(b).void(t.id, "probe")
    return t


def _engine_db(b: Built) -> Path:
    return Path(_eng(b).conn.execute("PRAGMA database_list").fetchone()[2])


def _report(b: Built) -> dict[str, Any]:
    """``tessera report``'s KPIs (tessera.report) of the engine's store, with the config it
    loads."""
    from tessera.report import compute, read_facts

    return compute(read_facts(_eng(b).conn, ["2026-03-02"], b.loaded), b.loaded)


def _broker_file(b: Built, name: str) -> str:
    """A file ``tessera broker config`` writes for the loaded config."""
    if "broker" not in b.cache:
        b.cache["broker"] = write_broker_files(b.loaded, b.dir / "broker")
    path = b.cache["broker"]["mosquitto.conf"].parent / name
    return Path(path).read_text(encoding="utf-8")


def _conf(b: Built, key: str) -> list[str]:
    """Values of the ``key`` lines of the generated mosquitto.conf."""
    return [ln.split(" ", 1)[1] for ln in _broker_file(b, "mosquitto.conf").splitlines()
            if ln.startswith(key + " ")]


def _bridge(b: Built, key: str) -> str:
    (value,) = [ln.split(" ", 1)[1] for ln in bridge_lines(b.loaded) if ln.startswith(key + " ")]
    return value


def _acl_users(b: Built) -> list[str]:
    return [ln.split()[1] for ln in acl_text(b.loaded).splitlines() if ln.startswith("user ")]


def _clock_check(b: Built) -> str:
    """Which trust check the engine runs, read from what it says about the clock."""
    problem = _eng(b)._clock_problem(time.time()) or ""
    how = re.search(r"\((.*?)\)", problem)
    return "flag-file" if how and how[1].endswith(" does not exist") else problem


# --------------------------------------------------------------------------- the table

SAME: Any = object()  # the probe returns the value as written
FROM_FILE: Any = object()  # not a TOML key: taken from where the file is


@dataclass(frozen=True)
class Row:
    group: str
    value: Any  # written into the group's TOML (placeholders substituted)
    probe: Callable[[Built], Any]
    expect: Any = SAME  # a value, or a function of the build, when it differs from value


R = Row
# option -> its row, or rows when objects of several builds use it
ROWS: dict[str, Row | tuple[Row, ...]] = {
    # [branch]
    "branch.tenant": R("sim", "acme-x", lambda b: _links(b, lambda x: x.topics.tenant)
                       | {_eng(b).outbox.tenant}, {"acme-x"}),
    "branch.branch": R("sim", "b-7", lambda b: _links(b, lambda x: x.topics.branch)
                       | {_eng(b).outbox.branch}, {"b-7"}),
    "branch.name": R("sim", "Branch Seven", lambda b: _static_lines(b)[0]),
    "branch.timezone": R("sim", "Asia/Shanghai", lambda b: {str(_eng(b)._tz),
                                                           str(_announcer(b).tz)},
                         {"Asia/Shanghai"}),
    # alt has no ticket.languages: the ticket falls back to the branch's
    "branch.languages": R("alt", ["zh", "en"], lambda b: _issuer(b).template.languages),
    "branch.day_rollover": R("sim", "05:30", lambda b: _eng(b)._rollover.strftime("%H:%M")),
    # [[services]] (the first one)
    "services[].id": R("sim", "cash", lambda b: next(iter(_eng(b).snapshot()["services"]))),
    "services[].prefix": R("sim", "Q", lambda b: _issue(b, "cash").number.rstrip("0123456789")),
    "services[].names": R("sim", {"en": "Cash desk", "zh": "现金台"},
                          lambda b: (_eng(b)._name(_eng(b)._services["cash"]),
                                     _static_lines(b)[1]), ("现金台", "Cash desk")),
    "services[].hours": R("alt", {"default": []},
                          lambda b: (_eng(b).snapshot()["services"]["cash"]["open"],
                                     "cash" in _kiosk(b).closed_services), (False, True)),
    "services[].default_service_s": R("sim", 420.0,
                                      lambda b: _eng(b)._history("cash").default_s),
    "services[].sla_wait_s": R("sim", 600.0,
                               lambda b: _report(b)["services"]["cash"]["sla_wait_s"]),
    "services[].sla_target": R("sim", 0.8,
                               lambda b: _report(b)["services"]["cash"]["sla_target_pct"], 80.0),
    "services[].number_width": R("sim", 4, lambda b: len(_issue(b, "cash").number) - 1),
    # the route a ticket of the service is issued with (and prints, template field route)
    "services[].then": R("sim", "loans", lambda b: (_issue(b, "cash").route,
                                                    _issuer(b).template.fields(
                                                        _issue(b, "cash"))["route"]),
                         (("loans",), "Cash desk > Loans")),
    # what _end_day reads at the roll (the behaviour: tests/engine/test_engine_day_end.py)
    "services[].at_day_end": R("sim", "carry", lambda b: _eng(b)._services["cash"].at_day_end),
    # [[counters]] (k1, on its own Pi with a full login panel)
    "counters[].id": R("sim", "k1", lambda b: (_role(b).id,
                                               next(iter(_eng(b).snapshot()["counters"]))),
                       ("k1", "k1")),
    "counters[].number": R("sim", 7, lambda b: _eng(b).snapshot()["counters"]["k1"]["number"]),
    # the open counter gives the engine's wait estimate capacity for what it serves
    "counters[].services[].service": R("sim", "cash", lambda b: [
        s for s in ("cash", "loans") if _eng(b)._servers(s, time.time(), set())],
        ["cash", "loans"]),
    "counters[].services[].weight": R("sim", 3.0, lambda b: _eng(b)._servers(
        "cash", time.time(), {"loans"})[0].share, 0.75),
    # what the estimate does with it: tests/engine/test_engine_wait_terms.py
    "counters[].hours": R("sim", {"default": ["08:00-20:00"]}, lambda b: {
        d: list(v) for d, v in _eng(b)._counters["k1"].hours.items()}),
    "counters[].staff": R("sim", "t-1", lambda b: (
        _role(b).staff, _eng(b).snapshot()["counters"]["k1"]["staff"]), ("t-1", "t-1")),
    "counters[].device": R("sim", "desk-1", lambda b: _lamp_device(b, _role(b).rating_led)),
    "counters[].panel.next": R("sim", 5, lambda b: _pin(b, "next")),
    "counters[].panel.recall": R("sim", 6, lambda b: _pin(b, "recall")),
    "counters[].panel.transfer": R("sim", 13, lambda b: _pin(b, "transfer")),
    "counters[].panel.no_show": R("sim", 19, lambda b: _pin(b, "no_show")),
    "counters[].panel.done": R("sim", 26, lambda b: _pin(b, "done")),
    "counters[].panel.pause": R("sim", 12, lambda b: _pin(b, "pause")),
    "counters[].panel.ratings": R("sim", [20, 21, 16], lambda b: [
        x.pin for x in sorted(_binds(b, "rate"), key=lambda x: int(x.arg or 0))]),
    "counters[].panel.rating_led": R("sim", 23, lambda b: _lamp_pin(_role(b).rating_led)),
    "counters[].panel.transfer_targets": R("sim", ["loans"],
                                           lambda b: _role(b).transfer_targets),
    "counters[].panel.login": R("sim", True, lambda b: (
        _role(b).pad is not None, _binds(b, "done")[0].hold_action), (True, "logout")),
    "counters[].board_address": R("sim", "11", lambda b: list(b.branch.display._board_of.values())
                                  if "11" in _addresses(b, "field") else [], ["11"]),
    # the engine rates k1's presses on its own scale (3 buttons, engine.rating_scale 4)
    "counters[].rating_scale": R("sim", 3, lambda b: (_eng(b).rate("k1", 3).score, _eng(
        b).conn.execute("SELECT scale FROM ratings ORDER BY id DESC LIMIT 1").fetchone()[0]),
        (3, 3)),
    # [[staff]]
    "staff[].id": R("sim", "t-1", lambda b: _role(b).pad.staff_for("1231")),
    "staff[].code": R("sim", "1231", lambda b: next(iter(_role(b).pad._codes))),
    # [clock]: --sim trusts its clock, so "hw"
    "clock.trust": R("hw", "flag-file", _clock_check),
    "clock.sync_flag": R("hw", f"{ROOT}/not-synced", lambda b: str(_eng(b)._trust.__self__)),
    "clock.allow_untrusted": R("hw", True, lambda b: _issue(b, "cash").state, "issued"),
    # [storage] and the file's own folder: --sim keeps its stores in <storage.dir>/sim
    "storage.dir": R("sim", "store", lambda b: _engine_db(b).parent.parent.name),
    "base_dir": R("sim", FROM_FILE, lambda b: str(_engine_db(b).parent.parent.parent), DIR),
    # [engine]
    "engine.unconfirmed_timeout_s": R("sim", 45.0,
                                      lambda b: _eng(b).cfg.engine.unconfirmed_timeout_s),
    "engine.transfer_position": R("sim", "front",
                                  lambda b: _eng(b).cfg.engine.transfer_position),
    "engine.priority_order": R("sim", ["vip", "priority", "emergency"],
                               lambda b: list(_eng(b)._rank)),
    "engine.starvation_after": R("sim", 5, lambda b: _eng(b).rules.starvation_after),
    "engine.starvation_wait_s": R("sim", 300.0, lambda b: _eng(b).rules.starvation_wait_s),
    "engine.feedback_window_s": R("sim", 90.0, lambda b: {
        _eng(b).cfg.engine.feedback_window_s, _role(b).cfg.engine.feedback_window_s}, {90.0}),
    "engine.rating_scale": R("sim", 4, lambda b: _eng(b).cfg.engine.rating_scale),
    "engine.refuse_past_closing": R("sim", False,
                                    lambda b: _eng(b).cfg.engine.refuse_past_closing),
    "engine.appointment_early_s": R("sim", 1200.0,
                                    lambda b: _eng(b).cfg.engine.appointment_early_s),
    "engine.appointment_late_s": R("sim", 300.0,
                                   lambda b: _eng(b).cfg.engine.appointment_late_s),
    "engine.appointments_file": R("sim", f"{ROOT}/bookings.csv", lambda b: [
        r[0] for r in _eng(b).conn.execute("SELECT code FROM bookings")], ["BK-77"]),
    "engine.number_wrap": R("sim", "refuse", lambda b: _eng(b).cfg.engine.number_wrap),
    "engine.keep_days": R("sim", 9, lambda b: (b.branch.upkeep.keep_days,
                                                b.branch.upkeep.path == _engine_db(b)),
                          (9, True)),
    "engine.recent_service_window": R("sim", 50,
                                      lambda b: _eng(b).cfg.engine.recent_service_window),
    # what it does to tickets and events: tests/engine/test_engine_wait_terms.py
    "engine.wait_range": R("sim", True, lambda b: _eng(b).cfg.engine.wait_range),
    "engine.no_show_undo_s": R("sim", 90.0, lambda b: _eng(b).cfg.engine.no_show_undo_s),
    "engine.pause_while_called": R("sim", "refuse",
                                   lambda b: _eng(b).cfg.engine.pause_while_called),
    # [kiosk]
    "kiosk.device": R("sim", "front", lambda b: _lamp_device(b, _kiosk(b).leds["ready"])),
    "kiosk.buttons[].pin": R("sim", 17, lambda b: _pin(b, "issue")),
    "kiosk.buttons[].service": R("sim", "loans", lambda b: _binds(b, "issue")[0].target),
    "kiosk.buttons[].priority": R("sim", "vip", lambda b: _binds(b, "issue")[0].arg),
    "kiosk.buttons[].led": R("sim", 24, lambda b: _lamp_pin(_kiosk(b).button_leds[0])),
    "kiosk.leds.ready": R("sim", 4, _kiosk_led("ready")),
    "kiosk.leds.printer_warning": R("sim", 14, _kiosk_led("printer_warning")),
    "kiosk.leds.printer_fault": R("sim", 15, _kiosk_led("printer_fault")),
    "kiosk.leds.closed": R("sim", 18, _kiosk_led("closed")),
    # a held staff button: the dispatcher's REPRINT binding, hold only (issue 15)
    "kiosk.reprint_pin": R("sim", 26, lambda b: [
        (x.pin, x.hold_action) for x in _binds(b, "reprint")], [(26, "reprint")]),
    # the file holds one booking code: the check-in reader hands it to the kiosk
    "kiosk.checkin": R("sim", f"{ROOT}/codes.txt", lambda b: _kiosk(b).wait_attempts(1, 10),
                       True),
    "kiosk.printer.url": R("hw", PRINTER, lambda b: _printer(b).url),
    "kiosk.printer.profile": R("sim", "XP-80C-CN", lambda b: {
        _printer(b).profile.name, _issuer(b).encoder.profile.name}, {"XP-80C-CN"}),
    "kiosk.printer.mode": R("sim", "raster", lambda b: str(_issuer(b).encoder.mode)),
    "kiosk.printer.baudrate": R("sim", 9600, lambda b: {
        _printer(b).baudrate, _printer(b)._require_link()._ser.baudrate}, {9600}),
    # --sim raises it to 2 s for the emulator on a busy machine (tessera.demo.setup)
    "kiosk.printer.status_timeout_ms": R("hw", 300,
                                         lambda b: round(_printer(b).status_timeout_s * 1000)),
    "kiosk.printer.require_status": R("sim", False, lambda b: _issuer(b).require_status),
    # raster over a serial line loads only with it (config check on the configured url)
    "kiosk.printer.raster_over_serial": R("hw", True, lambda b: (
        str(_issuer(b).encoder.mode), _printer(b).link_kind), ("raster", "serial")),
    # [ticket]
    "ticket.languages": R("sim", ["en"], lambda b: _issuer(b).template.languages),
    "ticket.logo": R("sim", f"{ROOT}/logo.png", lambda b: [
        x.path for x in _doc(b).static if isinstance(x, Logo)], [f"{ROOT}/logo.png"]),
    "ticket.font": R("sim", FONT, lambda b: _issuer(b).encoder.renderer.font_path),
    "ticket.qr": R("sim", "https://q.example/t/{number}", lambda b: _qr(b).payload,
                   "https://q.example/t/A001"),
    "ticket.qr_module": R("sim", 4, lambda b: _qr(b).module),
    "ticket.qr_error": R("sim", "H", lambda b: _qr(b).error),
    "ticket.footer": R("sim", "See you", lambda b: [
        x.text for x in _doc(b).dynamic if isinstance(x, Line)][-1]),
    "ticket.extra_line": R("sim", "Ticket {number}", lambda b: [
        x.text for x in _doc(b).dynamic if isinstance(x, Line) and x.bold], ["Ticket A001"]),
    "ticket.priority_names": R("sim", {"vip": {"en": "Gold"}}, lambda b: [
        x.text for x in _issuer(b).template.labels(dataclasses.replace(
            _ticket(b), priority="vip"))], ["Gold"]),
    # [gpio]
    "gpio.pin_factory": R("hw", "mock", lambda b: {
        type(f).__name__ for f in b.branch.factories.values()}, {"MockFactory"}),
    "gpio.debounce_ms": R("sim", 12.0, _timing("debounce_ms"), {12.0}),
    "gpio.hold_ms": R("sim", 900.0, _timing("hold_ms"), {900.0}),
    "gpio.stuck_ms": R("sim", 20000.0, _timing("stuck_ms"), {20000.0}),
    "gpio.repeat_ms": R("sim", 700.0, _timing("repeat_ms"), {700.0}),
    "gpio.ring_capacity": R("sim", 256, lambda b: {d._ring.capacity for d in b.branch.inputs},
                            {256}),
    # [board]
    "board.url": R("hw", BOARD, lambda b: _board(b)._port.port),
    "board.baudrate": R("sim", 19200, lambda b: _board(b)._port.baudrate),
    "board.bytesize": R("sim", 8, lambda b: _board(b)._port.bytesize),
    "board.parity": R("sim", "N", lambda b: _board(b)._port.parity),
    "board.stopbits": R("sim", 2, lambda b: _board(b)._port.stopbits),
    "board.hall_address": R("sim", "02", lambda b: _addresses(b, "lines"), ["02"]),
    "board.history": R("sim", 6, lambda b: b.branch.display.hall.history),
    "board.highlight_s": R("sim", 5.0, lambda b: b.branch.display.hall.highlight_s),
    "board.brightness": R("sim", {"00:00": 55}, _hall_brightness, 55),
    "board.ping_interval_s": R("sim", 2.5, lambda b: b.branch.display.link._ping_interval),
    "board.flash": R("sim", True, lambda b: _board(b)._flash),
    "board.sign": R("sim", "solar", lambda b: _board(b).sign.name),
    "board.device": R("sim", "hall", lambda b: [
        d for d in b.branch.emitters if d.startswith("display-")], ["display-hall"]),
    "board.notice_s": R("sim", 2.5, lambda b: {b.branch.display.cfg.board.notice_s,
                                               _role(b).cfg.board.notice_s}, {2.5}),
    # [alerts]: the manager's lamp (on the display's Pi) and sign line
    "alerts.lamp": R("sim", 27, lambda b: _lamp_pin(b.branch.alert_lamp.lamp)),
    "alerts.board_address": R("sim", "3C", lambda b: (b.branch.display._alert_addr,
                                                       "3C" in _addresses(b, "field")),
                              ("3C", True)),
    "alerts.hold_s": R("sim", 120.0, lambda b: b.branch.alert_lamp.cfg.alerts.hold_s),
    # [voice]
    "voice.enabled": R("alt", False, lambda b: b.branch.display.announcer is not None),
    "voice.languages": R("sim", ["en"], lambda b: _announcer(b).languages),
    "voice.clips_dir": R("sim", CLIPS, lambda b: str(_announcer(b).clips.root)),
    "voice.output": R("hw", f"dir:{DIR}/wav", lambda b: str(_announcer(b).out.directory),
                      f"{DIR}/wav"),
    "voice.repeat": R("sim", 2, lambda b: _announcer(b).repeat),
    "voice.chime": R("sim", False, lambda b: _announcer(b).chime),
    "voice.quiet_hours": R("sim", ["01:00-02:00"], lambda b: _announcer(b).quiet_hours),
    "voice.volume": R("sim", {"00:00": 70}, lambda b: _announcer(b).volume),
    "voice.max_age_s": R("sim", 20.0, lambda b: _announcer(b).max_age_s),
    # [mqtt]: every device link of the process (engine, kiosk, counter, display)
    "mqtt.url": R("sim", BROKER, lambda b: (
        _links(b, lambda x: f"mqtt://{x.port.settings.host}:{x.port.settings.port}"),
        _connected(b)), lambda b: ({b.subs[BROKER]}, True)),
    "mqtt.device": R("sim", "hub", lambda b: (
        _eng(b).outbox.device, _elink(b).topics.device, _links(b, lambda x: x.topics.engine)),
        ("hub", "hub", {"hub"})),
    "mqtt.credentials_dir": R("sim", f"{ROOT}/creds", lambda b: {
        d: x.port.settings.username for d, x in b.branch.links.items()},
        {d: f"user-{d}" for d in SIM_DEVICES}),
    # TLS to the test broker verified against this CA, with one shared login
    "mqtt.credentials_file": R("alt", f"{ROOT}/shared.toml",
                               _settings("username"), {"shared"}),
    "mqtt.ca_file": R("alt", f"{ROOT}/server.crt", lambda b: (
        _settings("ca_file")(b), _connected(b)), ({f"{ROOT}/server.crt"}, True)),
    "mqtt.session_expiry_s": R("sim", 3600, _settings("session_expiry_s"), {3600}),
    "mqtt.inflight": R("sim", 60, lambda b: _links(b, lambda x: x.drainer.inflight_cap), {60}),
    "mqtt.outbox_budget_mb": R("sim", 8.0, lambda b: _links(
        b, lambda x: x.uplink.retention.budget_bytes), {8 << 20}),
    "mqtt.keepalive_s": R("sim", 45, _settings("keepalive_s"), {45}),
    "mqtt.connect_timeout_s": R("sim", 12.0, _settings("connect_timeout_s"), {12.0}),
    "mqtt.reconnect_min_s": R("sim", 0.25, _settings("backoff_min_s"), {0.25}),
    "mqtt.reconnect_max_s": R("sim", 20.0, _settings("backoff_max_s"), {20.0}),
    "mqtt.command_max_bytes": R("sim", 2048, lambda b: _elink(b).server.max_bytes),
    "mqtt.command_max_age_s": (
        R("sim", 15.0, lambda b: _elink(b).server.max_age_s),
        # the requests' MQTT 5 MessageExpiry: the broker drops what the engine would refuse
        R("kiosk", 15.0, lambda b: b.branch.engine.client.expiry_s, 15)),
    "mqtt.delivered_keep_s": R("sim", 3600.0, lambda b: _links(
        b, lambda x: x.uplink.retention.keep_s), {3600.0}),
    "mqtt.delivered_keep_rows": R("sim", 5000, lambda b: _links(
        b, lambda x: x.uplink.retention.keep_rows), {5000}),
    "mqtt.status_expiry_s": R("sim", 45, lambda b: _links(
        b, lambda x: (x.presence.status_expiry_s, x.presence.refresh_every_s)), {(45, 15.0)}),
    # broker side: what `tessera broker config` writes (run builds no object from these)
    "mqtt.devices": R("sim", {"front": ["kiosk"], "desk-1": ["counter"], "hall": ["display"],
                              "ops": ["monitor"]}, _acl_users,
                      ["counter-desk-1", "display-hall", "hub", "kiosk-front", "monitor-ops"]),
    "mqtt.listener_port": R("sim", 8884, lambda b: _conf(b, "listener")[1], "8884 10.0.0.5"),
    "mqtt.listener_bind": R("sim", "10.0.0.5", lambda b: _conf(b, "listener")[1].split()[1]),
    "mqtt.local_port": R("sim", 1884, lambda b: _conf(b, "listener")[0], "1884 127.0.0.1"),
    "mqtt.tls_cert_file": R("sim", f"{ROOT}/server.crt", lambda b: _broker_file(
        b, "tls/server.crt"), lambda b: (Path(b.subs[ROOT]) / "server.crt").read_text()),
    "mqtt.tls_key_file": R("sim", f"{ROOT}/server.key", lambda b: _broker_file(
        b, "tls/server.key"), lambda b: (Path(b.subs[ROOT]) / "server.key").read_text()),
    "mqtt.persistence_dir": R("sim", f"{ROOT}/mq-store/",
                              lambda b: _conf(b, "persistence_location")[0]),
    "mqtt.message_size_limit": R("sim", 131072, lambda b: int(_conf(b, "max_packet_size")[0])),
    "mqtt.broker_log_types": R("sim", ["error", "warning"], lambda b: _conf(b, "log_type")),
    "mqtt.hq.url": R("sim", "mqtts://hq.example.com:8884", lambda b: _bridge(b, "address"),
                     "hq.example.com:8884"),
    "mqtt.hq.username": R("sim", "bridge-b7", lambda b: _bridge(b, "remote_username")),
    "mqtt.hq.password_file": R("sim", f"{ROOT}/hq.pw", lambda b: _bridge(b, "remote_password"),
                               "s3cret-hq"),
    "mqtt.hq.ca_file": R("sim", f"{ROOT}/hq-ca.pem", lambda b: _bridge(b, "bridge_cafile")),
    "mqtt.hq.client_id": R("sim", "b7-bridge", lambda b: _bridge(b, "remote_clientid")),
    "mqtt.hq.restart_min_s": R("sim", 10, lambda b: int(_bridge(b, "restart_timeout").split()[0])),
    "mqtt.hq.restart_max_s": R("sim", 300,
                               lambda b: int(_bridge(b, "restart_timeout").split()[1])),
    "mqtt.hq.keepalive_s": R("sim", 90, lambda b: int(_bridge(b, "keepalive_interval"))),
    "mqtt.hq.try_private": R("sim", True, lambda b: _bridge(b, "try_private") == "true"),
    "mqtt.hq.notifications": R("sim", False, lambda b: _bridge(b, "notifications") == "true"),
    # [web]: the web role's server, links, hub and logins
    "web.enabled": R("web", True, lambda b: b.branch.web is not None),
    "web.device": R("web", "hall", lambda b: [d for d in b.branch.emitters
                                              if d.startswith("web-")], ["web-hall"]),
    "web.bind": R("web", "localhost", lambda b: _web(b)._server.config.host),
    "web.port": R("web", 0, lambda b: (_web(b)._server.config.port, _web(b).port > 0),
                  (0, True)),
    # the web role's links and the printed QR code are one setting
    "web.base_url": R("web", "https://q.example", lambda b: (
        _web(b).signer.base_url, _qr(b).payload), lambda b: (
        "https://q.example", _web(b).signer.url("0190d5f0-0000-7000-8000-000000000001"))),
    "web.secret_file": R("web", f"{DIR}/web.secret", lambda b: _web(b).signer._secret,
                         lambda b: (Path(b.subs[DIR]) / "web.secret").read_bytes()),
    "web.heartbeat_s": R("web", 0.7, lambda b: _web(b).heartbeat_s),
    "web.stale_s": R("web", 3.0, lambda b: _web(b).stale_s),
    "web.ring": R("web", 64, lambda b: _web(b).hub._size),
    "web.session_s": R("web", 600.0, lambda b: _web(b).accounts.session_s),
    "web.lockout_attempts": R("web", 3, lambda b: _web(b).accounts.lockout_attempts),
    "web.lockout_s": R("web", 60.0, lambda b: _web(b).accounts.lockout_s),
    "web.join": R("web", True, lambda b: _web(b).join_enabled),
    "web.join_per_hour": R("web", 7, lambda b: _web(b).join_per_hour),
    "web.join_per_min": R("web", 20, lambda b: (_web(b).join_per_min,
                                                _web(b)._join_branch.burst), (20, 20.0)),
    "web.accounts[].name": R("web", "lin", lambda b: sorted(_web(b).accounts.accounts),
                             ["lin"]),
    "web.accounts[].role": R("web", "manager", lambda b: [
        a.role for a in _web(b).accounts.accounts.values()], ["manager"]),
    "web.accounts[].password_hash": R("web", WEB_HASH, lambda b: [
        a.password_hash for a in _web(b).accounts.accounts.values()], [WEB_HASH]),
}



def rows_of(group: str) -> Iterator[tuple[str, Row]]:
    for path, rows in ROWS.items():
        for row in rows if isinstance(rows, tuple) else (rows,):
            if row.group == group:
                yield path, row


EXEMPT: dict[str, str] = {
    "board.protocol": "a one-value Literal ('alpha'): there is no non-default value to set, "
                      "and the one board driver is AlphaBoard (display.factory.board_opener)",
    "mqtt.redeliver_window_s": "deprecated (issue 12) and ignored: the broker's retained "
                               "high-water mark replaced the re-send window; still accepted, "
                               "and DeviceLink.from_config logs a warning naming it "
                               "(tests/mqtt/test_mqtt_redeliver.py)",
    "staff[].name": "a label for whoever reads the config: boards, events, logs and reports "
                    "name staff by id only (a name is personal data that stays off MQTT)",
}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files the rows point at: logo, bookings, check-in codes, logins, a TLS pair."""
    root = tmp_path_factory.mktemp("reach-files")
    Image.new("1", (96, 32), 0).save(root / "logo.png")
    # a slot in the future of the system clock this test runs on: a booking loaded after its
    # window ended is not booked at all (engine.bookings: past)
    (root / "bookings.csv").write_text("code,service,slot\nBK-77,cash,2099-03-02T10:00\n")
    (root / "codes.txt").write_text("BK-NONE\n")
    (root / "creds").mkdir()
    for d in SIM_DEVICES:
        (root / "creds" / f"{d}.toml").write_text(f'username = "user-{d}"\npassword = "pw"\n')
    (root / "shared.toml").write_text('username = "shared"\npassword = "pw"\n')
    (root / "hq.pw").write_text("s3cret-hq\n")
    # self-signed, so it is both the broker's certificate and the CA the devices trust
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(root / "server.key"),
                    "-out", str(root / "server.crt"), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    (root / "hq-ca.pem").write_text((root / "server.crt").read_text())
    return root


# --------------------------------------------------------------------------- tests


def _norm(x: Any) -> Any:
    """Compare tuples as lists, sets as sorted lists, paths and str-enums as text."""
    if isinstance(x, (list, tuple)):
        return [_norm(v) for v in x]
    if isinstance(x, (set, frozenset)):
        return sorted((_norm(v) for v in x), key=repr)
    if isinstance(x, dict):
        return {_norm(k): _norm(v) for k, v in x.items()}
    if isinstance(x, Path):
        return str(x)
    return x


def test_every_option_has_a_row_or_a_reason() -> None:
    options = set(option_defaults())
    missing = sorted(options - ROWS.keys() - EXEMPT.keys())
    assert not missing, f"options without a row in ROWS (or a reason in EXEMPT): {missing}"
    assert not sorted((ROWS.keys() | EXEMPT.keys()) - options), "rows for options that are gone"
    assert not ROWS.keys() & EXEMPT.keys()
    assert {r.group for rs in ROWS.values() for r in (rs if isinstance(rs, tuple) else (rs,))
            } <= GROUPS.keys()


def test_rows_set_values_other_than_the_defaults() -> None:
    defaults = option_defaults()
    same = [p for g in GROUPS for p, r in rows_of(g) if r.value is not FROM_FILE
            and defaults[p] is not msgspec.NODEFAULT and _norm(r.value) == _norm(defaults[p])]
    assert not same, f"rows that write the default value (they prove nothing): {same}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("group", list(GROUPS))
def test_options_reach_the_objects_that_use_them(
        group: str, files: Path, clips_cache: Path, mosquitto: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(clips_cache))  # python-escpos' profile cache
    generate_clips(clips_cache, ("en", "zh"))  # voice.clips_dir must hold them (config check)
    wrong: list[str] = []
    with built(group, tmp_path, files, clips_cache, mosquitto) as b:
        for path, row in rows_of(group):
            value = _subst(row.value, b.subs)
            want = row.expect(b) if callable(row.expect) else \
                value if row.expect is SAME else _subst(row.expect, b.subs)
            try:
                got = row.probe(b)
            except Exception as e:  # one broken probe must not hide the other rows
                wrong.append(f"{path} = {value!r}: probe failed: {type(e).__name__}: {e}")
                continue
            if _norm(got) != _norm(want):
                wrong.append(f"{path} = {value!r}: the object has {got!r}, expected {want!r}")
    assert not wrong, "options that did not reach their object:\n" + "\n".join(wrong)
