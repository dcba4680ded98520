"""Ring semantics against a model: a deque with the same capacity and drop policy."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tessera.cext._ring_py import Ring

Record = tuple[int, int, int, int]
records = st.tuples(
    st.integers(-(1 << 63), (1 << 63) - 1),
    st.integers(-(1 << 31), (1 << 31) - 1),
    st.integers(0, 2),
    st.integers(-(1 << 31), (1 << 31) - 1),
)


def machine_for(ring_cls: type[Ring]) -> type[RuleBasedStateMachine]:
    class RingVsDeque(RuleBasedStateMachine):
        ring: Ring
        model: deque[Record]

        @initialize(log2=st.integers(1, 5))
        def create(self, log2: int) -> None:
            self.capacity = 1 << log2
            self.ring = ring_cls(self.capacity)
            self.model = deque()
            self.pushed = self.popped = self.dropped = self.high_water = 0

        @rule(rec=records)
        def push(self, rec: Record) -> None:
            accepted = self.ring.push(*rec)
            if len(self.model) < self.capacity:
                self.model.append(rec)
                self.pushed += 1
                self.high_water = max(self.high_water, len(self.model))
                assert accepted is True
            else:
                self.dropped += 1  # the NEW record is the one dropped
                assert accepted is False

        @rule(batch=st.lists(records, min_size=1, max_size=40))
        def push_burst(self, batch: list[Record]) -> None:
            for rec in batch:
                self.push(rec)

        @rule(n=st.integers(-1, 40))
        def pop_many(self, n: int) -> None:
            got = self.ring.pop_many(n)
            expected = [self.model.popleft() for _ in range(min(max(n, 0), len(self.model)))]
            self.popped += len(expected)
            assert got == expected

        @precondition(lambda self: len(self.model) == 0)
        @rule()
        def wait_on_empty_times_out(self) -> None:
            assert self.ring.wait(0) is False

        @precondition(lambda self: len(self.model) > 0)
        @rule()
        def wait_on_ready_returns_true(self) -> None:
            assert self.ring.wait(0) is True

        @rule()
        def wake(self) -> None:
            self.ring.wake()
            assert self.ring.wait(0) is (len(self.model) > 0)

        @invariant()
        def counters_match(self) -> None:
            assert len(self.ring) == len(self.model)
            assert self.ring.counters() == {
                "pushed": self.pushed, "popped": self.popped,
                "dropped": self.dropped, "high_water": self.high_water,
            }

    return RingVsDeque


@pytest.mark.timeout(120)
def test_ring_behaves_like_a_bounded_deque(ring_cls: type[Ring]) -> None:
    run_state_machine_as_test(
        machine_for(ring_cls),
        settings=settings(max_examples=120, stateful_step_count=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow]),
    )
