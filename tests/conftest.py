"""Shared fixtures. Hardware fakes are reset after every test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture
def bank_config_path() -> Path:
    return EXAMPLES / "bank.toml"


@pytest.fixture
def clinic_config_path() -> Path:
    return EXAMPLES / "clinic.toml"


@pytest.fixture
def mock_pins() -> Iterator[object]:
    """gpiozero's MockFactory as the default pin factory, reset after the test."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    previous = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.reset()
        Device.pin_factory = previous
