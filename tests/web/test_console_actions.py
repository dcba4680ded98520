"""The console's reprint, undo of a no-show and bookings upload (issue 20): each from the
page, with its ``console.action`` event naming the account; the upload checked line by
line as `tessera appointments load` checks a file (every bad line shown, nothing
changed), within its size limit, sent in batches; the web device's commands and its
read of the devices' presence in the generated broker ACL."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from web_support import PASSWORD, wait_for

from tessera.config import BranchConfig
from tessera.engine.appointments import load_bookings
from tessera.errors import ConfigError
from tessera.identity import device_id
from tessera.roles.branch import db_path
from tessera.web.app import MAX_UPLOAD_BYTES

RESULT = "document.getElementById('result').dataset.status"


def _actions(branch: Any) -> list[dict[str, Any]]:
    con = sqlite3.connect(db_path(branch.cfg, "web-main"))
    try:
        acts = [json.loads(b)["data"] for (b,) in con.execute(
            "SELECT body FROM outbox WHERE type = 'console.action' ORDER BY seq")]
    finally:
        con.close()
    return [a for a in acts if a["action"] != "login"]


def _bookings(cfg: BranchConfig) -> list[tuple[str, str]]:
    con = sqlite3.connect(db_path(cfg, device_id(cfg, "engine")))
    try:
        return con.execute("SELECT code, service FROM bookings ORDER BY code").fetchall()
    finally:
        con.close()


def _log_in(page: Any, url: str, name: str) -> None:
    page.goto(url + "/manage")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#counters tr[data-counter='c1']")


def _submit(page: Any, form: str, want: str) -> str:
    page.evaluate("document.getElementById('result').dataset.status = ''")
    page.click(f"{form} button")
    page.wait_for_function(f"{RESULT} !== ''")
    assert page.evaluate(RESULT) == want, page.text_content("#result")
    return str(page.text_content("#result"))


def _tomorrow(cfg: BranchConfig) -> str:
    return (datetime.now(cfg.tz).date() + timedelta(days=1)).isoformat()


def test_reprint_and_undo_no_show_from_the_page(make_branch: Any, page: Any) -> None:
    branch, _ = make_branch()
    e = branch.engine
    t = e.confirm_printed(e.issue("cash").id)
    assert e.call_next("c1").id == t.id
    _log_in(page, branch.web.url, "sam")
    # the counter's current ticket, printed again at the kiosk (its ticket.reprinted)
    page.click("#counters tr[data-counter='c1'] .act-reprint")
    page.wait_for_function(f"{RESULT} === 'done'")
    wait_for(lambda: branch.kiosk.reprints == 1, what="the kiosk printing the reprint")
    # by number, from the form
    page.fill("form[data-action=reprint] input[name=ticket]", t.number)
    _submit(page, "form[data-action=reprint]", "done")
    wait_for(lambda: branch.kiosk.reprints == 2, what="the second reprint")
    assert e.ticket_place(t.id).ticket.state == "called"  # a reprint changes nothing else
    page.fill("form[data-action=reprint] input[name=ticket]", "B999")
    assert "(unknown-ticket)" in _submit(page, "form[data-action=reprint]", "rejected")
    # a no-show undone for counter c1: back at the head of its queue
    e.no_show("c1")
    page.fill("form[data-action=undo-no-show] input[name=ticket]", t.number.lower())
    page.fill("form[data-action=undo-no-show] input[name=counter]", "c1")
    _submit(page, "form[data-action=undo-no-show]", "done")
    assert e.ticket_place(t.id).ticket.state == "waiting"
    assert "(bad-state)" in _submit(page, "form[data-action=undo-no-show]", "rejected")
    page.fill("form[data-action=undo-no-show] input[name=counter]", "c99")
    assert "(unknown-counter)" in _submit(page, "form[data-action=undo-no-show]",
                                          "rejected")
    assert [(a["account"], a["role"], a["action"], a["args"], a["outcome"], a["code"])
            for a in _actions(branch)] == [
        ("sam", "supervisor", "reprint", {"ticket": t.id}, "done", "ok"),
        ("sam", "supervisor", "reprint", {"ticket": t.number}, "done", "ok"),
        ("sam", "supervisor", "reprint", {"ticket": "B999"}, "rejected", "unknown-ticket"),
        ("sam", "supervisor", "undo-no-show", {"ticket": t.number.lower(), "counter": "c1"},
         "done", "ok"),
        ("sam", "supervisor", "undo-no-show", {"ticket": t.number.lower(), "counter": "c1"},
         "rejected", "bad-state"),
        ("sam", "supervisor", "undo-no-show", {"ticket": t.number.lower(), "counter": "c99"},
         "rejected", "unknown-counter")]
    assert branch.kiosk.reprints == 2


def test_appointments_upload_checks_every_line_then_loads(make_branch: Any, page: Any,
                                                          tmp_path: Path) -> None:
    branch, cfg = make_branch()
    day = _tomorrow(cfg)
    bad = tmp_path / "day.csv"
    bad.write_text(f"code,service,slot\nK1,cash,{day}T09:30\nK2,nosuch,{day}T10:00\n"
                   f"K3,cash,tomorrow\nK1,accounts,{day}T11:00\n# a comment\n\n"
                   "K4,cash\n", encoding="utf-8")
    with pytest.raises(ConfigError) as cli:  # what `tessera appointments load` says
        load_bookings(bad, cfg)
    want = [m.replace(str(bad), "day.csv") for m in cli.value.errors]
    assert len(want) == 4
    _log_in(page, branch.web.url, "mia")
    page.set_input_files("#appointments input[type=file]", str(bad))
    text = _submit(page, "#appointments", "rejected")
    assert "(bad-bookings)" in text and "4 bad line(s); nothing was loaded" in text
    assert page.eval_on_selector_all("#errors li", "l => l.map(x => x.textContent)") == want
    assert _bookings(cfg) == []
    good = tmp_path / "good.csv"
    soon = (datetime.now(cfg.tz) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    good.write_text(f"K1,cash,{soon}\nK2,accounts,{day}T10:00\n", encoding="utf-8")
    page.set_input_files("#appointments input[type=file]", str(good))
    page.check("#appointments input[name=dry_run]")
    assert "would add 2" in _submit(page, "#appointments", "done")
    assert page.eval_on_selector_all("#errors li", "l => l.length") == 0
    assert _bookings(cfg) == []  # a dry run changes nothing
    page.uncheck("#appointments input[name=dry_run]")
    assert "added 2" in _submit(page, "#appointments", "done")
    assert _bookings(cfg) == [("K1", "cash"), ("K2", "accounts")]
    assert "added 0, moved 0, 2 unchanged" in _submit(page, "#appointments", "done")
    assert [(a["account"], a["role"], a["action"], a["args"], a["outcome"], a["code"])
            for a in _actions(branch)] == [
        ("mia", "manager", "appointments", {"file": "day.csv", "lines": "8", "dry_run": "0"},
         "rejected", "bad-bookings"),
        ("mia", "manager", "appointments", {"file": "good.csv", "lines": "2", "dry_run": "1"},
         "done", "ok"),
        ("mia", "manager", "appointments", {"file": "good.csv", "lines": "2", "dry_run": "0"},
         "done", "ok"),
        ("mia", "manager", "appointments", {"file": "good.csv", "lines": "2", "dry_run": "0"},
         "done", "ok")]
    # the booking checks in at the kiosk like one loaded by the CLI
    assert branch.engine.check_in("K1").service == "cash"


def test_appointments_upload_size_limit_and_batches(make_branch: Any) -> None:
    branch, cfg = make_branch()
    day = date.fromisoformat(_tomorrow(cfg))
    c = httpx.Client(base_url=branch.web.url, timeout=60)
    assert c.post("/manage/login", data={"name": "mia", "password": PASSWORD}
                  ).status_code == 303
    csrf = c.get("/manage").text.split('<meta name="csrf" content="')[1].split('"')[0]
    # 300 bookings: more than one load-appointments request fits (mqtt.command_max_bytes)
    lines = "".join(f"B{i:04d},cash,{day}T{9 + i // 60:02d}:{i % 60:02d}\n"
                    for i in range(300))
    r = c.post("/manage/action", data={"action": "appointments", "file": "big.csv",
                                        "csv": lines, "csrf": csrf})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["result"] == {"added": 300, "moved": 0, "unchanged": 0, "past": 0}
    assert body["batches"] > 1
    assert len(_bookings(cfg)) == 300
    # just over the upload limit (comment lines, skipped like the CLI skips them): 413
    form = {"action": "appointments", "file": "huge.csv", "csrf": csrf,
            "csv": f"H1,cash,{day}T10:00\n"}
    pad = "#" + "x" * 900 + "\n"
    per_line = len(urlencode({"x": pad})) - 2
    n = (MAX_UPLOAD_BYTES - len(urlencode(form))) // per_line + 1
    head = form["csv"]
    form["csv"] = head + pad * n
    assert MAX_UPLOAD_BYTES < len(urlencode(form)) <= MAX_UPLOAD_BYTES + per_line
    with httpx.Client(base_url=branch.web.url, cookies=c.cookies, timeout=60) as other:
        r = other.post("/manage/action", data=form)  # its own connection (closed after)
    assert r.status_code == 413, r.text
    assert len(_bookings(cfg)) == 300
    form["csv"] = head + pad * (n - 1)  # within it: loaded
    r = c.post("/manage/action", data=form)
    assert r.status_code == 200, r.text
    assert r.json()["result"]["added"] == 1 and len(_bookings(cfg)) == 301
    # another action keeps the small form limit
    r = c.post("/manage/action", data={"action": "pause", "counter": "c1", "csrf": csrf,
                                        "staff": "x" * 5000})
    assert r.status_code == 413
    # a file that is not one: an empty upload, a bad file name
    for form in ({"file": "x.csv", "csv": ""}, {"file": "../x<b>.csv", "csv": lines}):
        r = c.post("/manage/action", data={"action": "appointments", **form, "csrf": csrf})
        assert (r.status_code, r.json()["code"]) == (400, "invalid"), form
    assert len(_bookings(cfg)) == 301


def test_the_web_device_may_send_the_new_commands_and_read_presence(make_branch: Any
                                                                    ) -> None:
    from tessera.mqtt.broker import acl_text
    from tessera.mqtt.command_auth import CommandPolicy
    from tessera.mqtt.command_schema import decode_args

    _, cfg = make_branch()
    policy = CommandPolicy.from_config(cfg)
    for name, args in (("reprint", {"ticket_id": "0190a0b2-0000-7000-8000-000000000000"}),
                       ("undo-no-show", {"ticket": "A001", "counter": "c3"}),
                       ("load-appointments", {"file": "b.csv", "lines": [
                           {"line": 1, "code": "K1", "service": "cash",
                            "slot": "2030-01-01T09:00Z"}]})):
        decoded = decode_args(name, json.dumps(args).encode())
        assert policy.permit("web-main", name, decoded, 0.0) is None, name
    root = f"tessera/v1/{cfg.branch.tenant}/{cfg.branch.branch}"
    block = acl_text(cfg).split("user web-main\n")[1].split("\n\n")[0]
    assert f"topic read {root}/+/status" in block.splitlines()
