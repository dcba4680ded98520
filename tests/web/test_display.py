"""The hall display (/display) in a real browser: a NEXT press on the simulated panel
shows the number; Chinese and Latin text are drawn with real glyphs; the page catches
up after a network drop (the hub's ring) and after a server restart (the full state);
stale data is shown as stale, an unreachable engine as such."""

from __future__ import annotations

import time
from typing import Any

from web_support import press

from tessera.web.role import WebRole

NEXT_C1, NEXT_C2 = 5, 12  # examples/bank.toml: counter c1's and c2's NEXT pins


def _waiting(branch: Any, service: str = "cash") -> Any:
    t = branch.engine.issue(service)
    return branch.engine.confirm_printed(t.id)


def _latest(page: Any) -> str:
    return str(page.text_content("#latest .number") or "")


def _history(page: Any) -> list[str]:
    return [str(x) for x in page.eval_on_selector_all("#history .number",
                                                      "els => els.map(e => e.textContent)")]


def test_next_press_shows_the_number(make_branch: Any, page: Any) -> None:
    branch, _ = make_branch()
    t = _waiting(branch)
    page.goto(branch.web.url + "/display")
    page.wait_for_function("document.getElementById('status').dataset.state === 'ok'")
    assert _latest(page) == ""
    t0 = time.monotonic()
    press(branch, NEXT_C1)
    page.wait_for_function(f"document.querySelector('#latest .number').textContent === "
                           f"'{t.number}'", timeout=10_000)
    elapsed = time.monotonic() - t0
    assert "1" in str(page.text_content("#latest .counter"))
    # the announcement: the board's clip of this call was asked for (chime + voice)
    played = page.evaluate("window.tesseraPlayed")
    assert played == [f"/audio/call-{t.number}-1.wav"], played
    assert elapsed < 10


def test_chinese_and_latin_are_drawn_with_real_glyphs(make_branch: Any, page: Any) -> None:
    """Tofu (a missing glyph) is drawn as one fixed-width box per character: measure each
    CJK service name against the same number of tofu boxes (U+FFFF has no glyph in any
    font) and against a Latin string; fonts-wqy-microhei must be the font used."""
    branch, _ = make_branch()
    page.goto(branch.web.url + "/display")
    page.wait_for_selector("#services .name.lang-zh")
    names = page.eval_on_selector_all("#services .name.lang-zh", "es => es.map(e => e.textContent)")
    assert "现金业务" in names
    width = page.evaluate("""([text]) => {
        const probe = (t) => { const s = document.createElement('span');
            s.style.font = getComputedStyle(document.querySelector('#services .name.lang-zh')).font;
            s.style.whiteSpace = 'pre'; s.textContent = t; document.body.append(s);
            const r = s.getBoundingClientRect(); s.remove(); return [r.width, r.height]; };
        return {cjk: probe(text), tofu: probe('\\uffff'.repeat(text.length)),
                latin: probe('iiii'),
                fonts: document.fonts.check('16px "WenQuanYi Micro Hei"', text)};
    }""", ["现金业务"])
    cjk_w, tofu_w = width["cjk"][0], width["tofu"][0]
    assert width["fonts"], "WenQuanYi Micro Hei cannot draw the service name"
    assert abs(cjk_w - tofu_w) > 1.0, width  # drawn with glyphs, not boxes
    assert cjk_w > 2 * width["latin"][0], width  # four ideographs are wide, 'iiii' narrow
    shot = page.locator("#services").screenshot()
    assert len(shot) > 1000
    # the rendered row holds more than one ink colour column per glyph: not blank boxes
    from io import BytesIO

    from PIL import Image

    img = Image.open(BytesIO(shot)).convert("L")
    dark_bg = int(img.getpixel((1, 1)))  # type: ignore[arg-type]  # "L": one int per pixel
    ink = sum(1 for px in img.tobytes() if abs(px - dark_bg) > 60)
    assert ink > 500, ink


def test_resumes_after_a_network_drop_and_a_server_restart(make_branch: Any,
                                                          page: Any) -> None:
    branch, cfg = make_branch()
    first = _waiting(branch)
    a, b, c = (_waiting(branch) for _ in range(3))
    page.goto(branch.web.url + "/display")
    page.wait_for_function("document.getElementById('status').dataset.state === 'ok'")
    branch.engine.call_next("c2")
    page.wait_for_function(f"document.querySelector('#latest .number').textContent === "
                           f"'{first.number}'")
    # a network drop: the stream ends, calls happen, the browser reconnects with
    # Last-Event-ID and gets what it missed from the ring (in order, each announced)
    ids_before = branch.web.hub.latest["display"].id
    branch.web.drop_connections()
    branch.engine.done("c2")
    branch.engine.call_next("c2")
    page.wait_for_function(f"document.querySelector('#latest .number').textContent === "
                           f"'{a.number}'")
    assert branch.web.hub.latest["display"].id != ids_before
    # a restart of the web server on the same port: nothing of the ring survives; the
    # calls made while it was down come with the full state
    port = branch.web.port
    branch.web.stop()
    page.wait_for_function("document.getElementById('status').dataset.state === 'stale'")
    branch.engine.done("c2")
    branch.engine.call_next("c2")
    branch.engine.done("c2")
    branch.engine.call_next("c2")
    restarted = WebRole(cfg, branch.engine, branch.clock, port=port)
    restarted.start()
    unsubscribe = branch.bus.subscribe(restarted.on_event, type_prefix="")
    try:
        page.wait_for_function(f"document.querySelector('#latest .number').textContent === "
                               f"'{c.number}'", timeout=20_000)
        assert _history(page)[:3] == [b.number, a.number, first.number]
        page.wait_for_function("document.getElementById('status').dataset.state === 'ok'")
        played = page.evaluate("window.tesseraPlayed")
        # every call announced once, in order, the missed ones too
        assert [p.split("-")[1] for p in played] == [first.number, a.number, b.number,
                                                      c.number], played
    finally:
        unsubscribe()
        restarted.stop()


def test_stale_data_and_an_unreachable_engine_are_shown(make_branch: Any, page: Any) -> None:
    branch, _ = make_branch()
    page.goto(branch.web.url + "/display")
    page.wait_for_function("document.getElementById('status').dataset.state === 'ok'")
    assert not page.is_visible("#status")
    # the engine stops answering (its store closed under it): the server says so
    real = branch.web.engine

    class Down:
        def snapshot(self) -> Any:
            raise ConnectionError("engine unreachable (timeout)")

        def ticket_places(self, ids: Any) -> Any:
            raise ConnectionError("engine unreachable (timeout)")

    branch.web.engine = Down()  # type: ignore[assignment]
    try:
        page.wait_for_function("document.getElementById('status').dataset.state === 'stale'")
        assert page.is_visible("#status")
        assert "does not answer" in str(page.text_content("#status"))
    finally:
        branch.web.engine = real
    page.wait_for_function("document.getElementById('status').dataset.state === 'ok'")
    # the server goes away: no heartbeats, the page says its data may be out of date
    branch.web.stop()
    page.wait_for_function("document.getElementById('status').dataset.state === 'stale'")
    assert "out of date" in str(page.text_content("#status"))


def test_without_a_reachable_engine_the_display_says_connecting(make_branch: Any,
                                                                 page: Any) -> None:
    """A web role whose engine never answered serves its pages and says "connecting"."""
    _, cfg = make_branch()

    class Down:
        def snapshot(self) -> Any:
            raise ConnectionError("engine unreachable (timeout)")

        def ticket_places(self, ids: Any) -> Any:
            raise ConnectionError("engine unreachable (timeout)")

    from tessera.clock import SystemClock

    role = WebRole(cfg, Down(), SystemClock(), port=0)  # type: ignore[arg-type]
    role.start()
    try:
        page.goto(role.url + "/display")
        page.wait_for_timeout(1500)  # several heartbeats: still no state
        assert page.get_attribute("#status", "data-state") == "connecting"
        assert "connecting" in str(page.text_content("#status"))
        assert role.tick_json().count('"unreachable"') == 1
    finally:
        role.stop()
