"""Supervisor-console logins: scrypt password hashes, sessions, CSRF tokens, lockout.

Passwords are never in the config: ``web.accounts[].password_hash`` is
``scrypt$N$r$p$<salt b64>$<hash b64>`` (``tessera web hash-password`` makes one;
hashlib.scrypt: standard library, memory-hard, no new dependency).

    h = hash_password("correct horse")
    verify_password("correct horse", h), verify_password("wrong", h)
    # -> (True, False)

A session is a random cookie value mapped, in memory, to its account, role,
CSRF token and expiry; a restart of the web role logs everyone out. After
``web.lockout_attempts`` failed logins for one account name, or from one client
address, further attempts are refused for ``web.lockout_s`` (the right password
too), so a password cannot be guessed at the speed of the Pi.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass, field

from tessera.config import WebAccount, WebSection

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MAX_PASSWORD = 1024
MAX_FAILURES = 10_000  # failure counters kept (names and addresses) before pruning
ROLE_RANK = {"viewer": 0, "supervisor": 1, "manager": 2}
# the least role each console action needs
ACTION_ROLES = {"open": "supervisor", "close": "supervisor", "pause": "supervisor",
                "resume": "supervisor", "call": "supervisor", "transfer": "supervisor",
                "void": "manager", "reprint": "supervisor", "undo-no-show": "supervisor",
                "appointments": "manager"}


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R,
                  p: int = SCRYPT_P) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32,
                         maxmem=256 * 1024 * 1024)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(key)}"


def parse_hash(text: str) -> tuple[int, int, int, bytes, bytes]:
    """ValueError saying what is wrong with a stored hash."""
    parts = text.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError("not a scrypt hash (scrypt$N$r$p$salt$hash); make one with "
                         "`tessera web hash-password`")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, key = base64.b64decode(parts[4], validate=True), \
            base64.b64decode(parts[5], validate=True)
    except ValueError:
        raise ValueError("malformed scrypt hash; make a new one with "
                         "`tessera web hash-password`") from None
    if n < 2**10 or n > 2**20 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise ValueError(f"scrypt parameters N={n} r={r} p={p} are out of range "
                         "(N a power of two from 1024 to 2^20)")
    if len(salt) < 8 or len(key) < 16:
        raise ValueError("scrypt salt or hash too short")
    return n, r, p, salt, key


def verify_password(password: str, stored: str) -> bool:
    try:
        n, r, p, salt, key = parse_hash(stored)
    except ValueError:
        return False
    if len(password) > MAX_PASSWORD:
        return False
    got = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=len(key),
                         maxmem=256 * 1024 * 1024)
    return hmac.compare_digest(got, key)


def may(role: str, action: str) -> bool:
    need = ACTION_ROLES.get(action)
    return need is not None and ROLE_RANK.get(role, -1) >= ROLE_RANK[need]


@dataclass(frozen=True)
class Session:
    token: str
    account: str
    role: str
    csrf: str
    expires: float


@dataclass
class _Failures:
    count: int = 0
    until: float = 0.0


@dataclass
class Accounts:
    """Logins of ``web.accounts`` with their sessions and lockouts (thread-safe)."""

    accounts: dict[str, WebAccount]
    session_s: float
    lockout_attempts: int
    lockout_s: float
    _sessions: dict[str, Session] = field(default_factory=dict)
    _fails: dict[str, _Failures] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # a dummy hash so an unknown name costs the same time as a wrong password
    _dummy: str = field(default_factory=lambda: hash_password(secrets.token_hex(8)))

    @classmethod
    def from_config(cls, web: WebSection) -> Accounts:
        return cls({a.name: a for a in web.accounts}, web.session_s, web.lockout_attempts,
                   web.lockout_s)

    def locked(self, keys: list[str], now: float) -> float:
        """Seconds left of the longest lockout among ``keys`` (0: not locked)."""
        with self._lock:
            return max((f.until - now for k in keys if (f := self._fails.get(k))
                        and f.until > now), default=0.0)

    def login(self, name: str, password: str, client: str, now: float) -> Session | None:
        """A new session, or None (wrong name or password, or locked out: see ``locked``)."""
        keys = [f"name:{name}", f"addr:{client}"]
        if self.locked(keys, now) > 0:
            return None
        account = self.accounts.get(name)
        ok = verify_password(password, account.password_hash if account else self._dummy)
        with self._lock:
            if not ok or account is None:
                if len(self._fails) > MAX_FAILURES:  # bounded: forget what is not locked
                    self._fails = {k: f for k, f in self._fails.items() if f.until > now}
                for k in keys:
                    f = self._fails.setdefault(k, _Failures())
                    f.count += 1
                    if f.count >= self.lockout_attempts:
                        f.count, f.until = 0, now + self.lockout_s
                return None
            self._fails.pop(keys[0], None)
            self._fails.pop(keys[1], None)
            s = Session(secrets.token_urlsafe(32), account.name, account.role,
                        secrets.token_urlsafe(32), now + self.session_s)
            self._sessions[s.token] = s
            return s

    def session(self, token: str | None, now: float) -> Session | None:
        if not token:
            return None
        with self._lock:
            s = self._sessions.get(token)
            if s is None or s.expires <= now:
                self._sessions.pop(token, None)
                return None
            return s

    def logout(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)


def csrf_ok(session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf.encode(), (sent or "").encode())
