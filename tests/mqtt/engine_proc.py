"""``tessera run engine`` as a subprocess for the crash and flood tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path


class EngineProcess:
    """``tessera run engine`` as a subprocess, killed and restarted at will."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        ready = self.config.with_name("engine.ready")
        ready.unlink(missing_ok=True)
        with self.log.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tessera", "run", "engine", "--config", str(self.config),
                 "--log-level", "warning", "--ready-file", str(ready)],
                stdout=subprocess.DEVNULL, stderr=err)
        self.starts += 1
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the engine did not start"
            time.sleep(0.01)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
