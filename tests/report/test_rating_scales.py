"""Issue 15: each counter rates on its own scale (``counters[].rating_scale``), pressed on
the panels' mock pins through the wiring ``tessera run`` uses (ButtonPanel -> ring ->
dispatcher -> router -> counter role -> engine), and the config refuses a panel whose
buttons do not match its scale."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tessera.clock import VirtualClock
from tessera.config import parse_config
from tessera.engine import Engine, always_trusted
from tessera.engine import errors as E
from tessera.errors import ConfigError
from tessera.roles.counter import CounterRole
from tessera.roles.glue import ActionRouter

TOML = """
[branch]
tenant = "acme"
branch = "b1"
timezone = "UTC"

[clock]
trust = "always"

[[services]]
id = "cash"
prefix = "A"
names = { en = "Cash" }

[[counters]]
id = "c3"
number = 3
services = [{ service = "cash" }]
staff = "t-3"
panel = { next = 5, done = 26, ratings = [20, 21, 16] }
rating_scale = 3

[[counters]]
id = "c5"
number = 5
services = [{ service = "cash" }]
staff = "t-5"
panel = { next = 12, done = 8, ratings = [0, 1, 11, 9, 10] }
"""


def _errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    return e.value.errors


def test_a_counter_scale_defaults_to_the_engine_scale() -> None:
    cfg = parse_config(TOML)
    assert cfg.rating_scale("c3") == 3 and cfg.rating_scale("c5") == 5
    assert cfg.counter("c5").rating_scale is None  # engine.rating_scale (5) applies


@pytest.mark.parametrize(("edit", "expected"), [
    (("rating_scale = 3", "rating_scale = 11"),
     "counters[0].rating_scale: 11 is out of range; use a whole number between 2 and 10"),
    (("rating_scale = 3", "rating_scale = 1"), "counters[0].rating_scale: 1 is out of range"),
    (("rating_scale = 3", 'rating_scale = "3"'), "counters[0].rating_scale"),
    (("rating_scale = 3", "rating_scale = 4"),
     "counters[0].panel.ratings: 3 rating buttons, but counters[0].rating_scale is 4; a "
     "satisfaction panel has one button per score: set counters[0].rating_scale = 3 or "
     "wire 4 buttons"),
    (("ratings = [0, 1, 11, 9, 10]", "ratings = [0, 1, 11, 9]"),
     "counters[1].panel.ratings: 4 rating buttons, but engine.rating_scale is 5"),
])
def test_a_bad_scale_names_its_path(edit: tuple[str, str], expected: str) -> None:
    assert edit[0] in TOML
    errs = _errors(TOML.replace(edit[0], edit[1], 1))
    assert any(expected in e for e in errs), errs


class _Lamp:
    def on(self) -> None: ...
    def off(self) -> None: ...
    def blink(self, on_time: float = 1, off_time: float = 1) -> None: ...


@contextmanager
def _wired(tmp_path: Path, mock_pins: Any) -> Iterator[tuple[Engine, ActionRouter, Path]]:
    """Both counters' panels on mock pins, as tests/branch/test_login.py wires one."""
    from tessera.cext import Ring
    from tessera.dispatch import Dispatcher, Timing, bindings_from_config
    from tessera.drivers.gpio import ButtonPanel

    cfg = parse_config(TOML, base_dir=tmp_path)
    clock = VirtualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    db = tmp_path / "engine.db"
    engine = Engine.open(cfg, clock, db, trust=always_trusted)
    roles = {c.id: CounterRole(cfg, c, engine, clock, rating_led=_Lamp()) for c in cfg.counters}
    for r in roles.values():
        r.start()
    router = ActionRouter(counters=dict(roles))
    binds = [b for b in bindings_from_config(cfg, "main") if b.target in roles]
    ring = Ring(cfg.gpio.ring_capacity)
    disp = Dispatcher(ring, binds, router.on_button,
                      timing=Timing(debounce_ms=1, hold_ms=1000, stuck_ms=20_000, repeat_ms=1))
    panel = ButtonPanel(ring, [b.pin for b in binds], pin_factory=mock_pins)
    disp.start()
    try:
        yield engine, router, db
        assert router.failed == 0 and disp.stats["handler_errors"] == 0
    finally:
        disp.stop()
        panel.close()
        engine.close()


def _events(db: Path, type_: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db)
    try:
        rows = [json.loads(b) for (b,) in conn.execute("SELECT body FROM outbox ORDER BY seq")]
    finally:
        conn.close()
    return [e["data"] for e in rows if e["type"] == type_]


@pytest.mark.timeout(60)
def test_three_and_five_button_counters_rate_on_their_own_scales(
        tmp_path: Path, mock_pins: Any) -> None:
    from tessera.sim.scenario import press_pin

    with _wired(tmp_path, mock_pins) as (engine, router, db):
        cfg = engine.cfg
        for _ in range(2):
            t = engine.issue("cash")
            engine.confirm_printed(t.id)
        n = 0
        # c3 serves A001 and its customer presses the top button (3 of 3); c5 serves A002
        # and its customer presses the lowest (1 of 5: a complaint alert)
        for cid, score in (("c3", 3), ("c5", 1)):
            panel = cfg.counter(cid).panel
            assert panel is not None
            for pin in (panel.next, panel.done, panel.ratings[score - 1]):
                press_pin(mock_pins.pin(pin), settle_s=0.005)
                n += 1
                assert router.wait_for(n)
        rated = _events(db, "feedback.rated")
        assert [(r["counter"], r["score"], r["scale"], r["status"]) for r in rated] == [
            ("c3", 3, 3, "bound"), ("c5", 1, 5, "bound")]
        [alert] = _events(db, "feedback.alert")
        assert (alert["counter"], alert["score"], alert["scale"]) == ("c5", 1, 5)
        stored = engine.conn.execute(
            "SELECT counter, score, scale FROM ratings ORDER BY id").fetchall()
        assert stored == [("c3", 3, 3), ("c5", 1, 5)]
        # the engine validates against the counter's scale: 4 is out of range at c3 only
        with pytest.raises(E.BadScore, match="use 1 to 3"):
            engine.rate("c3", 4)
        assert engine.rate("c5", 4).status == "duplicate"  # in range at c5
        assert len(_events(db, "feedback.rated")) == 3  # the refused press left nothing
        # the report normalises per scale: 3 of 3 is satisfied, 1 of 5 a complaint, and
        # the two are never averaged
        from tessera.report import report_for

        k = report_for(db, cfg, [engine.business_day()])
        c3, c5 = k["counters"]["c3"]["ratings"], k["counters"]["c5"]["ratings"]
        assert (c3["satisfaction_pct"], c3["by_scale"]) == (100.0, {"3": {"1": 0, "2": 0,
                                                                          "3": 1}})
        assert (c5["satisfaction_pct"], c5["complaints"], c5["duplicate"]) == (0.0, 1, 1)
        br = k["branch"]["ratings"]
        assert (br["n"], br["mean"], br["satisfaction_pct"]) == (2, None, 50.0)
