"""The supervisor console (/manage): login, an action from the browser and its
``console.action`` event naming the account; every action refused without a session,
with a wrong CSRF token, or for a role that may not do it; brute force locked out."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import httpx
from web_support import PASSWORD, wait_for

from tessera.roles.branch import db_path
from tessera.web.accounts import ACTION_ROLES
from tessera.web.app import ACTION_FIELDS

LOCKOUT = "lockout_attempts = 3\nlockout_s = 60\n"
ARGS = {"counter": "c3", "number": "A001", "service": "accounts",
        "ticket_id": "0190a0b2-0000-7000-8000-000000000000", "staff": "t-003",
        "ticket": "A001", "file": "bookings.csv", "csv": "K1,cash,2030-03-02T09:30\n"}


def _actions(branch: Any) -> list[dict[str, Any]]:
    """The web device's console.action events, from its own outbox."""
    con = sqlite3.connect(db_path(branch.cfg, "web-main"))
    try:
        return [json.loads(b)["data"] | {"device": json.loads(b)["device"]} for (b,) in
                con.execute("SELECT body FROM outbox WHERE type = 'console.action' "
                            "ORDER BY seq")]
    finally:
        con.close()


def _login(web: str, name: str, password: str = PASSWORD) -> httpx.Client:
    c = httpx.Client(base_url=web)
    r = c.post("/manage/login", data={"name": name, "password": password})
    assert r.status_code == 303, r.text
    return c


def _csrf(c: httpx.Client) -> str:
    html = c.get("/manage").text
    return html.split('<meta name="csrf" content="')[1].split('"')[0]


def test_login_act_and_the_event_names_the_account(make_branch: Any, page: Any) -> None:
    branch, _ = make_branch()
    page.goto(branch.web.url + "/manage")
    assert page.url.endswith("/manage/login")
    page.fill("input[name=name]", "sam")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#counters tr[data-counter='c1'] .act-pause")
    assert "sam (supervisor)" in str(page.text_content("#account"))
    page.click("#counters tr[data-counter='c1'] .act-pause")
    page.wait_for_function("document.getElementById('result').dataset.status === 'done'")
    wait_for(lambda: branch.engine.snapshot()["counters"]["c1"]["state"] == "paused")
    page.wait_for_function("document.querySelector(\"#counters tr[data-counter='c1'] "
                           ".state\").textContent === 'paused'")
    acts = _actions(branch)
    assert [(a["account"], a["role"], a["action"], a["args"], a["outcome"], a["device"])
            for a in acts if a["action"] != "login"] == [
        ("sam", "supervisor", "pause", {"counter": "c1"}, "done", "web-main")]
    assert [(a["account"], a["outcome"]) for a in acts if a["action"] == "login"] == [
        ("sam", "done")]
    # call a specific number at counter 2 from the form
    t = branch.engine.confirm_printed(branch.engine.issue("cash").id)
    page.fill("form[data-action=call] input[name=number]", t.number)
    page.fill("form[data-action=call] input[name=counter]", "c2")
    page.click("form[data-action=call] button")
    page.wait_for_function("document.getElementById('result').dataset.status === 'done'")
    assert branch.engine.ticket_place(t.id).ticket.state == "called"
    page.wait_for_function(f"document.querySelector(\"#counters tr[data-counter='c2'] "
                           f".ticket\").textContent === '{t.number}'")
    # an engine refusal is shown and recorded with its code
    page.click("form[data-action=call] button")
    page.wait_for_function("document.getElementById('result').dataset.status === 'rejected'")
    assert _actions(branch)[-1]["code"] == "counter-busy"
    # an alert: the lowest rating after DONE
    branch.engine.done("c2")
    branch.engine.rate("c2", 1)
    page.wait_for_selector("#alerts .alert-feedback-alert")
    # today's KPIs, from the report code over the engine's own events
    from tessera.engine.report import day_report

    day = branch.engine.snapshot()["business_day"]
    want = day_report(branch.engine.events_since(0), branch.cfg, day)["services"]["cash"]
    assert want["issued"] == 1 and want["ratings"]["n"] == 1
    page.wait_for_function("document.querySelector(\"#kpis tr[data-service='cash'] "
                           ".rating\")?.textContent === '1 (1)'", timeout=30_000)
    row = page.eval_on_selector("#kpis tr[data-service='cash']",
                                "r => [...r.children].map(c => c.textContent)")
    assert row == ["cash", "1", f"{want['sla_pct']:g}", f"{want['sla_target_pct']:g}", "1 (1)"]
    assert "issued 1" in str(page.text_content("#kpi-summary"))


def test_every_action_needs_a_session_a_csrf_token_and_the_role(make_branch: Any) -> None:
    branch, _ = make_branch()
    web = branch.web.url
    before = branch.engine.snapshot()
    anon = httpx.Client(base_url=web)
    assert anon.get("/manage").status_code == 303
    assert anon.get("/manage/events").status_code == 401
    viewer, sup, mgr = (_login(web, n) for n in ("vera", "sam", "mia"))
    tokens = {c: _csrf(c) for c in (viewer, sup, mgr)}
    for action, fields in ACTION_FIELDS.items():
        form = {"action": action, **{f: ARGS[f] for f in fields}}
        r = anon.post("/manage/action", data={**form, "csrf": tokens[sup]})
        assert r.status_code == 401, action
        for c in (viewer, sup, mgr):
            r = c.post("/manage/action", data=form)  # no token
            assert (r.status_code, r.json()["code"]) == (403, "csrf"), action
            r = c.post("/manage/action", data={**form, "csrf": tokens[mgr if c is not mgr
                                                                      else sup]})
            assert (r.status_code, r.json()["code"]) == (403, "csrf"), action
        r = viewer.post("/manage/action", data={**form, "csrf": tokens[viewer]})
        assert (r.status_code, r.json()["code"]) == (403, "forbidden"), action
        if ACTION_ROLES[action] == "manager":
            r = sup.post("/manage/action", data={**form, "csrf": tokens[sup]})
            assert (r.status_code, r.json()["code"]) == (403, "forbidden"), action
    # nothing changed in the engine (the void's ticket id is unknown anyway)
    assert branch.engine.snapshot() == before
    refused = [a for a in _actions(branch) if a["code"] == "forbidden"]
    assert {(a["account"], a["action"]) for a in refused} == {
        ("vera", a) for a in ACTION_FIELDS} | {("sam", a) for a in ACTION_FIELDS
                                              if ACTION_ROLES[a] == "manager"}
    assert {a for a in ACTION_FIELDS if ACTION_ROLES[a] == "manager"} == {
        "void", "appointments"}
    # the manager may void (a ticket awaiting print confirmation)
    t = branch.engine.issue("cash")
    r = mgr.post("/manage/action", data={"action": "void", "ticket_id": t.id,
                                          "csrf": tokens[mgr]})
    assert r.status_code == 200, r.text
    assert branch.engine.ticket_place(t.id).ticket.state == "void"
    assert _actions(branch)[-1] | {"args": None} == {
        "account": "mia", "role": "manager", "action": "void", "args": None,
        "outcome": "done", "code": "ok", "device": "web-main"}
    # malformed actions: 400, nothing run
    for bad in ({"action": "explode"}, {"action": "pause"},
                {"action": "pause", "counter": "<b>"},
                {"action": "open", "counter": "c3", "staff": "<script>x</script>"},
                {"action": "pause", "counter": "c3", "extra": "1"},
                {"action": "call", "counter": "c3", "number": "A1; DROP"}):
        r = mgr.post("/manage/action", data={**bad, "csrf": tokens[mgr]})
        assert r.status_code == 400, bad
        assert branch.engine.snapshot()["counters"] == before["counters"], bad
    r = mgr.post("/manage/action", content="action=pause&counter=c3&csrf=" + tokens[mgr]
                 + "&pad=" + "x" * 5000,
                 headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    assert branch.engine.snapshot()["counters"] == before["counters"]
    # logging out needs the token too; afterwards the session is gone
    assert sup.post("/manage/logout", data={"csrf": "x"}).status_code == 403
    assert sup.post("/manage/logout", data={"csrf": tokens[sup]}).status_code == 303
    r = sup.post("/manage/action", data={"action": "pause", "counter": "c1",
                                          "csrf": tokens[sup]})
    assert r.status_code == 401


def test_brute_force_is_locked_out(make_branch: Any) -> None:
    branch, _ = make_branch(web=LOCKOUT)
    c = httpx.Client(base_url=branch.web.url)
    for _ in range(3):
        r = c.post("/manage/login", data={"name": "mia", "password": "guess"})
        assert r.status_code == 401
    # locked: the right password is refused too, for that name and from that address
    r = c.post("/manage/login", data={"name": "mia", "password": PASSWORD})
    assert r.status_code == 429 and "try again" in r.text
    r = c.post("/manage/login", data={"name": "sam", "password": PASSWORD})
    assert r.status_code == 429
    assert "tessera_session" not in c.cookies
    fails = [a for a in _actions(branch) if a["action"] == "login"]
    assert [(a["account"], a["code"]) for a in fails] == [
        ("mia", "bad-login")] * 3 + [("mia", "locked-out"), ("sam", "locked-out")]
    # an unknown name counts like a wrong password (no way to tell names apart)
    assert c.post("/manage/login", data={"name": "x" * 5000, "password": "p"}
                  ).status_code in (413, 429)
