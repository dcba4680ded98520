"""python-escpos' capabilities pickle: built once, atomically, in a lasting cache dir,
and the library pointed at it without changing the process's environment."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from importlib import resources
from pathlib import Path

PROBE = """
import os, sys
from pathlib import Path
from tessera.drivers.escpos import CAPABILITIES_ENV, use_capabilities_cache
use_capabilities_cache(Path(sys.argv[1]))
import escpos.capabilities as caps
print(caps.pickle_dir)
print(os.environ.get(CAPABILITIES_ENV, "-"))
"""


def _probe(cache: Path, env: dict[str, str] | None = None) -> list[str]:
    run_env = {k: v for k, v in os.environ.items() if k != "ESCPOS_CAPABILITIES_PICKLE_DIR"}
    run_env.update(env or {})
    r = subprocess.run([sys.executable, "-c", PROBE, str(cache)], capture_output=True,
                       text=True, timeout=60, env=run_env, check=True)
    return r.stdout.split()


def test_cache_is_built_once_and_escpos_loads_it(tmp_path: Path) -> None:
    pickle_dir, env_after = _probe(tmp_path)
    assert pickle_dir == str(tmp_path)  # the library read our pickle ...
    assert env_after == "-"  # ... and the environment is as it was
    (pickled,) = tmp_path.glob("*.capabilities.pickle")
    source = json.loads((resources.files("escpos") / "capabilities.json").read_text())
    data = pickle.loads(pickled.read_bytes())
    assert data == source and "TM-T20II" in data["profiles"]
    assert not list(tmp_path.glob("*.tmp"))  # written through a temporary, then renamed
    mtime = pickled.stat().st_mtime_ns
    assert _probe(tmp_path)[0] == str(tmp_path)
    assert pickled.stat().st_mtime_ns == mtime  # up to date: not rewritten


def test_a_directory_the_user_set_is_respected(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    pickle_dir, env_after = _probe(tmp_path / "ours", {"ESCPOS_CAPABILITIES_PICKLE_DIR": str(mine)})
    assert (pickle_dir, env_after) == (str(mine), str(mine))
    assert not (tmp_path / "ours").exists()


def test_unwritable_cache_leaves_the_library_default(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    pickle_dir, env_after = _probe(blocker / "escpos")
    assert pickle_dir != str(blocker / "escpos") and env_after == "-"
