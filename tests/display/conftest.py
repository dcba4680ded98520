"""Fixtures for the caller board and voice tests: emulator on a pty, clip set, clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from display_helpers import START

from tessera.clock import VirtualClock
from tessera.sim.board import BoardEmulator


@pytest.fixture(scope="session")
def clips_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide espeak-ng clip set for zh and en (only the clips the tests use)."""
    from tessera.display.voice import generate_clips, required_clips

    root = tmp_path_factory.mktemp("clips")
    for lang in ("zh", "en"):
        generate_clips(root, [lang], names=required_clips(lang, ["A", "B"]))
    return root


@pytest.fixture
def emulator() -> Iterator[BoardEmulator]:
    emu = BoardEmulator().start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture(autouse=True)
def _fresh_espeak_voice_cache() -> Iterator[None]:
    """Forget which espeak-ng voices exist after each test.

    Autouse fixtures are set up first and torn down last, so this runs after
    ``monkeypatch`` has restored PATH: a test that hides espeak-ng cannot leave
    "not installed" cached for the tests that follow.
    """
    yield
    from tessera.display.voice import installed_voices

    installed_voices.cache_clear()
