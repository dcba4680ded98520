"""python-escpos' capabilities pickle: built once, atomically, in a lasting cache dir."""

from __future__ import annotations

import json
import os
import pickle
from importlib import resources
from pathlib import Path

import pytest
from tessera.drivers.escpos import use_capabilities_cache


def test_cache_is_built_once_and_points_escpos_at_it(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ESCPOS_CAPABILITIES_PICKLE_DIR", raising=False)
    use_capabilities_cache(tmp_path)
    assert os.environ["ESCPOS_CAPABILITIES_PICKLE_DIR"] == str(tmp_path)
    (pickled,) = tmp_path.glob("*.capabilities.pickle")
    source = json.loads((resources.files("escpos") / "capabilities.json").read_text())
    data = pickle.loads(pickled.read_bytes())
    assert data == source and "TM-T20II" in data["profiles"]
    assert not list(tmp_path.glob("*.tmp"))  # written through a temporary, then renamed
    mtime = pickled.stat().st_mtime_ns
    monkeypatch.delenv("ESCPOS_CAPABILITIES_PICKLE_DIR")
    use_capabilities_cache(tmp_path)
    assert pickled.stat().st_mtime_ns == mtime  # up to date: not rewritten


def test_unwritable_cache_leaves_the_library_default(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ESCPOS_CAPABILITIES_PICKLE_DIR", raising=False)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    use_capabilities_cache(blocker / "escpos")
    assert "ESCPOS_CAPABILITIES_PICKLE_DIR" not in os.environ
