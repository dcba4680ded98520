"""``tessera bench report --json --quick`` builds its store and emits its keys (timings are
the benchmark's business, not asserted here; the month run is in docs/kpi.md)."""

from __future__ import annotations

import json

import pytest

from tessera.cli import main


@pytest.mark.timeout(120)
def test_bench_report_quick_emits_its_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "report", "--json", "--quick"]) == 0
    r = json.loads(capsys.readouterr().out)
    for key in ("month_kpi_s", "month_charts_s", "month_read_s", "month_compute_s",
                "month_html_s", "month_csv_json_s", "day_close_kpi_ms", "dominant",
                "within_target", "target_s"):
        assert key in r, key
    assert r["days"] == 7 and r["tickets"] == 7 * 300  # every synthetic ticket is in the store
    assert r["visits"] > r["tickets"] * 0.95 and r["ratings"] > 0
    assert r["dominant"] in r and r["month_kpi_s"] > 0
