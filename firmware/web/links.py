"""The mobile-ticket links the QR codes carry: ``{base_url}/t/{ticket_id}.{token}``.

A ticket id is a UUIDv7: its first 48 bits are the issue time and the rest comes from
a seeded Mersenne Twister (``tessera.outbox.uuid7``), so ids seen on other tickets
help guess one. The path therefore also carries ``token``, an HMAC-SHA256 of the id
under the branch's secret (``web.secret_file``, default ``<storage.dir>/web-secret``,
32 random bytes made on first use, mode 0600): without the secret no valid path can
be made, and a wrong or missing token gets the same bare 404 as an unknown id.

    signer = LinkSigner.for_config(cfg)
    ref = signer.ref("0190a0b2-0000-7000-8000-000000000000")
    signer.ticket_id(ref)               # -> '0190a0b2-0000-7000-8000-000000000000'
    signer.ticket_id(ref[:-1] + "x")    # -> None
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from pathlib import Path

from tessera.config import BranchConfig

TOKEN_CHARS = 16  # base64url of the first 96 bits of the HMAC
SECRET_BYTES = 32
_REF_RE = re.compile(r"\A([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
                     r"\.([A-Za-z0-9_-]{16})\Z")
# the QR template the printer uses when web.base_url is set and ticket.qr is not
DERIVED_QR = "{base_url}/t/{ticket_id}.{ticket_token}"


def secret_path(cfg: BranchConfig) -> Path:
    return cfg.path(cfg.web.secret_file) if cfg.web.secret_file else \
        cfg.path(cfg.storage.dir) / "web-secret"


def load_secret(path: Path) -> bytes:
    """The branch secret, made (atomically, 0600) on first use."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, os.urandom(SECRET_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # the first process wins; the others read its secret
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        data = path.read_bytes()
    if len(data) < 16:
        raise ValueError(f"{path}: the web secret is {len(data)} bytes; delete it to make a "
                         "new one (printed QR codes of today then stop working)")
    return data


class LinkSigner:
    """Makes and checks the ``{ticket_id}.{token}`` part of mobile-ticket paths."""

    def __init__(self, secret: bytes, base_url: str = "") -> None:
        self._secret = secret
        self.base_url = base_url.rstrip("/")

    @classmethod
    def for_config(cls, cfg: BranchConfig) -> LinkSigner:
        return cls(load_secret(secret_path(cfg)), cfg.web.base_url)

    def token(self, ticket_id: str) -> str:
        mac = hmac.new(self._secret, ticket_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode()[:TOKEN_CHARS]

    def ref(self, ticket_id: str) -> str:
        return f"{ticket_id}.{self.token(ticket_id)}"

    def url(self, ticket_id: str) -> str:
        return f"{self.base_url}/t/{self.ref(ticket_id)}"

    def ticket_id(self, ref: str) -> str | None:
        """The ticket id of a well-formed, correctly signed ``ref``; else None."""
        m = _REF_RE.match(ref)
        if m is None or not hmac.compare_digest(self.token(m[1]), m[2]):
            return None
        return m[1]


def qr_template(cfg: BranchConfig) -> str:
    """The QR template the printer fills: ``ticket.qr``, or derived from ``web.base_url``."""
    if cfg.ticket.qr or not cfg.web.base_url:
        return cfg.ticket.qr
    return DERIVED_QR.replace("{base_url}", cfg.web.base_url.rstrip("/"))
