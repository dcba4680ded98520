"""Every ring test runs against both implementations (compiled and pure twin)."""

from __future__ import annotations

import pytest

from tessera.cext import implementations
from tessera.cext._ring_py import Ring


@pytest.fixture(params=sorted(implementations()))
def impl(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def ring_cls(impl: str) -> type[Ring]:
    return implementations()[impl]
