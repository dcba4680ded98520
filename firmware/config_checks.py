"""Checks of a branch config across fields, run by :func:`tessera.config.parse_config`.

Each returns every problem as ``"path: what to fix"``. They run on the config as
repaired after schema errors (see :mod:`tessera.config_decode`), so a wrong
type in one section never hides a wrong reference in another;
:func:`derived_from` leaves out what follows from a value already reported.

    >>> from tessera.config import parse_config
    >>> cross_checks(parse_config(open("examples/bank.toml").read()))   # doctest: +SKIP
    []
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from tessera.config import (
    NAME_RE,
    PIN_FACTORIES,
    PREFIX_RE,
    STAFF_CODE_DIGITS,
    STAFF_CODE_RE,
    WEEKDAYS,
    BranchConfig,
    Service,
    Staff,
    parse_hhmm,
    parse_hours,
)
from tessera.config_decode import join, show
from tessera.config_paths import path_checks

# a Pi's name becomes part of its devices' ids: "<role>-<pi>" (role at most 7 letters)
PI_NAME_MAX = 64 - len("display-")
LANG_RE = re.compile(r"\A[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?\Z")
# C0 and C1 control characters, DEL and the Unicode line/paragraph separators: none of
# them belongs in a name, a path or a printed line, and in a generated file they split
# or end lines (mosquitto.conf, the ACL)
CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
NAME_RULE = "use 1-64 characters a-z, 0-9 and '-', not starting or ending with '-'"


def derived_from(error: str, tainted: Iterable[str]) -> bool:
    """Whether ``error`` is about (or mentions) a path whose value was already reported."""
    lead = error.split(": ", 1)[0]
    for t in tainted:
        if lead == t or lead.startswith((t + ".", t + "[")):
            return True
        if ("." in t or "[" in t) and re.search(rf"(?<![\w.\]]){re.escape(t)}(?!\w)", error):
            return True
    return False


def name_error(path: str, value: str, *, limit: int = 64) -> str | None:
    """The one name rule for everything that reaches a topic, an ACL or a file name."""
    if not NAME_RE.match(value):
        return f"{path}: {show(value)} is not a valid name; {NAME_RULE}"
    if len(value) > limit:
        return f"{path}: {show(value)} is {len(value)} characters; at most {limit} here"
    return None


def cross_checks(cfg: BranchConfig) -> list[str]:
    """Every check but the control characters (:func:`control_characters`, run first)."""
    return [*_branch_checks(cfg), *_service_checks(cfg),
            *_counter_checks(cfg), *_kiosk_checks(cfg), *_pin_checks(cfg),
            *_staff_checks(cfg), *_gpio_checks(cfg), *_engine_checks(cfg), *path_checks(cfg)]


def _dupes(items: Iterable[tuple[str, Any]]) -> dict[Any, list[str]]:
    seen: dict[Any, list[str]] = {}
    for path, key in items:
        seen.setdefault(key, []).append(path)
    return {k: v for k, v in seen.items() if len(v) > 1}


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string of the config (values and table keys) with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, msgspec.Struct):
        for f in msgspec.structs.fields(value):
            if f.name != "base_dir":
                yield from _strings(getattr(value, f.name), join(path, (f.encode_name,)))
    elif isinstance(value, tuple | list):
        for i, v in enumerate(value):
            yield from _strings(v, join(path, (i,)))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield join(path, (k,)), k
            yield from _strings(v, join(path, (k,)))


def control_characters(cfg: BranchConfig) -> dict[str, str]:
    """{path: error} for every value with a control character (a newline in a name, a
    path or a login would split a line of a generated file)."""
    errs = {}
    for path, text in _strings(cfg, ""):
        if m := CONTROL_RE.search(text):
            if path.startswith("staff[") and path.endswith(".code"):
                continue  # reported by the staff checks, without quoting the code
            errs[path] = (f"{path}: contains a control character ({m[0]!r} at position "
                          f"{m.start() + 1}); remove it (a value is one line of plain text)")
    return errs


def _branch_checks(cfg: BranchConfig) -> list[str]:
    b, errs = cfg.branch, []
    for field in ("tenant", "branch"):
        if e := name_error(f"branch.{field}", getattr(b, field)):
            errs.append(e)
    try:
        ZoneInfo(b.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        errs.append(f"branch.timezone: unknown timezone {show(b.timezone)}; use an IANA name "
                    "such as 'Asia/Shanghai'")
    try:
        parse_hhmm(b.day_rollover)
    except ValueError as e:
        errs.append(f"branch.day_rollover: {e}")
    if not b.languages:
        errs.append("branch.languages: empty; list at least one language, e.g. [\"en\"]")
    for where, langs in (("branch.languages", b.languages),
                         ("ticket.languages", cfg.ticket.languages),
                         ("voice.languages", cfg.voice.languages)):
        for i, lang in enumerate(langs):
            if not LANG_RE.match(lang):
                errs.append(f"{where}[{i}]: {show(lang)} is not a language code; write "
                            "e.g. 'en', 'zh' or 'zh-hant'")
    return errs


def _service_checks(cfg: BranchConfig) -> list[str]:
    errs: list[str] = []
    for i, s in enumerate(cfg.services):
        p = f"services[{i}]"
        if e := name_error(f"{p}.id", s.id):
            errs.append(e)
        if not PREFIX_RE.match(s.prefix):
            errs.append(f"{p}.prefix: {show(s.prefix)} must be one or two capital letters")
        for lang in cfg.branch.languages:
            if lang not in s.names:
                errs.append(f"{p}.names: no name in {show(lang)} (branch.languages lists it)")
        errs += _hours_errors(cfg, p, s)
    for key, paths in _dupes((f"services[{i}].id", s.id) for i, s in enumerate(cfg.services)
                             ).items():
        errs.append(f"{paths[1]}: service id {show(key)} already used by {paths[0]}")
    for key, paths in _dupes((f"services[{i}].prefix", s.prefix)
                             for i, s in enumerate(cfg.services)).items():
        errs.append(f"{paths[1]}: prefix {show(key)} already used by {paths[0]}; "
                    "each service needs its own prefix")
    return errs


def _hours_errors(cfg: BranchConfig, p: str, s: Service) -> list[str]:
    """Opening hours of service ``s`` (path ``p``): each span readable and not empty, no
    two overlapping in the week (a span past midnight runs into the next day's hours),
    and none open across ``branch.day_rollover`` unless the service carries its queue."""
    errs: list[str] = []
    parsed: dict[str, list[tuple[int, int, str, int]]] = {}  # key -> (start, end min, text, j)
    for day, spans in s.hours.items():
        if day not in (*WEEKDAYS, "default"):
            errs.append(f"{join(p, ('hours', day))}: unknown day; use mon..sun or default")
            continue
        parsed[day] = []
        for j, span in enumerate(spans):
            try:
                st, en = parse_hours(span)
            except ValueError as e:
                errs.append(f"{p}.hours.{day}[{j}]: {e}")
                continue
            a = st.hour * 60 + st.minute
            b = 1440 if en == time(0, 0) else en.hour * 60 + en.minute
            parsed[day].append((a, b + 1440 if b <= a else b, span, j))
    # the week as minutes from Monday 00:00; a span past Sunday midnight wraps to Monday
    week: list[tuple[int, int, str, str, str]] = []  # start, end, key, text, weekday
    for w, name in enumerate(WEEKDAYS):
        key = name if name in parsed else "default" if "default" in parsed else None
        for a, b, text, _ in parsed.get(key, []) if key else []:
            week.append((w * 1440 + a, w * 1440 + b, key or name, text, name))
    week.sort()
    pairs = list(itertools.pairwise(week))
    if week:
        last, first = week[-1], week[0]
        pairs.append((last, (first[0] + 7 * 1440, first[1] + 7 * 1440, *first[2:])))
    for (a1, b1, k1, t1, d1), (a2, _, k2, t2, d2) in pairs:
        if a2 >= b1 or (a1, k1, t1) == (a2 - 7 * 1440, k2, t2):
            continue
        if d1 == d2:
            errs.append(f"{p}.hours.{k1}: {t1!r} and {t2!r} overlap")
        else:
            errs.append(f"{p}.hours.{k2}: {t2!r} on {d2} overlaps {t1!r} of hours.{k1}, "
                        f"which runs past midnight from {d1}; end it earlier or start later")
    try:
        roll = parse_hhmm(cfg.branch.day_rollover)
    except ValueError:
        return errs  # reported by the branch checks
    r = roll.hour * 60 + roll.minute
    if s.at_day_end == "void":
        for key, got in parsed.items():
            for a, b, text, j in got:
                if a < r < b or a < r + 1440 < b:
                    errs.append(
                        f"{p}.hours.{key}[{j}]: {text!r} is open across branch.day_rollover "
                        f"{cfg.branch.day_rollover}, when the day roll voids the tickets still "
                        f"waiting; move day_rollover outside the opening hours or set "
                        f'{p}.at_day_end = "carry"')
    return errs


def _unknown_service(path: str, sid: str, known: set[str]) -> str:
    return (f"{path}: unknown service {show(sid)}; known: "
            f"{', '.join(sorted(known)) or 'none (add [[services]] tables)'}")


def _counter_hours_errors(p: str, hours: dict[str, tuple[str, ...]]) -> list[str]:
    """``counters[].hours``: the services' hours format (days mon..sun/default, spans
    HH:MM-HH:MM that do not overlap)."""
    errs: list[str] = []
    for day, spans in hours.items():
        if day not in (*WEEKDAYS, "default"):
            errs.append(f"{join(p, ('hours', day))}: unknown day; use mon..sun or default")
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
    return errs


def _counter_checks(cfg: BranchConfig) -> list[str]:
    errs: list[str] = []
    service_ids = {s.id for s in cfg.services}
    for i, c in enumerate(cfg.counters):
        p = f"counters[{i}]"
        if e := name_error(f"{p}.id", c.id):
            errs.append(e)
        if e := name_error(f"{p}.device", c.device, limit=PI_NAME_MAX):
            errs.append(e)
        if not c.services:
            errs.append(f"{p}.services: a counter must serve at least one service")
        errs += _counter_hours_errors(p, c.hours)
        for j, cs in enumerate(c.services):
            if cs.service not in service_ids:
                errs.append(_unknown_service(f"{p}.services[{j}].service", cs.service,
                                             service_ids))
        if c.panel is not None:
            n = len(c.panel.ratings)
            if n and not 3 <= n <= 5:
                errs.append(f"{p}.panel.ratings: {n} rating buttons; use 3 to 5")
            scale = cfg.rating_scale(c.id)
            if n and n != scale:
                whose = f"{p}.rating_scale" if c.rating_scale is not None else \
                    "engine.rating_scale"
                errs.append(f"{p}.panel.ratings: {n} rating buttons, but {whose} is {scale}; "
                            f"a satisfaction panel has one button per score: set "
                            f"{p}.rating_scale = {n} or wire {scale} buttons")
            for j, t in enumerate(c.panel.transfer_targets):
                if t not in service_ids:
                    errs.append(_unknown_service(f"{p}.panel.transfer_targets[{j}]", t,
                                                 service_ids))
    for key, paths in _dupes((f"counters[{i}].id", c.id) for i, c in enumerate(cfg.counters)
                             ).items():
        errs.append(f"{paths[1]}: counter id {show(key)} already used by {paths[0]}")
    for key, paths in _dupes((f"counters[{i}].number", c.number)
                             for i, c in enumerate(cfg.counters)).items():
        errs.append(f"{paths[1]}: counter number {key} already used by {paths[0]}")
    return errs


def _kiosk_checks(cfg: BranchConfig) -> list[str]:
    errs: list[str] = []
    service_ids = {s.id for s in cfg.services}
    for where, pi in (("kiosk.device", cfg.kiosk.device),
                      ("board.device", getattr(cfg.board, "device", "main"))):
        if e := name_error(where, pi, limit=PI_NAME_MAX):
            errs.append(e)
    for i, kb in enumerate(cfg.kiosk.buttons):
        if kb.service not in service_ids:
            errs.append(_unknown_service(f"kiosk.buttons[{i}].service", kb.service,
                                         service_ids))
        if kb.priority is not None and kb.priority not in cfg.engine.priority_order:
            errs.append(f"kiosk.buttons[{i}].priority: unknown class {show(kb.priority)}; "
                        f"engine.priority_order lists {', '.join(cfg.engine.priority_order)}")
    return errs


def _gpio_checks(cfg: BranchConfig) -> list[str]:
    g, errs = cfg.gpio, []
    if g.pin_factory and g.pin_factory not in PIN_FACTORIES:
        errs.append(f"gpio.pin_factory: unknown pin factory {show(g.pin_factory)}; "
                    f"valid: {', '.join(PIN_FACTORIES)}")
    if g.ring_capacity & (g.ring_capacity - 1):
        errs.append(f"gpio.ring_capacity: {g.ring_capacity} must be a power of two "
                    "between 2 and 16777216, e.g. 1024")
    if g.hold_ms >= g.stuck_ms:
        errs.append("gpio.hold_ms: must be shorter than gpio.stuck_ms")
    if g.debounce_ms >= g.hold_ms:
        errs.append("gpio.debounce_ms: must be shorter than gpio.hold_ms")
    return errs


def _engine_checks(cfg: BranchConfig) -> list[str]:
    errs: list[str] = []
    for i, cls in enumerate(cfg.engine.priority_order):
        if e := name_error(f"engine.priority_order[{i}]", cls):
            errs.append(e)
    for key, paths in _dupes((f"engine.priority_order[{i}]", c)
                             for i, c in enumerate(cfg.engine.priority_order)).items():
        errs.append(f"{paths[1]}: class {show(key)} already listed at {paths[0]}")
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
        errs.append(f"{paths[1]}: staff id {show(key)} already used by {paths[0]}")
    for paths in _dupes((f"staff[{i}].code", st.code) for i, st in enumerate(cfg.staff)
                        ).values():
        errs.append(f"{paths[1]}: same code as {paths[0]}; each person needs their own code")

    staff_ids = {st.id for st in cfg.staff}
    for i, c in enumerate(cfg.counters):
        p = f"counters[{i}]"
        if cfg.staff and c.staff and c.staff not in staff_ids:
            errs.append(f"{p}.staff: unknown staff id {show(c.staff)}; [[staff]] lists "
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
    """Every GPIO pin is used once per device (Pi); the range is the schema's."""
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
    if k.reprint_pin is not None:
        uses.append((k.device, "kiosk.reprint_pin", k.reprint_pin))
    for i, c in enumerate(cfg.counters):
        if c.panel is None:
            continue
        for f in ("next", "recall", "transfer", "no_show", "done", "pause", "rating_led"):
            v = getattr(c.panel, f)
            if v is not None:
                uses.append((c.device, f"counters[{i}].panel.{f}", v))
        for j, pin in enumerate(c.panel.ratings):
            uses.append((c.device, f"counters[{i}].panel.ratings[{j}]", pin))
    if cfg.alerts.lamp is not None:  # the manager's lamp, driven by the display role
        uses.append((cfg.board.device, "alerts.lamp", cfg.alerts.lamp))
    errs: list[str] = []
    first: dict[tuple[str, int], str] = {}
    for device, path, pin in uses:
        if (device, pin) in first:
            errs.append(f"{path}: pin {pin} already used by {first[device, pin]} "
                        f"on device {show(device)}")
        else:
            first[device, pin] = path
    return errs
