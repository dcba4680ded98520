"""``tessera appointments load`` (issue 15): bookings into the running engine over MQTT,
from a supervisor device, against the engine's link as ``tessera run engine`` builds it
on a mosquitto started with the generated broker files (every device with its own
login). The CLI runs in-process through ``tessera.cli.main``."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mqtt_support import shipped_branch, start_generated
from test_mqtt_authz import Device, dump

from tessera.cli import main
from tessera.clock import SystemClock
from tessera.commands.appointments_cmd import split_batches
from tessera.engine import Engine
from tessera.engine.appointments import load_bookings
from tessera.mqtt.link import DeviceLink

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(180)]
EXTRA = 'devices = { "office" = ["supervisor"], "hq-tool" = ["monitor"] }\n'


class Running:
    def __init__(self, path: Path, cfg: Any, db: Path, engine: Engine, creds: Path,
                 broker: Any) -> None:
        self.path, self.cfg, self.db, self.engine = path, cfg, db, engine
        self.creds, self.broker = creds, broker

    def bookings(self) -> dict[str, tuple[str, float, str]]:
        c = sqlite3.connect(self.db)
        try:
            return {r[0]: (r[1], r[2], r[3]) for r in c.execute(
                "SELECT code, service, slot, state FROM bookings")}
        finally:
            c.close()

    def load(self, f: Path, *extra: str) -> int:
        return main(["appointments", "load", str(f), "--config", str(self.path),
                     "--timeout", "20", *extra])


@pytest.fixture
def running(mosquitto: Any, broker_base: Path) -> Iterator[Running]:
    path, cfg = shipped_branch(broker_base, EXTRA)
    out = broker_base / "broker"
    broker = start_generated(mosquitto, cfg, out)
    db = broker_base / "var" / "engine.db"
    engine = Engine.open(cfg, SystemClock(), db)
    link = DeviceLink.for_engine(cfg, engine, clock=SystemClock(), db_path=db)
    link.start()
    try:
        deadline = time.monotonic() + 10
        while link.uplink.connects == 0:
            assert time.monotonic() < deadline, link.uplink.last_connect_error
            time.sleep(0.05)
        yield Running(path, cfg, db, engine, out / "credentials", broker)
    finally:
        link.stop()
        engine.close()


NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _now() -> None:
    """Slots are relative to the start of each test, not to when the module was imported
    (in the full suite that is many minutes earlier: a slot 6 minutes ahead would have
    passed, and a booking whose window has ended is not booked)."""
    global NOW
    NOW = datetime.now(UTC).replace(microsecond=0)


def _slot(hours: float) -> str:
    return (NOW + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _file(tmp: Path, n: int, *, first: float = 1.0, bad: str = "",
          keep: dict[int, float] | None = None) -> Path:
    """``n`` bookings a minute apart from ``first`` hours from now (``keep``: line index ->
    another start for that one)."""
    keep = keep or {}
    rows = ["code,service,slot"] + [f"BK{i:05d},{'cash' if i % 2 else 'loans'},"
                                    f"{_slot(keep.get(i, first) + i / 60)}" for i in range(n)]
    f = tmp / "bookings.csv"
    f.write_text("\n".join(rows) + "\n" + bad, encoding="utf-8")
    return f


def test_a_large_file_loads_in_batches_and_a_reload_changes_nothing(
        running: Running, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _file(tmp_path, 300)
    batches = split_batches(str(f), load_bookings(f, running.cfg),
                            running.cfg.mqtt.command_max_bytes)
    assert len(batches) > 3  # 300 lines do not fit one 4 KiB request
    assert running.load(f) == 0
    assert f"{f}: 300 added, 0 moved, 0 unchanged ({len(batches)} batches)" \
        in capsys.readouterr().out
    got = running.bookings()
    assert len(got) == 300 and {s for _, _, s in got.values()} == {"booked"}
    before = dump(running.db)
    assert running.load(f) == 0  # idempotent by code: nothing changes, nothing is emitted
    assert "0 added, 0 moved, 300 unchanged" in capsys.readouterr().out
    after = dump(running.db)
    assert after["bookings"] == before["bookings"] and after["outbox"] == before["outbox"]


def test_a_bad_file_is_refused_before_anything_is_sent(
        running: Running, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _file(tmp_path, 5, bad="BK9,bakery,2026-03-02T09:00\nBK10,cash,noon\n")
    before = dump(running.db)
    assert running.load(f) == 2
    err = capsys.readouterr().err
    assert f"{f}:7: field 'service': unknown service 'bakery'" in err
    assert f"{f}:8: field 'slot': 'noon'" in err and "nothing was sent" in err
    assert dump(running.db) == before


def test_a_moved_slot_moves_a_booking_and_a_checked_in_one_refuses_the_file(
        running: Running, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert running.load(_file(tmp_path, 4, first=0.1)) == 0
    capsys.readouterr()
    running.engine.check_in("BK00001")  # 6 min before its slot: inside the window
    moved = _file(tmp_path, 4, first=0.5)  # every slot 24 minutes later
    before = dump(running.db)
    assert running.load(moved) == 1
    err = capsys.readouterr().err
    assert f"{moved}:3: field 'slot': booking BK00001 has checked in" in err
    assert "nothing was loaded" in err
    assert dump(running.db) == before  # the dry run refused it: no batch was applied
    # the checked-in booking keeps its slot: the others move
    again = _file(tmp_path, 4, first=0.5, keep={1: 0.1})
    assert running.load(again) == 0
    assert f"{again}: 0 added, 3 moved, 1 unchanged" in capsys.readouterr().out
    got = running.bookings()
    assert got["BK00001"][2] == "checked_in"
    assert got["BK00002"][1] == (NOW + timedelta(hours=0.5 + 2 / 60)).timestamp()


def test_only_a_supervisor_device_may_load(running: Running, tmp_path: Path) -> None:
    before = dump(running.db)
    args = {"file": "x.csv", "lines": [{"line": 1, "code": "K1", "service": "cash",
                                        "slot": _slot(1)}]}
    for name in ("kiosk-pi-k", "counter-pi-1", "display-main"):
        d = Device(running.broker, running.creds, name)
        try:
            r = d.ask("load-appointments", args)
        finally:
            d.client.stop(2)
        assert (r["status"], r["code"]) == ("rejected", "forbidden"), (name, r)
    mon = Device(running.broker, running.creds, "monitor-hq-tool")
    try:  # the monitor's ACL lets it write its snapshot request and nothing else
        assert mon.refused_by_broker(
            f"tessera/v1/{running.cfg.branch.tenant}/{running.cfg.branch.branch}/"
            "monitor-hq-tool/req/load-appointments")
    finally:
        mon.client.stop(2)
    assert dump(running.db) == before


@pytest.mark.parametrize(("args", "path"), [
    ({"file": "x.csv", "lines": []}, "$.args.lines"),
    ({"file": "x.csv", "lines": [{"line": 0, "code": "K1", "service": "cash",
                                  "slot": "2026-03-02T09:00"}]}, "$.args.lines[0].line"),
    ({"file": "x.csv", "lines": [{"line": 1, "code": "K1", "service": "cash"}]},
     "$.args.lines[0]"),
    ({"file": "", "lines": [{"line": 1, "code": "K1", "service": "cash",
                             "slot": "2026-03-02T09:00"}]}, "$.args.file"),
    ({"file": "x.csv", "lines": [{"line": 1, "code": "K1", "service": "cash",
                                  "slot": "2026-03-02T09:00", "x": 1}]}, "$.args.lines[0]"),
])
def test_a_malformed_load_is_invalid_with_its_path(running: Running, args: dict[str, Any],
                                                   path: str) -> None:
    before = dump(running.db)
    sup = Device(running.broker, running.creds, "supervisor-office")
    try:
        r = sup.ask("load-appointments", args)
    finally:
        sup.client.stop(2)
    assert (r["status"], r["code"]) == ("rejected", "invalid"), r
    assert f"`{path}`" in r["detail"], r
    assert dump(running.db) == before


def test_bad_lines_are_refused_by_the_engine_with_file_and_line(running: Running) -> None:
    before = dump(running.db)
    sup = Device(running.broker, running.creds, "supervisor-office")
    try:
        r = sup.ask("load-appointments", {"file": "day.csv", "lines": [
            {"line": 4, "code": "K1", "service": "cash", "slot": _slot(1)},
            {"line": 9, "code": "K2", "service": "vault", "slot": _slot(1)}]})
    finally:
        sup.client.stop(2)
    assert (r["status"], r["code"]) == ("rejected", "bad-bookings"), r
    assert r["detail"].startswith("day.csv:9: field 'service': unknown service 'vault'"), r
    assert dump(running.db) == before  # K1 (line 4) was not booked either


@pytest.mark.parametrize(("extra", "argv", "says"), [
    ("", [], "no supervisor device in the config"),
    (EXTRA, ["--device", "counter-pi-1"], "'counter-pi-1' is not a supervisor device"),
    ('devices = { "a" = ["supervisor"], "b" = ["supervisor"] }\n', [],
     "several supervisor devices (supervisor-a, supervisor-b): choose one with --device"),
    (EXTRA, ["--timeout", "0"], "--timeout 0: give 1 to 600 seconds"),
])
def test_the_cli_refuses_what_it_cannot_send_as(
        broker_base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str,
        argv: list[str], says: str) -> None:
    path, _ = shipped_branch(broker_base, extra)
    f = _file(tmp_path, 2)
    assert main(["appointments", "load", str(f), "--config", str(path), *argv]) == 2
    assert says in capsys.readouterr().err


def test_the_cli_needs_a_broker_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "b.toml"
    cfg.write_text('[branch]\ntenant = "t"\nbranch = "b"\n[[services]]\nid = "cash"\n'
                   'prefix = "A"\nnames = { en = "Cash" }\n[mqtt]\n'
                   'devices = { office = ["supervisor"] }\n')
    f = tmp_path / "k.csv"
    f.write_text("K1,cash,2026-03-02T09:00\n")
    assert main(["appointments", "load", str(f), "--config", str(cfg)]) == 2
    assert "mqtt.url is empty" in capsys.readouterr().err


def test_no_engine_answering_is_exit_1_and_says_so(
        broker_base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tessera.mqtt.broker import write_broker_files

    path, cfg = shipped_branch(broker_base, EXTRA)
    f = _file(tmp_path, 2)
    argv = ["appointments", "load", str(f), "--config", str(path), "--timeout", "1"]
    assert main(argv) == 2  # no login for the device yet
    assert "supervisor-office.toml: not a readable credentials file" in capsys.readouterr().err
    write_broker_files(cfg, broker_base / "broker")  # the logins; no broker runs
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "engine: timeout" in err and "nothing was loaded" in err
