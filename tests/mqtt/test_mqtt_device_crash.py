"""Device crash mid-drain and presence (LWT, birth, retained state).

Brokers here are the fixture's throw-away mosquittos (anonymous on 127.0.0.1): this file
tests the client side, not the broker's security. The generated broker files are run
exactly as shipped, as Debian runs them, by tests/branch/test_shipped_broker.py and
tests/branch/test_shapes.py.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mqtt_support import BRANCH, TENANT, assert_complete

from tessera.outbox import Outbox

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]
SCRIPT = Path(__file__).with_name("device_proc.py")
ROOT = f"tessera/v1/{TENANT}/{BRANCH}"


def _device(broker: Any, db: Path, device: str, *extra: str) -> subprocess.Popen[bytes]:
    p = subprocess.Popen([sys.executable, str(SCRIPT), "--port", str(broker.port), "--db",
                          str(db), "--device", device, *extra], stdout=subprocess.PIPE)
    assert p.stdout is not None and p.stdout.readline().strip() == b"started"
    return p


def _kill(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        p.send_signal(signal.SIGKILL)
    p.wait(10)


@pytest.mark.timeout(90)
def test_sigkill_mid_drain_then_everything_arrives(
        mosquitto: Any, collector: Any, tmp_path: Path) -> None:
    broker = mosquitto()
    sub = collector(broker, f"{ROOT}/+/evt/#")
    sub.wait_connected()
    db = tmp_path / "kiosk-1.db"
    p = _device(broker, db, "kiosk-1", "--fill", "10000")
    try:
        sub.wait(lambda: len(sub.messages) >= 1500, 30, "the drain to be under way")
        _kill(p)
        ob = Outbox.open(db, tenant=TENANT, branch=BRANCH, device="kiosk-1")
        left = ob.pending_count()
        assert 0 < left < 10000, "the kill must land mid-drain"
        p = _device(broker, db, "kiosk-1")
        sub.wait(lambda: len({e["id"] for e in sub.envelopes()}) >= 10000, 60, "all 10k")
        sub.wait(lambda: ob.pending_count() == 0, 20, "all marked delivered")
        envs = sub.envelopes()
        assert_complete(envs, ob.all_events())  # duplicates only by id
        assert len(envs) >= 10000
    finally:
        _kill(p)


@pytest.mark.timeout(60)
def test_presence_lwt_session_and_retained_state(
        mosquitto: Any, collector: Any, tmp_path: Path) -> None:
    broker = mosquitto()  # no persistence: a restart forgets every retained message
    sub = collector(broker, f"{ROOT}/kiosk-1/#")
    sub.wait_connected()
    db = tmp_path / "kiosk-1.db"
    status = f"{ROOT}/kiosk-1/status"
    p = _device(broker, db, "kiosk-1", "--state", "printer")
    try:
        sub.wait(lambda: (sub.retained(status) or {}).get("state") == "online", 10, "birth")
        first = sub.retained(status)
        assert first is not None
        assert sub.retained(f"{ROOT}/kiosk-1/meta") is not None
        assert sub.retained(f"{ROOT}/kiosk-1/state/printer") is not None
        _kill(p)
        sub.wait(lambda: (sub.retained(status) or {}).get("state") == "offline", 15, "LWT")
        assert sub.retained(status)["session"] == first["session"]  # type: ignore[index]
        p = _device(broker, db, "kiosk-1")
        sub.wait(lambda: (sub.retained(status) or {}).get("state") == "online", 10, "rebirth")
        assert sub.retained(status)["session"] > first["session"]  # type: ignore[index]

        # the broker restarts without persistence: retained state comes back from the device
        broker.kill()
        broker.start()
        late = collector(broker, f"{ROOT}/kiosk-1/#", client_id="late")
        late.wait(lambda: late.retained(f"{ROOT}/kiosk-1/state/printer") is not None, 15,
                  "retained state republished")
        # a subscriber arriving now gets them from the broker's retained store
        later = collector(broker, f"{ROOT}/kiosk-1/#", client_id="later")
        later.wait(lambda: later.retained(f"{ROOT}/kiosk-1/state/printer") is not None, 10,
                   "retained state")
        assert later.retained(status)["state"] == "online"  # type: ignore[index]
        assert all(m.retain for m in later.messages if m.topic.endswith("/state/printer"))
    finally:
        _kill(p)


@pytest.mark.timeout(30)
def test_clean_shutdown_publishes_offline(mosquitto: Any, collector: Any, tmp_path: Path) -> None:
    broker = mosquitto()
    sub = collector(broker, f"{ROOT}/kiosk-1/status")
    sub.wait_connected()
    p = _device(broker, tmp_path / "k.db", "kiosk-1", "--run-s", "1")
    sub.wait(lambda: (sub.retained(f"{ROOT}/kiosk-1/status") or {}).get("state") == "online",
             10, "birth")
    assert p.wait(15) == 0
    sub.wait(lambda: (sub.retained(f"{ROOT}/kiosk-1/status") or {}).get("reason") == "shutdown",
             10, "clean offline")
