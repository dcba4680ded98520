"""Broker security with the generated config: passwords, ACL, TLS."""

from __future__ import annotations

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
def secured(mosquitto: Any, tmp_path: Path) -> Any:
    ca = make_ca(tmp_path / "pki", "branch-ca")
    crt, key = make_server_cert(tmp_path / "pki", ca)
    cfg = branch_broker_config(tmp_path, extra_mqtt=(
        f'tls_cert_file = "{crt}"\ntls_key_file = "{key}"\nca_file = "{ca[0]}"\n'))
    out = tmp_path / "broker"
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
    assert creds == ["engine.toml", "kiosk-1.toml", "panel-1.toml", "panel-2.toml"]
    for p in (out / "credentials").iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    _, pw = load_credentials(out / "credentials" / "kiosk-1.toml")
    passwd = (out / "passwd").read_text()
    assert pw not in passwd and "kiosk-1:$7$" in passwd  # hashed by mosquitto_passwd
    conf = (out / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "set_tcp_nodelay true" in conf
    assert "message_size_limit" in conf and "listener" in conf


def test_anonymous_and_wrong_password_are_refused(secured: Any) -> None:
    login, *_ = secured
    anon = _first(login(None), (Connected, ConnectFailed))
    assert isinstance(anon, ConnectFailed)
    bad = _first(login("kiosk-1", password="guess"), (Connected, ConnectFailed))
    # 134 bad user name or password; mosquitto 2.0 answers 135 not authorised
    assert isinstance(bad, ConnectFailed) and bad.code in (134, 135)


def test_kiosk_cannot_write_a_counters_topics_or_call_next(secured: Any) -> None:
    login, *_ = secured
    engine = login("engine")
    assert isinstance(_first(engine, (Connected, ConnectFailed)), Connected)
    engine.subscribe(f"{ROOT}/#", 1)
    kiosk = login("kiosk-1")
    assert isinstance(_first(kiosk, (Connected, ConnectFailed)), Connected)
    time.sleep(0.2)
    props = PublishProps(response_topic=f"{ROOT}/engine/res/kiosk-1", correlation_data=b"k")
    denied = [
        kiosk.publish(f"{ROOT}/panel-1/evt/ticket.called", b"{}", qos=1),
        kiosk.publish(f"{ROOT}/engine/cmd/call-next", b"{}", qos=1, props=props),
        kiosk.publish(f"{ROOT}/engine/evt/ticket.issued", b"{}", qos=1),
    ]
    allowed = kiosk.publish(f"{ROOT}/engine/cmd/issue-ticket", b"{}", qos=1, props=props)
    acks: dict[int, PubAck] = {}
    while len(acks) < 4:
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
    assert f"{ROOT}/engine/cmd/issue-ticket" in seen
    assert not [t for t in seen if t.endswith(("call-next", "ticket.called", "ticket.issued"))]


def test_kiosk_cannot_read_another_devices_responses(secured: Any) -> None:
    login, *_ = secured
    kiosk = login("kiosk-1")
    assert isinstance(_first(kiosk, (Connected, ConnectFailed)), Connected)
    kiosk.subscribe(f"{ROOT}/engine/res/panel-1", 1)
    panel_engine = login("engine")
    assert isinstance(_first(panel_engine, (Connected, ConnectFailed)), Connected)
    time.sleep(0.2)
    panel_engine.publish(f"{ROOT}/engine/res/panel-1", b"secret", qos=1)
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
    good = login("kiosk-1", tls_ca=ca[0])
    assert isinstance(_first(good, (Connected, ConnectFailed), 20), Connected)
    wrong_ca, _ = make_ca(tmp_path / "other", "rogue-ca")
    bad = login("kiosk-1", tls_ca=wrong_ca)
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
    for dev in ("engine", "kiosk-1", "panel-1"):
        _, pw = load_credentials(tmp_path / "out" / "credentials" / f"{dev}.toml")
        assert pw not in r.stdout + r.stderr
    assert "device kiosk-1" in r.stdout and "roles kiosk" in r.stdout
    acl = (tmp_path / "out" / "acl").read_text()
    assert f"topic write {ROOT}/engine/cmd/call-next" in acl.split("user panel-1")[1]
    assert "cmd/call-next" not in acl.split("user kiosk-1")[1].split("user ")[0]
    # regenerating keeps the passwords (no fleet-wide rotation by accident)
    before = (tmp_path / "out" / "credentials" / "kiosk-1.toml").read_text()
    subprocess.run([sys.executable, "-m", "tessera", "broker", "config", "--config",
                    str(tmp_path / "branch.toml"), "--out", str(tmp_path / "out")],
                   check=True, capture_output=True, timeout=60)
    assert (tmp_path / "out" / "credentials" / "kiosk-1.toml").read_text() == before
