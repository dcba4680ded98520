"""A branch config on the simulated bus: control names for its pins, and the derived config.

``tessera sim hardware`` plays a branch's hardware in one process; the
firmware runs unmodified against the config written here:

    wiring = sim_wiring(cfg)                      # kiosk.cash -> ("main", 17), ...
    derived = derived_config(cfg, out=out, printer_url=p.path, board_url=b.path)
    (out / "branch.toml").write_text(config_toml(derived))

Names (``tessera sim press NAME``):

- kiosk buttons ``kiosk.<service>``; when several buttons share a service, each
  gets its priority class (``kiosk.cash`` and ``kiosk.cash-priority``), and
  ``-2``, ``-3`` if that still repeats; a button's own LED is ``<name>.led``;
- kiosk lamps ``kiosk.ready``, ``kiosk.printer-warning``, ``kiosk.printer-fault``,
  ``kiosk.closed``;
- counter keys ``counter-<id>.next``, ``.recall``, ``.transfer``, ``.no-show``,
  ``.done``, ``.pause``, ``.rate-1`` (lowest) … ``.rate-5``; the rating LED is
  ``counter-<id>.rating-led``.

A counter with no panel in the config gets the demo's simulated one on its
own simulated Pi ``sim-<id>`` (as ``tessera demo`` does), so every counter can
be pressed.
"""

from __future__ import annotations

import json
from collections import Counter as Tally
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import msgspec

from tessera.config import BranchConfig, parse_config
from tessera.demo.setup import demo_config
from tessera.dispatch import PANEL_KEYS
from tessera.identity import RUN_ROLES
from tessera.sim.hardware import Wire, Wiring

KIOSK_LAMPS = ("ready", "printer_warning", "printer_fault", "closed")
SIM_DEVICE = "sim-{id}"  # the simulated Pi of a counter the config gives no panel
# (section, field) holding a path, resolved against the config's folder
PATH_FIELDS = (("ticket", "font"), ("ticket", "logo"), ("voice", "clips_dir"),
               ("engine", "appointments_file"), ("clock", "sync_flag"),
               ("mqtt", "credentials_file"), ("mqtt", "credentials_dir"), ("mqtt", "ca_file"),
               ("mqtt", "tls_cert_file"), ("mqtt", "tls_key_file"),
               ("mqtt", "persistence_dir"))


def _dash(key: str) -> str:
    return key.replace("_", "-")


def kiosk_button_names(cfg: BranchConfig) -> list[str]:
    """The control name of each ``kiosk.buttons`` entry, in order."""
    shared = Tally(b.service for b in cfg.kiosk.buttons)
    names: list[str] = []
    for b in cfg.kiosk.buttons:
        base = f"kiosk.{b.service}"
        if shared[b.service] > 1 and b.priority:
            base += f"-{_dash(b.priority)}"
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}-{n}"
        names.append(name)
    return names


def sim_wiring(cfg: BranchConfig) -> Wiring:
    """Every pin of every device in ``cfg``, named (see module docstring)."""
    wires: list[Wire] = []
    k = cfg.kiosk
    for i, (name, b) in enumerate(zip(kiosk_button_names(cfg), k.buttons, strict=True)):
        wires.append(Wire(name, k.device, b.pin, "button", f"kiosk.buttons[{i}].pin"))
        if b.led is not None:
            wires.append(Wire(f"{name}.led", k.device, b.led, "lamp", f"kiosk.buttons[{i}].led"))
    for lamp in KIOSK_LAMPS:
        pin = getattr(k.leds, lamp)
        if pin is not None:
            wires.append(Wire(f"kiosk.{_dash(lamp)}", k.device, pin, "lamp", f"kiosk.leds.{lamp}"))
    for i, c in enumerate(cfg.counters):
        p = c.panel
        if p is None:
            continue
        where = f"counters[{i}].panel"
        for key in PANEL_KEYS:
            pin = getattr(p, key.value)
            if pin is not None:
                wires.append(Wire(f"counter-{c.id}.{_dash(key.value)}", c.device, pin, "button",
                                  f"{where}.{key.value}"))
        for n, pin in enumerate(p.ratings, start=1):
            wires.append(Wire(f"counter-{c.id}.rate-{n}", c.device, pin, "button",
                              f"{where}.ratings[{n - 1}]"))
        if p.rating_led is not None:
            wires.append(Wire(f"counter-{c.id}.rating-led", c.device, p.rating_led, "lamp",
                              f"{where}.rating_led"))
    return Wiring(wires)


def derived_config(cfg: BranchConfig, *, out: Path, printer_url: str = "", board_url: str = "",
                   always_open: bool = False) -> BranchConfig:
    """``cfg`` for a firmware on the simulated bus, living in ``out``.

    As ``tessera run --sim`` changes it (``tessera.demo.setup.demo_config`` with the
    configured debounce and hold: a person pressing): printer and board at the
    emulators' ptys, storage in ``out``, announcements as WAVs in ``out/wav``, a
    trusted clock; then ``gpio.pin_factory = "tessera-sim"``, panel-less counters on
    ``sim-<id>``, every relative path absolute. ``always_open`` drops the services'
    opening hours (a test run at 03:00 still issues tickets). ``mqtt.url`` stays as
    configured ("" = no broker).
    """
    rep = msgspec.structs.replace
    out = out.resolve()
    checkin = cfg.kiosk.checkin
    if checkin and checkin != "stdin":
        checkin = str(cfg.path(checkin).resolve())
    sim = demo_config(cfg, out=out, printer_url=printer_url, board_url=board_url,
                      broker=cfg.mqtt.url, checkin=checkin, fast_buttons=False)
    counters = tuple(c if orig.panel is not None else rep(c, device=SIM_DEVICE.format(id=c.id))
                     for orig, c in zip(cfg.counters, sim.counters, strict=True))
    parts: dict[str, Any] = {}
    for section, name in PATH_FIELDS:
        sec = parts.get(section, getattr(sim, section))
        value = getattr(sec, name, "")
        if value and not Path(value).is_absolute():
            parts[section] = rep(sec, **{name: str(cfg.path(value).resolve())})
    hq = sim.mqtt.hq
    if hq is not None:
        files = {f: str(cfg.path(getattr(hq, f)).resolve()) for f in ("password_file", "ca_file")
                 if getattr(hq, f) and not Path(getattr(hq, f)).is_absolute()}
        parts["mqtt"] = rep(parts.get("mqtt", sim.mqtt), hq=rep(hq, **files))
    services = tuple(rep(s, hours={}) for s in sim.services) if always_open else sim.services
    # the demo keeps every call and ignores quiet hours for its virtual clock; the
    # firmware on the bus runs on wall time: keep what the branch configured
    voice = rep(sim.voice, max_age_s=cfg.voice.max_age_s, quiet_hours=cfg.voice.quiet_hours)
    return rep(sim, **parts, counters=counters, services=services, voice=voice,
               gpio=rep(sim.gpio, pin_factory="tessera-sim"), base_dir=str(out))


# --------------------------------------------------------------------------- TOML


def config_toml(cfg: BranchConfig, header: str = "") -> str:
    """``cfg`` as a TOML file ``load_config`` reads back to an equal config (every path
    in it absolute, so the file may live anywhere)."""
    data: dict[str, Any] = msgspec.to_builtins(cfg)
    data.pop("base_dir", None)
    lines = [f"# {line}" for line in header.splitlines()]
    for key, value in data.items():
        if isinstance(value, dict):
            lines += ["", f"[{key}]"]
            lines += [f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None]
        elif isinstance(value, list | tuple):
            for item in value:
                lines += ["", f"[[{key}]]"]
                lines += [f"{_key(k)} = {_value(v)}" for k, v in item.items() if v is not None]
    text = "\n".join(lines).lstrip("\n") + "\n"
    back = parse_config(text, base_dir=cfg.base_dir, roles=())
    if back != cfg:
        raise ValueError("config_toml: the written config does not read back equal")
    return text


def _key(k: str) -> str:
    return k if k and all(ch.isalnum() or ch in "-_" for ch in k) and k.isascii() \
        else json.dumps(k, ensure_ascii=False)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()
                                if x is not None) + " }"
    raise TypeError(f"config_toml: cannot write {type(v).__name__} {v!r}")


@contextmanager
def simulated_hardware(cfg: BranchConfig, out: Path,
                       roles: tuple[str, ...] = ("all",)) -> Iterator[BranchConfig]:
    """``cfg`` on simulated hardware: printer and board emulators on ptys (tickets and
    board renders under ``out``; only those the ``roles`` use), mock pins,
    announcements as WAV files, trusted clock."""
    want = set(RUN_ROLES[1:]) if "all" in roles else set(roles)
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
