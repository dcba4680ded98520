"""Fixtures of the web tests: one headless Debian chromium for the session (driven by
Playwright through the system browser: no `playwright install`), and branches built
the way `tessera run all --sim` builds them, with the web role on a free port."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tessera.clock import SystemClock
from tessera.config import BranchConfig, load_config
from tessera.roles.branch import Branch

from web_support import PASSWORD  # isort: skip

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bank.toml"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless chromium (Debian's package, installed by tools/bootstrap.sh)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: tools/bootstrap.sh installs the chromium package")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    # bypass_csp: Playwright's wait_for_function evaluates strings, which the pages'
    # Content-Security-Policy forbids (test_security checks the policy itself)
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, bypass_csp=True)
    pg = ctx.new_page()
    pg.set_default_timeout(20_000)
    try:
        yield pg
    finally:
        ctx.close()


@pytest.fixture(scope="session")
def password_hash() -> str:
    from tessera.web.accounts import hash_password

    return hash_password(PASSWORD)


def web_config_text(tmp: Path, *, web: str = "", hash_: str = "") -> str:
    """examples/bank.toml, open all day, no voice, storage under ``tmp``, a [web] section
    on a free port with short heartbeats, three accounts (viewer, supervisor, manager)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = re.sub(r"^hours = .*\n", "", text, flags=re.M)
    text = text.replace('dir = "../var/bank"', f'dir = "{tmp / "var"}"')
    text = text.replace("[voice]\n", "[voice]\nenabled = false\n")
    text = text.replace('checkin = "stdin"', 'checkin = ""')
    text = re.sub(r"(?ms)^\[web\][^\n]*\n.*?(?=^\[|\Z)", "", text)  # the example's own [web]
    accounts = "".join(
        f'[[web.accounts]]\nname = "{n}"\nrole = "{r}"\npassword_hash = "{hash_}"\n\n'
        for n, r in (("vera", "viewer"), ("sam", "supervisor"), ("mia", "manager"))) \
        if hash_ else ""
    return (text + "\n[web]\nenabled = true\nport = 0\nheartbeat_s = 0.3\nstale_s = 1.5\n"
            f"base_url = \"https://q.acme-bank.example\"\n{web}\n{accounts}")


@pytest.fixture
def make_branch(tmp_path: Path, password_hash: str
                ) -> Iterator[Callable[..., tuple[Branch, BranchConfig]]]:
    """``make_branch(web="...")``: a simulated branch as `tessera run all --sim` builds it."""
    from tessera.demo.hardware import simulated_hardware
    from tessera.wiring import build_branch

    stack = ExitStack()

    def make(web: str = "", text: Callable[[str], str] | None = None
             ) -> tuple[Branch, BranchConfig]:
        body = web_config_text(tmp_path, web=web, hash_=password_hash)
        if text is not None:
            body = text(body)
        path = tmp_path / "bank.toml"
        path.write_text(body, encoding="utf-8")
        cfg = stack.enter_context(simulated_hardware(load_config(path), tmp_path / "sim"))
        branch = build_branch(cfg, SystemClock(), roles=("all",), sim=True)
        stack.callback(branch.close)
        return branch, cfg

    with stack:
        yield make
