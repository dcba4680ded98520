"""Branch configuration: one TOML file, validated once, frozen.

Every problem is reported at once, each with its path and what to fix
(``counters[2].panel.next: pin 17 already used by kiosk.buttons[0] on device 'main'``).

    >>> cfg = load_config("examples/bank.toml")
    >>> cfg.service("cash").prefix
    'A'

Each section is a frozen ``msgspec.Struct`` (chosen over pydantic: it
validates TOML-shaped data with paths in its messages, and costs ~1 MiB of RSS
instead of ~20, which matters for the per-role memory budget on a Pi).
Sections are converted one by one (and list entries one by one) so that one
mistake never hides the next.
"""

from __future__ import annotations

import importlib
import itertools
import re
import tomllib
from collections.abc import Callable, Iterable
from datetime import time
from pathlib import Path
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from tessera.errors import ConfigError

NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
PREFIX_RE = re.compile(r"^[A-Z]{1,2}$")
HOURS_RE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PIN_FACTORIES = ("lgpio", "rpigpio", "pigpio", "native", "mock")
# a staff login code: digit d is rating button d (1 = lowest); at most 5 rating buttons
STAFF_CODE_DIGITS = (3, 8)  # shortest and longest code
STAFF_CODE_RE = re.compile(rf"^[1-5]{{{STAFF_CODE_DIGITS[0]},{STAFF_CODE_DIGITS[1]}}}$")


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


# --------------------------------------------------------------------------- sections


class BranchSection(_Section, frozen=True):
    tenant: str
    branch: str
    name: str = ""
    timezone: str = "UTC"
    languages: tuple[str, ...] = ("en",)
    day_rollover: str = "04:00"  # local time at which the business day (and numbering) rolls


class ClockSection(_Section, frozen=True):
    # how the engine decides the wall clock can be trusted before issuing tickets
    trust: Literal["timedatectl", "flag-file", "always"] = "timedatectl"
    sync_flag: str = "/run/systemd/timesync/synchronized"
    allow_untrusted: bool = False


class StorageSection(_Section, frozen=True):
    dir: str = "var"  # relative to the config file


class EngineSection(_Section, frozen=True):
    unconfirmed_timeout_s: float = 60.0
    transfer_position: Literal["front", "back"] = "back"
    priority_order: tuple[str, ...] = ("emergency", "priority", "vip")
    starvation_after: int = 3
    starvation_wait_s: float = 600.0
    feedback_window_s: float = 120.0
    rating_scale: int = 5
    refuse_past_closing: bool = True
    appointment_early_s: float = 900.0
    appointment_late_s: float = 600.0
    appointments_file: str = ""
    number_wrap: Literal["extend", "wrap", "refuse"] = "extend"
    recent_service_window: int = 500  # completed services the wait estimate learns from


class Service(_Section, frozen=True):
    id: str
    prefix: str
    names: dict[str, str]
    hours: dict[str, tuple[str, ...]] = msgspec.field(default_factory=dict)
    default_service_s: float = 300.0
    sla_wait_s: float = 900.0
    sla_target: float = 0.9
    number_width: int = 3

    def name(self, lang: str) -> str:
        return self.names.get(lang) or next(iter(self.names.values()), self.id)


class CounterService(_Section, frozen=True):
    service: str
    weight: float = 1.0


class Panel(_Section, frozen=True):
    next: int
    recall: int | None = None
    transfer: int | None = None
    no_show: int | None = None
    done: int | None = None
    pause: int | None = None  # optional: holding NEXT also pauses
    ratings: tuple[int, ...] = ()  # lowest score first
    rating_led: int | None = None
    transfer_targets: tuple[str, ...] = ()  # services TRANSFER cycles through
    login: bool = False  # staff log in with a code typed on the rating buttons, DONE submits


class Counter(_Section, frozen=True):
    id: str
    number: int
    services: tuple[CounterService, ...]
    staff: str = ""
    device: str = "main"
    panel: Panel | None = None
    board_address: str | None = None


class Staff(_Section, frozen=True):
    """One person who may log in at a counter: ``code`` is typed on the rating buttons."""

    id: str
    code: str
    name: str = ""

    def __repr__(self) -> str:  # a login code never reaches a log line or a traceback
        return f"Staff(id={self.id!r}, name={self.name!r}, code=<hidden>)"


class KioskButton(_Section, frozen=True):
    pin: int
    service: str
    priority: str | None = None
    led: int | None = None


class KioskLeds(_Section, frozen=True):
    ready: int | None = None
    printer_warning: int | None = None
    printer_fault: int | None = None
    closed: int | None = None


class PrinterSection(_Section, frozen=True):
    url: str = ""  # serial URL / device path, usb://VID:PID, tcp://host:9100
    profile: str = "TM-T20II"
    mode: Literal["auto", "raster", "text"] = "auto"
    baudrate: int = 115200
    status_timeout_ms: int = 200
    require_status: bool = True  # refuse tickets when the printer does not answer DLE EOT
    raster_over_serial: bool = False  # full-raster mode on a serial link (~50 KB a ticket)


class KioskSection(_Section, frozen=True):
    device: str = "main"
    buttons: tuple[KioskButton, ...] = ()
    leds: KioskLeds = KioskLeds()
    checkin: str = ""  # input device path, "stdin", or "" for none
    printer: PrinterSection = PrinterSection()


class TicketSection(_Section, frozen=True):
    languages: tuple[str, ...] = ()  # defaults to branch.languages
    logo: str = ""
    font: str = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
    qr: str = ""  # e.g. "https://q.example.com/t/{ticket_id}"
    qr_module: int = 6  # dots per QR module
    qr_error: Literal["L", "M", "Q", "H"] = "M"
    footer: str = ""
    extra_line: str = ""


class GpioSection(_Section, frozen=True):
    pin_factory: str = ""  # "" = GPIOZERO_PIN_FACTORY or gpiozero's default
    debounce_ms: float = 30.0
    hold_ms: float = 2000.0
    stuck_ms: float = 30000.0
    repeat_ms: float = 1500.0
    ring_capacity: int = 1024


class BoardSection(_Section, frozen=True):
    url: str = ""
    protocol: Literal["alpha"] = "alpha"
    baudrate: int = 9600
    bytesize: int = 7
    parity: Literal["N", "E", "O"] = "E"
    stopbits: int = 1
    hall_address: str = "01"
    history: int = 4
    highlight_s: float = 10.0
    brightness: dict[str, int] = msgspec.field(default_factory=dict)  # "HH:MM" -> percent
    ping_interval_s: float = 10.0  # read-back liveness check; 0 = write-only line
    flash: bool = False  # also blink the highlighted line (colour is always used)


class VoiceSection(_Section, frozen=True):
    enabled: bool = True
    languages: tuple[str, ...] = ()  # announcement order; defaults to branch.languages
    clips_dir: str = ""  # "" = clips generated with espeak-ng into storage.dir
    output: str = "aplay"  # "aplay" or "dir:PATH"
    repeat: int = 1
    chime: bool = True
    quiet_hours: tuple[str, ...] = ()  # "HH:MM-HH:MM"
    volume: dict[str, int] = msgspec.field(default_factory=dict)  # "HH:MM" -> percent
    max_age_s: float = 60.0


class HqSection(_Section, frozen=True):
    url: str
    username: str = ""
    password_file: str = ""
    ca_file: str = ""
    client_id: str = ""  # "" = {tenant}-{branch}-bridge
    restart_min_s: int = 5  # mosquitto restart_timeout base/cap: jittered backoff
    restart_max_s: int = 120
    keepalive_s: int = 60


class MqttSection(_Section, frozen=True):
    url: str = ""  # "" = no uplink; mqtt://host:1883 or mqtts://host:8883
    device: str = "engine"
    credentials_file: str = ""
    ca_file: str = ""
    session_expiry_s: int = 86400
    inflight: int = 100
    outbox_budget_mb: float = 256.0
    hq: HqSection | None = None
    keepalive_s: int = 30
    connect_timeout_s: float = 30.0  # TLS handshakes take seconds on a Pi 3
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 60.0
    command_max_bytes: int = 4096
    command_max_age_s: float = 30.0
    delivered_keep_s: float = 604800.0
    delivered_keep_rows: int = 200000
    # re-send events acked this long before an unexpected drop: mosquitto PUBACKs
    # before saving (autosave 30 s in the generated config), see docs/mqtt.md
    redeliver_window_s: float = 40.0
    # broker side (tessera broker config): device name -> roles it hosts
    # (engine, kiosk, counter, display, monitor); {} = derived from the config
    devices: dict[str, tuple[str, ...]] = msgspec.field(default_factory=dict)
    listener_port: int = 8883  # TLS listener for the branch LAN
    local_port: int = 1883  # plain listener, bound to 127.0.0.1 only
    tls_cert_file: str = ""  # broker certificate and key (PEM) for the TLS listener
    tls_key_file: str = ""
    persistence_dir: str = "/var/lib/mosquitto/"
    message_size_limit: int = 65536


class BranchConfig(_Section, frozen=True):
    """The whole, validated, frozen configuration of one branch."""

    branch: BranchSection
    services: tuple[Service, ...]
    counters: tuple[Counter, ...] = ()
    staff: tuple[Staff, ...] = ()
    clock: ClockSection = ClockSection()
    storage: StorageSection = StorageSection()
    engine: EngineSection = EngineSection()
    kiosk: KioskSection = KioskSection()
    ticket: TicketSection = TicketSection()
    gpio: GpioSection = GpioSection()
    board: BoardSection = BoardSection()
    voice: VoiceSection = VoiceSection()
    mqtt: MqttSection = MqttSection()
    base_dir: str = "."  # directory of the config file; relative paths resolve here

    def service(self, service_id: str) -> Service:
        for s in self.services:
            if s.id == service_id:
                return s
        raise KeyError(service_id)

    def counter(self, counter_id: str) -> Counter:
        for c in self.counters:
            if c.id == counter_id:
                return c
        raise KeyError(counter_id)

    def path(self, p: str) -> Path:
        """Resolve a path from the config relative to the config file."""
        q = Path(p).expanduser()
        return q if q.is_absolute() else Path(self.base_dir) / q

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.branch.timezone)


# --------------------------------------------------------------------------- helpers

T = TypeVar("T")


def parse_hhmm(text: str) -> time:
    m = re.fullmatch(r"(\d{2}):(\d{2})", text)
    if not m or int(m[1]) > 23 or int(m[2]) > 59:
        raise ValueError(f"{text!r} is not a time of day; write HH:MM, e.g. 08:30")
    return time(int(m[1]), int(m[2]))


def parse_hours(text: str) -> tuple[time, time]:
    m = HOURS_RE.fullmatch(text)
    if not m:
        raise ValueError(f"{text!r} is not an opening span; write HH:MM-HH:MM, e.g. 08:30-12:00")
    start = parse_hhmm(f"{m[1]}:{m[2]}")
    end = time(0, 0) if f"{m[3]}:{m[4]}" == "24:00" else parse_hhmm(f"{m[3]}:{m[4]}")
    if end != time(0, 0) and end <= start:
        raise ValueError(f"{text!r} ends before it starts")
    return start, end


def service_spans(service: Service, weekday: int) -> list[tuple[time, time]]:
    """Opening spans of ``service`` on ``weekday`` (0 = Monday); [] when closed all day.

    A service with no ``hours`` table is open all day, every day.
    """
    if not service.hours:
        return [(time(0, 0), time(0, 0))]
    spans = service.hours.get(WEEKDAYS[weekday], service.hours.get("default", ()))
    return [parse_hours(s) for s in spans]


def _msg(path: str, err: msgspec.ValidationError) -> str:
    text = str(err)
    m = re.search(r" - at `\$(.*)`$", text)
    if m:
        return f"{path}{m[1]}: {text[: m.start()]}"
    return f"{path}: {text}"


def _convert(raw: Any, typ: type[T], path: str, errors: list[str]) -> T | None:
    try:
        return msgspec.convert(raw, typ, strict=True)
    except msgspec.ValidationError as e:
        errors.append(_msg(path, e))
        return None


# Modules that add checks for their own section (printer profile, fonts, clips,
# credentials...), with the roles whose hardware or files they concern. Each
# exposes ``config_errors(cfg) -> list[str]``. ``tessera config check`` runs all
# of them; a role process runs only its own, so a display Pi neither needs the
# kiosk's ticket font nor pays ~16 MiB of RSS to import the printing stack.
EXTRA_CHECKERS: dict[str, tuple[str, ...]] = {
    "tessera.printing.checks": ("kiosk",),
    "tessera.mqtt.broker": ("engine", "kiosk", "counter", "display"),
    "tessera.display.checks": ("display",),
    "tessera.engine.appointments": ("engine",),
}


# --------------------------------------------------------------------------- loading


def load_config(path: str | Path, *, roles: Iterable[str] | None = None) -> BranchConfig:
    """Read, validate and freeze a branch config; raise ConfigError listing every problem.

    ``roles`` limits the device-level checks to those roles (``None`` or ``"all"``:
    every check, as ``tessera config check`` does).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([f"{p}: cannot read config file ({e.strerror})"]) from None
    return parse_config(text, base_dir=p.resolve().parent, source=str(p), roles=roles)


def parse_config(text: str, *, base_dir: str | Path = ".", source: str = "<config>",
                 roles: Iterable[str] | None = None) -> BranchConfig:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{source}: not valid TOML ({e})"]) from None
    errors: list[str] = []
    cfg = _build(raw, str(base_dir), errors)
    if cfg is not None:
        errors.extend(_cross_checks(cfg))
        want = None if roles is None or "all" in roles else set(roles)
        for mod, concerns in EXTRA_CHECKERS.items():
            if want is not None and not want.intersection(concerns):
                continue
            module = importlib.import_module(mod)
            checker: Callable[[BranchConfig], list[str]] = module.config_errors
            errors.extend(checker(cfg))
    if errors:
        raise ConfigError(errors)
    assert cfg is not None
    return cfg


_LISTS: dict[str, type[Any]] = {"services": Service, "counters": Counter, "staff": Staff}
_SECTIONS: dict[str, type[Any]] = {
    "branch": BranchSection,
    "clock": ClockSection,
    "storage": StorageSection,
    "engine": EngineSection,
    "kiosk": KioskSection,
    "ticket": TicketSection,
    "gpio": GpioSection,
    "board": BoardSection,
    "voice": VoiceSection,
    "mqtt": MqttSection,
}


def _build(raw: dict[str, Any], base_dir: str, errors: list[str]) -> BranchConfig | None:
    parts: dict[str, Any] = {"base_dir": base_dir}
    for key in raw:
        if key not in _SECTIONS and key not in _LISTS:
            errors.append(f"{key}: unknown section; valid sections are "
                          + ", ".join(sorted([*_SECTIONS, *_LISTS])))
    if "branch" not in raw:
        errors.append("branch: missing section; add [branch] with tenant and branch ids")
    for key, typ in _SECTIONS.items():
        if key in raw:
            val = _convert(raw[key], typ, key, errors)
            if val is not None:
                parts[key] = val
    for key, typ in _LISTS.items():
        items = raw.get(key, [])
        if not isinstance(items, list):
            errors.append(f"{key}: must be an array of tables ([[{key}]])")
            continue
        parts[key] = tuple(
            v for i, item in enumerate(items)
            if (v := _convert(item, typ, f"{key}[{i}]", errors)) is not None
        )
    if not raw.get("services"):
        errors.append("services: no services defined; add at least one [[services]] table")
    if errors:
        return None
    return BranchConfig(**parts)


def _dupes(items: Iterable[tuple[str, Any]]) -> dict[Any, list[str]]:
    seen: dict[Any, list[str]] = {}
    for path, key in items:
        seen.setdefault(key, []).append(path)
    return {k: v for k, v in seen.items() if len(v) > 1}


def _cross_checks(cfg: BranchConfig) -> list[str]:
    errs: list[str] = []
    b = cfg.branch
    for field in ("tenant", "branch"):
        if not NAME_RE.match(getattr(b, field)):
            errs.append(f"branch.{field}: {getattr(b, field)!r} must use only a-z, 0-9 and '-'")
    try:
        ZoneInfo(b.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        errs.append(f"branch.timezone: unknown timezone {b.timezone!r}; use an IANA name "
                    "such as 'Asia/Shanghai'")
    try:
        parse_hhmm(b.day_rollover)
    except ValueError as e:
        errs.append(f"branch.day_rollover: {e}")

    service_ids = {s.id for s in cfg.services}
    for i, s in enumerate(cfg.services):
        p = f"services[{i}]"
        if not NAME_RE.match(s.id):
            errs.append(f"{p}.id: {s.id!r} must use only a-z, 0-9 and '-'")
        if not PREFIX_RE.match(s.prefix):
            errs.append(f"{p}.prefix: {s.prefix!r} must be one or two capital letters")
        if not 1 <= s.number_width <= 6:
            errs.append(f"{p}.number_width: {s.number_width} must be between 1 and 6")
        for lang in b.languages:
            if lang not in s.names:
                errs.append(f"{p}.names: no name in {lang!r} (branch.languages lists it)")
        if not 0 < s.sla_target <= 1:
            errs.append(f"{p}.sla_target: {s.sla_target} must be a fraction in (0, 1]")
        if s.default_service_s <= 0:
            errs.append(f"{p}.default_service_s: must be positive")
        for day, spans in s.hours.items():
            if day not in (*WEEKDAYS, "default"):
                errs.append(f"{p}.hours.{day}: unknown day; use mon..sun or default")
                continue
            parsed: list[tuple[time, time, str]] = []
            for j, span in enumerate(spans):
                try:
                    st, en = parse_hours(span)
                    parsed.append((st, en, span))
                except ValueError as e:
                    errs.append(f"{p}.hours.{day}[{j}]: {e}")
            parsed.sort()
            for (_, e1, t1), (s2, _, t2) in itertools.pairwise(parsed):
                if e1 == time(0, 0) or s2 < e1:
                    errs.append(f"{p}.hours.{day}: {t1!r} and {t2!r} overlap")
    for key, paths in _dupes(
        (f"services[{i}].id", s.id) for i, s in enumerate(cfg.services)
    ).items():
        errs.append(f"{paths[1]}: service id {key!r} already used by {paths[0]}")
    for key, paths in _dupes(
        (f"services[{i}].prefix", s.prefix) for i, s in enumerate(cfg.services)
    ).items():
        errs.append(f"{paths[1]}: prefix {key!r} already used by {paths[0]}; "
                    "each service needs its own prefix")

    for i, c in enumerate(cfg.counters):
        p = f"counters[{i}]"
        if not NAME_RE.match(c.id):
            errs.append(f"{p}.id: {c.id!r} must use only a-z, 0-9 and '-'")
        if not c.services:
            errs.append(f"{p}.services: a counter must serve at least one service")
        for j, cs in enumerate(c.services):
            if cs.service not in service_ids:
                errs.append(f"{p}.services[{j}].service: unknown service {cs.service!r}; "
                            f"known: {', '.join(sorted(service_ids))}")
            if cs.weight <= 0:
                errs.append(f"{p}.services[{j}].weight: must be positive")
        if c.panel is not None:
            n = len(c.panel.ratings)
            if n and not 3 <= n <= 5:
                errs.append(f"{p}.panel.ratings: {n} rating buttons; use 3 to 5")
            for t in c.panel.transfer_targets:
                if t not in service_ids:
                    errs.append(f"{p}.panel.transfer_targets: unknown service {t!r}")
    for key, paths in _dupes(
        (f"counters[{i}].id", c.id) for i, c in enumerate(cfg.counters)
    ).items():
        errs.append(f"{paths[1]}: counter id {key!r} already used by {paths[0]}")
    for key, paths in _dupes(
        (f"counters[{i}].number", c.number) for i, c in enumerate(cfg.counters)
    ).items():
        errs.append(f"{paths[1]}: counter number {key} already used by {paths[0]}")

    for i, kb in enumerate(cfg.kiosk.buttons):
        if kb.service not in service_ids:
            errs.append(f"kiosk.buttons[{i}].service: unknown service {kb.service!r}; "
                        f"known: {', '.join(sorted(service_ids))}")
        if kb.priority is not None and kb.priority not in cfg.engine.priority_order:
            errs.append(f"kiosk.buttons[{i}].priority: unknown class {kb.priority!r}; "
                        f"engine.priority_order lists {', '.join(cfg.engine.priority_order)}")

    errs.extend(_pin_checks(cfg))
    errs.extend(_staff_checks(cfg))

    g = cfg.gpio
    if g.pin_factory and g.pin_factory not in PIN_FACTORIES:
        errs.append(f"gpio.pin_factory: unknown pin factory {g.pin_factory!r}; "
                    f"valid: {', '.join(PIN_FACTORIES)}")
    if not 2 <= g.ring_capacity <= 1 << 24 or g.ring_capacity & (g.ring_capacity - 1):
        errs.append(f"gpio.ring_capacity: {g.ring_capacity} must be a power of two "
                    "between 2 and 16777216, e.g. 1024")
    if g.repeat_ms < 0:
        errs.append("gpio.repeat_ms: must be zero or positive")
    for f in ("debounce_ms", "hold_ms", "stuck_ms"):
        if getattr(g, f) <= 0:
            errs.append(f"gpio.{f}: must be positive")
    if g.hold_ms >= g.stuck_ms:
        errs.append("gpio.hold_ms: must be shorter than gpio.stuck_ms")

    eng = cfg.engine
    for cls in eng.priority_order:
        if not NAME_RE.match(cls):
            errs.append(f"engine.priority_order: {cls!r} must use only a-z, 0-9 and '-'")
    if eng.appointments_file and not cfg.path(eng.appointments_file).is_file():
        errs.append(f"engine.appointments_file: {cfg.path(eng.appointments_file)} "
                    "does not exist")
    for field, value in (("mqtt.credentials_file", cfg.mqtt.credentials_file),
                         ("mqtt.ca_file", cfg.mqtt.ca_file),
                         ("ticket.logo", cfg.ticket.logo)):
        if value and not cfg.path(value).is_file():
            errs.append(f"{field}: {cfg.path(value)} does not exist")
    return errs


def _staff_checks(cfg: BranchConfig) -> list[str]:
    """[[staff]] ids and codes, login panels, and counters' fixed staff ids.

    Messages never quote a code: config errors end up in logs and terminals.
    """
    errs: list[str] = []
    lo, hi = STAFF_CODE_DIGITS
    typable: list[tuple[int, Staff]] = []  # codes whose format is right
    for i, st in enumerate(cfg.staff):
        if not st.id.strip():
            errs.append(f"staff[{i}].id: must not be empty; give each person an id, "
                        "e.g. \"t-001\"")
        if STAFF_CODE_RE.match(st.code):
            typable.append((i, st))
        else:
            errs.append(f"staff[{i}].code: must be {lo} to {hi} digits, each 1-5 "
                        "(digit d is rating button d, 1 = lowest), e.g. \"12312\"")
    for key, paths in _dupes((f"staff[{i}].id", st.id) for i, st in enumerate(cfg.staff)
                             if st.id.strip()).items():
        errs.append(f"{paths[1]}: staff id {key!r} already used by {paths[0]}")
    for paths in _dupes((f"staff[{i}].code", st.code) for i, st in enumerate(cfg.staff)
                        ).values():
        errs.append(f"{paths[1]}: same code as {paths[0]}; each person needs their own code")

    staff_ids = {st.id for st in cfg.staff}
    for i, c in enumerate(cfg.counters):
        p = f"counters[{i}]"
        if cfg.staff and c.staff and c.staff not in staff_ids:
            errs.append(f"{p}.staff: unknown staff id {c.staff!r}; [[staff]] lists "
                        + ", ".join(sorted(staff_ids)))
        if c.panel is None or not c.panel.login:
            continue
        n = len(c.panel.ratings)
        if n < 3:
            errs.append(f"{p}.panel.login: codes are typed on the rating buttons; "
                        f"panel.ratings has {n}, needs at least 3")
        if c.panel.done is None:
            errs.append(f"{p}.panel.login: codes are submitted (and staff log out) with DONE; "
                        "set panel.done to its pin")
        if not cfg.staff:
            errs.append(f"{p}.panel.login: no one can log in; add [[staff]] entries with "
                        "codes, or set login = false")
        for j, st in typable:
            if n >= 3 and max(int(d) for d in st.code) > n:
                errs.append(f"staff[{j}].code: uses a digit above {n}, but {p} ({c.id!r}) "
                            f"logs in on {n} rating buttons; use digits 1-{n}")
    return errs


def _pin_checks(cfg: BranchConfig) -> list[str]:
    """Every GPIO pin is used once per device (Pi)."""
    uses: list[tuple[str, str, int]] = []  # (device, path, pin)
    k = cfg.kiosk
    for i, kb in enumerate(k.buttons):
        uses.append((k.device, f"kiosk.buttons[{i}].pin", kb.pin))
        if kb.led is not None:
            uses.append((k.device, f"kiosk.buttons[{i}].led", kb.led))
    for f in ("ready", "printer_warning", "printer_fault", "closed"):
        v = getattr(k.leds, f)
        if v is not None:
            uses.append((k.device, f"kiosk.leds.{f}", v))
    for i, c in enumerate(cfg.counters):
        if c.panel is None:
            continue
        for f in ("next", "recall", "transfer", "no_show", "done", "pause", "rating_led"):
            v = getattr(c.panel, f)
            if v is not None:
                uses.append((c.device, f"counters[{i}].panel.{f}", v))
        for j, pin in enumerate(c.panel.ratings):
            uses.append((c.device, f"counters[{i}].panel.ratings[{j}]", pin))
    errs: list[str] = []
    first: dict[tuple[str, int], str] = {}
    for device, path, pin in uses:
        if not 0 <= pin <= 27:
            errs.append(f"{path}: pin {pin} is not a BCM GPIO number (0-27)")
            continue
        if (device, pin) in first:
            errs.append(f"{path}: pin {pin} already used by {first[device, pin]} "
                        f"on device {device!r}")
        else:
            first[device, pin] = path
    return errs
