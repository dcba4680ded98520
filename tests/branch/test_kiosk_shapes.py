"""A kiosk on its own Pi (`tessera run kiosk`, the broker as `tessera broker config` writes
it, the simulated GPIO bus and printer) reports the refusals it decides to the engine
over MQTT, also those made while the engine was down: each lands once (issue 15)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from shape_support import SimBranch, bank_toml, free_port, until

pytestmark = [pytest.mark.mqtt, pytest.mark.slow, pytest.mark.timeout(300)]


def _refusals(b: SimBranch) -> list[tuple[Any, ...]]:
    with b.db("engine") as c:
        return c.execute("SELECT service, reason, device, key FROM refusals ORDER BY id"
                         ).fetchall()


def test_printer_faults_of_a_remote_kiosk_reach_the_engine_once(
        broker_base: Path, mosquitto: Any) -> None:
    toml = bank_toml(broker_base, port=free_port(), lan=True)
    with SimBranch(broker_base, toml) as b:
        cfg = b.start_hardware()
        b.start_broker(mosquitto)
        b.start("engine")
        b.start("kiosk")
        b.sim("printer", "paper-out")
        b.press("kiosk.cash")
        rows = until(lambda: _refusals(b), 60)
        assert rows and rows[0][:3] == ("cash", "printer_fault", "kiosk-main"), rows
        assert rows[0][3].startswith("kiosk-main.")

        b.stop("engine")  # the engine is down: the kiosk keeps the report and re-sends
        b.press("kiosk.cash")
        pending = cfg.path(cfg.storage.dir) / "kiosk-main.pending-refusals.json"
        assert until(lambda: pending.exists() and json.loads(pending.read_text()), 30)
        assert len(_refusals(b)) == 1
        b.start("engine")
        assert until(lambda: len(_refusals(b)) == 2, 90), _refusals(b)
        assert until(lambda: json.loads(pending.read_text()) == [], 30)
        rows = _refusals(b)
        assert [r[1] for r in rows] == ["printer_fault"] * 2 and rows[0][3] != rows[1][3]
        with b.db("engine") as c:
            (events,) = c.execute("SELECT COUNT(*) FROM outbox WHERE type = 'kiosk.refused'"
                                  ).fetchone()
        assert events == 2
        assert not b.tickets()  # nothing printed: the printer was out of paper
