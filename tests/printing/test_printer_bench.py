"""The benchmark runs and its byte figures meet the targets (timings are not asserted)."""

from __future__ import annotations

import argparse

import pytest

from tessera.bench.printer import run


@pytest.mark.timeout(120)
def test_bench_printer_quick() -> None:
    result = run(argparse.Namespace(json=True, quick=True))
    assert {"render_p50_ms", "render_cached_ratio", "bytes", "transfer_ms"} <= set(result)
    assert result["render_p50_ms"] > 0 and result["render_cached_ratio"] > 0
    b = result["bytes"]
    assert set(b) == {"auto", "raster", "text"}
    assert b["auto"]["XP-80C-CN"] <= 1024 and b["text"]["XP-80C-CN"] == b["auto"]["XP-80C-CN"]
    assert b["auto"]["TM-T20II"] <= 4096 and b["text"]["TM-T20II"] is None
    assert all(v <= 1024 for v in result["bytes_latin_clinic"].values())
    assert result["transfer_ms"]["auto"]["TM-T20II"]["9600"] == pytest.approx(
        b["auto"]["TM-T20II"] * 10 / 9600 * 1000, abs=0.1)
