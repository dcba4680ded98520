"""``set-clock`` over MQTT and ``tessera clock set`` (issue 15), against a real mosquitto
on 127.0.0.1 (the fixture's anonymous throw-away broker: this file tests the command,
not the broker's security. The generated broker files run exactly as shipped in
tests/branch/test_shipped_broker.py and tests/branch/test_shapes.py, and the generated ACL's
per-device request subtrees, which set-clock also uses, in tests/mqtt/test_mqtt_authz.py).

The engine runs with ``clock.trust = "flag-file"`` and no flag: an offline Pi whose
time was never confirmed. A receptionist sets it from the CLI (logged in as the counter
device ``counter-desk`` of ``mqtt.devices``), the engine records who did it, and the
kiosk's tickets are issued again."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from mqtt_support import BRANCH, BRANCH_TOML, TENANT

from tessera.cli import main
from tessera.clock import SystemClock
from tessera.drivers.mqtt_client import PublishProps
from tessera.engine.errors import ClockUntrusted
from tessera.mqtt.link import DeviceLink
from tessera.outbox import rfc3339

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(90)]
ROOT = f"tessera/v1/{TENANT}/{BRANCH}"

EXTRA = """devices = {{ desk = ["counter"] }}

[[staff]]
id = "r-amara"
code = "1323"
"""


def _config(tmp_path: Path, port: int) -> Path:
    text = BRANCH_TOML.replace("127.0.0.1:1883", f"127.0.0.1:{port}") \
        .replace('trust = "always"', f'trust = "flag-file"\nsync_flag = "{tmp_path}/synced"')
    path = tmp_path / "branch.toml"
    path.write_text(text + EXTRA.format())
    return path


@pytest.fixture
def branch(mosquitto: Any, collector: Any, tmp_path: Path) -> Any:
    from tessera.config import load_config
    from tessera.engine import Engine

    broker = mosquitto()
    path = _config(tmp_path, broker.port)
    cfg = load_config(path)
    db = cfg.path(cfg.storage.dir) / "engine.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    engine = Engine.open(cfg, SystemClock(), db)
    link = DeviceLink.for_engine(cfg, engine, clock=engine.clock, db_path=db)
    sub = collector(broker, f"{ROOT}/#", client_id="tester")
    sub.wait_connected()
    link.start()
    sub.wait(lambda: link.uplink.connects > 0, 30, "engine link")

    def raw(sender: str, args: dict[str, Any], cid: str) -> dict[str, Any]:
        reply = f"{ROOT}/engine/res/{sender}"
        body = {"id": cid, "issued_at": rfc3339(datetime.now(UTC)), "args": args}
        n = sum(m.topic == reply for m in sub.messages)
        sub.client.publish(f"{ROOT}/{sender}/req/set-clock", json.dumps(body).encode(), qos=1,
                           props=PublishProps(response_topic=reply, correlation_data=b"x"))
        sub.wait(lambda: sum(m.topic == reply for m in sub.messages) > n, 30, "the answer")
        answer: dict[str, Any] = json.loads([m.payload for m in sub.messages
                                             if m.topic == reply][-1])
        return answer

    class B:
        pass

    b = B()
    b.path, b.cfg, b.engine, b.raw = path, cfg, engine, raw  # type: ignore[attr-defined]
    yield b
    link.stop()
    engine.close()


def _now_local() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M")


def test_tessera_clock_set_lets_the_offline_engine_issue_again(
        branch: Any, capsys: pytest.CaptureFixture[str]) -> None:
    engine = branch.engine
    with pytest.raises(ClockUntrusted, match="does not exist"):
        engine.issue("cash")
    rc = main(["clock", "set", _now_local(), "--staff", "r-amara", "--config",
               str(branch.path)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "by r-amara from counter-desk" in out.out
    [event] = [e for e in engine.events_since(0) if e["type"] == "clock.set"]
    assert (event["data"]["staff"], event["data"]["device"]) == ("r-amara", "counter-desk")
    assert abs(event["data"]["step_s"]) <= 61  # the minute typed, against this machine
    assert engine.issue("cash").number == "A001"  # trusted now (same boot)


@pytest.mark.parametrize(("sender", "args", "code", "words"), [
    ("kiosk-pi-k", {"time": "2026-03-02 09:00", "staff": "r-amara"}, "forbidden",
     "may not send 'set-clock'"),
    ("counter-desk", {"time": "2026-03-02 09:00", "staff": "nobody"}, "forbidden",
     "staff id 'nobody' is not configured ([[staff]] or counters[].staff) - at `$.args.staff`"),
    ("counter-desk", {"time": "9 o'clock", "staff": "r-amara"}, "invalid", "`$.args.time`"),
    ("counter-desk", {"time": "2026-02-30 09:00", "staff": "r-amara"}, "bad-time",
     "write YYYY-MM-DD HH:MM"),
    ("counter-desk", {"time": "2026-03-02 09:00"}, "invalid", "`$.args`"),
])
def test_a_wrong_set_clock_is_refused_and_changes_nothing(
        branch: Any, sender: str, args: dict[str, Any], code: str, words: str) -> None:
    before = branch.engine.events_since(0)
    answer = branch.raw(sender, args, f"bad-{code}")
    assert (answer["status"], answer["code"]) == ("rejected", code), answer
    assert words in answer["detail"]
    assert branch.engine.events_since(0) == before
    with pytest.raises(ClockUntrusted):
        branch.engine.issue("cash")


@pytest.mark.parametrize(("argv", "words"), [
    (["not a time"], "TIME: 'not a time' is not a local date and time"),
    ([_now_local(), "--staff", "who"], "--staff: 'who' is not configured"),
    ([_now_local(), "--device", "pi-1"], "--device: 'pi-1' runs counter panels"),
    ([_now_local(), "--device", "nope"], "--device: no counter login 'nope'"),
])
def test_cli_mistakes_are_named_before_anything_is_sent(
        branch: Any, capsys: pytest.CaptureFixture[str], argv: list[str], words: str) -> None:
    if "--staff" not in argv:
        argv = [*argv, "--staff", "r-amara"]
    assert main(["clock", "set", *argv, "--config", str(branch.path)]) == 2
    assert words in capsys.readouterr().err
    assert not [e for e in branch.engine.events_since(0) if e["type"] == "clock.set"]
