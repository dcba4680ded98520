"""Issue 19: each wait-estimator term against a hand-computed case, the baselines as
their papers define them, the realistic-day bench deterministic by seed, and live
estimates published when the queue moves."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from engine_support import START, make_config

from tessera.bench.estday import EngineHands, figures, metrics, run_day
from tessera.cli import main
from tessera.clock import VirtualClock
from tessera.config import load_config
from tessera.engine import Engine
from tessera.engine.estimator import (
    Load,
    Server,
    ServiceHistory,
    combined_wait,
    estimate_wait,
    queue_length_wait,
)
from tessera.engine.waitmodel import WaitModel
from tessera.roles.state import engine_state

EXP = ServiceHistory([], 240.0)  # no samples: exponential, mean 240 s
REPO = Path(__file__).resolve().parents[2]


def test_cycle_and_gap_make_each_slot_longer() -> None:
    # an idle counter: one slot now, then one per cycle + gap = 260 + 40 = 300 s;
    # k = 2 needs 3 slots: 1 + t/300 = 3 -> t = 600 (without the terms 1 + t/240 -> 480)
    idle = [Server(1.0, None)]
    assert estimate_wait(2, idle, EXP) == pytest.approx(480.0, rel=1e-4)
    assert estimate_wait(2, idle, EXP, Load(cycle_s=260.0, gap_s=40.0)) == \
        pytest.approx(600.0, rel=1e-4)
    # a busy counter's first slot comes gap_s after its customer leaves: memoryless
    # residual (mean 240), period = cycle 200 + gap 40 = 240:
    # N(t) = F(t-40) + (t-40 - 240 F)/240 = (t-40)/240 -> N = 1 at t = 280
    busy = [Server(1.0, 30.0)]
    assert estimate_wait(0, busy, EXP, Load(cycle_s=200.0, gap_s=40.0)) == \
        pytest.approx(280.0, rel=1e-4)


def test_arrivals_ahead_take_the_counters_mean_share() -> None:
    # idle share 1, period 300, higher-class arrivals 1 per 600 s:
    # 1 + t/300 = (2 + 1) + t/600 -> t = 1200
    load = Load(cycle_s=300.0, ahead_per_s=1 / 600)
    assert estimate_wait(2, [Server(1.0, None)], EXP, load) == pytest.approx(1200.0, rel=1e-4)
    # two counters, shares 1 and 0.5: capacity 1.5, mean share 0.75 of each slot taken
    # 1.5 (1 + t/300) = 3 + 0.75 t/600 -> t (1/200 - 1/800) = 1.5 -> t = 400
    two = [Server(1.0, None), Server(0.5, None)]
    assert estimate_wait(2, two, EXP, load) == pytest.approx(400.0, rel=1e-4)
    # arrivals ahead faster than the counters: capped at 90 % of their slots, finite
    flood = Load(cycle_s=300.0, ahead_per_s=1.0)
    assert math.isfinite(estimate_wait(2, [Server(1.0, None)], EXP, flood))


def test_booked_appointments_ahead_count_with_their_show_rate() -> None:
    idle = [Server(1.0, None)]
    # k = 1: 1 + t/300 = 2 at t = 300; an appointment due at 100 s is one more: t = 600
    assert estimate_wait(1, idle, EXP, Load(cycle_s=300.0, scheduled=(100.0,))) == \
        pytest.approx(600.0, rel=1e-3)
    # at a show rate of one half: 1 + t/300 = 2.5 -> t = 450
    assert estimate_wait(1, idle, EXP, Load(cycle_s=300.0, scheduled=(100.0,),
                                            scheduled_weight=0.5)) == \
        pytest.approx(450.0, rel=1e-3)
    # one due after the wait is over does not count
    assert estimate_wait(1, idle, EXP, Load(cycle_s=300.0, scheduled=(900.0,))) == \
        pytest.approx(300.0, rel=1e-3)


def _serve(engine: Engine, clock: VirtualClock, counter: str, *, service_s: float,
           gap_s: float, rounds: int, service: str = "cash") -> None:
    """``rounds`` customers, each already waiting when the previous one leaves."""
    engine.confirm_printed(engine.issue(service).id)
    for _ in range(rounds):
        engine.confirm_printed(engine.issue(service).id)  # the next one waits meanwhile
        engine.call_next(counter)
        clock.advance(service_s)
        engine.done(counter)
        clock.advance(gap_s)


def test_cycle_gap_and_rates_are_learned_from_the_store(
        open_engine: Callable[..., Engine], clock: VirtualClock) -> None:
    engine = open_engine(make_config(), clock)
    engine.open_counter("c2")
    _serve(engine, clock, "c2", service_s=200.0, gap_s=30.0, rounds=12)
    now = clock.now().timestamp()
    learned = WaitModel().learned(engine.conn, engine.cfg, now)
    assert learned.cycles["cash"] == pytest.approx(200.0)
    # 11 gaps of 30 s between a DONE and the next call of a ticket already waiting
    assert learned.gap_s == pytest.approx(30.0)
    for _ in range(3):
        engine.confirm_printed(engine.issue("cash", priority="priority").id)
    model = WaitModel()
    load = model.load(engine.conn, engine.cfg, engine.rules, "cash", engine.rules.normal_rank,
                      now)
    # 3 priority tickets in the last 30 min: 3 / 1800 s (the day has run 46 min)
    assert load.ahead_per_s == pytest.approx(3 / 1800)
    assert load.cycle_s == pytest.approx(200.0) and load.gap_s == pytest.approx(30.0)
    # a priority ticket itself has none of its class ahead of it
    top = model.load(engine.conn, engine.cfg, engine.rules, "cash", 0, now)
    assert top.ahead_per_s == 0.0
    # and the issue estimate uses them: one idle counter, k waiting, period 230 s plus
    # the priority arrivals (3/1800 per s): 1 + t/230 = (k + 1) + t·3/1800; printed as
    # the mean of that and QL (k+1)·s̄/1, s̄ = 13 services of 200 s shrunk towards the
    # default 240 s as 5 samples: (13·200 + 5·240) / 18
    engine.call_next("c2")  # a priority ticket, 30 s after the last DONE
    clock.advance(200)
    engine.done("c2")
    clock.advance(61)  # the engine re-reads what it learned once a minute
    t = engine.issue("cash")
    k = t.people_ahead
    model_s = k / (1 / 230 - 3 / 1800)
    ql = (k + 1) * (13 * 200 + 5 * 240) / 18
    assert t.est_wait_s == pytest.approx(0.5 * model_s + 0.5 * ql, rel=0.02)


def test_contested_share_of_a_shared_counter(open_engine: Callable[..., Engine],
                                             clock: VirtualClock) -> None:
    # c1 serves cash (weight 2) and accounts (1); all its calls while both had people
    # waiting went to accounts: the share moves from the weights towards accounts
    engine = open_engine(make_config(), clock)
    engine.open_counter("c1")
    for _ in range(3):
        engine.confirm_printed(engine.issue("cash").id)
    for _ in range(4):
        engine.confirm_printed(engine.issue("accounts").id)
        engine.call_specific("c1", engine.live_estimates("accounts")[0].number)
        clock.advance(600)
        engine.done("c1")
    now = clock.now().timestamp()
    model = WaitModel()
    shares = model.shares(engine.conn, engine.cfg, "c1", {"cash": 2.0, "accounts": 1.0},
                          {"cash", "accounts"}, now)
    # 2400 s on accounts + 1200·1/3 prior vs 1200·2/3 prior on cash
    assert shares["accounts"] == pytest.approx(2800 / 3600)
    assert shares["cash"] == pytest.approx(800 / 3600)
    # a service alone with people waiting gets the whole counter
    assert model.shares(engine.conn, engine.cfg, "c1", {"cash": 2.0, "accounts": 1.0},
                        {"cash"}, now) == {"cash": 1.0}


def test_range_is_calibrated_on_past_errors(open_engine: Callable[..., Engine],
                                            clock: VirtualClock) -> None:
    model = WaitModel()
    engine = open_engine(make_config(engine_extra="wait_range = true"), clock)
    now = clock.now().timestamp()
    # no history: an Erlang-like spread around the estimate, 1 ± 1.28/sqrt(k+1)
    low, high = model.interval(engine.conn, engine.cfg, 540.0, 3, now)
    assert low == pytest.approx(600 * (1 - 1.2815515655446004 / 2) - 60, rel=1e-6)
    assert high == pytest.approx(600 * (1 + 1.2815515655446004 / 2) - 60, rel=1e-6)
    # calibrated: the 10th/90th percentiles of log((actual+60)/(printed+60))
    learned = model.learned(engine.conn, engine.cfg, now)
    learned.ratios = {1: sorted(math.log(r) for r in [0.5] * 10 + [1.0] * 80 + [2.0] * 10)}
    low, high = model.interval(engine.conn, engine.cfg, 540.0, 3, now)
    # 100 ratios: q10 = 0.1·log 0.5 (between the 10th and 11th), q90 = 0.1·log 2
    assert low == pytest.approx(600 * 0.5 ** 0.1 - 60)
    assert high == pytest.approx(600 * 2 ** 0.1 - 60)
    assert 0.0 <= low <= 540.0 <= high
    # a ticket carries the range and its template fields
    t = engine.issue("cash")
    assert t.est_low_s is not None and t.est_high_s is not None
    assert t.est_low_s <= t.est_wait_s <= t.est_high_s


def test_baselines_as_defined_on_a_hand_built_trace(open_engine: Callable[..., Engine],
                                                    clock: VirtualClock) -> None:
    """QL = (k+1)·E[S]/c, LES = delay of the last customer to enter service, HOL =
    elapsed delay of the head of the line (Ibrahim & Whitt)."""
    cfg = make_config()
    engine = open_engine(cfg, clock)
    hands = EngineHands(engine.cfg, engine, clock, clock.now())
    engine.open_counter("c2")
    hands.advance_to(0)
    a = engine.issue("cash")
    engine.confirm_printed(a.id)
    hands.advance_to(100)
    b = engine.issue("cash")
    engine.confirm_printed(b.id)
    hands.advance_to(250)
    hands.staff("c2", "next")  # a: waited 250 s
    hands.advance_to(400)
    now = clock.now().timestamp()
    ql, les, hol = hands.baselines("cash", now)
    # k = 1 (b) waiting; no service time yet: the history mean is the default 240; c = 1
    assert ql == pytest.approx((1 + 1) * 240.0 / 1)
    assert les == pytest.approx(250.0)  # a, the last to enter service, had waited 250 s
    assert hol == pytest.approx(300.0)  # b, the head of the line, waiting since t = 100
    hands.advance_to(500)
    hands.staff("c2", "done")
    hands.staff("c2", "next")  # b enters service after 400 s
    now = clock.now().timestamp()
    # nobody waiting: HOL 0, LES b's 400 s, QL one service time (a's 250 s, shrunk
    # towards the default 240 while the history is short: (250 + 5·240)/6)
    ql, les, hol = hands.baselines("cash", now)
    assert les == pytest.approx(400.0) and hol == 0.0
    assert ql == pytest.approx((250 + 5 * 240) / 6)


def test_bench_day_is_deterministic_by_seed() -> None:
    cfg = load_config(REPO / "examples" / "bank.toml")
    one = run_day(cfg, 7, minutes=150)
    two = run_day(cfg, 7, minutes=150)
    assert len(one.rows) > 50

    def seen(rows: list[Any]) -> list[dict[str, Any]]:  # ticket ids are random (UUIDv7)
        return [{k: v for k, v in vars(r).items() if k != "ticket_id"} for r in rows]

    assert seen(one.rows) == seen(two.rows)
    other = run_day(cfg, 8, minutes=150)
    assert seen(other.rows) != seen(one.rows)
    m = metrics(one.rows)
    assert m["all"]["n"] == len(one.rows)
    assert set(m["by_ahead"]) == {"0", "1-2", "3-5", "6-10", "11+"}
    f = figures(one.rows)
    assert f["mae"] >= abs(f["bias"]) and 0 <= f["late_10_pct"] <= 100


def test_oracle_futures_leave_the_day_alone_and_follow_the_seed() -> None:
    """The oracle bound forks futures from the exact state: the day played around them
    is the day without them (no future writes into the parent's store or script), the
    futures are deterministic by seed and vary from one another (a new draw each)."""
    from tessera.bench import estoracle

    cfg = load_config(REPO / "examples" / "bank.toml")
    plain = run_day(cfg, 5, minutes=120)

    def played(seed: int) -> tuple[Any, list[Any]]:
        day = run_day(cfg, seed, minutes=120,
                      hands_cls=estoracle.hands_class(seed, futures=4, every=6))
        return day, estoracle.oracle_rows(day)

    day, rows = played(5)

    def seen(rows: list[Any]) -> list[dict[str, Any]]:
        return [{k: v for k, v in vars(r).items() if k != "ticket_id"} for r in rows]

    assert seen(day.rows) == seen(plain.rows)
    assert len(rows) >= 5 and all(len(r.futures) == 4 for r in rows)
    assert [r.futures for r in played(5)[1]] == [r.futures for r in rows]
    assert any(len(set(r.futures)) > 1 for r in rows)
    s = estoracle.summary(rows)
    assert s["n"] == len(rows) and s["oracle_spread"] >= 0
    m = statistics.median(rows[0].futures)
    assert rows[0].oracle == m
    assert rows[0].spread == pytest.approx(sum(abs(x - m) for x in rows[0].futures) / 4)


def test_bench_estimator_scenario_cli(capsys: pytest.CaptureFixture[str]) -> None:
    outs = []
    for _ in range(2):
        assert main(["bench", "estimator", "--scenario", "clinic", "--seed", "3", "--seeds",
                     "2", "--json"]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    for o in outs:
        o.pop("seconds_per_day")
        for d in o["days"]:
            d.pop("seconds")
    assert outs[0] == outs[1]
    first = outs[0]
    assert first["seeds"] == [3, 4] and set(first["per_seed"]) == {"3", "4"}
    assert set(first["targets"]) >= {"mae_min", "peak_mae_min", "late_10_pct",
                                     "gain_vs_best_pct", "coverage_pct",
                                     "worst_hour_bias_min"}
    assert first["pooled"]["all"]["coverage_pct"] is not None
    with pytest.raises(SystemExit):
        main(["bench", "estimator", "--scenario", "bank", "--seeds", "0"])


def test_live_estimates_published_when_the_queue_moves(
        open_engine: Callable[..., Engine], clock: VirtualClock) -> None:
    engine = open_engine(make_config(engine_extra="wait_range = true"), clock)
    engine.open_counter("c2")
    for _ in range(4):
        engine.confirm_printed(engine.issue("cash").id)
    branch: Any = SimpleNamespace(cfg=engine.cfg, engine=engine)
    report = engine_state(branch)
    sent: dict[str, str] = {}
    messages: list[str] = []

    def publish() -> dict[str, Any]:
        for _, part, data in report():
            body = json.dumps(data, sort_keys=True)
            if sent.get(part) != body:  # Presence.set_state sends only a changed body
                sent[part] = body
                messages.append(part)
        shown: dict[str, Any] = json.loads(sent["wait-cash"])
        return shown

    first = publish()
    assert [t["people_ahead"] for t in first["tickets"]] == [0, 1, 2, 3]
    assert all(t["est_low_s"] <= t["est_wait_s"] <= t["est_high_s"] for t in first["tickets"])
    messages.clear()
    for _ in range(20):  # the queue does not move: nothing to send, second after second
        clock.advance(1)
        publish()
    assert "wait-cash" not in messages
    engine.call_next("c2")  # the queue moves: everyone's estimate is sent again
    moved = publish()
    assert [t["people_ahead"] for t in moved["tickets"]] == [0, 1, 2]
    assert "wait-cash" in messages
    # the per-ticket port: the same figures for one ticket, None once it was called
    tid = moved["tickets"][0]["ticket_id"]
    live = engine.ticket_estimate(tid)
    assert live is not None and live.people_ahead == 0
    clock.advance(timedelta(minutes=1).total_seconds())
    engine.done("c2")
    engine.call_next("c2")
    assert engine.ticket_estimate(tid) is None


def test_mmc_figures_unchanged_without_load() -> None:
    """estimate_wait without a Load is the renewal model the M/M/c tests measure."""
    assert estimate_wait(4, [Server(1.0, 500.0)] * 5, ServiceHistory([240.0] * 3, 240.0)) == \
        pytest.approx(240.0, rel=1e-3)
    assert estimate_wait(4, [Server(1.0, 500.0)] * 5, ServiceHistory([240.0] * 3, 240.0),
                         Load()) == pytest.approx(240.0, rel=1e-3)
    assert START.tzinfo is not None


def test_wait_range_flag_reaches_the_ticket_and_its_template(
        open_engine: Callable[..., Engine], clock: VirtualClock, tmp_path: Path) -> None:
    from tessera.config import parse_config
    from tessera.errors import ConfigError
    from tessera.printing.template import TicketTemplate, template_errors

    off = open_engine(make_config(), clock)
    t = off.issue("cash")
    assert (t.est_low_s, t.est_high_s) == (None, None)
    issued = off.events_since(0)[-1]
    assert issued["type"] == "ticket.issued" and "est_low_s" not in issued["data"]
    f = TicketTemplate(load_config(REPO / "examples" / "bank.toml")).fields(t)
    assert f"{f['est_low_min']}" == "" and f"{f['est_high_min']:d}" == ""
    off.close()
    on = Engine.open(make_config(engine_extra="wait_range = true"), clock,
                     tmp_path / "on.db", trust=lambda: True)
    try:
        t = on.issue("cash")
        data = on.events_since(0)[-1]["data"]
        assert (data["est_low_s"], data["est_high_s"]) == (t.est_low_s, t.est_high_s)
        f = TicketTemplate(on.cfg).fields(t)
        assert isinstance(f["est_low_min"], int) and isinstance(f["est_high_min"], int)
        assert f["est_high_min"] > f["est_low_min"]  # type: ignore[operator]
    finally:
        on.close()
    assert template_errors("ticket.extra_line", "about {est_low_min}-{est_high_min:d} min") == []
    with pytest.raises(ConfigError, match="wait_range"):
        parse_config(make_config_text('wait_range = "yes"'))


def make_config_text(engine_extra: str) -> str:
    from engine_support import BASE_TOML

    return BASE_TOML.format(position="back", engine_extra=engine_extra, cash_extra="")


def test_counters_due_to_open_or_close() -> None:
    # a counter opening in 300 s: its first call then, one per 240 s after it
    later = [Server(1.0, None, start_s=300.0)]
    assert estimate_wait(0, later, EXP) == pytest.approx(300.0, rel=1e-4)
    assert estimate_wait(1, later, EXP) == pytest.approx(540.0, rel=1e-4)
    # two idle counters, one closing in 100 s: [1 + 100/240] + [1 + t/240] = 4 -> t = 380
    closing = [Server(1.0, None, stop_s=100.0), Server(1.0, None)]
    assert estimate_wait(3, closing, EXP) == pytest.approx(380.0, rel=1e-4)
    # every counter closes before this ticket's turn: the estimate as if they stayed
    assert estimate_wait(5, [Server(1.0, None, stop_s=100.0)], EXP) == \
        pytest.approx(1200.0, rel=1e-4)


def test_staffing_windows_from_counter_hours() -> None:
    from zoneinfo import ZoneInfo

    from tessera.engine.waitmodel import staffing

    tz = ZoneInfo("Europe/London")
    hours: dict[str, tuple[str, ...]] = {"default": ("09:00-12:00", "13:00-17:00")}
    at = START.replace(hour=12, minute=30).timestamp()  # GMT = UTC in March
    assert staffing(hours, at, tz, is_open=False) == (1800.0, 16200.0)
    assert staffing(hours, START.replace(hour=10).timestamp(), tz, True) == (0.0, 7200.0)
    assert staffing(hours, START.replace(hour=17, minute=30).timestamp(), tz, False) is None
    assert staffing({}, at, tz, is_open=True) == (0.0, math.inf)
    assert staffing({}, at, tz, is_open=False) is None


def test_engine_counts_a_counter_due_to_open(open_engine: Callable[..., Engine],
                                             clock: VirtualClock) -> None:
    from tessera.config import parse_config
    from tessera.errors import ConfigError

    text = make_config_text("").replace('id = "c2"\nnumber = 2\n',
                                        'id = "c2"\nnumber = 2\nhours = { default = '
                                        '["09:10-17:00"] }\n')
    engine = open_engine(parse_config(text), clock)  # 09:00: c2 is due at 09:10
    t = engine.issue("cash")
    assert t.people_ahead == 0 and t.est_wait_s == pytest.approx(600.0, rel=1e-3)
    bad = text.replace('["09:10-17:00"]', '["09:10-09:10"]').replace(  # an empty span
        'hours = { default', 'hours = { moon = ["09:00-10:00"], default')
    with pytest.raises(ConfigError) as err:
        parse_config(bad)
    assert "counters[1].hours.default[0]" in str(err.value)
    assert "counters[1].hours.moon: unknown day" in str(err.value)


def test_live_gate_holds_estimates_that_merely_count_down() -> None:
    from tessera.engine.live import LiveEstimate, LiveGate, moved

    def est(s: float, at: float, ahead: int = 3) -> LiveEstimate:
        return LiveEstimate("t1", "A001", "cash", None, ahead, s, None, None, 0.0, at)

    sent = est(600.0, 0.0)
    assert not moved(sent, est(575.0, 30.0))  # the sent 600 counts down to 570: 5 s off
    assert not moved(sent, est(620.0, 30.0))  # 50 s off: under a minute
    assert moved(sent, est(700.0, 30.0))  # 130 s off, and more than 10 % of 700
    assert moved(sent, est(570.0, 30.0, ahead=2))  # someone ahead was called
    # 61 s off a 1 h estimate is under 10 %: held
    assert not moved(est(3600.0, 0.0), est(3661.0, 0.0))
    gate = LiveGate()
    assert gate.hold([sent]) == [sent]
    assert gate.hold([est(575.0, 30.0)]) == [sent]  # held: the same body is published
    new = est(700.0, 30.0)
    assert gate.hold([new]) == [new]
    assert gate.hold([]) == [] and gate.hold([sent]) == [sent]  # a ticket that left is forgotten


def test_a_shared_counter_busy_with_another_service_uses_its_residual() -> None:
    # memoryless histories: ours mean 240, the other service's 600. With the other
    # service's customer at the counter the next slot is later: for k = 0,
    # N(t) = F(t) + (t - 600 F)/240 with F = 1 - exp(-t/600), against t/240 for ours
    other = ServiceHistory([], 600.0)
    load = Load(cycle_s=240.0, gap_s=0.0001)
    ours = estimate_wait(0, [Server(1.0, 30.0)], EXP, load)
    theirs = estimate_wait(0, [Server(1.0, 30.0, history=other)], EXP, load)
    assert ours == pytest.approx(240.0, rel=1e-3)

    def n(t: float) -> float:
        f = 1 - math.exp(-t / 600.0)
        return f + (t - 600.0 * f) / 240.0

    assert n(theirs - 0.0001) == pytest.approx(1.0, abs=1e-4)
    assert theirs > ours


def test_printed_estimate_combines_the_model_with_queue_length() -> None:
    """With the learned terms active and someone ahead, the printed figure is the mean of
    the model and QL (k+1)·s̄/c, c counting a shared counter by its configured weight
    share and only counters calling now; else the model alone."""
    hist = ServiceHistory([300.0] * 60)  # mean 300 s
    load = Load(cycle_s=300.0)
    # counter A alone on the service; B shared, learned share 0.5 but weight share 1.0
    # (its other service has nobody waiting); C opens in 10 min
    servers = [Server(1.0, None), Server(0.5, None, weight_share=1.0),
               Server(1.0, None, start_s=600.0)]
    model = estimate_wait(3, servers, hist, load)
    # model by hand: before C opens, 1.5·(1 + t/300) slots: 4 slots at t = 500 < 600
    assert model == pytest.approx(500.0, abs=0.01)
    # QL: (3 + 1)·300 / (1 + 1.0) = 600 (C is not calling yet)
    assert queue_length_wait(3, servers, hist) == pytest.approx(600.0)
    assert combined_wait(3, servers, hist, load) == pytest.approx(550.0, abs=0.01)
    # nobody ahead, no learned cycle yet, or no load: the model alone
    assert combined_wait(0, servers, hist, load) == estimate_wait(0, servers, hist, load)
    assert combined_wait(3, servers, hist, Load()) == estimate_wait(3, servers, hist, Load())
    assert combined_wait(3, servers, hist) == estimate_wait(3, servers, hist)
    # no counter calling now: QL is infinite and the model stands
    later = [Server(1.0, None, start_s=600.0)]
    assert math.isinf(queue_length_wait(3, later, hist))
    assert combined_wait(3, later, hist, load) == estimate_wait(3, later, hist, load)


def test_engine_prints_the_combination_with_weight_shares(
        open_engine: Callable[..., Engine], clock: VirtualClock) -> None:
    """Through the engine: c1 (cash weight 2, accounts 1) with people waiting for both
    counts 2/3 in QL, whatever share it learned; the issued ticket carries the mean."""
    engine = open_engine(make_config(), clock)
    engine.open_counter("c2")
    _serve(engine, clock, "c2", service_s=200.0, gap_s=30.0, rounds=12)
    engine.open_counter("c1")
    engine.confirm_printed(engine.issue("accounts").id)
    for _ in range(2):  # with the one _serve left waiting: 3 ahead
        engine.confirm_printed(engine.issue("cash").id)
    now = clock.now().timestamp()
    servers = engine._servers("cash", now, {"cash", "accounts"})
    assert sorted(s.weight_share or 0 for s in servers) == pytest.approx([2 / 3, 1.0])
    t = engine.issue("cash")
    hist = engine._history("cash")
    load = engine._waits.load(engine.conn, engine.cfg, engine.rules, "cash",
                              engine.rules.normal_rank, now)
    assert load.cycle_s is not None and t.people_ahead == 3
    model = estimate_wait(3, servers, hist, load)
    ql = 4 * hist.mean / (1 + 2 / 3)
    assert t.est_wait_s == pytest.approx(0.5 * model + 0.5 * ql, abs=0.1)


def test_bench_estimator_oracle_options(capsys: pytest.CaptureFixture[str]) -> None:
    """--oracle F / --oracle-every N reach the oracle; bad values are refused, named."""
    assert main(["bench", "estimator", "--scenario", "bank", "--seed", "3", "--oracle", "2",
                 "--oracle-every", "40", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    o = out["oracle"]
    assert o["futures"] == 2 and o["every"] == 40
    assert 1 <= o["all"]["n"] <= out["pooled"]["all"]["n"] // 40 + 1
    assert o["all"]["futures_per_ticket"] <= 2 and o["all"]["oracle_mae"] >= 0
    for bad, says in ((["--oracle", "-1"], "give 0 to 200 futures"),
                      (["--oracle", "many"], "give a whole number of futures"),
                      (["--oracle-every", "0"], "give 1 or more")):
        with pytest.raises(SystemExit) as exc:
            main(["bench", "estimator", "--scenario", "bank", *bad, "--json"])
        assert exc.value.code == 2
        assert says in capsys.readouterr().err
