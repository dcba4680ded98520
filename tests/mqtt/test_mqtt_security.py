"""Broker security with the generated config: passwords, ACL, TLS."""

from __future__ import annotations

import os
import pwd
import queue
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from mqtt_support import (
    BRANCH,
    TENANT,
    branch_broker_config,
    make_ca,
    make_server_cert,
    settings,
    start_generated,
)

from tessera.drivers.mqtt_client import (
    Connected,
    ConnectFailed,
    Disconnected,
    MqttEvent,
    PahoClient,
    PubAck,
    PublishProps,
)
from tessera.mqtt.credentials import load_credentials

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(60)]
ROOT = f"tessera/v1/{TENANT}/{BRANCH}"


def _first(client: PahoClient, kinds: tuple[type, ...], timeout: float = 10) -> MqttEvent:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ev = client.events.get(timeout=0.1)
        except queue.Empty:
            continue
        if isinstance(ev, kinds):
            return ev
    raise AssertionError(f"no {kinds} within {timeout} s")


@pytest.fixture
def secured(mosquitto: Any, broker_base: Path) -> Any:
    ca = make_ca(broker_base / "pki", "branch-ca")
    crt, key = make_server_cert(broker_base / "pki", ca)
    cfg = branch_broker_config(broker_base, extra_mqtt=(
        f'tls_cert_file = "{crt}"\ntls_key_file = "{key}"\nca_file = "{ca[0]}"\n'))
    out = broker_base / "broker"
    broker = start_generated(mosquitto, cfg, out)
    clients: list[PahoClient] = []

    def login(device: str | None, *, password: str | None = None, tls_ca: Path | None = None,
              client_id: str | None = None) -> PahoClient:
        user = pw = None
        if device is not None:
            user, pw = load_credentials(out / "credentials" / f"{device}.toml")
        kw: dict[str, Any] = {}
        if tls_ca is not None:
            kw = {"port": cfg.mqtt.listener_port, "ca_file": str(tls_ca)}
        s = settings(broker, client_id or f"t-{device}-{len(clients)}", username=user,
                     password=password if password is not None else pw, **kw)
        c = PahoClient(s)
        c.start()
        clients.append(c)
        return c

    yield login, cfg, out, ca
    for c in clients:
        c.stop(2)


def test_generated_files_protect_secrets(secured: Any) -> None:
    _, _cfg, out, _ = secured
    creds = sorted(p.name for p in (out / "credentials").iterdir())
    assert creds == ["counter-pi-1.toml", "counter-pi-2.toml", "display-main.toml",
                     "engine.toml", "kiosk-pi-k.toml"]
    for p in (out / "credentials").iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    # what the broker reads belongs to the user it runs as, and nobody else reads it
    broker_uid = pwd.getpwnam("mosquitto").pw_uid if os.geteuid() == 0 else os.geteuid()
    for name in ("passwd", "acl", "mosquitto.conf", "tessera.conf", "tls/server.key"):
        st = (out / name).stat()
        assert st.st_uid == broker_uid and stat.S_IMODE(st.st_mode) == 0o600, name
    _, pw = load_credentials(out / "credentials" / "kiosk-pi-k.toml")
    passwd = (out / "passwd").read_text()
    assert pw not in passwd and "kiosk-pi-k:$7$" in passwd  # hashed by mosquitto_passwd
    conf = (out / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "set_tcp_nodelay true" in conf
    assert "max_packet_size 65536" in conf and "message_size_limit" not in conf
    assert "use_username_as_clientid true" in conf


def test_anonymous_and_wrong_password_are_refused(secured: Any) -> None:
    login, *_ = secured
    anon = _first(login(None), (Connected, ConnectFailed))
    assert isinstance(anon, ConnectFailed)
    bad = _first(login("kiosk-pi-k", password="guess"), (Connected, ConnectFailed))
    # 134 bad user name or password; mosquitto 2.0 answers 135 not authorised
    assert isinstance(bad, ConnectFailed) and bad.code in (134, 135)


def test_kiosk_cannot_write_a_counters_topics_or_call_next(secured: Any) -> None:
    login, *_ = secured
    engine = login("engine")
    assert isinstance(_first(engine, (Connected, ConnectFailed)), Connected)
    engine.subscribe(f"{ROOT}/#", 1)
    kiosk = login("kiosk-pi-k")
    assert isinstance(_first(kiosk, (Connected, ConnectFailed)), Connected)
    time.sleep(0.2)
    props = PublishProps(response_topic=f"{ROOT}/engine/res/kiosk-pi-k", correlation_data=b"k")
    denied = [
        kiosk.publish(f"{ROOT}/counter-pi-1/evt/ticket.called", b"{}", qos=1),
        # a request in another device's subtree: it would be taken as that device's
        kiosk.publish(f"{ROOT}/counter-pi-1/req/call-next", b"{}", qos=1, props=props),
        kiosk.publish(f"{ROOT}/engine/cmd/call-next", b"{}", qos=1, props=props),  # the old path
        kiosk.publish(f"{ROOT}/engine/evt/ticket.issued", b"{}", qos=1),
    ]
    allowed = kiosk.publish(f"{ROOT}/kiosk-pi-k/req/issue-ticket", b"{}", qos=1, props=props)
    acks: dict[int, PubAck] = {}
    while len(acks) < 5:
        ev = _first(kiosk, (PubAck,))
        assert isinstance(ev, PubAck)
        acks[ev.mid] = ev
    assert all(not acks[m].ok for m in denied), [acks[m] for m in denied]
    assert acks[allowed].ok
    seen: list[str] = []
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            ev2 = engine.events.get(timeout=0.1)
        except queue.Empty:
            continue
        if hasattr(ev2, "topic"):
            seen.append(ev2.topic)
    assert f"{ROOT}/kiosk-pi-k/req/issue-ticket" in seen
    assert not [t for t in seen if t.endswith(("call-next", "ticket.called", "ticket.issued"))]


def test_kiosk_cannot_read_another_devices_responses(secured: Any) -> None:
    login, *_ = secured
    kiosk = login("kiosk-pi-k")
    assert isinstance(_first(kiosk, (Connected, ConnectFailed)), Connected)
    kiosk.subscribe(f"{ROOT}/engine/res/counter-pi-1", 1)
    panel_engine = login("engine")
    assert isinstance(_first(panel_engine, (Connected, ConnectFailed)), Connected)
    time.sleep(0.2)
    panel_engine.publish(f"{ROOT}/engine/res/counter-pi-1", b"secret", qos=1)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            ev = kiosk.events.get(timeout=0.1)
        except queue.Empty:
            continue
        assert not hasattr(ev, "payload"), "kiosk read a panel's response"


def test_tls_with_the_generated_ca_works_and_a_wrong_ca_is_refused(
        secured: Any, tmp_path: Path) -> None:
    login, _, _, ca = secured
    good = login("kiosk-pi-k", tls_ca=ca[0])
    assert isinstance(_first(good, (Connected, ConnectFailed), 20), Connected)
    wrong_ca, _ = make_ca(tmp_path / "other", "rogue-ca")
    bad = login("kiosk-pi-k", tls_ca=wrong_ca)
    ev = _first(bad, (Connected, ConnectFailed), 20)
    assert isinstance(ev, ConnectFailed) and "CERTIFICATE_VERIFY_FAILED" in ev.reason


def test_cli_writes_files_and_never_prints_a_password(tmp_path: Path) -> None:
    cfg_text = (Path(__file__).with_name("mqtt_support.py").read_text()
                .split('BRANCH_TOML = """', 1)[1].split('"""', 1)[0])
    (tmp_path / "branch.toml").write_text(cfg_text)
    r = subprocess.run([sys.executable, "-m", "tessera", "broker", "config", "--config",
                        str(tmp_path / "branch.toml"), "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for dev in ("engine", "kiosk-pi-k", "counter-pi-1"):
        _, pw = load_credentials(tmp_path / "out" / "credentials" / f"{dev}.toml")
        assert pw not in r.stdout + r.stderr
    assert "device kiosk-pi-k" in r.stdout and "roles kiosk" in r.stdout
    acl = (tmp_path / "out" / "acl").read_text()
    # requests go in the sender's own subtree; the engine reads them all
    assert "/cmd/" not in acl
    counter = acl.split("user counter-pi-1")[1].split("user ")[0]
    assert f"topic readwrite {ROOT}/counter-pi-1/#" in counter
    assert f"topic read {ROOT}/engine/res/counter-pi-1" in counter
    assert f"topic read {ROOT}/+/req/#" in acl.split("user engine")[1].split("user ")[0]
    assert "req" not in acl.split("user kiosk-pi-k")[1].split("user ")[0]
    # a display reads the panels' counter.notice (their signs), and no other device's events
    for user in acl.split("user ")[1:]:
        notice = f"topic read {ROOT}/+/evt/counter.notice" in user
        assert notice == user.startswith("display-"), user
    # regenerating keeps the passwords (no fleet-wide rotation by accident)
    before = (tmp_path / "out" / "credentials" / "kiosk-pi-k.toml").read_text()
    subprocess.run([sys.executable, "-m", "tessera", "broker", "config", "--config",
                    str(tmp_path / "branch.toml"), "--out", str(tmp_path / "out")],
                   check=True, capture_output=True, timeout=60)
    assert (tmp_path / "out" / "credentials" / "kiosk-pi-k.toml").read_text() == before


DEVICES = ("engine", "kiosk-pi-k", "counter-pi-1", "counter-pi-2", "display-main")


def _connected(login: Any, device: str, **kw: Any) -> PahoClient:
    c: PahoClient = login(device, **kw)
    assert isinstance(_first(c, (Connected, ConnectFailed)), Connected), device
    return c


def test_no_device_can_publish_into_another_devices_subtree(secured: Any) -> None:
    login, *_ = secured
    clients = {d: _connected(login, d) for d in DEVICES}
    for writer, c in clients.items():
        mids = {c.publish(f"{ROOT}/{target}/evt/ticket.issued", b"{}", qos=1): target
                for target in DEVICES if target != writer}
        own = c.publish(f"{ROOT}/{writer}/state/probe", b"{}", qos=1)
        acks: dict[int, PubAck] = {}
        while len(acks) < len(mids) + 1:
            ev = _first(c, (PubAck,))
            assert isinstance(ev, PubAck)
            acks[ev.mid] = ev
        assert acks[own].ok, writer
        refused = [mids[m] for m, a in acks.items() if m in mids and not a.ok]
        assert sorted(refused) == sorted(mids.values()), f"{writer} wrote into {mids}"


def test_no_device_reads_another_devices_responses(secured: Any) -> None:
    login, *_ = secured
    engine = _connected(login, "engine")
    readers = {d: _connected(login, d) for d in DEVICES[1:]}
    for reader, c in readers.items():
        for target in DEVICES[1:]:
            if target != reader:
                c.subscribe(f"{ROOT}/engine/res/{target}", 1)
        c.subscribe(f"{ROOT}/engine/res/{reader}", 1)
    time.sleep(0.3)
    for target in DEVICES[1:]:
        engine.publish(f"{ROOT}/engine/res/{target}", target.encode(), qos=1)
    got: dict[str, list[bytes]] = {d: [] for d in readers}
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        for reader, c in readers.items():
            try:
                ev = c.events.get_nowait()
            except queue.Empty:
                continue
            if hasattr(ev, "payload"):
                got[reader].append(ev.payload)
        time.sleep(0.01)
    assert got == {d: [d.encode()] for d in readers}  # its own answer, nobody else's


@pytest.mark.parametrize("stolen_id", ["engine", "acme-b1-engine"])
def test_a_device_cannot_take_over_the_engines_connection(secured: Any, stolen_id: str) -> None:
    """The broker binds the client id to the login (use_username_as_clientid): a
    counter connecting with the engine's client id neither kicks the engine off nor
    gets its session."""
    login, *_ = secured
    engine = login("engine", client_id=stolen_id)
    assert isinstance(_first(engine, (Connected, ConnectFailed)), Connected)
    engine.subscribe(f"{ROOT}/+/evt/#", 1)
    for _ in range(3):
        thief = login("counter-pi-1", client_id=stolen_id)
        assert isinstance(_first(thief, (Connected, ConnectFailed)), Connected)
        thief.stop(2)
    time.sleep(0.5)
    kiosk = _connected(login, "kiosk-pi-k")
    kiosk.publish(f"{ROOT}/kiosk-pi-k/evt/ticket.issued", b"{}", qos=1)
    seen: list[object] = []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not seen:
        try:
            ev = engine.events.get(timeout=0.1)
        except queue.Empty:
            continue
        assert not isinstance(ev, Disconnected), "the engine was kicked off"
        if hasattr(ev, "payload"):
            seen.append(ev)
    assert seen, "the engine's subscription was lost"


def test_debian_dropin_loads_beside_the_stock_config(mosquitto: Any, broker_base: Path) -> None:
    """Debian's /etc/mosquitto/mosquitto.conf (persistence, pid file, log file) with our
    tessera.conf in its include_dir: no duplicate keys, the broker serves our devices."""
    stock = Path("/etc/mosquitto/mosquitto.conf")
    assert stock.exists(), "install the Debian package mosquitto (tools/bootstrap.sh)"
    cfg = branch_broker_config(broker_base)
    out = broker_base / "broker"
    from tessera.mqtt.broker import write_broker_files

    files = write_broker_files(cfg, out)
    etc = broker_base / "etc"
    (etc / "conf.d").mkdir(parents=True)
    (etc / "conf.d" / "tessera.conf").symlink_to(files["tessera.conf"])
    run, store = broker_base / "run", broker_base / "lib"
    for d in (run, store):
        d.mkdir()
        if os.geteuid() == 0:
            os.chown(d, pwd.getpwnam("mosquitto").pw_uid, -1)
    text = (stock.read_text().replace("/run/mosquitto/", f"{run}/")
            .replace("/var/lib/mosquitto/", f"{store}/")
            .replace("log_dest file /var/log/mosquitto/mosquitto.log", "log_dest stderr")
            .replace("/etc/mosquitto/conf.d", str(etc / "conf.d")))
    assert text.count("persistence_location") == 1 and "include_dir" in text
    (etc / "mosquitto.conf").write_text(text)
    os.chmod(etc, 0o755)
    broker = mosquitto(conf_file=etc / "mosquitto.conf", port=cfg.mqtt.local_port)
    user, pw = load_credentials(out / "credentials" / "kiosk-pi-k.toml")
    c = PahoClient(settings(broker, "k", username=user, password=pw))
    c.start()
    try:
        assert isinstance(_first(c, (Connected, ConnectFailed)), Connected)
    finally:
        c.stop(2)
    log = broker.log_path.read_text()
    assert "Duplicate" not in log and "port 1883" not in log  # no stray default listener
