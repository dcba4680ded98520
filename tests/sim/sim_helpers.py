"""Helpers of the simulated-bus tests (subprocesses with bounded waits)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def tessera(*args: str, env: dict[str, str], timeout_s: float = 30.0
            ) -> subprocess.CompletedProcess[str]:
    """Run ``tessera ARGS`` to completion (bounded)."""
    return subprocess.run([sys.executable, "-m", "tessera", *args], capture_output=True,
                          text=True, env=env, timeout=timeout_s, stdin=subprocess.DEVNULL)


class Procs:
    """Long-running ``tessera`` processes of one test; every one is stopped at teardown."""

    def __init__(self) -> None:
        self.procs: list[tuple[subprocess.Popen[str], Path]] = []

    def start(self, *args: str, env: dict[str, str], log: Path) -> subprocess.Popen[str]:
        out = open(log, "w", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        proc = subprocess.Popen([sys.executable, "-m", "tessera", *args], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                                env=env)
        out.close()  # the child has its own copy
        self.procs.append((proc, log))
        return proc

    def wait_file(self, proc: subprocess.Popen[str], path: Path,
                  timeout_s: float = 30.0) -> None:
        """Wait for ``proc``'s ready file; fail with its log if it exits or times out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if path.exists():
                return
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        log = next(lg for p, lg in self.procs if p is proc)
        pytest.fail(f"{proc.args!r} not ready (rc={proc.poll()}):\n"
                    + log.read_text(encoding="utf-8")[-3000:])

    def stop(self, proc: subprocess.Popen[str]) -> int:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        return proc.returncode

    def stop_all(self) -> None:
        for proc, _ in reversed(self.procs):
            self.stop(proc)


def until(cond: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    """``cond()``'s first truthy value within ``timeout_s`` (else its last value)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.02)
    return cond()
