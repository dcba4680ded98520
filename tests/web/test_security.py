"""Security rows of the web role: hostile text in service names (and a staff id sent to
the console) rendered inert on every page; the pages' Content-Security-Policy; bad
routes, methods and ids."""

from __future__ import annotations

from typing import Any

import httpx

HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


def _hostile_names(text: str) -> str:
    return text.replace('names = { zh = "现金业务", en = "Cash & Deposits" }',
                        "names = { zh = '现金业务" + HOSTILE + "', en = '" + HOSTILE + "' }")


def test_html_in_names_is_text_on_every_page(make_branch: Any, page: Any) -> None:
    branch, _ = make_branch(text=_hostile_names)
    t = branch.engine.confirm_printed(branch.engine.issue("cash").id)
    branch.engine.call_next("c1")
    for path in ("/display", "/t/" + branch.web.signer.ref(t.id)):
        page.goto(branch.web.url + path)
        page.wait_for_function("document.getElementById('status').dataset.state === 'ok'")
        html = page.content()
        assert HOSTILE not in html  # never parsed as markup...
        assert page.evaluate("document.querySelectorAll('main img, main script').length") == 0
        assert page.evaluate("window.__pwned") is None
        # ...but shown as the text it is
        assert HOSTILE in str(page.text_content("main"))


def test_pages_forbid_inline_and_foreign_scripts(make_branch: Any, browser: Any) -> None:
    """Without bypass_csp: the policy the pages are served with blocks an injected inline
    script and any other origin (so even a templating slip could not run one)."""
    branch, _ = make_branch()
    r = httpx.get(branch.web.url + "/display")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    ctx = browser.new_context()
    try:
        pg = ctx.new_page()
        pg.goto(branch.web.url + "/display")
        ran = pg.evaluate("""() => { const s = document.createElement('script');
            s.textContent = 'window.__inline = 1'; document.body.append(s);
            return window.__inline === undefined; }""")
        assert ran, "an inline script ran despite the CSP"
    finally:
        ctx.close()


def test_bad_routes_methods_and_ids(make_branch: Any) -> None:
    branch, _ = make_branch()
    web = branch.web.url
    assert httpx.get(web + "/nope").status_code == 404
    assert httpx.get(web + "/static/../role.py").status_code == 404
    assert httpx.delete(web + "/display").status_code == 405
    assert httpx.get(web + "/manage/action").status_code == 405
    assert httpx.put(web + "/t/x/rate").status_code == 405
    assert httpx.get(web + "/audio/../../etc/passwd").status_code == 404
    assert httpx.get(web + "/audio/call-<b>-1.wav").status_code == 404
    r = httpx.get(web + "/audio/chime.wav")
    assert r.status_code == 200 and r.content[:4] == b"RIFF"
    assert httpx.get(web + "/healthz").json()["engine"] in ("ok", "connecting")


def test_a_client_that_goes_away_is_forgotten(make_branch: Any) -> None:
    """Each open stream holds a subscriber; closing the connection drops it (the
    disconnect itself ends the stream)."""
    import time

    branch, _ = make_branch()
    hub = branch.web.hub
    clients = [httpx.Client(base_url=branch.web.url, timeout=10) for _ in range(5)]
    streams = [c.stream("GET", "/display/events") for c in clients]
    for s in streams:
        s.__enter__()
    deadline = time.monotonic() + 10
    while hub.connections() < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hub.connections() == 5
    for s, c in zip(streams, clients, strict=True):
        s.__exit__(None, None, None)
        c.close()
    deadline = time.monotonic() + 10
    while hub.connections() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hub.connections() == 0


def test_announcement_audio_is_the_boards_clips(make_branch: Any) -> None:
    """/audio/call-A001-1.wav is the caller board's announcement, assembled from its clip
    set (here a stand-in set: every clip a chime), served from memory."""
    from tessera.display.voice import (
        ClipLibrary,
        generated_clips_dir,
        read_wav,
        required_clips,
        write_chime,
    )

    branch, cfg = make_branch()
    root = generated_clips_dir(cfg.path(cfg.storage.dir))
    prefixes = [s.prefix for s in cfg.services]
    for lang in cfg.branch.languages:
        (root / lang).mkdir(parents=True, exist_ok=True)
        for name in required_clips(lang, prefixes):
            write_chime(root / lang / f"{name}.wav")
    r = httpx.get(branch.web.url + "/audio/call-A001-1.wav")
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    lib = ClipLibrary(root)
    paths = lib.announcement_clips("A001", 1, list(cfg.branch.languages), chime=True)
    frames = sum(len(read_wav(p)[1]) for p in paths)
    assert len(r.content) == 44 + frames  # one WAV header, every clip's frames
    leftovers = list((cfg.path(cfg.storage.dir) / "web-audio").glob("call*"))
    assert leftovers == []
    assert httpx.get(branch.web.url + "/audio/call-A001-1000.wav").status_code == 404
