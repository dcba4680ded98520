"""Config: valid examples load; each kind of mistake gives its message, all at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tessera.cli import main
from tessera.config import load_config, parse_config
from tessera.errors import ConfigError

GOOD = """
[branch]
tenant = "acme"
branch = "b-01"
timezone = "Europe/Paris"

[[services]]
id = "cash"
prefix = "A"
names = { en = "Cash" }
hours = { default = ["09:00-12:00", "13:00-17:00"] }

[[services]]
id = "loans"
prefix = "B"
names = { en = "Loans" }

[[counters]]
id = "c1"
number = 1
services = [{ service = "cash" }]
panel = { next = 5, recall = 6 }

[kiosk]
buttons = [{ pin = 17, service = "cash" }]

[gpio]
ring_capacity = 256
"""


def errors_of(text: str, base_dir: Path | str = ".") -> list[str]:
    with pytest.raises(ConfigError) as e:
        parse_config(text, base_dir=base_dir)
    return e.value.errors


def test_minimal_config_is_valid() -> None:
    cfg = parse_config(GOOD)
    assert cfg.service("cash").prefix == "A"
    assert cfg.gpio.ring_capacity == 256


def test_bank_example_loads(bank_config_path: Path) -> None:
    cfg = load_config(bank_config_path)
    assert len(cfg.services) == 4 and len(cfg.counters) == 6
    assert cfg.service("cash").name("zh") == "现金业务"
    assert cfg.service("cash").name("en") == "Cash & Deposits"
    assert cfg.counter("c1").panel is not None


def test_clinic_example_loads(clinic_config_path: Path) -> None:
    cfg = load_config(clinic_config_path)
    assert [s.id for s in cfg.services] == ["reception", "nurse", "doctor"]
    assert cfg.branch.languages == ("en",)


def test_config_is_frozen() -> None:
    cfg = parse_config(GOOD)
    with pytest.raises(AttributeError):
        cfg.gpio.debounce_ms = 1  # type: ignore[misc]


@pytest.mark.parametrize(("edit", "expected"), [
    (("panel = { next = 5, recall = 6 }", "panel = { next = 5, recall = 17 }"),
     "counters[0].panel.recall: pin 17 already used by kiosk.buttons[0].pin on device 'main'"),
    (('services = [{ service = "cash" }]', 'services = [{ service = "cashh" }]'),
     "counters[0].services[0].service: unknown service 'cashh'; known: cash, loans"),
    (('prefix = "B"', 'prefix = "A"'),
     "services[1].prefix: prefix 'A' already used by services[0].prefix"),
    (('"13:00-17:00"', '"11:30-17:00"'),
     "services[0].hours.default: '09:00-12:00' and '11:30-17:00' overlap"),
    (("ring_capacity = 256", "ring_capacity = 1000"),
     "gpio.ring_capacity: 1000 must be a power of two"),
    (("ring_capacity = 256", 'ring_capacity = 256\npin_factory = "gpiod"'),
     "gpio.pin_factory: unknown pin factory 'gpiod'; valid: lgpio, rpigpio, pigpio, native, mock"),
    (("[gpio]", "[gpoi]\n[gpio]"), "gpoi: unknown section; did you mean [gpio]? valid sections"),
    (("[gpio]", '[ticket]\nlogo = "no-such-logo.png"\n[gpio]'), "ticket.logo: "),
    (("ring_capacity = 256", "ring_capacity = 256\ndebounce = 5"),
     "gpio: unknown key 'debounce'; did you mean 'debounce_ms'?"),
    (('timezone = "Europe/Paris"', 'timezone = "Mars/Olympus"'),
     "branch.timezone: unknown timezone 'Mars/Olympus'"),
])
def test_each_mistake_has_its_message(edit: tuple[str, str], expected: str) -> None:
    assert edit[0] in GOOD
    errs = errors_of(GOOD.replace(edit[0], edit[1], 1))
    assert any(expected in e for e in errs), errs


def test_missing_file_message_says_what_is_missing(tmp_path: Path) -> None:
    text = GOOD.replace("[gpio]", '[ticket]\nlogo = "logo.png"\n[gpio]')
    [err] = errors_of(text, base_dir=tmp_path)
    assert err == f"ticket.logo: {tmp_path / 'logo.png'} does not exist"
    (tmp_path / "logo.png").write_bytes(b"\x89PNG")
    parse_config(text, base_dir=tmp_path)  # present now: valid


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: does not exist"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="is a directory, not a config file"):
        load_config(tmp_path)


def test_bad_toml_is_one_clear_error() -> None:
    errs = errors_of("[branch\ntenant = 1")
    assert len(errs) == 1 and "not valid TOML" in errs[0]


BROKEN = GOOD.replace("panel = { next = 5, recall = 6 }", "panel = { next = 5, recall = 17 }") \
    .replace('services = [{ service = "cash" }]', 'services = [{ service = "cashh" }]') \
    .replace('prefix = "B"', 'prefix = "A"') \
    .replace('"13:00-17:00"', '"11:30-17:00"') \
    .replace("ring_capacity = 256", 'ring_capacity = 1000\npin_factory = "gpiod"')

BROKEN_MARKERS = ["pin 17 already used", "unknown service 'cashh'", "prefix 'A' already used",
                  "overlap", "must be a power of two", "unknown pin factory 'gpiod'"]


def test_every_error_is_reported_at_once() -> None:
    errs = errors_of(BROKEN)
    for marker in BROKEN_MARKERS:
        assert sum(marker in e for e in errs) == 1, (marker, errs)


def test_type_errors_in_several_sections_are_all_reported() -> None:
    text = GOOD.replace("ring_capacity = 256", 'ring_capacity = "big"') \
        .replace('id = "loans"', "id = 7").replace("[kiosk]", "[kiosk]\nfoo = 1")
    errs = errors_of(text)
    assert any(e.startswith("gpio.ring_capacity:") for e in errs), errs
    assert any(e.startswith("services[1].id:") for e in errs), errs
    assert any("kiosk" in e and "foo" in e for e in errs), errs


def test_cli_config_check_exit_codes(tmp_path: Path, bank_config_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(bank_config_path)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(BROKEN, encoding="utf-8")
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    for marker in BROKEN_MARKERS:
        assert marker in err
    assert main(["config", "check", str(tmp_path / "missing.toml")]) == 2


def test_cli_subprocess_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[nonsense]\n", encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "tessera", "config", "check", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "nonsense: unknown section" in r.stderr
    assert "branch: missing section" in r.stderr
    assert "services: no services defined" in r.stderr


@pytest.mark.parametrize("capacity", [0, 1, 3, 1 << 25])
def test_ring_capacity_bounds_match_the_ring(capacity: int) -> None:
    errs = errors_of(GOOD.replace("ring_capacity = 256", f"ring_capacity = {capacity}"))
    assert [e for e in errs if e.startswith("gpio.ring_capacity:")] == [
        "gpio.ring_capacity: 3 must be a power of two between 2 and 16777216, e.g. 1024"
        if capacity == 3 else f"gpio.ring_capacity: {capacity} is out of range; use a whole "
        "number between 2 and 16777216"], errs


def test_negative_repeat_window_is_rejected() -> None:
    errs = errors_of(GOOD.replace("ring_capacity = 256", "ring_capacity = 256\nrepeat_ms = -1"))
    assert errs == ["gpio.repeat_ms: -1 is out of range; use a number between 0 and 3600000 "
                    "(milliseconds)"]


def test_device_checks_are_scoped_to_the_roles_that_own_the_device(tmp_path: Path,
                                                                   bank_config_path: Path
                                                                   ) -> None:
    """A missing ticket font stops the kiosk and `config check`, not the display Pi."""
    text = bank_config_path.read_text(encoding="utf-8").replace(
        '[ticket]\n', f'[ticket]\nfont = "{tmp_path}/no-such-font.ttc"\n', 1)
    cfg_file = tmp_path / "branch.toml"
    cfg_file.write_text(text.replace('dir = "../var/bank"', f'dir = "{tmp_path}/var"'),
                        encoding="utf-8")
    for roles in (None, ("all",), ("kiosk",)):
        with pytest.raises(ConfigError, match="no-such-font"):
            load_config(cfg_file, roles=roles)
    for role in ("display", "engine", "counter"):
        assert load_config(cfg_file, roles=(role,)).branch.tenant == "acme-bank"
    # a mistake in the shared sections still stops every role
    broken = tmp_path / "broken.toml"
    broken.write_text(text.replace('prefix = "B"', 'prefix = "A"'), encoding="utf-8")
    with pytest.raises(ConfigError, match="prefix 'A' already used"):
        load_config(broken, roles=("display",))


# --------------------------------------------------------------------------- staff login

LOGIN_PANEL = ("panel = { next = 5, recall = 6, done = 7, ratings = [20, 21, 16], login = true }"
               "\nrating_scale = 3")
STAFF = """
[[staff]]
id = "ann"
name = "Ann"
code = "1323"

[[staff]]
id = "bob"
code = "2113"
"""
LOGIN_GOOD = GOOD.replace("panel = { next = 5, recall = 6 }", LOGIN_PANEL) + STAFF


def test_login_panel_and_staff_load() -> None:
    cfg = parse_config(LOGIN_GOOD)
    panel = cfg.counter("c1").panel
    assert panel is not None and panel.login
    assert [(s.id, s.name) for s in cfg.staff] == [("ann", "Ann"), ("bob", "")]
    assert "1323" not in repr(cfg.staff) and "1323" not in repr(cfg)
    assert parse_config(GOOD).staff == ()  # no [[staff]]: nothing changes


def test_counter_staff_without_a_staff_list_stays_valid(bank_config_path: Path) -> None:
    assert parse_config(GOOD.replace('services = [{ service = "cash" }]',
                                     'services = [{ service = "cash" }]\nstaff = "t-009"'))
    assert load_config(bank_config_path).counter("c1").staff == "t-001"


@pytest.mark.parametrize(("edit", "expected"), [
    (('id = "bob"', 'id = "ann"'), "staff[1].id: staff id 'ann' already used by staff[0].id"),
    (('id = "bob"', 'id = ""'), "staff[1].id: must not be empty"),
    (('code = "2113"', 'code = "1323"'),
     "staff[1].code: same code as staff[0].code; each person needs their own code"),
    (('code = "2113"', 'code = "2114"'),
     "staff[1].code: uses a digit above 3, but counters[0] ('c1') logs in on 3 rating "
     "buttons; use digits 1-3"),
    (('code = "2113"', 'code = "21"'), "staff[1].code: must be 3 to 8 digits, each 1-5"),
    (('code = "2113"', 'code = "123456789"'), "staff[1].code: must be 3 to 8 digits"),
    (('code = "2113"', 'code = "2a13"'), "staff[1].code: must be 3 to 8 digits"),
    (('code = "2113"', 'code = "2013"'), "staff[1].code: must be 3 to 8 digits"),
    (('code = "2113"', "code = 2113"),
     "staff[1].code: expected a string, got a whole number (put it in quotes)"),
    (('id = "bob"', 'id = "bob"\npin = 3'),
     "staff[1]: unknown key 'pin'; valid keys: id, code, name"),
    (("ratings = [20, 21, 16], ", ""),
     "counters[0].panel.login: codes are typed on the rating buttons; panel.ratings has 0, "
     "needs at least 3"),
    (("done = 7, ", ""),
     "counters[0].panel.login: codes are submitted (and staff log out) with DONE; "
     "set panel.done to its pin"),
    (('services = [{ service = "cash" }]', 'services = [{ service = "cash" }]\nstaff = "zed"'),
     "counters[0].staff: unknown staff id 'zed'; [[staff]] lists ann, bob"),
])
def test_each_staff_mistake_has_its_message(edit: tuple[str, str], expected: str) -> None:
    assert edit[0] in LOGIN_GOOD
    errs = errors_of(LOGIN_GOOD.replace(edit[0], edit[1], 1))
    assert any(expected in e for e in errs), errs
    assert not any("1323" in e or "2113" in e for e in errs), errs  # codes stay secret


def test_login_panel_without_any_staff_is_an_error() -> None:
    errs = errors_of(GOOD.replace("panel = { next = 5, recall = 6 }", LOGIN_PANEL))
    assert errs == ["counters[0].panel.login: no one can log in; add [[staff]] entries with "
                    "codes, or set login = false"]


def test_code_digits_are_checked_against_every_login_panel() -> None:
    # a 4-button login panel accepts digit 4; the 3-button one does not
    text = LOGIN_GOOD.replace('code = "2113"', 'code = "2114"').replace(
        "[kiosk]", '[[counters]]\nid = "c2"\nnumber = 2\nservices = [{ service = "loans" }]\n'
        "panel = { next = 8, done = 9, ratings = [10, 11, 12, 13], login = true }\n"
        "rating_scale = 4\n\n[kiosk]")
    errs = errors_of(text)
    assert [e for e in errs if e.startswith("staff[")] == [
        "staff[1].code: uses a digit above 3, but counters[0] ('c1') logs in on 3 rating "
        "buttons; use digits 1-3"]


def test_staff_errors_are_reported_together() -> None:
    text = LOGIN_GOOD.replace('id = "bob"', 'id = "ann"') \
        .replace('code = "2113"', 'code = "1323"').replace("done = 7, ", "") \
        .replace('services = [{ service = "cash" }]',
                 'services = [{ service = "cash" }]\nstaff = "zed"')
    errs = errors_of(text)
    for marker in ("staff id 'ann' already used", "same code as staff[0].code",
                   "set panel.done", "unknown staff id 'zed'"):
        assert sum(marker in e for e in errs) == 1, (marker, errs)


def test_clinic_example_has_a_login_desk(clinic_config_path: Path) -> None:
    cfg = load_config(clinic_config_path)
    desk = cfg.counter("desk")
    assert desk.panel is not None and desk.panel.login and len(desk.panel.ratings) == 3
    assert desk.staff in {s.id for s in cfg.staff} and len(cfg.staff) >= 2


def test_each_command_parses_the_same_with_only_its_own_modules_registered() -> None:
    """`tessera run …` registers only run's parser (role start-up time); the command
    map must cover every command of the full parser with the same subcommands."""
    import argparse

    from tessera.cli import COMMANDS, build_parser

    def commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return dict(sub.choices)

    full = commands(build_parser())
    assert set(full) == set(COMMANDS)
    for name, parser in full.items():
        only = commands(build_parser(name))
        assert name in only  # (a module may register more than one command)
        assert only[name].format_help() == parser.format_help()


@pytest.mark.parametrize(("extra", "expected"), [  # issue 15: counter signs and alerts
    ("[board]\nnotice_s = 0", "board.notice_s"),
    ("[board]\nnotice_s = 61", "board.notice_s"),
    ("[alerts]\nlamp = 28", "alerts.lamp"),
    ("[alerts]\nlamp = 5", "alerts.lamp: pin 5 already used by counters[0].panel.next"),
    ("[alerts]\nhold_s = 0", "alerts.hold_s"),
    ('[alerts]\nboard_address = "00"', "alerts.board_address"),
    ('[alerts]\nboard_address = "01"', "alerts.board_address: board address '01' already"),
    ("[alerts]\nsound = true", "alerts: unknown key 'sound'"),
])
def test_counter_sign_and_alert_keys_are_validated(extra: str, expected: str) -> None:
    errs = errors_of(GOOD + extra)
    assert any(expected in e for e in errs), errs


def test_alert_and_notice_keys_load() -> None:
    cfg = parse_config(GOOD + '[board]\nnotice_s = 2.5\n[alerts]\nlamp = 12\n'
                       'board_address = "21"\nhold_s = 60\n')
    assert (cfg.board.notice_s, cfg.alerts.lamp, cfg.alerts.board_address,
            cfg.alerts.hold_s) == (2.5, 12, "21", 60.0)
