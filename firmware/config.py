"""Branch configuration: one TOML file, validated once, frozen.

Every problem is reported at once, each with its path and what to fix
(``counters[2].panel.next: pin 17 already used by kiosk.buttons[0] on device 'main'``).

    cfg = load_config("examples/bank.toml")
    cfg.service("cash").prefix
    # -> 'A'

Each section is a frozen ``msgspec.Struct`` (chosen over pydantic: it
validates TOML-shaped data with paths in its messages, and costs ~1 MiB of RSS
instead of ~20, which matters for the per-role memory budget on a Pi).
Numbers carry their ranges on the schema (``Annotated[int, Meta(ge=, le=)]``).
Sections are converted one by one (and list entries one by one), each with all
of its schema errors (:mod:`tessera.config_decode`), and the checks across
fields (:mod:`tessera.config_checks`, :mod:`tessera.config_paths`) run on the
repaired result: one mistake never hides the next.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import re
import tomllib
from collections.abc import Callable, Iterable
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import msgspec
from msgspec import Meta

from tessera.config_decode import convert, decode_text, key_text, placeholder, toml_error
from tessera.errors import ConfigError

# \A...\Z, not ^...$: "$" also matches before a trailing newline ("acme-bank\n")
NAME_RE = re.compile(r"\A[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?\Z")
PREFIX_RE = re.compile(r"\A[A-Z]{1,2}\Z")
HOURS_RE = re.compile(r"\A(\d{2}):(\d{2})-(\d{2}):(\d{2})\Z")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MESSAGE_LIMIT = 600  # characters of one error message
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
PIN_FACTORIES = ("lgpio", "rpigpio", "pigpio", "native", "mock", "tessera-sim")
# a staff login code: digit d is rating button d (1 = lowest); at most 5 rating buttons
STAFF_CODE_DIGITS = (3, 8)  # shortest and longest code
STAFF_CODE_RE = re.compile(rf"\A[1-5]{{{STAFF_CODE_DIGITS[0]},{STAFF_CODE_DIGITS[1]}}}\Z")


# Number types with their ranges, checked by msgspec while the TOML is converted (NaN
# and infinities fail every bound, so each float has an upper bound too).
Pin = Annotated[int, Meta(ge=0, le=27)]  # BCM GPIO number
Port = Annotated[int, Meta(ge=1, le=65535)]
Percent = Annotated[int, Meta(ge=0, le=100)]
Baud = Annotated[int, Meta(ge=50, le=4_000_000)]
Seconds = Annotated[float, Meta(ge=0, le=86400)]  # zero allowed, at most a day
PositiveSeconds = Annotated[float, Meta(gt=0, le=86400)]
HOUR_S = 3600


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
    unconfirmed_timeout_s: Annotated[float, Meta(gt=0, le=HOUR_S)] = 60.0
    transfer_position: Literal["front", "back"] = "back"
    priority_order: tuple[str, ...] = ("emergency", "priority", "vip")
    starvation_after: Annotated[int, Meta(ge=1, le=1000)] = 3
    starvation_wait_s: Seconds = 600.0
    # tickets, ratings and bookings of business days older than this are pruned
    # (tessera.engine.upkeep); reports read the outbox, kept by mqtt.delivered_keep_s
    keep_days: Annotated[int, Meta(ge=1, le=3660)] = 31
    feedback_window_s: Annotated[float, Meta(gt=0, le=HOUR_S)] = 120.0
    rating_scale: Annotated[int, Meta(ge=2, le=10)] = 5
    refuse_past_closing: bool = True
    appointment_early_s: Seconds = 900.0
    appointment_late_s: Seconds = 600.0
    appointments_file: str = ""
    number_wrap: Literal["extend", "wrap", "refuse"] = "extend"
    # completed services the wait estimate learns from
    recent_service_window: Annotated[int, Meta(ge=1, le=100_000)] = 500
    # an 80 % range ("about 15-25 min") with every estimate: tickets, events, live
    wait_range: bool = False
    # a NO-SHOW can be undone (or the ticket called back by number) this long after it
    no_show_undo_s: Annotated[float, Meta(ge=0, le=HOUR_S)] = 300.0
    # PAUSE while a ticket is at the counter: refused (ticket-open), or after that ticket
    pause_while_called: Literal["refuse", "after_done"] = "after_done"


class Service(_Section, frozen=True):
    id: str
    prefix: str
    names: dict[str, str]
    hours: dict[str, tuple[str, ...]] = msgspec.field(default_factory=dict)
    default_service_s: PositiveSeconds = 300.0
    sla_wait_s: PositiveSeconds = 900.0
    sla_target: Annotated[float, Meta(gt=0, le=1)] = 0.9
    number_width: Annotated[int, Meta(ge=1, le=6)] = 3
    # the service a ticket moves to on DONE, keeping its number (tessera.engine.routes)
    then: str | None = None
    # what the day roll does with tickets still waiting: "void" them (the default) or
    # "carry" them into the new business day, keeping their numbers (a 24-hour service)
    at_day_end: Literal["void", "carry"] = "void"

    def name(self, lang: str) -> str:
        return self.names.get(lang) or next(iter(self.names.values()), self.id)


class CounterService(_Section, frozen=True):
    service: str
    weight: Annotated[float, Meta(gt=0, le=1000)] = 1.0


class Panel(_Section, frozen=True):
    next: Pin
    recall: Pin | None = None
    transfer: Pin | None = None
    no_show: Pin | None = None
    done: Pin | None = None
    pause: Pin | None = None  # optional: holding NEXT also pauses
    ratings: tuple[Pin, ...] = ()  # lowest score first
    rating_led: Pin | None = None
    transfer_targets: tuple[str, ...] = ()  # services TRANSFER cycles through
    login: bool = False  # staff log in with a code typed on the rating buttons, DONE submits


class Counter(_Section, frozen=True):
    id: str
    number: Annotated[int, Meta(ge=1, le=999)]
    services: tuple[CounterService, ...]
    staff: str = ""
    device: str = "main"
    panel: Panel | None = None
    board_address: str | None = None
    # the satisfaction scale this counter's customers rate on (None: engine.rating_scale);
    # a panel with rating buttons has exactly this many
    rating_scale: Annotated[int, Meta(ge=2, le=10)] | None = None
    # when the counter is expected to be staffed (services' hours format); the wait
    # estimate counts a counter due to open and stops counting one due to close
    hours: dict[str, tuple[str, ...]] = msgspec.field(default_factory=dict)


class Staff(_Section, frozen=True):
    """One person who may log in at a counter: ``code`` is typed on the rating buttons."""

    id: str
    code: str
    name: str = ""

    def __repr__(self) -> str:  # a login code never reaches a log line or a traceback
        return f"Staff(id={self.id!r}, name={self.name!r}, code=<hidden>)"


class KioskButton(_Section, frozen=True):
    pin: Pin
    service: str
    priority: str | None = None
    led: Pin | None = None


class KioskLeds(_Section, frozen=True):
    ready: Pin | None = None
    printer_warning: Pin | None = None
    printer_fault: Pin | None = None
    closed: Pin | None = None


class PrinterSection(_Section, frozen=True):
    url: str = ""  # serial URL / device path, usb://VID:PID, tcp://host:9100
    profile: str = "TM-T20II"
    mode: Literal["auto", "raster", "text"] = "auto"
    baudrate: Baud = 115200
    status_timeout_ms: Annotated[int, Meta(ge=20, le=5000)] = 200
    require_status: bool = True  # refuse tickets when the printer does not answer DLE EOT
    raster_over_serial: bool = False  # full-raster mode on a serial link (~50 KB a ticket)


class KioskSection(_Section, frozen=True):
    device: str = "main"
    buttons: tuple[KioskButton, ...] = ()
    leds: KioskLeds = KioskLeds()
    checkin: str = ""  # input device path, "stdin", or "" for none
    printer: PrinterSection = PrinterSection()
    # a staff button: held for gpio.hold_ms it reprints the last ticket (a tap does nothing)
    reprint_pin: Pin | None = None


class TicketSection(_Section, frozen=True):
    languages: tuple[str, ...] = ()  # defaults to branch.languages
    logo: str = ""
    font: str = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
    qr: str = ""  # e.g. "https://q.example.com/t/{ticket_id}"
    qr_module: Annotated[int, Meta(ge=1, le=16)] = 6  # dots per QR module
    qr_error: Literal["L", "M", "Q", "H"] = "M"
    footer: str = ""
    extra_line: str = ""
    # label of each priority class on its tickets, per language (issue 15); a class or
    # language missing here gets the built-in label (en, zh) or the class id
    priority_names: dict[str, dict[str, str]] = msgspec.field(default_factory=dict)


class GpioSection(_Section, frozen=True):
    pin_factory: str = ""  # "" = GPIOZERO_PIN_FACTORY or gpiozero's default
    debounce_ms: Annotated[float, Meta(gt=0, le=1000)] = 30.0
    hold_ms: Annotated[float, Meta(gt=0, le=HOUR_S * 1000)] = 2000.0
    stuck_ms: Annotated[float, Meta(gt=0, le=HOUR_S * 1000)] = 30000.0
    repeat_ms: Annotated[float, Meta(ge=0, le=HOUR_S * 1000)] = 1500.0
    ring_capacity: Annotated[int, Meta(ge=2, le=1 << 24)] = 1024  # and a power of two


class BoardSection(_Section, frozen=True):
    url: str = ""
    protocol: Literal["alpha"] = "alpha"
    baudrate: Baud = 9600
    bytesize: Annotated[int, Meta(ge=5, le=8)] = 7
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Annotated[int, Meta(ge=1, le=2)] = 1
    hall_address: str = "01"
    history: Annotated[int, Meta(ge=1, le=20)] = 4
    highlight_s: Annotated[float, Meta(ge=0, le=HOUR_S)] = 10.0
    brightness: dict[str, Percent] = msgspec.field(default_factory=dict)  # "HH:MM" -> percent
    # read-back liveness check; 0 = write-only line
    ping_interval_s: Annotated[float, Meta(ge=0, le=HOUR_S)] = 10.0
    flash: bool = False  # also blink the highlighted line (colour is always used)
    # sign family (tessera.drivers.alpha.SIGN_TYPES): only "solar" dims over the protocol
    sign: Literal["betabrite", "alpha-2.0", "solar"] = "betabrite"
    device: str = "main"  # the Pi the board line and speaker are wired to (display role)
    # a counter sign shows a refusal ("queue empty", "busy") this long, then its ticket
    notice_s: Annotated[float, Meta(gt=0, le=60)] = 3.0


class AlertsSection(_Section, frozen=True):
    """Where a ``feedback.alert`` (lowest rating) shows: the manager's lamp and sign."""

    lamp: Pin | None = None  # on the display's Pi (board.device): blinks for hold_s
    board_address: str | None = None  # a manager sign on the caller board's line
    hold_s: Annotated[float, Meta(gt=0, le=86400)] = 600.0


class VoiceSection(_Section, frozen=True):
    enabled: bool = True
    languages: tuple[str, ...] = ()  # announcement order; defaults to branch.languages
    clips_dir: str = ""  # "" = clips generated with espeak-ng into storage.dir
    output: str = "aplay"  # "aplay" or "dir:PATH"
    repeat: Annotated[int, Meta(ge=1, le=5)] = 1
    chime: bool = True
    quiet_hours: tuple[str, ...] = ()  # "HH:MM-HH:MM"
    volume: dict[str, Percent] = msgspec.field(default_factory=dict)  # "HH:MM" -> percent
    max_age_s: Annotated[float, Meta(gt=0, le=HOUR_S)] = 60.0


class HqSection(_Section, frozen=True):
    url: str
    username: str = ""
    password_file: str = ""
    ca_file: str = ""
    client_id: str = ""  # "" = {tenant}-{branch}-bridge
    restart_min_s: Annotated[int, Meta(ge=1, le=HOUR_S)] = 5  # mosquitto restart_timeout
    restart_max_s: Annotated[int, Meta(ge=1, le=86400)] = 120  # base/cap: jittered backoff
    keepalive_s: Annotated[int, Meta(ge=1, le=65535)] = 60
    # MQTT 3.1.1 bridges set the protocol byte's "bridge" bit only with try_private;
    # HiveMQ refuses it and VerneMQ accepts it only when configured: off by default
    try_private: bool = False
    # bridge state ("1" up / "0" down, retained) inside the branch subtree, so HQ sees it
    notifications: bool = True


class MqttSection(_Section, frozen=True):
    url: str = ""  # "" = no uplink; mqtt://host:1883 or mqtts://host:8883
    device: str = "engine"
    credentials_file: str = ""  # one device's login (a process that runs one role)
    credentials_dir: str = ""  # <dir>/<device>.toml per device of this process
    ca_file: str = ""
    session_expiry_s: Annotated[int, Meta(ge=0, le=0xFFFFFFFF)] = 86400
    inflight: Annotated[int, Meta(ge=50, le=200)] = 100
    outbox_budget_mb: Annotated[float, Meta(gt=0, le=1_000_000)] = 256.0
    hq: HqSection | None = None
    keepalive_s: Annotated[int, Meta(ge=1, le=65535)] = 30
    connect_timeout_s: Annotated[float, Meta(gt=0, le=600)] = 30.0  # TLS: seconds on a Pi 3
    reconnect_min_s: Annotated[float, Meta(gt=0, le=HOUR_S)] = 0.5
    reconnect_max_s: PositiveSeconds = 60.0  # and never over a quarter of the outage so far
    command_max_bytes: Annotated[int, Meta(ge=256, le=1 << 20)] = 4096
    command_max_age_s: Annotated[float, Meta(gt=0, le=HOUR_S)] = 30.0
    delivered_keep_s: Annotated[float, Meta(ge=0, le=10 * 366 * 86400)] = 604800.0
    delivered_keep_rows: Annotated[int, Meta(ge=0, le=1_000_000_000)] = 200000
    # Deprecated (issue 12), accepted and ignored: the broker's retained high-water mark
    # (state/hwm, docs/mqtt.md) decides what is re-sent after a drop; a link warns once.
    redeliver_window_s: Seconds | None = None
    # retained "online" expires this long after the device's last refresh (every third)
    status_expiry_s: Annotated[int, Meta(ge=3, le=86400)] = 90
    # broker side (tessera broker config): Pi name -> roles it hosts, added to the
    # devices the config implies (e.g. {"hq-tool" = ["monitor"]}: a read-only login)
    devices: dict[str, tuple[str, ...]] = msgspec.field(default_factory=dict)
    listener_port: Port = 8883  # TLS listener for the branch LAN
    listener_bind: str = ""  # LAN listener's bind address ("" = every interface)
    local_port: Port = 1883  # plain listener, bound to 127.0.0.1 only
    tls_cert_file: str = ""  # broker certificate and key (PEM) for the TLS listener
    tls_key_file: str = ""
    persistence_dir: str = "/var/lib/mosquitto/"
    # the broker's max_packet_size (bytes)
    message_size_limit: Annotated[int, Meta(ge=1024, le=268_435_455)] = 65536
    # mosquitto log_type lines ([] = mosquitto's default); "debug" logs every denial
    broker_log_types: tuple[str, ...] = ()


class WebAccount(_Section, frozen=True):
    """One supervisor-console login; ``password_hash`` from ``tessera web hash-password``."""

    name: str
    password_hash: str
    role: Literal["viewer", "supervisor", "manager"] = "supervisor"


class WebSection(_Section, frozen=True):
    """The web role: hall TV display, mobile ticket pages, supervisor console (docs/web.md)."""

    enabled: bool = False  # part of `tessera run all` (`tessera run web` always serves)
    device: str = "main"  # the Pi it runs on: MQTT device web-<device>
    bind: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] = 8080  # 0: any free port (tests)
    base_url: str = ""  # public base of the QR links ("https://q.acme-bank.example")
    secret_file: str = ""  # "" = <storage.dir>/web-secret (signs the mobile-ticket links)
    heartbeat_s: Annotated[float, Meta(ge=0.1, le=300)] = 5.0
    stale_s: Annotated[float, Meta(ge=0.2, le=HOUR_S)] = 15.0
    ring: Annotated[int, Meta(ge=16, le=100_000)] = 512  # recent events kept for resume
    session_s: Annotated[float, Meta(ge=60, le=7 * 86400)] = 8 * HOUR_S
    lockout_attempts: Annotated[int, Meta(ge=1, le=100)] = 5
    lockout_s: Annotated[float, Meta(ge=1, le=86400)] = 300.0
    accounts: tuple[WebAccount, ...] = ()
    # take a ticket from the phone (/join), off by default; rate-limited per client
    # address and for the whole branch
    join: bool = False
    join_per_hour: Annotated[int, Meta(ge=1, le=100)] = 3
    join_per_min: Annotated[int, Meta(ge=1, le=1000)] = 10


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
    alerts: AlertsSection = AlertsSection()
    web: WebSection = WebSection()
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

    def rating_scale(self, counter_id: str) -> int:
        """The scale counter ``counter_id`` rates on: its own ``rating_scale``, else
        ``engine.rating_scale`` (also for a counter id the config does not know)."""
        for c in self.counters:
            if c.id == counter_id and c.rating_scale is not None:
                return c.rating_scale
        return self.engine.rating_scale

    def path(self, p: str) -> Path:
        """Resolve a path from the config relative to the config file.

        A ``~user`` with no such user is left as written (``config check`` refuses it).
        """
        try:
            q = Path(p).expanduser()
        except RuntimeError:
            q = Path(p)
        return q if q.is_absolute() else Path(self.base_dir) / q

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.branch.timezone)


# --------------------------------------------------------------------------- helpers

def parse_hhmm(text: str) -> time:
    m = re.fullmatch(r"(\d{2}):(\d{2})", text)
    if not m or int(m[1]) > 23 or int(m[2]) > 59:
        raise ValueError(f"{text!r} is not a time of day; write HH:MM, e.g. 08:30")
    return time(int(m[1]), int(m[2]))


def parse_hours(text: str) -> tuple[time, time]:
    """``"HH:MM-HH:MM"`` as (start, end). An end of ``00:00`` or ``24:00`` is midnight;
    an end earlier than the start runs past midnight (``"20:00-02:00"``) and belongs
    to the day it opened on (see :func:`tessera.engine.day.open_span`)."""
    m = HOURS_RE.fullmatch(text)
    if not m:
        raise ValueError(f"{text!r} is not an opening span; write HH:MM-HH:MM, e.g. 08:30-12:00")
    start = parse_hhmm(f"{m[1]}:{m[2]}")
    end = time(0, 0) if f"{m[3]}:{m[4]}" == "24:00" else parse_hhmm(f"{m[3]}:{m[4]}")
    if end == start and end != time(0, 0):
        raise ValueError(f"{text!r} has zero length; write the hours the service is open, "
                         "e.g. 08:30-12:00 (or 20:00-02:00 past midnight)")
    return start, end


def crosses_midnight(span: tuple[time, time]) -> bool:
    """A span that ends on the next day (``20:00-02:00``; not ``20:00-24:00``)."""
    return span[1] != time(0, 0) and span[1] < span[0]


def service_spans(service: Service, weekday: int) -> list[tuple[time, time]]:
    """Opening spans of ``service`` on ``weekday`` (0 = Monday); [] when closed all day.

    A service with no ``hours`` table is open all day, every day.
    """
    if not service.hours:
        return [(time(0, 0), time(0, 0))]
    spans = service.hours.get(WEEKDAYS[weekday], service.hours.get("default", ()))
    return [parse_hours(s) for s in spans]


# Modules that add checks for their own section (printer profile, fonts, clips,
# credentials...), with the roles whose hardware or files they concern. Each
# exposes ``config_errors(cfg) -> list[str]``. ``tessera config check`` runs all
# of them; a role process runs only its own, so a display Pi neither needs the
# kiosk's ticket font nor pays ~16 MiB of RSS to import the printing stack.
EXTRA_CHECKERS: dict[str, tuple[str, ...]] = {
    "tessera.printing.checks": ("kiosk",),
    "tessera.mqtt.broker": ("engine", "kiosk", "counter", "display", "web"),
    "tessera.display.checks": ("display",),
    "tessera.engine.appointments": ("engine",),
    "tessera.engine.routes": ("engine",),
    "tessera.web.checks": ("web", "kiosk"),
}


# --------------------------------------------------------------------------- loading


def load_config(path: str | Path, *, roles: Iterable[str] | None = None) -> BranchConfig:
    """Read, validate and freeze a branch config; raise ConfigError listing every problem.

    ``roles`` limits the device-level checks to those roles (``None`` or ``"all"``:
    every check, as ``tessera config check`` does).
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        what = "is a directory, not a config file" if p.is_dir() else \
            "does not exist" if not p.exists() else f"cannot be read ({e.strerror})"
        raise ConfigError([f"{p}: {what}"]) from None
    text = decode_text(data, str(p))
    return parse_config(text, base_dir=p.resolve().parent, source=str(p), roles=roles)


def parse_config(text: str, *, base_dir: str | Path = ".", source: str = "<config>",
                 roles: Iterable[str] | None = None) -> BranchConfig:
    from tessera.config_checks import control_characters, cross_checks, derived_from
    from tessera.config_paths import unexpandable

    try:
        raw = tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([toml_error(text.removeprefix("\ufeff"), source, e)]) from None
    errors: list[str] = []
    tainted: list[str] = []
    cfg = _build(raw, str(base_dir), errors, tainted)
    # checks across fields run on the config as repaired after schema errors, so one
    # wrong type never hides them; what follows from a repaired value is left out
    controls = control_characters(cfg)
    errors.extend(e for e in controls.values() if not derived_from(e, tainted))
    tainted += controls  # one message per bad value: not also "not a valid name"
    errors.extend(e for e in cross_checks(cfg) if not derived_from(e, tainted))
    tainted += unexpandable(cfg)  # reported above; the checkers would only echo it
    want = None if roles is None or "all" in roles else set(roles)
    for mod, concerns in EXTRA_CHECKERS.items():
        if want is not None and not want.intersection(concerns):
            continue
        try:
            module = importlib.import_module(mod)
        except ImportError as e:  # a Pi without that role's extra (tessera[kiosk]) cannot
            if want is not None:  # run the role either: only a check of every role skips it
                raise
            logging.getLogger(__name__).warning(
                "%s: skipped (%s); install tessera[kiosk] to check the kiosk here", mod, e)
            continue
        checker: Callable[[BranchConfig], list[str]] = module.config_errors
        errors.extend(e for e in checker(cfg) if not derived_from(e, tainted))
    if errors:
        raise ConfigError(list(dict.fromkeys(_cut(e) for e in errors)))
    return cfg


def _cut(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """One line, of a readable length: a control character in a quoted value is escaped
    and a huge value is cut (the path and the advice are kept)."""
    message = _CONTROL.sub(lambda m: repr(m[0])[1:-1], message)
    if len(message) <= limit:
        return message
    head, tail = message[: limit // 2], message[-(limit // 3):]
    return f"{head}…[{len(message) - len(head) - len(tail)} characters cut]…{tail}"


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
    "alerts": AlertsSection,
    "mqtt": MqttSection,
    "web": WebSection,
}


def _build(raw: dict[str, Any], base_dir: str, errors: list[str],
           tainted: list[str]) -> BranchConfig:
    """Every section converted on its own (each with all its schema errors); a section
    or entry that cannot be used is replaced by a placeholder and marked tainted."""
    parts: dict[str, Any] = {"base_dir": base_dir}
    known = sorted([*_SECTIONS, *_LISTS])
    for key in raw:
        if key not in _SECTIONS and key not in _LISTS:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            errors.append(f"{key_text(key)}: unknown section; "
                          + (f"did you mean [{close[0]}]? " if close else "")
                          + "valid sections are " + ", ".join(known))
    for key, typ in _SECTIONS.items():
        if key in raw:
            parts[key], errs, taint = convert(raw[key], typ, key)
            errors.extend(errs)
            tainted.extend(taint)
        elif key == "branch":
            errors.append("branch: missing section; add [branch] with tenant and branch ids")
            parts[key] = msgspec.convert(placeholder(typ), typ)
            tainted.append(key)
    for key, typ in _LISTS.items():
        items = raw.get(key, [])
        if not isinstance(items, list):
            errors.append(f"{key}: must be an array of tables ([[{key}]]), not "
                          f"{type(items).__name__}")
            tainted.append(key)
            items = []
        entries = []
        for i, item in enumerate(items):
            value, errs, taint = convert(item, typ, f"{key}[{i}]")
            entries.append(value)
            errors.extend(errs)
            tainted.extend(taint)
        parts[key] = tuple(entries)
    if not raw.get("services"):
        errors.append("services: no services defined; add at least one [[services]] table")
    return BranchConfig(**parts)
