"""Fixtures for the dispatcher tests."""

from __future__ import annotations

import pytest
from dispatch_helpers import Recorder

from tessera.cext import implementations


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(params=sorted(implementations()))
def ring_cls(request: pytest.FixtureRequest) -> type:
    return implementations()[request.param]
