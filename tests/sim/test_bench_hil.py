"""``tessera bench hil --json --quick`` runs both paths and emits its keys (timings are
not asserted: the machine may be shared)."""

from __future__ import annotations

import json
import os

import pytest
from sim_helpers import tessera

KEYS = {f"{path}_{label}_ms" for label in ("p50", "p99") for path in (
    "bus_press_to_handler", "bus_press_to_ticket", "inprocess_press_to_handler",
    "inprocess_press_to_ticket", "bus_added")}


@pytest.mark.timeout(120)
def test_bench_hil_quick_emits_its_keys() -> None:
    r = tessera("bench", "hil", "--json", "--quick", env=dict(os.environ), timeout_s=110)
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.loads(r.stdout)
    assert set(result) >= KEYS, sorted(KEYS - set(result))
    assert result["samples"] == 15
    assert all(result[k] > 0 for k in KEYS)
    # a ticket comes after its handler started, on both paths
    assert result["bus_press_to_ticket_p50_ms"] > result["bus_press_to_handler_p50_ms"]
    assert result["inprocess_press_to_ticket_p50_ms"] > \
        result["inprocess_press_to_handler_p50_ms"]
