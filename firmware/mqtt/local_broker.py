"""Run a throw-away mosquitto on loopback (tests, benchmarks, the demo).

    b = LocalBroker(Path("/tmp/b1"), persistence=True)
    b.start(); b.port
    # -> 38411
    b.kill(); b.start()          # SIGKILL, then the same port and store again
    b.stop()

``extra_conf`` is appended to the generated config (ACL, password file,
listeners…); with ``conf`` the whole config is yours (``{port}`` and
``{dir}`` are substituted) and ``persistence``/``anonymous`` are ignored;
with ``conf_file`` mosquitto runs that file as it is (``tessera broker
config``'s own ``mosquitto.conf``; ``port`` must be its listener's).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tessera.errors import DeviceError

MOSQUITTO = os.environ.get("TESSERA_MOSQUITTO", "/usr/sbin/mosquitto")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalBroker:
    """A mosquitto subprocess on 127.0.0.1 with start/kill/stop/restart."""

    def __init__(self, workdir: Path, *, port: int | None = None, persistence: bool = False,
                 anonymous: bool = True, extra_conf: str = "", conf: str | None = None,
                 nodelay: bool = True, conf_file: Path | None = None) -> None:
        if not Path(MOSQUITTO).exists() and shutil.which("mosquitto") is None:
            raise DeviceError(f"{MOSQUITTO} not found; install the Debian package 'mosquitto'")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.persistence, self.anonymous = persistence, anonymous
        self.extra_conf, self.conf, self.nodelay = extra_conf, conf, nodelay
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf_file = conf_file
        self.conf_path = conf_file or self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"

    def config_text(self) -> str:
        if self.conf is not None:
            return self.conf.replace("{port}", str(self.port)).replace("{dir}", str(self.workdir))
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'true' if self.anonymous else 'false'}",
            f"set_tcp_nodelay {'true' if self.nodelay else 'false'}",
            "max_inflight_messages 0",  # let the client's own window bound it
            "max_queued_messages 0",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        if os.geteuid() == 0:
            # as root mosquitto drops to user 'mosquitto', which cannot write our store
            lines.append("user root")
        if self.persistence:
            lines += [
                "persistence true",
                f"persistence_location {self.workdir}/",
                # Save after every change (the shipped config saves every 30 s:
                # tessera.mqtt.broker.AUTOSAVE_INTERVAL_S), so test subscribers'
                # sessions survive a SIGKILL at once. Still after the PUBACK: a
                # SIGKILL can lose the last acked messages, which the drainer
                # re-sends above the retained high-water mark the broker restores.
                "autosave_on_changes true",
                "autosave_interval 1",
            ]
        return "\n".join(lines) + "\n" + self.extra_conf + "\n"

    def start(self, timeout: float = 10.0) -> LocalBroker:
        if self.proc is not None and self.proc.poll() is None:
            return self
        if self.conf_file is None:
            self.conf_path.write_text(self.config_text())
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf_path)],
                                     stdout=log, stderr=log, cwd=self.workdir)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DeviceError(f"mosquitto exited with {self.proc.returncode}: "
                                  + self.log_path.read_text(errors="replace")[-2000:])
            with contextlib.suppress(OSError), \
                    socket.create_connection((self.host, self.port), 0.2):
                return self
            time.sleep(0.02)
        self.stop()
        raise DeviceError(f"mosquitto did not accept connections on port {self.port}")

    def kill(self) -> None:
        """SIGKILL: no persistence save, no clean close (a power cut for the broker)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        """SIGTERM (mosquitto saves its store), then SIGKILL if it hangs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self, *, hard: bool = True) -> LocalBroker:
        self.kill() if hard else self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
