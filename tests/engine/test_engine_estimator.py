"""Wait estimates against queueing theory (M/M/c, Erlang C) and heavy-tailed service."""

from __future__ import annotations

import bisect
import json
import math
import random
from collections.abc import Callable

import pytest
from engine_support import START, make_config

from tessera.bench.mmc import (
    erlang_c_wait,
    estimator_trace,
    exponential,
    lognormal,
    oracle_wait,
    rmse_by_k,
    simulate_mean_wait,
)
from tessera.cli import main
from tessera.clock import VirtualClock
from tessera.config import EngineSection
from tessera.engine import Engine
from tessera.engine.estimator import Server, ServiceHistory, estimate_wait

LAM, MEAN_S, C = 1.0, 4.0, 5  # per minute: λ = 1/min, mean service 4 min, 5 counters
WINDOW = EngineSection().recent_service_window


@pytest.mark.timeout(120)
def test_mmc_simulation_matches_erlang_c() -> None:
    simulated = simulate_mean_wait(1_000_000, LAM, 1 / MEAN_S, C, seed=0)
    theory = erlang_c_wait(LAM, 1 / MEAN_S, C)
    assert abs(simulated / theory - 1) < 0.02, (simulated, theory)


@pytest.mark.timeout(120)
def test_estimator_rmse_by_people_ahead_matches_erlang_limit() -> None:
    rows = estimator_trace(150_000, LAM, C, exponential(MEAN_S), seed=4, window=WINDOW)
    table = rmse_by_k(rows)
    for k in range(11):
        n, rel = table[k]
        assert n > 1000
        # the best any predictor can do for an Erlang(k+1) wait is 1/sqrt(k+1)
        assert rel <= 1.05 / math.sqrt(k + 1), (k, rel)


@pytest.mark.timeout(120)
def test_elapsed_service_times_beat_queue_length_on_lognormal() -> None:
    rows = estimator_trace(150_000, LAM, C, lognormal(MEAN_S, 1.5), seed=4, window=WINDOW)
    ours, plain = rmse_by_k(rows), rmse_by_k(rows, "plain")
    for k in range(11):
        assert ours[k][1] <= 1.002 * plain[k][1], (k, ours[k], plain[k])  # never worse
    # issue target: >= 10% lower at k=10. Measured 2.4%; the oracle (exact conditional
    # mean, true distribution) gains 5.5% (95% CI 3.8-7.1%): `tessera bench estimator`.
    assert ours[10][1] <= 0.98 * plain[10][1]


def test_oracle_is_exact_for_exponential_service() -> None:
    # memoryless: whatever the elapsed times, the wait behind k people at c busy counters
    # is Erlang(k+1, c/mean): mean (k+1)·mean/c, variance (k+1)·(mean/c)²
    rng = random.Random(1)
    mean, var = oracle_wait(10, [0.5, 3.0, 9.0, 20.0, 60.0], exponential(MEAN_S), rng, 20_000)
    assert mean == pytest.approx(11 * MEAN_S / C, rel=0.02)
    assert var == pytest.approx(11 * (MEAN_S / C) ** 2, rel=0.06)
    # the idle counter takes the one person ahead; then the first of two exponential(4)
    mean, var = oracle_wait(1, [None, 2.0], exponential(MEAN_S), rng, 20_000)
    assert mean == pytest.approx(MEAN_S / 2, rel=0.03)
    assert var == pytest.approx((MEAN_S / 2) ** 2, rel=0.06)
    assert oracle_wait(0, [None, 2.0], exponential(MEAN_S), rng, 10) == (0.0, 0.0)


def test_lognormal_residual_is_the_conditional_tail() -> None:
    """Inverse-CDF residuals against whole services drawn and kept if longer (rejection)."""
    dist, rng, n = lognormal(MEAN_S, 1.5), random.Random(2), 4000
    for elapsed in (0.5, 6.0, 20.0):
        drawn = sorted(dist.residuals(rng, elapsed, n))
        kept: list[float] = []
        for _ in range(2_000_000):
            s = dist(rng)
            if s > elapsed:
                kept.append(s - elapsed)
                if len(kept) == n:
                    break
        kept.sort()
        # two-sample Kolmogorov-Smirnov distance, 0.1% critical value 1.95·sqrt(2/n)
        d = max(abs(bisect.bisect_right(drawn, x) - bisect.bisect_right(kept, x)) / n
                for x in drawn + kept)
        assert d < 1.95 * math.sqrt(2 / n), (elapsed, d)


@pytest.mark.timeout(120)
def test_oracle_is_the_best_predictor_on_a_trace() -> None:
    """The oracle is E[wait | exact state]: no predictor beats it beyond MC noise."""
    futures = 100
    rows = [r for r in estimator_trace(60_000, LAM, C, lognormal(MEAN_S, 1.5), seed=4,
                                       window=WINDOW, oracle_futures=futures)
            if r.oracle is not None and r.oracle_var is not None]
    assert len(rows) > 3000 and {r.k for r in rows} == set(range(8, 13))
    mc = 1 + 1 / futures  # a mean of `futures` futures adds Var/futures to its MSE
    for k in range(8, 13):
        sel = [r for r in rows if r.k == k]
        oracle = sum((r.oracle - r.actual) ** 2 for r in sel if r.oracle is not None)
        plain = sum((r.plain - r.actual) ** 2 for r in sel)
        ours = sum((r.estimate - r.actual) ** 2 for r in sel)
        assert oracle <= mc * min(plain, ours), (k, oracle, plain, ours)  # measured ≤ 0.93
    actual = sum(r.actual for r in rows)
    # unbiased (k off by one would be ±8-10 %; residuals not given elapsed +19 %)
    assert abs(sum(r.actual - r.oracle for r in rows if r.oracle is not None)) < 0.04 * actual
    # its variance column is the spread of the actual waits around it (measured 1.02)
    sq = sum((r.oracle - r.actual) ** 2 for r in rows if r.oracle is not None)
    assert 0.8 < sq / sum(r.oracle_var for r in rows if r.oracle_var is not None) < 1.3


@pytest.mark.timeout(120)
def test_bench_estimator_quick_is_complete_and_deterministic(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TESSERA_BENCH_SEED", raising=False)
    outs = []
    for _ in range(2):
        assert main(["bench", "estimator", "--json", "--quick"]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    first, second = outs
    first.pop("seconds")
    second.pop("seconds")
    assert first == second  # same seeds, same figures
    assert first["k"] == 10 and first["target_gain"] == 0.10 and first["quick"] is True
    assert first["trace"]["seed"] == 4
    assert isinstance(first["attainable"], bool)
    assert first["attainable"] == (first["gain_oracle_ci"][1] >= 0.10)
    assert set(first["by_k"]) == {str(k) for k in range(8, 13)}
    for figures in [first, *first["by_k"].values()]:
        assert figures["n"] > 100
        for key in ("rmse_plain", "rmse_engine", "rmse_oracle", "gain_engine", "gain_oracle",
                    "rmse_oracle_rb", "gain_oracle_rb", "rmse_oracle_history",
                    "rmse_engine_known"):
            assert math.isfinite(figures[key]), key
        assert figures["gain_oracle"] == pytest.approx(
            1 - figures["rmse_oracle"] / figures["rmse_plain"], abs=1e-3)
        for key in ("gain_engine_ci", "gain_oracle_ci", "gain_oracle_rb_ci"):
            lo, hi = figures[key]
            assert math.isfinite(lo) and lo <= hi, key


def test_residual_uses_elapsed_time() -> None:
    # a counter stuck 20 min with a case is worth less than one that just started
    hist = ServiceHistory([60.0] * 90 + [3600.0] * 10, 300)
    fresh = estimate_wait(2, [Server(1.0, 1.0), Server(1.0, 1.0)], hist)
    stuck = estimate_wait(2, [Server(1.0, 1.0), Server(1.0, 1200.0)], hist)
    assert stuck > fresh
    # exponential history: memoryless, estimate = (k+1)·mean/c whatever the elapsed times
    exp_hist = ServiceHistory([240.0] * 3, 240.0)  # too few samples: exponential(default)
    assert estimate_wait(4, [Server(1.0, 500.0)] * 5, exp_hist) == pytest.approx(240.0, rel=1e-3)
    assert estimate_wait(0, [Server(1.0, None), Server(1.0, 5.0)], exp_hist) == 0.0
    assert estimate_wait(0, [], exp_hist) == math.inf


def test_engine_ticket_estimate_uses_busy_counters(open_engine: Callable[..., Engine],
                                                   clock: VirtualClock) -> None:
    engine = open_engine(make_config(), clock)
    engine.open_counter("c2")
    for _ in range(6):  # history: six 120 s services
        engine.confirm_printed(engine.issue("cash").id)
        engine.call_next("c2")
        clock.advance(120)
        engine.done("c2")
    engine.confirm_printed(engine.issue("cash").id)
    engine.call_next("c2")
    clock.advance(30)
    engine.open_counter("c1")  # cash weight 2 of 3, but only cash has people waiting
    engine.confirm_printed(engine.issue("cash").id)
    t = engine.issue("cash")
    hist = ServiceHistory([120.0] * 6, 240.0)
    expect = estimate_wait(1, [Server(1.0, None), Server(1.0, 30.0)], hist)
    assert t.people_ahead == 1
    assert t.est_wait_s == pytest.approx(expect, abs=0.1)
    assert clock.now() > START


def test_zero_length_service_history_gives_a_finite_estimate() -> None:
    """Call and done at the same virtual instant: no division by zero, a finite wait."""
    hist = ServiceHistory([0.0] * 60)
    wait = estimate_wait(5, [Server(1.0, None), Server(1.0, 0.0)], hist)
    assert math.isfinite(wait) and wait >= 0
