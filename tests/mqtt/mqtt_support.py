"""Helpers for the MQTT tests: an independent subscriber and device outboxes."""

from __future__ import annotations

import json
import os
import queue
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tessera.drivers.mqtt_client import (
    Connected,
    ConnectFailed,
    Message,
    MqttSettings,
    PahoClient,
    PubAck,
)
from tessera.mqtt.local_broker import LocalBroker
from tessera.outbox import Outbox

TENANT, BRANCH = "acme", "b1"
FAST = {"keepalive_s": 5, "backoff_min_s": 0.05, "backoff_max_s": 0.3, "connect_timeout_s": 5.0}


def settings(broker: LocalBroker, client_id: str, **kw: Any) -> MqttSettings:
    return MqttSettings(**{"host": broker.host, "port": broker.port, "client_id": client_id,
                           **FAST, **kw})


class Collector:
    """An independent subscriber (persistent session) that records every message."""

    def __init__(self, broker: LocalBroker, topic_filter: str, client_id: str = "collector",
                 **kw: Any) -> None:
        self.client = PahoClient(settings(broker, client_id, **kw))
        self.filter = topic_filter
        self.messages: list[Message] = []
        self.acks: list[PubAck] = []
        self.failures: list[ConnectFailed] = []
        self.connects = 0
        self.client.start()

    def pump(self, timeout: float = 0.05) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                ev = self.client.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return
            if isinstance(ev, Connected):
                self.connects += 1
                self.client.subscribe(self.filter, 1)
            elif isinstance(ev, Message):
                self.messages.append(ev)
            elif isinstance(ev, PubAck):
                self.acks.append(ev)
            elif isinstance(ev, ConnectFailed):
                self.failures.append(ev)

    def wait_connected(self, timeout: float = 10.0) -> None:
        self.wait(lambda: self.connects > 0, timeout, "connect")
        time.sleep(0.1)  # let the SUBACK land before anything is published
        self.pump(0.05)

    def wait(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            self.pump(0.05)

    def envelopes(self) -> list[dict[str, Any]]:
        return [json.loads(m.payload) for m in self.messages if "/evt/" in m.topic]

    def retained(self, topic: str) -> dict[str, Any] | None:
        for m in reversed(self.messages):
            if m.topic == topic:
                return dict(json.loads(m.payload))
        return None

    def stop(self) -> None:
        self.client.stop(2.0)


@pytest.fixture
def collector() -> Iterator[Callable[..., Collector]]:
    made: list[Collector] = []

    def make(broker: LocalBroker, topic_filter: str = "tessera/#", **kw: Any) -> Collector:
        c = Collector(broker, topic_filter, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


def fill(outbox: Outbox, n: int, type_: str = "ticket.issued", pad: int = 0) -> None:
    now = datetime.now(UTC)
    with outbox.transaction() as c:
        for i in range(n):
            outbox.append(type_, {"i": i, "pad": "x" * pad}, ts=now, conn=c)


def assert_complete(envs: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """After dedupe by id: nothing missing, nothing invented, per-device seq without gaps."""
    by_id = {e["id"]: e for e in envs}
    want = {e["id"]: e for e in expected}
    missing = sorted(want[i]["seq"] for i in set(want) - set(by_id))
    assert not missing, f"{len(missing)} events missing, seqs {missing[:20]}"
    for i, e in by_id.items():
        if i in want:
            assert e == want[i], "an event arrived different from the DB"
    seqs: dict[str, list[int]] = {}
    for e in by_id.values():
        seqs.setdefault(e["device"], []).append(e["seq"])
    for s in seqs.values():
        s.sort()
        assert s == list(range(s[0], s[0] + len(s))), "gap in seq"


@pytest.fixture
def outbox_factory(tmp_path: Path) -> Callable[[str], Outbox]:
    def make(device: str, name: str | None = None) -> Outbox:
        return Outbox.open(tmp_path / f"{name or device}.db", tenant=TENANT, branch=BRANCH,
                           device=device)
    return make


BRANCH_TOML = """
[branch]
tenant = "acme"
branch = "b1"
timezone = "UTC"
languages = ["en"]

[clock]
trust = "always"

[storage]
dir = "var"

[[services]]
id = "cash"
prefix = "A"
names = { en = "Cash" }

[[services]]
id = "loans"
prefix = "C"
names = { en = "Loans" }

[[counters]]
id = "c1"
number = 1
services = [{ service = "cash" }, { service = "loans" }]
device = "pi-1"
panel = { next = 5, done = 6 }

[[counters]]
id = "c2"
number = 2
services = [{ service = "cash" }]
device = "pi-2"
panel = { next = 5, done = 6 }

[kiosk]
device = "pi-k"
buttons = [{ pin = 17, service = "cash" }, { pin = 27, service = "loans" }]

[mqtt]
url = "mqtt://127.0.0.1:1883"
device = "engine"
"""


@pytest.fixture
def branch_cfg(tmp_path: Path) -> Any:
    from tessera.config import parse_config

    return parse_config(BRANCH_TOML, base_dir=tmp_path)


@pytest.fixture
def engine(branch_cfg: Any, tmp_path: Path) -> Iterator[Any]:
    from tessera.clock import SystemClock
    from tessera.engine import Engine

    eng = Engine.open(branch_cfg, SystemClock(), tmp_path / "engine.db")
    yield eng
    eng.close()


def make_ca(d: Path, name: str) -> tuple[Path, Path]:
    """A throw-away CA (EC P-256) generated with the openssl CLI; never committed."""
    import subprocess

    d.mkdir(parents=True, exist_ok=True)
    key, crt = d / f"{name}.key", d / f"{name}.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(crt), "-days", "2", "-subj", f"/CN={name}",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
                   check=True, capture_output=True)
    return crt, key


def make_server_cert(d: Path, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    import subprocess

    key, csr, crt, ext = d / "server.key", d / "server.csr", d / "server.crt", d / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
                   "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                   "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n")
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey",
                    str(ca[1]), "-CAcreateserial", "-out", str(crt), "-days", "2",
                    "-extfile", str(ext)], check=True, capture_output=True)
    os.chmod(key, 0o600)
    return crt, key


def branch_broker_toml(base: Path, extra_mqtt: str = "", hq: str = "") -> str:
    """The TOML of ``branch_broker_config`` (for a ``tessera run`` subprocess)."""
    from tessera.mqtt.local_broker import free_port

    local = free_port()
    return BRANCH_TOML.replace(
        '[mqtt]\nurl = "mqtt://127.0.0.1:1883"',
        f'[mqtt]\nurl = "mqtt://127.0.0.1:{local}"\nlocal_port = {local}\n'
        f'listener_port = {free_port()}\npersistence_dir = "{base}/store"\n{extra_mqtt}') + hq


def branch_broker_config(base: Path, extra_mqtt: str = "", hq: str = "") -> Any:
    """The test branch with a generated broker config (random ports, store under ``base``,
    which must be reachable by the broker's user: see ``broker_dir``)."""
    from tessera.config import parse_config

    return parse_config(branch_broker_toml(base, extra_mqtt, hq), base_dir=base)


def shipped_branch(base: Path, extra_mqtt: str = "", hq: str = "") -> tuple[Path, Any]:
    """``branch_broker_config`` written to ``base/branch.toml`` with every device's login
    in ``base/broker/credentials`` (where ``start_generated(..., base / "broker")`` puts
    them): the file a ``tessera run`` subprocess or ``DeviceLink.from_config`` uses."""
    from tessera.config import parse_config

    (base / "broker" / "credentials").mkdir(parents=True, exist_ok=True)
    text = branch_broker_toml(
        base, f'credentials_dir = "{base}/broker/credentials"\n{extra_mqtt}', hq)
    path = base / "branch.toml"
    path.write_text(text, encoding="utf-8")
    return path, parse_config(text, base_dir=base)


def start_generated(mosquitto: Any, cfg: Any, out: Path) -> Any:
    """mosquitto started with exactly the files ``tessera broker config`` wrote, as
    Debian starts it (as root it drops to the ``mosquitto`` user by itself)."""
    from tessera.mqtt.broker import write_broker_files

    files = write_broker_files(cfg, out)
    return mosquitto(conf_file=files["mosquitto.conf"], port=cfg.mqtt.local_port)
