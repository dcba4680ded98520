"""The mobile ticket behind the QR code, in a real browser: scan the printed QR (decoded
from the printer emulator's PNG), follow the place and the estimate, get the call, rate
after DONE; the rating is that ticket's one rating. And the security rows: a ticket page
reveals only its own ticket, guessed or tampered links get a bare 404, hostile text in
service names stays text."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from pyzbar import pyzbar
from web_support import press, wait_for

from tessera.roles.branch import db_path

KIOSK_CASH, NEXT_C1, DONE_C1, RATE_C1_LOW = 17, 5, 26, 20  # examples/bank.toml pins


def _scan(sim_dir: Path, before: set[Path]) -> str:
    """The URL in the QR code of the ticket the emulator printed last."""
    png = wait_for(lambda: sorted(set(sim_dir.rglob("*.png")) - before), what="a printed ticket")
    codes: list[str] = [c.data.decode() for c in pyzbar.decode(Image.open(png[-1]).convert("L"))]
    assert len(codes) == 1, codes
    return codes[0]


def _waiting(branch: Any) -> Any:
    return branch.engine.confirm_printed(branch.engine.issue("cash").id)


def _minutes(page: Any) -> int:
    text = str(page.text_content("#wait"))  # "about 6 min / 约 6 分钟"
    return int(text.split("about ")[1].split()[0])


def _state(page: Any) -> str:
    return str(page.get_attribute("#state", "data-state"))


def test_scan_follow_get_called_rate_once(make_branch: Any, page: Any, tmp_path: Path) -> None:
    branch, cfg = make_branch()
    ahead = [_waiting(branch) for _ in range(4)]
    before = set((tmp_path / "sim").rglob("*.png"))
    press(branch, KIOSK_CASH)
    url = _scan(tmp_path / "sim", before)
    assert url.startswith("https://q.acme-bank.example/t/")
    path = url.removeprefix("https://q.acme-bank.example")
    ticket_id = path.split("/")[2].split(".")[0]
    page.goto(branch.web.url + path)
    page.wait_for_function("document.getElementById('number').textContent.length > 0")
    number = str(page.text_content("#number"))
    assert number not in [t.number for t in ahead]
    assert _state(page) == "waiting"
    assert "现金业务" in str(page.text_content("#service"))
    # the queue moves (counter 2 calls and serves the people ahead): the place and the
    # estimate on the page follow the engine's
    shown = []
    for left in (4, 3, 2, 1, 0):
        place = branch.engine.ticket_place(ticket_id)
        assert place.ahead == left
        minutes = round((place.est_wait_s or 0) / 60)
        page.wait_for_function(f"document.getElementById('ahead').textContent.includes("
                               f"'{left} ahead')")
        page.wait_for_function(f"document.getElementById('wait').textContent.includes("
                               f"'about {minutes} min')")
        shown.append(_minutes(page))
        if left:
            branch.engine.call_next("c2")
            branch.engine.done("c2")
    assert len(set(shown)) > 1, f"the estimate never moved: {shown}"
    # the teller at counter 1 presses NEXT: our ticket is called there
    press(branch, NEXT_C1)
    page.wait_for_function("document.getElementById('state').dataset.state === 'called'")
    assert "go to counter 1" in str(page.text_content("#message"))
    assert "请到 1 号柜台" in str(page.text_content("#message"))
    assert page.evaluate("window.tesseraPlayed") == ["/audio/chime.wav"]
    # DONE: the page offers the rating, once
    press(branch, DONE_C1)
    page.wait_for_selector("#rating button.rate", state="visible")
    buttons = page.eval_on_selector_all("#rating button.rate", "bs => bs.length")
    assert buttons == cfg.rating_scale("c1") == 3  # the scale of the counter that served it
    page.click("#rating button[data-score='3']")
    page.wait_for_selector("#rated:not([hidden])")
    assert "Thank you for your rating" in str(page.text_content("#rated"))
    con = sqlite3.connect(db_path(cfg, cfg.mqtt.device))
    rows = con.execute("SELECT ticket_id, counter, staff, service, score, status FROM ratings"
                       ).fetchall()
    assert rows == [(ticket_id, "c1", "t-001", "cash", 3, "bound")]
    events = [json.loads(b) for (b,) in con.execute(
        "SELECT body FROM outbox WHERE type = 'feedback.rated' ORDER BY seq")]
    assert [e["data"]["channel"] for e in events] == ["web"]
    # a second rating from the page is refused with its code, and nothing is stored
    r = httpx.post(branch.web.url + path + "/rate", data={"score": "1"})
    assert r.status_code == 409 and r.json()["code"] == "already-rated"
    # the counter's own rating buttons cannot rate it again either: a duplicate
    press(branch, RATE_C1_LOW)
    wait_for(lambda: con.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 2)
    assert con.execute("SELECT status FROM ratings ORDER BY id").fetchall() == [
        ("bound",), ("duplicate",)]
    assert con.execute("SELECT COUNT(*) FROM outbox WHERE type = 'feedback.alert'"
                       ).fetchone() == (0,)
    page.reload()
    page.wait_for_function("document.getElementById('state').dataset.state === 'done'")
    assert page.is_hidden("#rating")  # rated: no buttons again
    con.close()


def test_void_no_show_and_rating_before_done(make_branch: Any, page: Any) -> None:
    branch, _ = make_branch()
    e = branch.engine
    voided = e.void(e.issue("cash").id, "print-failed")
    page.goto(branch.web.url + "/t/" + branch.web.signer.ref(voided.id))
    page.wait_for_function("document.getElementById('state').dataset.state === 'void'")
    assert "not valid" in str(page.text_content("#message"))
    missed = _waiting(branch)
    e.call_next("c2")
    url = branch.web.url + "/t/" + branch.web.signer.ref(missed.id)
    r = httpx.post(url + "/rate", data={"score": "5"})
    assert r.status_code == 409 and r.json()["code"] == "bad-state"
    e.no_show("c2")
    page.goto(url)
    page.wait_for_function("document.getElementById('state').dataset.state === 'no_show'")
    assert "not there" in str(page.text_content("#message"))
    for bad in ("score=0", "score=99", "score=x", "score=1&score=2", "nope=1", "score=" + "9" * 50):
        r = httpx.post(url + "/rate", content=bad,
                       headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code in (400, 409), (bad, r.status_code)
    r = httpx.post(url + "/rate", content="score=1", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    r = httpx.post(url + "/rate", content="score=1&pad=" + "x" * 10_000,
                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    con = sqlite3.connect(db_path(branch.cfg, branch.cfg.mqtt.device))
    assert con.execute("SELECT COUNT(*) FROM ratings").fetchone() == (0,)
    con.close()


def test_a_ticket_page_reveals_only_its_own_ticket(make_branch: Any) -> None:
    branch, _ = make_branch()
    mine, other = _waiting(branch), _waiting(branch)
    web, signer = branch.web.url, branch.web.signer
    ref = signer.ref(mine.id)
    # guessed, tampered and malformed links: a bare 404 that says nothing
    other_with_my_token = other.id + "." + ref.split(".")[1]
    unknown = "0190a0b2-0000-7000-8000-000000000000"
    for path in (f"/t/{other.id}", f"/t/{other_with_my_token}", f"/t/{signer.ref(unknown)}",
                 f"/t/{ref[:-1]}", f"/t/{ref}x", "/t/%00", "/t/" + "a" * 5000,
                 f"/t/{other_with_my_token}/events", f"/t/{signer.ref(unknown)}/events"):
        r = httpx.get(web + path)
        assert (r.status_code, r.text) == (404, "Not Found"), path
    r = httpx.post(web + f"/t/{other_with_my_token}/rate", data={"score": "5"})
    assert (r.status_code, r.text) == (404, "Not Found")
    # my page's stream carries my ticket only, through calls of the other one
    branch.engine.call_next("c2")  # calls `mine` (first in line)
    branch.engine.done("c2")
    branch.engine.call_next("c2")  # `other`
    seen: list[dict[str, Any]] = []
    with httpx.stream("GET", web + f"/t/{ref}/events", timeout=10) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["referrer-policy"] == "no-referrer"
        deadline = time.monotonic() + 5
        for line in r.iter_lines():
            if line.startswith("data: {") and '"number"' in line:
                seen.append(json.loads(line[6:]))
            if time.monotonic() > deadline or len(seen) >= 1:
                break
    assert seen and all(s["number"] == mine.number for s in seen)
    text = json.dumps(seen)
    assert other.number not in text and other.id not in text and mine.id not in text
    assert set(seen[0]) == {"number", "service", "names", "state", "ahead", "est_wait_min",
                            "counter", "rated", "rating_scale", "languages"}
    page = httpx.get(web + f"/t/{ref}").text
    assert other.number not in page and other.id not in page
