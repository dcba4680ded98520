"""Engine test fixtures: a small branch config, a virtual clock, an engine on a real file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tessera.clock import VirtualClock
from tessera.config import BranchConfig, parse_config
from tessera.engine import Engine, always_trusted

BASE_TOML = """
[branch]
tenant = "acme"
branch = "b1"
timezone = "Europe/London"
day_rollover = "03:00"

[clock]
trust = "always"

[engine]
unconfirmed_timeout_s = 60
transfer_position = "{position}"
priority_order = ["emergency", "priority", "vip"]
starvation_after = 2
starvation_wait_s = 600
feedback_window_s = 120
{engine_extra}

[[services]]
id = "cash"
prefix = "A"
names = {{ en = "Cash" }}
default_service_s = 240
{cash_extra}

[[services]]
id = "accounts"
prefix = "B"
names = {{ en = "Accounts" }}
default_service_s = 600

[[services]]
id = "loans"
prefix = "C"
names = {{ en = "Loans" }}

[[counters]]
id = "c1"
number = 1
services = [{{ service = "cash", weight = 2 }}, {{ service = "accounts" }}]
staff = "t-001"

[[counters]]
id = "c2"
number = 2
services = [{{ service = "cash" }}]

[[counters]]
id = "c3"
number = 3
services = [{{ service = "loans" }}, {{ service = "accounts" }}]
"""

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday, GMT


def make_config(position: str = "back", engine_extra: str = "", cash_extra: str = "",
                prefix_a: str = "A", base_dir: Path | str = ".",
                starvation_wait_s: float = 600, rollover: str = "03:00",
                clock_toml: str = 'trust = "always"') -> BranchConfig:
    text = BASE_TOML.format(position=position, engine_extra=engine_extra, cash_extra=cash_extra)
    text = text.replace("starvation_wait_s = 600", f"starvation_wait_s = {starvation_wait_s}")
    text = text.replace('day_rollover = "03:00"', f'day_rollover = "{rollover}"')
    text = text.replace('trust = "always"', clock_toml)
    text = text.replace('prefix = "A"', f'prefix = "{prefix_a}"')
    return parse_config(text, base_dir=base_dir)


@pytest.fixture
def cfg() -> BranchConfig:
    return make_config()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def open_engine(tmp_path: Path) -> Iterator[Callable[..., Engine]]:
    """``open_engine(cfg, clock, **kw)`` on tmp_path/engine.db; closed after the test."""
    opened: list[Engine] = []

    def _open(cfg: BranchConfig, clock: VirtualClock, **kw: object) -> Engine:
        kw.setdefault("trust", always_trusted)
        e = Engine.open(cfg, clock, tmp_path / "engine.db", **kw)  # type: ignore[arg-type]
        opened.append(e)
        return e

    yield _open
    for e in opened:
        try:
            e.close()
        except Exception:
            pass


@pytest.fixture
def engine(open_engine: Callable[..., Engine], cfg: BranchConfig, clock: VirtualClock) -> Engine:
    return open_engine(cfg, clock)
