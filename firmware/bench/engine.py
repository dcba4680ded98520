"""``tessera bench engine``: durable engine commands/s vs raw fsync/s on the same disk.

Each issue→confirm→call→done cycle is four commands, each its own
``BEGIN IMMEDIATE … COMMIT`` (WAL, ``synchronous=FULL``: one fsync each).
In the same run, in the same directory, we time bare 4 KiB ``write`` +
``fsync`` — the ceiling for any durable command rate on that disk — and
report the ratio (target ≥ 0.8). Phases alternate (fsync, engine, fsync)
so a noisy shared machine affects both sides alike.
``TESSERA_BENCH_DIR`` picks the directory (default: the system temp dir).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def _fsync_rate(directory: Path, seconds: float) -> float:
    path = directory / "fsync.bin"
    block = os.urandom(4096)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            os.write(fd, block)
            os.fsync(fd)
            n += 1
        return n / (time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()


def _engine_phase(directory: Path, seconds: float) -> tuple[int, float, list[float]]:
    from tessera.clock import SystemClock
    from tessera.engine._crashloop import config
    from tessera.engine.engine import Engine

    engine = Engine.open(config(), SystemClock(), directory / "engine.db", trust=lambda: True)
    engine.open_counter("c1")
    lat: list[float] = []
    ops, start = 0, time.perf_counter()
    try:
        while time.perf_counter() - start < seconds:
            t0 = time.perf_counter()
            t = engine.issue("cash")
            t1 = time.perf_counter()
            engine.confirm_printed(t.id)
            t2 = time.perf_counter()
            engine.call_next("c1")
            t3 = time.perf_counter()
            engine.done("c1")
            t4 = time.perf_counter()
            lat += [t1 - t0, t2 - t1, t3 - t2, t4 - t3]
            ops += 4
        return ops, time.perf_counter() - start, lat
    finally:
        engine.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    seconds = 0.5 if args.quick else 3.0
    base = os.environ.get("TESSERA_BENCH_DIR") or None
    with tempfile.TemporaryDirectory(prefix="tessera-bench-", dir=base) as tmp:
        d = Path(tmp)
        f1 = _fsync_rate(d, seconds)
        ops, elapsed, lat = _engine_phase(d, seconds * 2)
        f2 = _fsync_rate(d, seconds)
    fsync = (f1 + f2) / 2
    ops_per_s = ops / elapsed
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [lat[0]] * 99
    return {
        "ops_per_s": round(ops_per_s, 1),
        "cycles_per_s": round(ops_per_s / 4, 1),
        "commit_p50_ms": round(q[49] * 1000, 3),
        "commit_p99_ms": round(q[98] * 1000, 3),
        "fsync_per_s": round(fsync, 1),
        "ratio_vs_fsync": round(ops_per_s / fsync, 3),
        "commands": ops,
        "directory": str(Path(base or tempfile.gettempdir()).resolve()),
        "quick": bool(args.quick),
    }
