"""Topic contract and backoff (pure)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tessera.drivers.backoff import backoff_delay
from tessera.mqtt.topics import TopicError, Topics, matches, parse

NAMES = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


def test_topics_of_a_device() -> None:
    t = Topics("acme", "b1", "kiosk-1")
    assert t.status == "tessera/v1/acme/b1/kiosk-1/status"
    assert t.state("printer") == "tessera/v1/acme/b1/kiosk-1/state/printer"
    assert t.event("ticket.no_show") == "tessera/v1/acme/b1/kiosk-1/evt/ticket.no_show"
    assert t.request("call-next") == "tessera/v1/acme/b1/kiosk-1/req/call-next"
    assert t.request_filter == "tessera/v1/acme/b1/+/req/+"
    assert matches(t.request_filter, t.request("call-next"))
    assert t.response("kiosk-1") == "tessera/v1/acme/b1/engine/res/kiosk-1"


@pytest.mark.parametrize("bad", ["Acme", "a_b", "-a", "a-", "", "a/b", "a+", "#", "é", "acme\n"])
def test_bad_names_are_refused(bad: str) -> None:
    with pytest.raises(TopicError, match="a-z"):
        Topics(bad, "b1", "kiosk")
    with pytest.raises(ValueError):
        Topics("acme", "b1", "kiosk").state(bad)


@settings(max_examples=50, deadline=None)
@given(tenant=NAMES, branch=NAMES, device=NAMES, part=NAMES)
def test_parse_round_trips(tenant: str, branch: str, device: str, part: str) -> None:
    t = Topics(tenant, branch, device)
    p = parse(t.state(part))
    assert (p.tenant, p.branch, p.device, p.kind, p.rest) == (tenant, branch, device, "state", part)
    req = parse(t.request(part))
    assert (req.device, req.kind, req.rest) == (device, "req", part)


@pytest.mark.parametrize("bad", ["tessera/v2/a/b/c/status", "tessera/v1/a/b/c/status/x",
                                 "tessera/v1/a/b/c/blob/x", "tessera/v1/A/b/c/status",
                                 "tessera/v1/a/b"])
def test_parse_refuses_foreign_topics(bad: str) -> None:
    with pytest.raises(TopicError):
        parse(bad)


def test_filter_matching() -> None:
    assert matches("tessera/v1/a/b/+/evt/#", "tessera/v1/a/b/k/evt/ticket.issued")
    assert not matches("tessera/v1/a/b/+/evt/#", "tessera/v1/a/b/k/state/x")
    assert matches("a/+/c", "a/b/c") and not matches("a/+/c", "a/b/c/d")


def test_backoff_is_exponential_capped_and_jittered() -> None:
    rng = random.Random(1)
    d = [backoff_delay(a, 0.5, 60, rng) for a in range(12)]
    assert all(0.25 <= d[0] <= 0.5 for _ in range(1))
    assert all(30 <= x <= 60 for x in d[8:])
    samples = {round(backoff_delay(3, 0.5, 60, rng), 6) for _ in range(20)}
    assert len(samples) > 10  # jittered: devices do not reconnect in lockstep
