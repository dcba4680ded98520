"""Reconnect backoff (issue 12, fast recovery): the first attempts after a drop come
within reconnect_min_s, and no wait is longer than a quarter of the outage so far
(nor reconnect_max_s), so a broker back after T seconds is found within ~T/4."""

from __future__ import annotations

import random

from tessera.drivers.backoff import backoff_delay


def test_first_attempt_after_a_drop_is_within_the_minimum() -> None:
    rng = random.Random(1)
    assert all(backoff_delay(0, 0.5, 60.0, rng, since_s=0.0) <= 0.5 for _ in range(100))


def test_waits_are_capped_by_a_quarter_of_the_outage_and_the_maximum() -> None:
    rng = random.Random(2)
    for attempt in range(40):
        for since in (0.5, 3.0, 20.0, 100.0, 10_000.0):
            d = backoff_delay(attempt, 0.5, 60.0, rng, since_s=since)
            assert d <= max(0.5, min(60.0, since / 4)) + 1e-9
    # without the outage time: the plain capped exponential (the first connect)
    assert backoff_delay(30, 0.5, 60.0, random.Random(3)) >= 30.0


def test_a_simulated_outage_finds_the_broker_within_a_quarter_of_its_length() -> None:
    rng = random.Random(4)
    for outage in (1.0, 3.0, 10.0, 40.0, 300.0):
        t, attempt = 0.0, 0
        while t < outage:  # attempts fail while the broker is down
            t += backoff_delay(attempt, 0.5, 60.0, rng, since_s=t)
            attempt += 1
        assert t - outage <= max(0.5, outage / 4) * 1.34 + 0.01, (outage, t)
