"""Taking a ticket from the phone (/join): off by default; when on, the same engine
command with channel ``remote``, confirmed at once, landing on the ticket's own page;
rate-limited per client address and for the branch; bad posts change nothing."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import httpx

from tessera.roles.branch import db_path


def _issued(branch: Any) -> list[dict[str, Any]]:
    con = sqlite3.connect(db_path(branch.cfg, branch.cfg.mqtt.device))
    try:
        return [json.loads(b)["data"] for (b,) in con.execute(
            "SELECT body FROM outbox WHERE type = 'ticket.issued' ORDER BY seq")]
    finally:
        con.close()


def test_join_is_off_by_default(make_branch: Any) -> None:
    branch, _ = make_branch()
    assert httpx.get(branch.web.url + "/join").status_code == 404
    assert httpx.post(branch.web.url + "/join", data={"service": "cash"}).status_code == 404
    assert _issued(branch) == []


def test_take_a_ticket_on_the_phone(make_branch: Any, page: Any) -> None:
    branch, _ = make_branch(web="join = true\njoin_per_hour = 2\njoin_per_min = 3\n")
    page.goto(branch.web.url + "/join")
    assert not page.is_visible("#status")  # no live data here: no banner
    page.click("button[data-service=cash]")
    page.wait_for_url("**/t/*")
    page.wait_for_function("document.getElementById('state').dataset.state === 'waiting'")
    number = str(page.text_content("#number"))
    issued = _issued(branch)
    assert [(d["number"], d["channel"], d["priority"]) for d in issued] == [
        (number, "remote", None)]
    ref = page.url.rsplit("/", 1)[1]
    assert branch.web.signer.ticket_id(ref) == issued[0]["ticket_id"]
    c = httpx.Client(base_url=branch.web.url)
    # the client's limit: two an hour (the browser's was the first)
    assert c.post("/join", data={"service": "loans"}).status_code == 303
    r = c.post("/join", data={"service": "cash"})
    assert r.status_code == 429 and "kiosk" in r.text
    assert len(_issued(branch)) == 2
    # bad posts: 400/413/415, nothing issued
    for body, ctype in (("service=nope", "application/x-www-form-urlencoded"),
                        ("service=cash&priority=vip", "application/x-www-form-urlencoded"),
                        ("service=cash&service=loans", "application/x-www-form-urlencoded"),
                        ("service=cash", "text/plain"),
                        ("service=" + "x" * 5000, "application/x-www-form-urlencoded")):
        r = c.post("/join", content=body, headers={"content-type": ctype})
        assert r.status_code in (400, 413, 415), (body[:40], r.status_code)
    assert len(_issued(branch)) == 2


def test_the_branch_wide_limit(make_branch: Any) -> None:
    branch, _ = make_branch(web="join = true\njoin_per_hour = 50\njoin_per_min = 2\n")
    c = httpx.Client(base_url=branch.web.url)
    got = [c.post("/join", data={"service": "cash"}).status_code for _ in range(4)]
    assert got == [303, 303, 429, 429]
    assert [d["channel"] for d in _issued(branch)] == ["remote", "remote"]
