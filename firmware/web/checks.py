"""Checks of the ``[web]`` section (``tessera.config.EXTRA_CHECKERS``), each error
with its path and what to fix."""

from __future__ import annotations

import ipaddress
import re

from tessera.config import BranchConfig
from tessera.config_checks import name_error
from tessera.config_decode import show
from tessera.web.accounts import parse_hash

_HOST_RE = re.compile(r"\A[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})\Z")
_BASE_RE = re.compile(r"\Ahttps?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~/-]*)?\Z")


def config_errors(cfg: BranchConfig) -> list[str]:
    w = cfg.web
    errs: list[str] = []
    try:
        ipaddress.ip_address(w.bind)
    except ValueError:
        if not _HOST_RE.match(w.bind):
            errs.append(f"web.bind: {show(w.bind)} is neither an IP address nor a host name; "
                        "use 127.0.0.1 (this Pi only), 0.0.0.0 (every interface) or the "
                        "LAN address")
    if w.base_url:
        if not _BASE_RE.match(w.base_url):
            errs.append(f"web.base_url: {show(w.base_url)} is not an http(s) URL without "
                        "query or fragment, e.g. https://q.acme-bank.example")
        elif cfg.ticket.qr.startswith(w.base_url.rstrip("/") + "/t/"):
            # a QR to the web role's ticket pages without the signature leads to a 404
            want = w.base_url.rstrip("/") + "/t/{ticket_id}.{ticket_token}"
            if cfg.ticket.qr != want:
                errs.append(f"ticket.qr: {show(cfg.ticket.qr)} is not the web role's ticket "
                            f"link {show(want)}; leave ticket.qr empty (it is derived from "
                            "web.base_url) or set it to exactly that")
    if w.stale_s <= w.heartbeat_s:
        errs.append(f"web.stale_s: {w.stale_s:g} s must be longer than web.heartbeat_s "
                    f"({w.heartbeat_s:g} s), or every quiet moment shows as stale")
    seen: dict[str, int] = {}
    for i, a in enumerate(w.accounts):
        path = f"web.accounts[{i}]"
        if problem := name_error(f"{path}.name", a.name):
            errs.append(problem)
        if a.name in seen:
            errs.append(f"{path}.name: {show(a.name)} is also web.accounts[{seen[a.name]}]; "
                        "account names must be unique")
        seen.setdefault(a.name, i)
        try:
            parse_hash(a.password_hash)
        except ValueError as e:
            errs.append(f"{path}.password_hash: {e}")
    return errs
