"""Generate the branch broker's files from the branch config.

``tessera broker config --config FILE --out DIR`` writes:

* ``mosquitto.conf`` — standalone (``mosquitto -c DIR/mosquitto.conf``):
  persistence, loopback listener (plain) and, when a certificate is
  configured, the LAN TLS listener (bind address ``mqtt.listener_bind``);
  ``allow_anonymous false``; ``use_username_as_clientid true``;
  ``set_tcp_nodelay true``; ``max_packet_size`` and queue limits; and, when
  ``[mqtt.hq]`` is set, the bridge to HQ (``tessera/v1/{tenant}/{branch}/#``
  out at QoS 1, ``cleansession false``, jittered ``restart_timeout``, TLS,
  notifications on ``…/broker/state/hq``);
* ``tessera.conf`` — the same without the keys Debian's stock
  ``/etc/mosquitto/mosquitto.conf`` sets, for ``/etc/mosquitto/conf.d/``;
* ``acl`` — each device writes only its own subtree plus the engine commands
  its role needs, and reads only what it consumes;
* ``passwd`` — hashed by ``mosquitto_passwd -U`` (passwords never on argv);
* ``credentials/{device}.toml`` — one per device, mode 0600, kept across
  runs so regenerating does not rotate every device's password.

Device names come from ``tessera.identity`` (the same function the role
processes use). Run as root, the broker's files belong to Debian's
``mosquitto`` user, which is who reads them. Secrets are never printed or
logged.

    files = write_broker_files(load_config("branch.toml"), Path("/etc/mosquitto/tessera"))
    sorted(files)
    # -> ['acl', 'credentials', 'mosquitto.conf', 'passwd', 'tessera.conf']
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from tessera.config import NAME_RE, BranchConfig
from tessera.errors import ConfigError, DeviceError
from tessera.identity import branch_devices
from tessera.mqtt.command_schema import ROLE_COMMANDS
from tessera.mqtt.credentials import load_credentials

ROLES = tuple(ROLE_COMMANDS)
# mosquitto saves its store every AUTOSAVE_INTERVAL_S but PUBACKs at once: a broker
# crash can lose up to that much acknowledged traffic, which the devices re-send
# (above the retained high-water mark, tessera.mqtt.drainer). Saving on every change instead
# would rewrite the whole store per message on the Pi's SD card.
AUTOSAVE_INTERVAL_S = 30
BROKER_USER = "mosquitto"  # Debian's mosquitto drops to this user when started as root
BRIDGE_DEVICE = "broker"  # topic level of the branch broker's own retained state
TLS_DIR = "tls"  # the LAN listener's certificate, key and CA, copied for the broker's user


def config_errors(cfg: BranchConfig) -> list[str]:
    """Checks of ``[mqtt]`` beyond its schema (run by ``load_config``): everything that
    reaches a URL, a topic, the ACL or a line of the generated mosquitto files."""
    import re

    from tessera.config_checks import NAME_RULE, PI_NAME_MAX, name_error
    from tessera.config_decode import key_text, show
    from tessera.config_paths import broker_file_errors, is_address, url_problem
    from tessera.identity import device_id

    log_types = ("debug", "error", "warning", "notice", "information", "subscribe",
                 "unsubscribe", "websockets", "none", "all")
    m, errs = cfg.mqtt, []
    if m.url and (problem := url_problem(m.url, ("mqtt", "mqtts"))):
        errs.append(f"mqtt.url: {problem}")
    if not NAME_RE.match(m.device):
        errs.append(f"mqtt.device: {show(m.device)} is not a valid name; {NAME_RULE}")
    elif m.device == BRIDGE_DEVICE:
        errs.append(f"mqtt.device: {m.device!r} is the branch broker's own topic level; "
                    "choose another name, e.g. 'engine'")
    names_ok = not errs
    for pi, roles in m.devices.items():
        where = f"mqtt.devices.{key_text(pi)}"
        if e := name_error(where, pi, limit=PI_NAME_MAX):
            errs.append(f"{e} (the key is a Pi's name)")
            names_ok = False
        for r in roles:
            if r not in ROLES:
                errs.append(f"{where}: unknown role {show(r)}; valid: {', '.join(ROLES)}")
                names_ok = False
    if names_ok:  # two processes must never share a device id (topics, login, outbox)
        pairs = {(r, pi) for pi, roles in m.devices.items() for r in roles}
        pairs |= {(d.role, d.pi) for d in branch_devices(cfg).values()}
        for role, pi in sorted(pairs):
            if role != "engine" and device_id(cfg, role, pi) == m.device:
                errs.append(f"mqtt.device: {m.device!r} is also the device id of the {role} "
                            f"on Pi {pi!r}; choose another name")
    for field in ("tls_cert_file", "tls_key_file"):
        if v := getattr(m, field):
            errs += broker_file_errors(f"mqtt.{field}", cfg.path(v), pem=True)
    if bool(m.tls_cert_file) != bool(m.tls_key_file):
        errs.append("mqtt.tls_cert_file: set both tls_cert_file and tls_key_file, or neither")
    if m.tls_cert_file and m.listener_port == m.local_port:
        errs.append(f"mqtt.listener_port: {m.listener_port} is mqtt.local_port too; the TLS "
                    "and the loopback listener need a port each")
    if m.reconnect_min_s > m.reconnect_max_s:
        errs.append("mqtt.reconnect_min_s: must not be longer than mqtt.reconnect_max_s")
    if m.command_max_bytes > m.message_size_limit:
        errs.append(f"mqtt.command_max_bytes: {m.command_max_bytes} is more than "
                    f"mqtt.message_size_limit ({m.message_size_limit}); the broker would "
                    "drop such commands")
    bind = getattr(m, "listener_bind", "")
    if bind and not is_address(bind):
        errs.append(f"mqtt.listener_bind: {show(bind)} is not an IP address or host name")
    for i, t in enumerate(getattr(m, "broker_log_types", ())):
        if t not in log_types:
            errs.append(f"mqtt.broker_log_types[{i}]: {show(t)} is not a mosquitto log "
                        f"type; valid: {', '.join(log_types)}")
    if not m.persistence_dir.startswith("/"):
        errs.append(f"mqtt.persistence_dir: {show(m.persistence_dir)} must be an absolute "
                    "path (mosquitto resolves a relative one against its working directory)")
    hq = m.hq
    if hq is not None:
        if problem := url_problem(hq.url, ("mqtt", "mqtts")):
            errs.append(f"mqtt.hq.url: {problem}")
        if hq.username and not re.fullmatch(r"[^\s]{1,256}", hq.username):
            errs.append(f"mqtt.hq.username: {show(hq.username)}; a bridge login is one word "
                        "without spaces")
        if hq.client_id and not re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", hq.client_id):
            errs.append(f"mqtt.hq.client_id: {show(hq.client_id)}; use 1-128 characters "
                        "A-Z, a-z, 0-9, '-', '_', '.' or ':'")
        if hq.password_file:
            errs += broker_file_errors("mqtt.hq.password_file", cfg.path(hq.password_file),
                                       password=True)
        if hq.ca_file:
            errs += broker_file_errors("mqtt.hq.ca_file", cfg.path(hq.ca_file), pem=True)
        if hq.restart_min_s > hq.restart_max_s:
            errs.append("mqtt.hq.restart_min_s: must not be longer than restart_max_s")
    return errs


def device_roles(cfg: BranchConfig) -> dict[str, tuple[str, ...]]:
    """Every MQTT device of the branch (``tessera.identity``) and its role."""
    return {d.id: (d.role,) for d in branch_devices(cfg).values()}


def acl_text(cfg: BranchConfig) -> str:
    """One ``user`` block per device: its own subtree (where it also sends engine
    requests, ``{device}/req/{name}``: the topic authenticates the sender), its own
    responses, and what it consumes. Which commands a role may send is the engine's
    check (``tessera.mqtt.command_auth``), from the same ``ROLE_COMMANDS``."""
    root = f"tessera/v1/{cfg.branch.tenant}/{cfg.branch.branch}"
    engine = f"{root}/{cfg.mqtt.device}"
    out = [f"# generated by 'tessera broker config' for {root}; do not edit", ""]
    for device, d in sorted(branch_devices(cfg).items()):
        out.append(f"user {device}")
        if d.role == "monitor":
            # read-only: not even its own subtree; it may ask for a snapshot
            out += [f"topic read {root}/#",
                    *(f"topic write {root}/{device}/req/{c}" for c in ROLE_COMMANDS["monitor"]),
                    ""]
            continue
        out.append(f"topic readwrite {root}/{device}/#")
        if ROLE_COMMANDS.get(d.role):
            out.append(f"topic read {engine}/res/{device}")
        if d.role == "engine":
            out += [f"topic read {root}/+/status", f"topic read {root}/+/evt/#",
                    f"topic read {root}/+/state/#", f"topic read {root}/+/req/#"]
        else:
            # kiosk, counter and display learn outcomes from the engine's events and state
            out += [f"topic read {engine}/status", f"topic read {engine}/evt/#",
                    f"topic read {engine}/state/#"]
            if d.role == "display":  # what the tellers do, for their counters' signs
                out.append(f"topic read {root}/+/evt/counter.notice")
            if d.role == "web":  # the console's "devices offline" alert (presence)
                out.append(f"topic read {root}/+/status")
        out.append("")
    return "\n".join(out)


# Per listener in mosquitto 2.0 whatever per_listener_settings says (before the first
# 'listener' line it configures, and opens, a default listener on port 1883).
_LISTENER = (
    # the broker takes the client id from the login: no device can connect as
    # another one, kick it off or take over its persistent session
    "use_username_as_clientid true",
)


def _body_lines(cfg: BranchConfig, out_dir: Path) -> list[str]:
    """Everything but the keys Debian's stock mosquitto.conf already sets."""
    m = cfg.mqtt
    lines = [
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {out_dir / 'passwd'}",
        f"acl_file {out_dir / 'acl'}",
        # saves every N s, after the PUBACKs: devices re-send what a crash may have
        # lost (everything above the retained state/hwm the broker restores)
        f"autosave_interval {AUTOSAVE_INTERVAL_S}",
        "set_tcp_nodelay true",  # paho clients set it too: both ends, or Nagle adds 40 ms
        f"max_packet_size {m.message_size_limit}",
        "max_inflight_messages 200",
        "max_queued_messages 100000",  # per offline persistent session (and the HQ bridge)
        "max_keepalive 300",
        "persistent_client_expiration 14d",
        *(f"log_type {t}" for t in m.broker_log_types),
        "",
        "# local clients (engine, single-box roles) over loopback",
        f"listener {m.local_port} 127.0.0.1",
        *_LISTENER,
    ]
    if m.tls_cert_file:
        lines += [
            "",
            "# branch LAN: TLS only",
            f"listener {m.listener_port}{f' {m.listener_bind}' if m.listener_bind else ''}",
            # copies the broker's user can read (it loads them after dropping root)
            f"certfile {out_dir / TLS_DIR / 'server.crt'}",
            f"keyfile {out_dir / TLS_DIR / 'server.key'}",
            "tls_version tlsv1.2",
            *_LISTENER,
        ]
        if m.ca_file:
            lines.append(f"cafile {out_dir / TLS_DIR / 'ca.crt'}")
    else:
        lines += ["", "# no mqtt.tls_cert_file: the LAN TLS listener is disabled"]
    if m.hq is not None:
        lines += ["", *bridge_lines(cfg)]  # last: every line after 'connection' is the bridge's
    return lines


def _header(cfg: BranchConfig, what: str) -> str:
    return (f"# generated by 'tessera broker config' for tenant {cfg.branch.tenant}, "
            f"branch {cfg.branch.branch}; do not edit\n# {what}")


def conf_text(cfg: BranchConfig, out_dir: Path) -> str:
    """The standalone config: ``mosquitto -c DIR/mosquitto.conf``."""
    lines = [_header(cfg, "standalone: mosquitto -c " + str(out_dir / "mosquitto.conf")),
             "persistence true",
             f"persistence_location {cfg.mqtt.persistence_dir.rstrip('/')}/",
             *_body_lines(cfg, out_dir)]
    return "\n".join(lines) + "\n"


def dropin_text(cfg: BranchConfig, out_dir: Path) -> str:
    """The drop-in for Debian's stock ``/etc/mosquitto/mosquitto.conf``, which already
    sets ``pid_file``, ``persistence``, ``persistence_location`` and ``log_dest``
    (mosquitto refuses a second ``persistence_location``)."""
    lines = [_header(cfg, "drop-in: link it into /etc/mosquitto/conf.d/ (Debian's "
                          "mosquitto.conf sets persistence and logging)"),
             *_body_lines(cfg, out_dir)]
    return "\n".join(lines) + "\n"


def bridge_status_topic(cfg: BranchConfig) -> str:
    """Where the bridge says ``1`` (up) or ``0`` (down, the remote LWT), retained."""
    return f"tessera/v1/{cfg.branch.tenant}/{cfg.branch.branch}/{BRIDGE_DEVICE}/state/hq"


def bridge_lines(cfg: BranchConfig) -> list[str]:
    hq = cfg.mqtt.hq
    assert hq is not None
    u = urlsplit(hq.url)
    tls = u.scheme == "mqtts"
    b = cfg.branch
    lines = [
        "# bridge: everything of this branch goes to HQ at QoS 1; HQ never writes back",
        f"connection {b.tenant}-{b.branch}-hq",
        f"address {u.hostname}:{u.port or (8883 if tls else 1883)}",
        "bridge_protocol_version mqttv311",
        f"remote_clientid {hq.client_id or f'{b.tenant}-{b.branch}-bridge'}",
        "cleansession false",  # HQ keeps the session: nothing lost across an uplink outage
        # base and cap: mosquitto backs off exponentially with jitter between them
        f"restart_timeout {hq.restart_min_s} {hq.restart_max_s}",
        f"keepalive_interval {hq.keepalive_s}",
        f"try_private {'true' if hq.try_private else 'false'}",
    ]
    if hq.notifications:
        # inside the branch subtree, so the 'out' topic carries it and HQ's ACL for
        # the branch covers it; the remote LWT turns it to 0 when the bridge drops
        lines += ["notifications true", f"notification_topic {bridge_status_topic(cfg)}"]
    else:
        lines.append("notifications false")
    lines.append(f"topic tessera/v1/{b.tenant}/{b.branch}/# out 1")
    if hq.username:
        lines.append(f"remote_username {hq.username}")
    if hq.password_file:
        pw = cfg.path(hq.password_file).read_text(encoding="utf-8").strip()
        if not pw or any(ord(ch) < 32 or ord(ch) == 127 for ch in pw):
            raise ConfigError([f"mqtt.hq.password_file: {cfg.path(hq.password_file)} must "
                               "hold the password on one line"])
        lines.append(f"remote_password {pw}")
    if tls:
        if hq.ca_file:
            lines.append(f"bridge_cafile {cfg.path(hq.ca_file)}")
        else:
            lines.append("bridge_capath /etc/ssl/certs")
        lines += ["bridge_tls_version tlsv1.2", "bridge_insecure false"]
    return lines


def _broker_owner() -> tuple[int, int] | None:
    """(uid, gid) of Debian's ``mosquitto`` user when we are root, else None.

    mosquitto started as root drops to that user before it reads the password
    file and the ACL (and re-reads its config as that user on SIGHUP), so the
    files it needs are given to it; nobody else can read them.
    """
    if os.geteuid() != 0:
        return None  # the broker runs as us: our own 0600 files are readable
    try:
        pw = pwd.getpwnam(BROKER_USER)
    except KeyError:
        return None
    return pw.pw_uid, pw.pw_gid


def _write_private(path: Path, text: str, owner: tuple[int, int] | None = None) -> None:
    """Write ``text`` to a file only its owner can read (created 0600, never wider)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)
    if owner is not None:
        os.chown(path, *owner)


def _copy_tls(cfg: BranchConfig, tls_dir: Path, owner: tuple[int, int] | None) -> None:
    """The LAN listener's PEM files, copied where the broker's user alone reads them
    (mosquitto opens them after dropping root; re-run after replacing a certificate)."""
    m = cfg.mqtt
    if not m.tls_cert_file:
        return
    tls_dir.mkdir(mode=0o700, exist_ok=True)
    os.chmod(tls_dir, 0o700)
    if owner is not None:
        os.chown(tls_dir, *owner)
    pairs = [("server.crt", m.tls_cert_file), ("server.key", m.tls_key_file)]
    if m.ca_file:
        pairs.append(("ca.crt", m.ca_file))
    for name, src in pairs:
        _write_private(tls_dir / name, cfg.path(src).read_text(encoding="utf-8"), owner)


def device_passwords(devices: list[str], cred_dir: Path) -> dict[str, str]:
    """Existing passwords from ``cred_dir`` (kept), new random ones for new devices."""
    out: dict[str, str] = {}
    for d in devices:
        p = cred_dir / f"{d}.toml"
        out[d] = load_credentials(p)[1] if p.exists() else secrets.token_urlsafe(24)
    return out


def write_broker_files(cfg: BranchConfig, out_dir: Path) -> dict[str, Path]:
    """Write every file into ``out_dir``; returns them by name.

    ``mosquitto.conf`` (standalone), ``tessera.conf`` (Debian drop-in), ``acl``
    and ``passwd`` belong to the broker's user (0600); ``credentials/`` (0700,
    one 0600 file per device) stays ours: copy each Pi's files to it.
    """
    mosquitto_passwd = shutil.which("mosquitto_passwd")
    if mosquitto_passwd is None:
        raise DeviceError("mosquitto_passwd not found; install the Debian package 'mosquitto'")
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    owner = _broker_owner()
    cred_dir = out_dir / "credentials"
    devices = sorted(branch_devices(cfg))
    passwords = device_passwords(devices, cred_dir)
    cred_dir.mkdir(mode=0o700, exist_ok=True)
    os.chmod(cred_dir, 0o700)
    for d in devices:
        _write_private(cred_dir / f"{d}.toml",
                       f'# MQTT login of device {d}\nusername = "{d}"\n'
                       f'password = "{passwords[d]}"\n')
    passwd = out_dir / "passwd"
    _write_private(passwd, "".join(f"{d}:{passwords[d]}\n" for d in devices))
    # -U hashes the file in place: the plaintext never appears on a command line
    r = subprocess.run([mosquitto_passwd, "-U", str(passwd)], capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        passwd.unlink(missing_ok=True)
        raise DeviceError(f"mosquitto_passwd -U failed (exit {r.returncode})")
    if owner is not None:
        os.chown(passwd, *owner)
    files = {"mosquitto.conf": out_dir / "mosquitto.conf", "tessera.conf": out_dir / "tessera.conf",
             "acl": out_dir / "acl", "passwd": passwd, "credentials": cred_dir}
    _write_private(files["acl"], acl_text(cfg), owner)
    _write_private(files["mosquitto.conf"], conf_text(cfg, out_dir), owner)
    _write_private(files["tessera.conf"], dropin_text(cfg, out_dir), owner)
    _copy_tls(cfg, out_dir / TLS_DIR, owner)
    store = Path(cfg.mqtt.persistence_dir)
    if not store.exists():  # the standalone config's store (Debian ships /var/lib/mosquitto)
        store.mkdir(parents=True, mode=0o700)
        if owner is not None:
            os.chown(store, *owner)
    return files


__all__ = ["BRIDGE_DEVICE", "ConfigError", "acl_text", "bridge_status_topic", "conf_text",
           "config_errors", "device_roles", "dropin_text", "write_broker_files"]
