"""Bad input to the web role: every [web] check with its path and what to fix, the
password-hash CLI, `tessera run web` with a broken config; the hub's resume rules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tessera.config import parse_config
from tessera.errors import ConfigError
from tessera.web.accounts import hash_password, verify_password
from tessera.web.hub import Hub

BASE = """
[branch]
tenant = "acme"
branch = "b1"
[clock]
trust = "always"
[[services]]
id = "cash"
prefix = "A"
names = { en = "Cash" }
"""
GOOD = "scrypt$1024$8$1$c2FsdHNhbHRzYWx0$" + "A" * 43 + "="


def errors_of(web: str, extra: str = "") -> list[str]:
    with pytest.raises(ConfigError) as e:
        parse_config(BASE + extra + "\n[web]\n" + web)
    return e.value.errors


@pytest.mark.parametrize(("web", "extra", "starts"), [
    ('bind = "not an address!"', "", "web.bind: 'not an address!' is neither an IP address"),
    ('base_url = "ftp://x"', "", "web.base_url: 'ftp://x' is not an http(s) URL"),
    ('base_url = "https://q.example/?a=1"', "", "web.base_url: 'https://q.example/?a=1' is"),
    ('base_url = "https://q.example"', '[ticket]\nqr = "https://q.example/t/{ticket_id}"\n',
     "ticket.qr: 'https://q.example/t/{ticket_id}' is not the web role's ticket link "
     "'https://q.example/t/{ticket_id}.{ticket_token}'"),
    ("heartbeat_s = 10\nstale_s = 5", "", "web.stale_s: 5 s must be longer than "
     "web.heartbeat_s (10 s)"),
    ("port = 70000", "", "web.port: "),
    ("heartbeat_s = 0", "", "web.heartbeat_s: "),
    ('enabled = "yes"', "", "web.enabled: "),
    ("joined = true", "", "web: unknown key 'joined'"),
    (f'[[web.accounts]]\nname = "Lin!"\npassword_hash = "{GOOD}"', "",
     "web.accounts[0].name: 'Lin!' is not a valid name"),
    (f'[[web.accounts]]\nname = "lin"\npassword_hash = "{GOOD}"\n[[web.accounts]]\n'
     f'name = "lin"\npassword_hash = "{GOOD}"', "",
     "web.accounts[1].name: 'lin' is also web.accounts[0]; account names must be unique"),
    ('[[web.accounts]]\nname = "lin"\npassword_hash = "hunter2"', "",
     "web.accounts[0].password_hash: not a scrypt hash (scrypt$N$r$p$salt$hash); make one "
     "with `tessera web hash-password`"),
    ('[[web.accounts]]\nname = "lin"\npassword_hash = "scrypt$1000$8$1$c2FsdA==$AAAA"', "",
     "web.accounts[0].password_hash: scrypt parameters N=1000"),
    (f'[[web.accounts]]\nname = "lin"\nrole = "root"\npassword_hash = "{GOOD}"', "",
     "web.accounts[0].role: "),
    ('[[web.accounts]]\nname = "lin"', "", "web.accounts[0]: "),
])
def test_each_web_check_names_its_path(web: str, extra: str, starts: str) -> None:
    errs = errors_of(web, extra)
    assert any(e.startswith(starts) for e in errs), errs


def test_a_ticket_qr_elsewhere_is_the_installers_choice() -> None:
    cfg = parse_config(BASE + '[ticket]\nqr = "https://hq.example/q/{number}"\n[web]\n'
                       'base_url = "https://q.example"\n')
    assert cfg.ticket.qr == "https://hq.example/q/{number}"


def test_hash_password_cli(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "tessera", "web", "hash-password"]
    r = subprocess.run(run, input="correct horse\n", capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    made = r.stdout.strip()
    assert made.startswith("scrypt$16384$8$1$") and "correct" not in made
    assert verify_password("correct horse", made) and not verify_password("correct", made)
    r = subprocess.run(run, input="short\n", capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "8 to 1024 characters" in r.stderr and not r.stdout
    assert hash_password("x" * 8) != hash_password("x" * 8)  # salted


def test_run_web_with_a_broken_config_says_so(tmp_path: Path) -> None:
    bad = tmp_path / "b.toml"
    bad.write_text(BASE + '\n[web]\nbind = "no such thing!"\n', encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "tessera", "run", "web", "--config", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "web.bind:" in r.stderr, r.stderr
    good = tmp_path / "g.toml"
    good.write_text(BASE, encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "tessera", "run", "web", "--config", str(good)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "mqtt.url:" in r.stderr, r.stderr  # no engine to talk to


def test_hub_resumes_from_its_ring_or_says_it_cannot() -> None:
    hub = Hub(ring=16)
    first = hub.publish("display", "state", "{}")
    for i in range(5):
        hub.publish("display", "state", f'{{"n":{i}}}')
    got = hub.since("display", first.id)
    assert got is not None and [m.data for m in got] == [f'{{"n":{i}}}' for i in range(5)]
    assert hub.since("display", hub.latest["display"].id) == []
    assert hub.since("display", "otherboot-3") is None  # a previous run of the server
    assert hub.since("display", f"{hub.boot}-x") is None
    assert hub.since("display", None) is None
    for i in range(40):  # the ring forgets: an old client gets the full state instead
        hub.publish("display", "state", f'{{"m":{i}}}')
    assert hub.since("display", first.id) is None
    assert hub.since("ticket:x", f"{hub.boot}-1") == []


def test_who_may_issue_over_mqtt() -> None:
    """The engine's command authorization: the web device issues (channel remote, normal
    tickets of configured services) only with web.join; nobody else sends a channel."""
    from tessera.mqtt.command_auth import CommandPolicy
    from tessera.mqtt.command_schema import IssueArgs, TicketArgs

    kiosk = BASE + '[kiosk]\nbuttons = [{ pin = 17, service = "cash" }]\n'
    off = CommandPolicy.from_config(parse_config(kiosk + "[web]\nenabled = true\n"))
    on = CommandPolicy.from_config(parse_config(kiosk + "[web]\nenabled = true\njoin = true\n"))
    remote = IssueArgs(service="cash", channel="remote")
    assert off.permit("web-main", "issue-ticket", remote, 0.0) is not None
    assert off.permit("web-main", "confirm-printed", TicketArgs(ticket_id="x"), 0.0) is not None
    assert on.permit("web-main", "issue-ticket", remote, 0.0) is None
    assert on.permit("web-main", "confirm-printed", TicketArgs(ticket_id="x"), 0.0) is None
    refused = [on.permit("web-main", "issue-ticket", IssueArgs(service="cash"), 0.0),
               on.permit("web-main", "issue-ticket",
                         IssueArgs(service="cash", priority="vip", channel="remote"), 0.0),
               on.permit("web-main", "issue-ticket",
                         IssueArgs(service="loans", channel="remote"), 0.0),
               on.permit("kiosk-main", "issue-ticket", remote, 0.0),
               on.permit("web-main", "call-next", None, 0.0)]
    assert all(r is not None and r.code == "forbidden" for r in refused), refused
    assert on.permit("kiosk-main", "issue-ticket", IssueArgs(service="cash"), 0.0) is None
