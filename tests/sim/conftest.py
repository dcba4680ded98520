"""Fixtures of the simulated-bus tests: short socket paths, processes killed at teardown."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sim_helpers import Procs


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short directory for Unix sockets (AF_UNIX paths stop at 107 bytes; tmp_path is long)."""
    d = Path(tempfile.mkdtemp(prefix="tsim-", dir="/tmp"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def procs() -> Iterator[Procs]:
    p = Procs()
    try:
        yield p
    finally:
        p.stop_all()


@pytest.fixture
def sim_env(sock_dir: Path) -> dict[str, str]:
    """The environment of a simulator and its firmware: one socket, no stray device name."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TESSERA_DEVICE", "GPIOZERO_PIN_FACTORY")}
    env["TESSERA_SIM_SOCKET"] = str(sock_dir / "bus.sock")
    return env
