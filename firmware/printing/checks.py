"""Start-up checks for ``[kiosk.printer]`` and ``[ticket]`` (registered in EXTRA_CHECKERS).

Everything that would otherwise fail at the first customer: a missing font, an
unknown printer profile, a template naming an unknown field, a QR code too
wide for the paper, a mode the printer or link cannot do, a label for an unknown
priority class. ``config_warnings`` names what does not fit the paper even after the
layout's wrap and shrink (a warning: it still prints). ``port_errors`` checks
the device itself; it runs when the kiosk starts and in ``tessera printer
test``, not in ``config check`` (a config is often checked away from the Pi).

    >>> config_errors(load_config("examples/bank.toml"))   # doctest: +SKIP
    []
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import segno

from tessera.config import BranchConfig
from tessera.config_decode import show, show_path
from tessera.config_paths import file_problem, url_problem
from tessera.drivers.escpos_encoder import needs_cjk
from tessera.drivers.escpos_layout import MARGIN, load_font
from tessera.drivers.printer_profiles import PROFILES, PrinterProfile
from tessera.engine.routes import longest_route_text
from tessera.errors import ConfigError
from tessera.printing.template import template_errors
from tessera.web.links import qr_template

# longest value each template field can take (ids are UUIDv7, numbers ≤ 2+6 chars);
# people ahead and the wait in minutes are numbers of up to 4 digits
_FIELD_MAX = {"ticket_id": 36, "number": 8, "priority": 16, "appointment": 16,
              "business_day": 10, "ticket_token": 16}
_NUMBER_MAX = {"people_ahead": 9999, "est_wait_min": 9999, "est_low_min": 9999,
               "est_high_min": 9999}
_USB_RE = re.compile(r"\Ausb://[0-9a-fA-F]{4}:[0-9a-fA-F]{4}\Z")


def longest_qr_payload(cfg: BranchConfig) -> str:
    """The template filled with the longest value each field can take."""
    values: dict[str, object] = {f: "W" * n for f, n in _FIELD_MAX.items()}
    values.update(_NUMBER_MAX)
    values["service"] = max((s.id for s in cfg.services), key=len, default="")
    values["service_name"] = max((n for s in cfg.services for n in s.names.values()),
                                 key=lambda n: len(n.encode()), default="")
    values["tenant"], values["branch"] = cfg.branch.tenant, cfg.branch.branch
    values["route"] = longest_route_text(cfg)
    return qr_template(cfg).format(**values)


def _qr_errors(cfg: BranchConfig, profile: PrinterProfile) -> list[str]:
    t = cfg.ticket
    payload = longest_qr_payload(cfg)
    try:
        code = segno.make_qr(payload, error=t.qr_error)
    except segno.DataOverflowError:
        return [f"ticket.qr: a payload of {len(payload.encode())} bytes does not fit any QR "
                "code; shorten the template"]
    side = code.symbol_size(scale=t.qr_module, border=0)[0]
    room = profile.width_dots - 2 * MARGIN
    if side > room:
        return [f"ticket.qr: the longest payload ({len(payload.encode())} bytes) needs a "
                f"QR {side} dots wide at qr_module={t.qr_module}, but a {profile.name} "
                f"prints {room}; shorten the template or lower ticket.qr_module"]
    return []


def _mode_errors(cfg: BranchConfig, profile: PrinterProfile) -> list[str]:
    p, t = cfg.kiosk.printer, cfg.ticket
    errs: list[str] = []
    serial = not p.url.startswith(("usb://", "tcp://", "socket://"))
    if p.mode == "raster" and serial and p.url and not p.raster_over_serial:
        errs.append("kiosk.printer.mode: full raster sends ~50 KB a ticket (52 s at 9600 "
                    "baud) over a serial link; use mode 'auto', a USB/network printer, or "
                    "set kiosk.printer.raster_over_serial = true")
    if p.mode == "text":
        langs = t.languages or cfg.branch.languages
        texts = [cfg.branch.name, t.footer] + [s.name(lg) for s in cfg.services for lg in langs]
        if not profile.cjk_font and any(needs_cjk(x) for x in texts):
            errs.append(f"kiosk.printer.mode: a {profile.name} has no Chinese ROM font, so "
                        "mode 'text' cannot print the CJK names; use mode 'auto'")
        if t.logo:
            errs.append("kiosk.printer.mode: a logo needs raster; use mode 'auto'")
        if qr_template(cfg) and not profile.native_qr:
            errs.append(f"kiosk.printer.mode: a {profile.name} has no native QR codes; "
                        "use mode 'auto'")
    if p.baudrate not in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400):
        errs.append(f"kiosk.printer.baudrate: {p.baudrate} is not a standard serial speed")
    return errs


def config_errors(cfg: BranchConfig) -> list[str]:
    """Every printing problem of ``cfg``, each as ``"path: what to fix"``."""
    errs: list[str] = []
    p, t = cfg.kiosk.printer, cfg.ticket
    profile = PROFILES.get(p.profile)
    if profile is None:
        errs.append(f"kiosk.printer.profile: unknown printer profile {p.profile!r}; "
                    f"known: {', '.join(sorted(PROFILES))}")
    font = str(cfg.path(t.font))
    if problem := file_problem(Path(font)):
        errs.append(f"ticket.font: {show_path(font)} {problem}; install fonts-wqy-microhei "
                    "(apt-get install fonts-wqy-microhei) or point ticket.font at a "
                    "readable TTF/TTC with CJK glyphs")
    else:
        try:
            load_font(font, 24)
        except ConfigError as e:
            errs.extend(e.errors)
    errs += template_errors("ticket.qr", t.qr)
    errs += template_errors("ticket.extra_line", t.extra_line)
    errs += _priority_name_errors(cfg)
    if profile is not None:
        if qr_template(cfg) and not any(e.startswith("ticket.qr:") for e in errs):
            errs += _qr_errors(cfg, profile)
        errs += _mode_errors(cfg, profile)
    if p.url.startswith("usb://") and not _USB_RE.match(p.url):
        errs.append(f"kiosk.printer.url: {show(p.url)} is not usb://VID:PID (4 hex digits "
                    "each)")
    for scheme in ("tcp", "socket"):
        if p.url.startswith(f"{scheme}://") and \
                (problem := url_problem(p.url, (scheme,), port_required=True)):
            errs.append(f"kiosk.printer.url: {problem}")
    return errs


def _priority_name_errors(cfg: BranchConfig) -> list[str]:
    errs: list[str] = []
    order = cfg.engine.priority_order
    for cls, names in cfg.ticket.priority_names.items():
        if cls not in order:
            errs.append(f"ticket.priority_names.{cls}: unknown priority class {show(cls)}; "
                        f"engine.priority_order lists {', '.join(order) or 'none'}")
        for lang, name in names.items():
            if not name.strip():
                errs.append(f"ticket.priority_names.{cls}.{lang}: empty; give the label its "
                            "tickets print in that language, or leave the language out")
    return errs


def config_warnings(cfg: BranchConfig) -> list[str]:
    """Names that cannot fit the configured paper within the layout rules (wrapped over
    at most ``MAX_WRAP_LINES`` lines, then shrunk to the smallest size): they still
    print, wrapped further with words broken, so ``tessera config check`` warns and
    does not refuse. [] when the font or profile is unusable (an error says so)."""
    from tessera.drivers.escpos_layout import MAX_WRAP_LINES, TicketRenderer, fit_text
    from tessera.printing.template import priority_label

    profile = PROFILES.get(cfg.kiosk.printer.profile)
    font = str(cfg.path(cfg.ticket.font))
    if profile is None or file_problem(Path(font)):
        return []
    try:
        renderer = TicketRenderer(font, profile.width_dots)
    except ConfigError:
        return []
    room = profile.width_dots - 2 * MARGIN
    langs = list(dict.fromkeys(cfg.ticket.languages or cfg.branch.languages))
    texts: list[tuple[str, str, int]] = []  # (path, text, scale it is printed at)
    for i, svc in enumerate(cfg.services):
        for j, lang in enumerate(langs):
            if lang in svc.names:
                texts.append((f"services[{i}].names.{lang}", svc.names[lang], 2 if j == 0
                              else 1))
    for cls in cfg.engine.priority_order:
        label = " / ".join(dict.fromkeys(priority_label(cfg, cls, lg) for lg in langs))
        texts.append((f"ticket.priority_names.{cls}", label, 2))
    out: list[str] = []
    for path, text, scale in texts:
        lines, _, fits = fit_text(text, scale, renderer.text_width, room)
        if not fits:
            out.append(f"{path}: {show(text)} does not fit a {profile.name}'s paper "
                       f"({room} dots) even wrapped over {MAX_WRAP_LINES} lines at the "
                       f"smallest size; it prints over {len(lines)} lines with words broken "
                       "- shorten it")
    return out


def port_errors(cfg: BranchConfig) -> list[str]:
    """Problems with the printer port itself (run on the kiosk, at start-up)."""
    url = cfg.kiosk.printer.url
    if not url:
        return ["kiosk.printer.url: empty; give the printer's device path (e.g. "
                "/dev/serial/by-id/...), tcp://host:9100 or usb://VID:PID"]
    if url.startswith("usb://"):
        import importlib.util

        if importlib.util.find_spec("usb") is None:
            return ["kiosk.printer.url: usb:// printers need pyusb; install it with "
                    "pip install 'tessera[usb]' (or apt-get install python3-usb)"]
        return []
    if "://" in url:
        return []
    dev = Path(url)
    if not dev.exists():
        return [f"kiosk.printer.url: {url} does not exist; check the cable and "
                "`ls /dev/serial/by-id/`"]
    if not os.access(dev, os.R_OK | os.W_OK):
        return [f"kiosk.printer.url: no permission on {url}; add the service user to "
                "the dialout group"]
    return []
