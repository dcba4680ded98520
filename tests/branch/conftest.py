"""Fixtures of the branch tests: a shared voice-clip cache (espeak-ng runs once)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def clips_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory of generated announcement clips for the whole session."""
    return tmp_path_factory.mktemp("clips")
