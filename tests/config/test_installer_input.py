"""Issue 14: every file and option an installer types gets a clear answer.

One test per numbered item of the issue, each with its smallest input: refused
with exit code 2 and a message that names the path (or file and line) and what
to do, nothing created, modified or deleted; or, where the input is fine,
accepted and working.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tessera.cli import main
from tessera.config import load_config, parse_config
from tessera.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
BANK = (ROOT / "examples" / "bank.toml").read_text(encoding="utf-8")
SMALL = """
[branch]
tenant = "acme"
branch = "b1"
timezone = "Europe/London"
languages = ["en"]

[clock]
trust = "always"

[[services]]
id = "cash"
prefix = "A"
names = { en = "Cash" }

[[counters]]
id = "c1"
number = 1
services = [{ service = "cash" }]

[kiosk]
buttons = [{ pin = 17, service = "cash" }]

[voice]
enabled = false
"""


def errors_of(text: str, base_dir: Path | str = ".") -> list[str]:
    with pytest.raises(ConfigError) as e:
        parse_config(text, base_dir=base_dir)
    return e.value.errors


def check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """``tessera config check path``: exit code and the error lines."""
    rc = main(["config", "check", str(path)])
    err = capsys.readouterr().err
    return rc, [line.strip() for line in err.splitlines()[1:]]


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its content (None for a directory)."""
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
            for p in sorted(root.rglob("*"))}


def small(extra: str = "", tmp_path: Path | None = None) -> str:
    storage = f'\n[storage]\ndir = "{tmp_path / "var"}"\n' if tmp_path else ""
    return SMALL + storage + extra


# --------------------------------------------------------------------------- 1. encodings


@pytest.mark.parametrize(("encoding", "named"), [
    ("gb18030", "GB18030/GBK"), ("latin-1", "Latin-1"), ("utf-16", "UTF-16")])
def test_1_a_config_not_in_utf8_names_its_encoding(tmp_path: Path, encoding: str, named: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    text = BANK if encoding != "latin-1" else SMALL.replace('"Cash"', '"Caisse é"')
    path = tmp_path / "branch.toml"
    path.write_bytes(text.encode(encoding))
    rc, errs = check(path, capsys)
    assert rc == 2 and len(errs) == 1, errs
    assert errs[0].startswith(f"{path}:") and named in errs[0] and "re-save" in errs[0]


def test_1_one_stray_byte_gives_its_line_and_column(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "branch.toml"
    path.write_bytes(SMALL.encode().replace(b'branch = "b1"', b'branch = "b1\xff"'))
    assert check(path, capsys) == (2, [
        f"{path}:4:13: not UTF-8 text (byte 0xff); it looks like Latin-1/Windows-1252; "
        "re-save the file as UTF-8 (Notepad: File > Save as > Encoding: UTF-8; or iconv)"])


def test_1_a_utf8_bom_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "branch.toml"
    path.write_bytes(b"\xef\xbb\xbf" + small(tmp_path=tmp_path).encode())
    assert check(path, capsys) == (0, [])
    assert parse_config("\ufeff" + SMALL).branch.tenant == "acme"


# --------------------------------------------------------------------------- 2. templates


def test_2_a_number_format_spec_prints_and_passes_the_check() -> None:
    from tessera.drivers.escpos_layout import Line
    from tessera.engine import Ticket
    from tessera.printing.template import TicketTemplate

    cfg = parse_config(SMALL + '[ticket]\nextra_line = "{est_wait_min:.0f} min, '
                       '{people_ahead:d} ahead"\nqr = "https://q/{est_wait_min:.0f}"\n')
    template = TicketTemplate(cfg)
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).isoformat()
    for wait_s, line in ((720.0, "12 min, 3 ahead"), (None, "min, 3 ahead")):
        ticket = Ticket("t-1", "A001", "cash", "issued", None, "", now, 3,
                        wait_s,  # type: ignore[arg-type]  # None: an engine that has no estimate
                        None, 0, None)
        blocks = template.dynamic_blocks(ticket)
        assert line in [b.text for b in blocks if isinstance(b, Line)]


def test_2_a_template_that_cannot_be_filled_in_is_refused() -> None:
    errs = errors_of(SMALL + '[ticket]\nextra_line = "{number:d}"\nqr = "https://q/{numbr}"\n')
    assert errs == [
        "ticket.qr: unknown field {numbr} in 'https://q/{numbr}'; did you mean {number}? "
        "known fields: ticket_id, number, service, service_name, priority, appointment, "
        "business_day, tenant, branch, people_ahead, est_wait_min, est_low_min, est_high_min, "
        "route, ticket_token",
        "ticket.extra_line: '{number:d}' cannot be filled in (Unknown format code 'd' for "
        "object of type 'str'); people_ahead, est_wait_min, est_low_min and est_high_min "
        "are whole numbers (e.g. "
        "{est_wait_min:d} or {est_wait_min:.0f}), the other fields text (e.g. {number:>5})"]


# --------------------------------------------------------------------------- 3. storage.dir


def test_3_storage_dir_that_cannot_be_used_fails_the_check(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    for value, expected in (
            (afile, f"storage.dir: {afile} is a file, not a directory"),
            (afile / "var", f"storage.dir: {afile / 'var'} cannot be created: {afile} is a "
                            "file, not a directory")):
        assert errors_of(SMALL + f'[storage]\ndir = "{value}"\n') == [expected]
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr("tessera.config_paths.os.access",
                        lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    [err] = errors_of(SMALL + f'[storage]\ndir = "{locked}"\n')
    assert err.startswith(f"storage.dir: {locked} is not writable by user ")
    [err] = errors_of(SMALL + f'[storage]\ndir = "{locked / "var"}"\n')
    assert err.startswith(f"storage.dir: {locked / 'var'} does not exist and cannot be "
                          f"created: {locked} is not writable by user ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "locked"]  # nothing made


# --------------------------------------------------------------------------- 4. URLs


@pytest.mark.parametrize(("url", "why"), [
    ("mqtt://127.0.0.1:abc", "is not a valid URL (port 'abc' is not a number 1-65535)"),
    ("mqtt://127.0.0.1:99999", "is not a valid URL (the port is not in 1-65535)"),
    ("mqtt://[::1", "is not a valid URL (Invalid IPv6 URL)"),
    ("mqtt://host:", "give a port 1-65535"),
    ("http://host:1883", "must start with mqtt:// or mqtts://"),
    ("mqtt://user:pw@host:1883", "no user or password in the URL"),
])
def test_4_every_url_is_parsed_fully(url: str, why: str) -> None:
    for section, path in (("[mqtt]\nurl", "mqtt.url"), ("[mqtt.hq]\nurl", "mqtt.hq.url")):
        [err] = errors_of(SMALL + f'{section} = "{url}"\n')
        assert err.startswith(f"{path}: ") and why in err, err


# --------------------------------------------------------------------------- 5. device names


@pytest.mark.parametrize("name", ["", "pi 2", "+", "#", "../../pwned", "Pi2", "-pi",
                                  "a" * 57])
def test_5_device_names_follow_the_one_name_rule(name: str) -> None:
    for edit, path in (('services = [{ service = "cash" }]', "counters[0].device"),
                       ("[kiosk]\n", "kiosk.device"), ("[voice]\n", "board.device")):
        errs = errors_of(SMALL.replace(edit, _edit(edit, name), 1))
        assert [e.split(": ", 1)[0] for e in errs] == [path], errs
    errs = errors_of(SMALL + f'[mqtt]\ndevices = {{ "{name}" = ["kiosk"] }}\n')
    assert errs[0].startswith("mqtt.devices.") and "a Pi's name" in errs[0], errs


def _edit(edit: str, name: str) -> str:
    if edit.startswith("services"):
        return f'{edit}\ndevice = "{name}"'
    if edit == "[kiosk]\n":
        return f'[kiosk]\ndevice = "{name}"\n'
    return f'[board]\ndevice = "{name}"\n[voice]\n'


def test_5_refused_names_never_reach_the_broker_files(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    path = tmp_path / "branch.toml"
    path.write_text(small('[mqtt]\ndevices = { "+" = ["counter"], "../../pwned" = ["kiosk"] }\n',
                          tmp_path), encoding="utf-8")
    out = tmp_path / "broker"
    assert main(["broker", "config", "--config", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "mqtt.devices.+: '+' is not a valid name" in err
    assert "mqtt.devices.'../../pwned': '../../pwned' is not a valid name" in err
    assert not out.exists() and not (tmp_path / "pwned.toml").exists()


def test_5_names_with_a_trailing_newline_are_refused() -> None:
    errs = errors_of(SMALL.replace('tenant = "acme"', 'tenant = "acme\\n"'))
    assert errs == ["branch.tenant: contains a control character ('\\n' at position 5); "
                    "remove it (a value is one line of plain text)"]


# --------------------------------------------------------------------------- 6. injection


def test_6_nothing_is_injected_into_mosquitto_conf(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    # hostile input, not a relaxed broker: an installer's file that tries to smuggle
    # broker lines into the generated config must be refused and nothing written (the
    # generated files are run as shipped by tests/branch/test_shipped_broker.py)
    pw = tmp_path / "hq.password"
    pw.write_text("pw\nallow_anonymous true\nlistener 1884 0.0.0.0\n")
    hq = (f'[mqtt]\npersistence_dir = "/var/lib/mosquitto\\nlistener 1885"\n'
          f'[mqtt.hq]\nurl = "mqtts://hq.example.com:8883"\nusername = "u\\nallow_anonymous true"'
          f'\nclient_id = "a b"\npassword_file = "{pw}"\n')
    path = tmp_path / "branch.toml"
    path.write_text(small(hq, tmp_path), encoding="utf-8")
    before = tree(tmp_path)
    assert main(["broker", "config", "--config", str(path), "--out", str(tmp_path / "b")]) == 2
    errs = [e.strip() for e in capsys.readouterr().err.splitlines()[1:]]
    assert errs == [
        "mqtt.hq.username: contains a control character ('\\n' at position 2); remove it "
        "(a value is one line of plain text)",
        "mqtt.persistence_dir: contains a control character ('\\n' at position 19); remove "
        "it (a value is one line of plain text)",
        "mqtt.hq.client_id: 'a b'; use 1-128 characters A-Z, a-z, 0-9, '-', '_', '.' or ':'",
        f"mqtt.hq.password_file: {pw} must hold the password alone on one line (3 lines, or "
        "control characters)"]
    assert tree(tmp_path) == before


# --------------------------------------------------------------------------- 7. report --db


def _engine_store(tmp_path: Path) -> tuple[Path, Path]:
    from tessera.clock import VirtualClock
    from tessera.engine import Engine

    cfg_path = tmp_path / "branch.toml"
    cfg_path.write_text(small(tmp_path=tmp_path), encoding="utf-8")
    cfg = load_config(cfg_path)
    engine = Engine.open(cfg, VirtualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),
                         trust=lambda: True)
    engine.confirm_printed(engine.issue("cash").id)
    engine.close()
    return cfg_path, tmp_path / "var" / "engine.db"


def _foreign(path: Path, sql: str) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(sql)
    conn.close()
    return path


@pytest.mark.parametrize(("make", "expected"), [
    (lambda p, store: p.write_bytes(b""), "is empty (0 bytes), not an engine store"),
    (lambda p, store: _foreign(p, "PRAGMA user_version = 0;"),
     "is an empty SQLite database, not an engine store yet"),
    (lambda p, store: _foreign(p, "CREATE TABLE x (a);"),
     "is a SQLite database of some other program (tables: x)"),
    (lambda p, store: p.write_text("hello"), "is not a SQLite database"),
    (lambda p, store: _foreign(p, "PRAGMA application_id = 1414746437; PRAGMA user_version = 4;"
                                  "CREATE TABLE meta (key, value);"),
     "has no outbox table: a damaged engine store"),
    (lambda p, store: p.mkdir(), "is a directory, not a file"),
    (lambda p, store: None, "does not exist"),
    # the report reads the store's tables (issue 18, docs/kpi.md), no longer the events
    (lambda p, store: (p.write_bytes(store.read_bytes()), _foreign(
        p, "PRAGMA journal_mode = DELETE; UPDATE tickets SET issued_at = 'soon';")),
     "a value the report needs is missing or wrong (tickets row 1: issued_at is 'soon', "
     "not a number); the store is damaged"),
    (lambda p, store: (p.write_bytes(store.read_bytes()), _foreign(
        p, "PRAGMA journal_mode = DELETE; DROP TABLE visits;")),
     "has no visits table: a damaged engine store"),
])
def test_7_report_refuses_a_store_it_cannot_read_and_leaves_it_untouched(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, expected: str) -> None:
    cfg_path, store = _engine_store(tmp_path)
    db = tmp_path / "other" / "engine.db"
    db.parent.mkdir()
    make(db, store)
    before = tree(db.parent)
    assert main(["report", "--config", str(cfg_path), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tessera report: ") and expected in err, err
    assert str(db) in err and "Traceback" not in err
    assert tree(db.parent) == before  # no -wal, no -shm, no byte changed


def test_7_report_on_a_locked_store_says_so(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path, store = _engine_store(tmp_path)
    _foreign(store, "PRAGMA journal_mode = DELETE;")  # a lock that blocks readers
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert main(["report", "--config", str(cfg_path)]) == 2
    finally:
        holder.close()
    assert "is locked by another program; try again" in capsys.readouterr().err
    assert main(["report", "--config", str(cfg_path), "--json"]) == 0  # unlocked: fine


def test_7_report_on_a_store_copied_alone_writes_nothing_beside_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path, store = _engine_store(tmp_path)
    for with_wal in (False, True):
        copy = tmp_path / f"copy-{with_wal}"
        copy.mkdir()
        (copy / "engine.db").write_bytes(store.read_bytes())
        wal = store.with_name("engine.db-wal")
        if with_wal and wal.exists():
            (copy / "engine.db-wal").write_bytes(wal.read_bytes())
        before = tree(copy)
        assert main(["report", "--config", str(cfg_path), "--db", str(copy / "engine.db"),
                     "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["issued"] == 1
        assert tree(copy) == before


# --------------------------------------------------------------------------- 8. ~user


def test_8_a_home_of_no_user_is_an_error_not_a_traceback() -> None:
    errs = errors_of(SMALL + '[ticket]\nlogo = "~nouser-tessera/x.png"\n'
                     '[engine]\nappointments_file = "~nouser-tessera/b.csv"\n')
    assert errs == [
        f"{path}: '~nouser-tessera/{name}': there is no user 'nouser-tessera' on this machine "
        "to expand '~' for; write the full path"
        for path, name in (("engine.appointments_file", "b.csv"), ("ticket.logo", "x.png"))]


# --------------------------------------------------------------------------- 9. all at once


def test_9_a_schema_error_does_not_hide_the_cross_checks() -> None:
    errs = errors_of(SMALL.replace("[kiosk]\n", '[board]\nparity = "bogus"\n[kiosk]\n')
                     .replace('{ pin = 17, service = "cash" }',
                              '{ pin = 17, service = "cash" }, { pin = 18, service = "nope" }'))
    assert errs == ["board.parity: 'bogus' is not one of 'N', 'E', 'O'",
                    "kiosk.buttons[1].service: unknown service 'nope'; known: cash"]


def test_9_what_follows_from_a_reported_value_is_not_reported_again() -> None:
    # counters[0].number is unusable: no "number 1 already used" for its placeholder
    errs = errors_of(SMALL + '[[counters]]\nid = "c2"\nnumber = "one"\n'
                     'services = [{ service = "cashh" }]\n')
    assert errs == ["counters[1].number: expected a whole number, got a string 'one' (write "
                    "it without quotes)",
                    "counters[1].services[0].service: unknown service 'cashh'; known: cash"]


# --------------------------------------------------------------------------- 10. numbers


@pytest.mark.parametrize(("edit", "replacement", "expected"), [
    ('names = { en = "Cash" }', 'names = { en = "Cash" }\ndefault_service_s = nan',
     "services[0].default_service_s: nan is not a number; use a number more than 0 and at "
     "most 86400 (seconds)"),
    ("[voice]", "[gpio]\ndebounce_ms = inf\n[voice]",
     "gpio.debounce_ms: inf is not finite; use a number more than 0 and at most 1000 "
     "(milliseconds)"),
    ("[voice]", "[engine]\nstarvation_after = -1\n[voice]",
     "engine.starvation_after: -1 is out of range; use a whole number between 1 and 1000"),
    ("[voice]", "[mqtt]\nlistener_port = 70000\n[voice]",
     "mqtt.listener_port: 70000 is out of range; use a whole number between 1 and 65535 "
     "(a TCP port)"),
    ("number = 1", "number = 0",
     "counters[0].number: 0 is out of range; use a whole number between 1 and 999"),
    ('names = { en = "Cash" }', 'names = { en = "Cash" }\nsla_target = 1.5',
     "services[0].sla_target: 1.5 is out of range; use a number more than 0 and at most 1"),
    ("[voice]", "[mqtt]\nkeepalive_s = 0\n[voice]",
     "mqtt.keepalive_s: 0 is out of range; use a whole number between 1 and 65535 (seconds)"),
])
def test_10_numbers_are_range_checked_on_the_schema(edit: str, replacement: str,
                                                     expected: str) -> None:
    assert errors_of(SMALL.replace(edit, replacement, 1)) == [expected]


def test_10_every_number_of_the_schema_has_both_bounds() -> None:
    """A contract derived from the schema: a new int or float field without a range
    (NaN, infinities, negative values) fails here."""
    import msgspec

    from tessera.config import BranchConfig

    def numbers(tp: Any, path: str) -> list[tuple[str, Any]]:
        info = tp if isinstance(tp, msgspec.inspect.Type) else msgspec.inspect.type_info(tp)
        if isinstance(info, msgspec.inspect.Metadata):
            info = info.type
        if isinstance(info, msgspec.inspect.IntType | msgspec.inspect.FloatType):
            return [(path, info)]
        if isinstance(info, msgspec.inspect.StructType):
            return [n for f in info.fields for n in numbers(f.type, f"{path}.{f.name}")]
        if isinstance(info, msgspec.inspect.UnionType):
            return [n for t in info.types for n in numbers(t, path)]
        for attr in ("item_type", "value_type"):
            if hasattr(info, attr):
                return numbers(getattr(info, attr), f"{path}[]")
        return []

    found = numbers(BranchConfig, "")
    assert len(found) > 50
    unbounded = [p for p, info in found
                 if (info.ge is None and info.gt is None) or (info.le is None and info.lt is None)]
    assert unbounded == []


# --------------------------------------------------------------------------- 11. CLI


def test_11_sim_printer_link_never_replaces_a_file(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    victim = tmp_path / "important.txt"
    victim.write_text("keep me")
    assert main(["sim", "printer", "--link", str(victim), "--out", str(tmp_path / "t"),
                 "--duration", "0.1"]) == 2
    assert f"--link {victim} exists and is not a symlink; it is left alone" in \
        capsys.readouterr().err
    assert victim.read_text() == "keep me" and not (tmp_path / "t").exists()


def test_11_sim_printer_lists_the_valid_states(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "printer", "--state", "bogus", "--duration", "0.1"]) == 2
    assert "--state 'bogus' is not a printer state; valid: online, near_end, paper_out" in \
        capsys.readouterr().err


def test_11_printer_test_refuses_what_it_cannot_print_once(
        bank_config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["printer", "test", "--port", "/dev/null", "--mode", "text",
                 "--config", str(bank_config_path)]) == 2
    assert capsys.readouterr().err == (
        "tessera printer test: --mode text: a TM-T20II has no Chinese ROM font, so mode "
        "'text' cannot print the CJK names; use mode 'auto'\n")
    assert main(["printer", "test", "--port", "/dev/no-such-printer"]) == 2
    assert capsys.readouterr().err.count("/dev/no-such-printer") == 1


def test_11_usb_printer_without_pyusb(monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "usb" else real(name, *a))
    assert main(["printer", "test", "--port", "usb://04b8:0202"]) == 2
    captured = capsys.readouterr()
    assert "USB printers need pyusb; install it with pip install 'tessera[usb]'" in captured.err
    assert "Exception ignored" not in captured.err + captured.out
    from tessera.printing.checks import port_errors  # the kiosk's start-up check

    cfg = parse_config(SMALL + '[kiosk.printer]\nurl = "usb://04b8:0202"\n')
    assert port_errors(cfg) == ["kiosk.printer.url: usb:// printers need pyusb; install it "
                                "with pip install 'tessera[usb]' (or apt-get install "
                                "python3-usb)"]


def test_11_output_paths_that_are_files(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    for argv, expected in (
            (["sim", "board", "--out", str(afile), "--duration", "0.1"],
             f"tessera sim board: --out {afile} is a file, not a directory"),
            (["voice", "clips", str(afile)],
             f"tessera voice clips: {afile} is a file, not a directory"),
            (["demo", "--out", str(afile)],
             f"tessera demo: --out {afile} is a file, not a directory")):
        assert main(argv) == 2, argv
        assert capsys.readouterr().err.strip() == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


@pytest.mark.parametrize(("args", "expected"), [
    (["--minutes", "nan"], "argument --minutes: 'nan': minutes must be a number from 1 to 10080"),
    (["--minutes", "1e9"], "argument --minutes: '1e9': minutes must be a number from 1 to"),
    (["--minutes", "-1"], "argument --minutes: '-1': minutes must be a number from 1 to"),
    (["--customers", "-3"], "argument --customers: '-3': customers must be a whole number from 0"),
    (["--speed", "nan"], "argument --speed: 'nan': the speed is virtual seconds per real second"),
    (["--speed", "abc"], "argument --speed: 'abc': the speed is virtual seconds per real second"),
    (["--counters", "-1"], "argument --counters: '-1': counters must be a whole number from 1"),
])
def test_11_demo_options_are_range_checked(tmp_path: Path, args: list[str], expected: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["demo", "--out", str(tmp_path / "out"), *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and "_speed" not in err and "_bounded" not in err
    assert not (tmp_path / "out").exists()


def test_11_appointment_slots_and_huge_csv_fields(tmp_path: Path) -> None:
    csv = tmp_path / "bookings.csv"
    csv.write_text("K1,cash,0001-01-01T00:00\nK2,cash," + "x" * 200_000 + "\nK3,cash,"
                   "2026-03-02T09:30\n", encoding="utf-8")
    errs = errors_of(SMALL + f'[engine]\nappointments_file = "{csv}"\n')
    assert errs == [
        f"engine.appointments_file: {csv}:1: field 'slot': '0001-01-01T00:00' is not an ISO "
        "time such as 2026-03-02T09:30 (year 1 is out of range 2000-2999)",
        f"engine.appointments_file: {csv}:2: line of 200008 characters; a booking line is "
        "at most 1000"]


def test_11_a_staff_code_with_a_newline(tmp_path: Path) -> None:
    errs = errors_of(SMALL + '[[staff]]\nid = "ann"\ncode = "123\\n"\n')
    assert errs == ["staff[0].code: must be 3 to 8 digits, each 1-5 (digit d is rating button "
                    "d, 1 = lowest), e.g. \"12312\""]


# --------------------------------------------------------------------------- messages


@pytest.mark.parametrize(("edit", "expected"), [
    (("[voice]", '[engine]\ntransfer_position = "Front"\n[voice]'),
     "engine.transfer_position: 'Front' is not one of 'front', 'back'; did you mean 'front'?"),
    (("[kiosk]\n", "[kiosk]\nleds = { ready = \"4\" }\n"),
     "kiosk.leds.ready: expected a whole number, got a string '4' (write it without quotes)"),
    (("[kiosk]\n", "[kiosk]\ncheckins = \"stdin\"\n"),
     "kiosk: unknown key 'checkins'; did you mean 'checkin'?"),
    (("[kiosk]\n", "[kiosk]\nprinter = 5\n"),
     "kiosk.printer: expected a table, got a whole number 5"),
    (("[voice]", '[board]\nbrightness = { "07:00" = 100, "19:00" = "x" }\n[voice]'),
     "board.brightness.19:00: expected a whole number, got a string 'x' (write it without "
     "quotes)"),
    (("[voice]", '[ticket]\nlogo = "/"\n[voice]'), "ticket.logo: / is a directory, not a file"),
    (("[voice]", '[ticket]\nlogo = "/no/such/logo.png"\n[voice]'),
     "ticket.logo: /no/such/logo.png does not exist"),
    (("[voice]", "[gpoi]\n[voice]"), "gpoi: unknown section; did you mean [gpio]?"),
    (('names = { en = "Cash" }', 'names = { en = "Cash" }\nhours = 2026-03-02'),
     "services[0].hours: expected a table, got a date"),
])
def test_messages_that_help(edit: tuple[str, str], expected: str) -> None:
    assert edit[0] in SMALL
    errs = errors_of(SMALL.replace(*edit, 1))
    assert any(e.startswith(expected) for e in errs), errs


def test_toml_errors_give_the_line_where_it_starts(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "branch.toml"
    path.write_text(SMALL.replace('branch = "b1"', 'branch = """b1'), encoding="utf-8")
    assert check(path, capsys) == (2, [
        f"{path}:4: not valid TOML (unterminated string; it starts on this line and is never "
        "closed): 'branch = \"\"\"b1'"])
    path.write_text(SMALL.replace('branch = "b1"', 'branch = "b1'), encoding="utf-8")
    assert check(path, capsys)[1] == [
        f"{path}:4:13: not valid TOML (illegal character '\\n'): 'branch = \"b1'"]


def test_long_values_are_cut_in_messages() -> None:
    errs = errors_of(SMALL.replace('branch = "b1"', f'branch = "{"x" * 100_000}"'))
    assert errs == ["branch.branch: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…"
                    " (100000 characters) is not a valid name; use 1-64 characters a-z, 0-9 "
                    "and '-', not starting or ending with '-'"]


def test_the_new_modules_doctests_run() -> None:
    import doctest

    from tessera import config_decode, config_paths
    from tessera.printing import template

    for module in (config_decode, config_paths, template):
        assert doctest.testmod(module).failed == 0, module.__name__
