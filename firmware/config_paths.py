"""The files, directories and URLs a branch config names, checked before anything runs.

Nothing here creates, opens for writing or deletes anything: a directory that
does not exist yet is checked by looking at the nearest one that does.

    >>> dir_problem(Path("/etc/passwd"), writable=True)
    'is a file, not a directory'
    >>> url_problem("mqtt://127.0.0.1:abc", ("mqtt", "mqtts"))
    "'mqtt://127.0.0.1:abc' is not a valid URL (port 'abc' is not a number 1-65535)"
"""

from __future__ import annotations

import getpass
import ipaddress
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from tessera.config import BranchConfig
from tessera.config_decode import show, show_path

HOST_RE = re.compile(r"\A(?=.{1,253}\Z)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
                     r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?\Z")
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f-\x9f\u2028\u2029]")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def expand_problem(value: str) -> str | None:
    """Why ``~user/...`` cannot be expanded on this machine, or None."""
    try:
        Path(value).expanduser()
    except RuntimeError:
        user = value[1:].split("/", 1)[0]
        return (f"{show(value)}: there is no user {show(user)} on this machine to expand "
                "'~' for; write the full path")
    return None


def file_problem(p: Path) -> str | None:
    """What keeps ``p`` from being read as a file ("does not exist", "is a directory"...)."""
    try:
        st = p.stat()
    except FileNotFoundError:
        return "does not exist"
    except NotADirectoryError:
        return f"does not exist ({_file_on_the_way(p)} is a file, not a directory)"
    except PermissionError:
        return "cannot be reached: no permission on a directory on the way"
    except OSError as e:
        return f"cannot be used ({e.strerror})"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory, not a file"
    if not os.access(p, os.R_OK):
        return f"is not readable by user {_user()}"
    return None


def dir_problem(p: Path, *, writable: bool) -> str | None:
    """What keeps ``p`` from being (made) a directory this user can write to."""
    try:
        st = p.stat()
    except FileNotFoundError:
        return _create_problem(p) if writable else "does not exist"
    except NotADirectoryError:
        return f"cannot be created: {_file_on_the_way(p)} is a file, not a directory"
    except OSError as e:
        return f"cannot be used ({e.strerror})"
    if not stat.S_ISDIR(st.st_mode):
        return "is a file, not a directory"
    if writable and not os.access(p, os.W_OK | os.X_OK):
        return (f"is not writable by user {_user()}; give it to the service user "
                f"(sudo chown {_user()} {p}) or point the setting elsewhere")
    return None


def _file_on_the_way(p: Path) -> Path:
    for parent in reversed(p.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return p


def _create_problem(p: Path) -> str | None:
    ancestor = next((a for a in p.absolute().parents if a.exists()), Path("/"))
    if not ancestor.is_dir():
        return f"cannot be created: {ancestor} is a file, not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return (f"does not exist and cannot be created: {ancestor} is not writable by user "
                f"{_user()}; create it first (sudo install -d -o {_user()} {p})")
    return None


def url_problem(url: str, schemes: tuple[str, ...], *, port_required: bool = False
                ) -> str | None:
    """What is wrong with ``scheme://host[:port]``, or None (the whole URL is parsed)."""
    example = f"{schemes[0]}://host.example.com:{1883 if 'mqtt' in schemes else 9100}"
    if m := _BAD_CHARS.search(url):
        return f"{show(url)} contains {m[0]!r}; a URL has no spaces or control characters"
    try:
        u = urlsplit(url)
        port = u.port
    except ValueError as e:
        why = str(e)
        if m := re.fullmatch(r"Port could not be cast to integer value as (.*)", why):
            why = f"port {m[1]} is not a number 1-65535"
        elif why.startswith("Port out of range"):
            why = "the port is not in 1-65535"
        return f"{show(url)} is not a valid URL ({why})"
    if u.scheme not in schemes:
        return f"{show(url)} must start with " + " or ".join(f"{s}://" for s in schemes) \
            + f", e.g. {example}"
    host = u.hostname or ""
    if not host:
        return f"{show(url)} has no host; write it like {example}"
    if u.username is not None or u.password is not None:
        return f"{show(url)}: no user or password in the URL; they go in a credentials file"
    if u.path not in ("", "/") or u.query or u.fragment:
        return f"{show(url)}: only {schemes[0]}://host:port, no path, query or fragment"
    if u.netloc.endswith(":") or port == 0 or (port_required and port is None):
        return f"{show(url)}: give a port 1-65535, e.g. {example}"
    if "[" in u.netloc:
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return f"{show(url)}: {show(host)} in brackets is not an IPv6 address"
    elif not HOST_RE.match(host):
        return f"{show(url)}: {show(host)} is not a host name or IP address"
    return None


def is_address(text: str) -> bool:
    """An IP address or a host name."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return bool(HOST_RE.match(text))
    return True


def broker_file_errors(where: str, path: Path, *, pem: bool = False,
                       password: bool = False) -> list[str]:
    """A file copied into (or next to) the broker's config: readable UTF-8 text (PEM for
    a certificate or key, which are copied as text); for a password, one line without
    control characters (a second line would become a line of mosquitto.conf)."""
    if problem := file_problem(path):
        return [f"{where}: {show_path(path)} {problem}"]
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        return [f"{where}: {show_path(path)} cannot be read ({e.strerror})"]
    except UnicodeDecodeError:
        return [f"{where}: {show_path(path)} is not UTF-8 text"
                + ("; convert a DER file with 'openssl x509 -inform der'" if pem else "")]
    pw = text.strip()
    if password and not pw:
        return [f"{where}: {show_path(path)} is empty; write the HQ password in it"]
    if password and _BAD_CHARS.sub("", pw.replace(" ", "")) != pw.replace(" ", ""):
        return [f"{where}: {show_path(path)} must hold the password alone on one line "
                f"({len(pw.splitlines())} lines, or control characters)"]
    return []


def _path_fields(cfg: BranchConfig) -> Iterator[tuple[str, str]]:
    """Every setting that names a local file or directory, with its value ("" = unset)."""
    yield "storage.dir", cfg.storage.dir
    yield "clock.sync_flag", cfg.clock.sync_flag
    yield "engine.appointments_file", cfg.engine.appointments_file
    yield "ticket.logo", cfg.ticket.logo
    yield "ticket.font", cfg.ticket.font
    yield "voice.clips_dir", cfg.voice.clips_dir
    if cfg.voice.output.startswith("dir:"):
        yield "voice.output", cfg.voice.output[4:]
    if cfg.kiosk.checkin != "stdin":
        yield "kiosk.checkin", cfg.kiosk.checkin
    for where, url in (("kiosk.printer.url", cfg.kiosk.printer.url), ("board.url", cfg.board.url)):
        if "://" not in url:
            yield where, url
    m = cfg.mqtt
    for field in ("credentials_file", "credentials_dir", "ca_file", "tls_cert_file",
                  "tls_key_file"):
        yield f"mqtt.{field}", getattr(m, field, "")
    if m.hq is not None:
        yield "mqtt.hq.password_file", m.hq.password_file
        yield "mqtt.hq.ca_file", m.hq.ca_file


def unexpandable(cfg: BranchConfig) -> list[str]:
    """Settings whose ``~user`` cannot be expanded (their other checks would only echo it)."""
    return [where for where, value in _path_fields(cfg) if value and expand_problem(value)]


def path_checks(cfg: BranchConfig) -> list[str]:
    errs: list[str] = []
    for where, value in _path_fields(cfg):
        if value and (problem := expand_problem(value)):
            errs.append(f"{where}: {problem}")
    bad = set(unexpandable(cfg))

    def check_file(where: str, value: str) -> None:
        if value and where not in bad and (problem := file_problem(cfg.path(value))):
            errs.append(f"{where}: {show_path(cfg.path(value))} {problem}")

    for where, value in (("engine.appointments_file", cfg.engine.appointments_file),
                         ("ticket.logo", cfg.ticket.logo),
                         ("mqtt.credentials_file", cfg.mqtt.credentials_file),
                         ("mqtt.ca_file", cfg.mqtt.ca_file)):
        check_file(where, value)
    # every directory Tessera writes to: created at start-up when missing
    outputs = [("storage.dir", cfg.storage.dir or ".")]
    if cfg.voice.output.startswith("dir:"):
        outputs.append(("voice.output", cfg.voice.output[4:]))
    for where, value in outputs:
        if where not in bad and (problem := dir_problem(cfg.path(value), writable=True)):
            errs.append(f"{where}: {show_path(cfg.path(value))} {problem}")
    creds = getattr(cfg.mqtt, "credentials_dir", "")
    if creds and "mqtt.credentials_dir" not in bad and \
            dir_problem(cfg.path(creds), writable=False):
        errs.append(f"mqtt.credentials_dir: {show_path(cfg.path(creds))} is not a "
                    "directory; copy this Pi's credentials/<device>.toml files from "
                    "'tessera broker config' there")
    return errs
