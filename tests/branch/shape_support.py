"""A branch as it ships, from outside: `tessera sim hardware` (GPIO bus, printer and board
emulators), mosquitto started with exactly the files `tessera broker config` writes, and
unmodified `tessera run ROLE` processes — driven only through the CLI and MQTT.

    with SimBranch(base, toml) as b:
        b.start_broker(); b.start("all")
        b.sim("press", "kiosk.cash")
        b.wait(lambda: b.state()["tickets"])
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from tessera.config import BranchConfig, load_config
from tessera.drivers.mqtt_client import Connected, Message, MqttSettings, PahoClient
from tessera.mqtt.broker import write_broker_files
from tessera.mqtt.credentials import load_credentials
from tessera.mqtt.local_broker import LocalBroker, free_port

ROOT = Path(__file__).resolve().parents[2]
TESSERA = [sys.executable, "-m", "tessera"]


def until(cond: Callable[[], Any], timeout_s: float = 20.0, step_s: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step_s)
    return cond()


def press_mock(branch: Any, device: str, pin: int) -> bool:
    """Press a MockFactory pin of an in-process branch (``--sim``) and wait for the role."""
    from tessera.sim.scenario import press_pin

    n = branch.router.handled + 1
    press_pin(branch.factories[device].pin(pin), settle_s=0.002)
    return bool(branch.router.wait_for(n, 15))


def ticket_number(ticket: dict[str, Any]) -> str:
    """The ticket number read from a decoded ticket's text (``A001``)."""
    import re

    m = re.search(r"\b([A-Z]\d{3,})\b", " ".join(ticket["text"]))
    assert m, ticket["text"]
    return m.group(1)


def bank_toml(base: Path, *, port: int, extra_mqtt: str = "", hq: str = "",
              lan: bool = False) -> str:
    """examples/bank.toml for a test branch: a broker on ``port``, every device's login
    under ``base/broker/credentials``, a monitor login, every broker log line. With
    ``lan`` counters c1 and c2 sit on two counter Pis (``pi-a``, ``pi-b``)."""
    text = (ROOT / "examples" / "bank.toml").read_text(encoding="utf-8")
    text = text.replace('[mqtt]\nurl = ""', f'[mqtt]\nurl = "mqtt://127.0.0.1:{port}"', 1)
    text = text.replace('device = "engine"\n', f'''device = "engine"
local_port = {port}
persistence_dir = "{base}/store"
credentials_dir = "{base}/broker/credentials"
broker_log_types = ["all"]
devices = {{ "hq-tool" = ["monitor"] }}
reconnect_min_s = 0.2
reconnect_max_s = 2.0
{extra_mqtt}''', 1)
    if lan:
        text = text.replace('staff = "t-001"\n', 'staff = "t-001"\ndevice = "pi-a"\n', 1)
        text = text.replace('staff = "t-002"\n', 'staff = "t-002"\ndevice = "pi-b"\n', 1)
    return text + hq


class Monitor:
    """A read-only dashboard (``monitor-hq-tool``): every message of the branch subtree."""

    def __init__(self, host: str, port: int, root: str, *, creds: Path | None = None,
                 client_id: str = "hq-dashboard") -> None:
        user = pw = None
        if creds is not None:
            user, pw = load_credentials(creds)
        self.client = PahoClient(MqttSettings(host=host, port=port, client_id=user or client_id,
                                              username=user, password=pw, keepalive_s=5,
                                              backoff_min_s=0.05, backoff_max_s=0.5,
                                              session_expiry_s=3600))
        self.root = root
        self.retained: dict[str, Any] = {}
        self.events: list[dict[str, Any]] = []
        self.subscribed = False
        self.client.start()
        assert self.wait(lambda: self.subscribed, 15), "monitor could not log in"
        time.sleep(0.3)  # SUBACK before anything happens

    def pump(self) -> None:
        while True:
            try:
                ev = self.client.events.get(timeout=0.02)
            except queue.Empty:
                return
            if isinstance(ev, Connected):
                self.client.subscribe(f"{self.root}/#", 1)
                self.subscribed = True
            elif isinstance(ev, Message):
                try:
                    body = json.loads(ev.payload)
                except ValueError:
                    body = ev.payload.decode(errors="replace")
                self.retained[ev.topic] = body
                if "/evt/" in ev.topic and isinstance(body, dict):
                    self.events.append(body)

    def wait(self, cond: Callable[[], Any], timeout_s: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.pump()
            v = cond()
            if v:
                return v
        self.pump()
        return cond()

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        self.pump()
        seen: dict[str, dict[str, Any]] = {}
        for e in self.events:
            if e.get("type") == type_:
                seen.setdefault(e["id"], e)  # consumers dedupe by id
        return list(seen.values())

    def stop(self) -> None:
        self.client.stop(2)


class SimBranch:
    """The processes of one branch on the simulated bus, with the shipped broker files."""

    def __init__(self, base: Path, toml: str) -> None:
        self.base = base
        (base / "broker" / "credentials").mkdir(parents=True, exist_ok=True)
        self.source = base / "source.toml"
        self.source.write_text(toml, encoding="utf-8")
        self.hw_dir = base / "hw"
        self.socket = base / "bus.sock"
        self.env = {**os.environ, "TESSERA_SIM_SOCKET": str(self.socket),
                    "PYTHONUNBUFFERED": "1"}
        self.env.pop("TESSERA_DEVICE", None)
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.logs: dict[str, Path] = {}
        self.broker: LocalBroker | None = None
        self.cfg: BranchConfig | None = None
        self.files: dict[str, Path] = {}
        self._pressed: dict[str, float] = {}

    # ------------------------------------------------------------------ processes

    def _spawn(self, name: str, args: list[str], ready: Path | None = None,
               timeout_s: float = 60.0) -> subprocess.Popen[str]:
        log = self.base / f"{name}.log"
        self.logs[name] = log
        with log.open("a", encoding="utf-8") as out:
            proc = subprocess.Popen([*TESSERA, *args], stdout=out, stderr=subprocess.STDOUT,
                                    text=True, env=self.env, cwd=self.base)
        self.procs[name] = proc
        if ready is not None:
            ok = until(lambda: ready.exists() or proc.poll() is not None, timeout_s)
            assert ok and proc.poll() is None, f"{name} did not start:\n{self.log(name)}"
        return proc

    def log(self, name: str) -> str:
        p = self.logs.get(name)
        return p.read_text(errors="replace")[-4000:] if p and p.exists() else ""

    def start_hardware(self) -> BranchConfig:
        ready = self.base / "hw.ready"
        self._spawn("hardware", ["sim", "hardware", "--config", str(self.source), "--out",
                                 str(self.hw_dir), "--socket", str(self.socket),
                                 "--always-open", "--ready-file", str(ready)], ready)
        self.cfg = load_config(self.hw_dir / "branch.toml")
        return self.cfg

    @property
    def config(self) -> Path:
        return self.hw_dir / "branch.toml"

    def start_broker(self, mosquitto: Any) -> LocalBroker:
        assert self.cfg is not None
        self.files = write_broker_files(self.cfg, self.base / "broker")
        self.broker = mosquitto(conf_file=self.files["mosquitto.conf"],
                                port=self.cfg.mqtt.local_port)
        return self.broker

    def start(self, role: str, device: str | None = None) -> subprocess.Popen[str]:
        name = role if device is None else f"{role}-{device}"
        ready = self.base / f"{name}.ready"
        ready.unlink(missing_ok=True)
        args = ["run", role, "--config", str(self.config), "--ready-file", str(ready),
                "--tick-s", "0.2"]
        if device is not None:
            args += ["--device", device]
        return self._spawn(name, args, ready)

    def kill(self, name: str) -> None:
        """SIGKILL, as a power cut or the OOM killer would."""
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop(self, name: str) -> int:
        proc = self.procs.pop(name)
        proc.terminate()
        try:
            return proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            raise AssertionError(f"{name} did not stop on SIGTERM:\n{self.log(name)}") from None

    def monitor(self) -> Monitor:
        assert self.cfg is not None and self.broker is not None
        root = f"tessera/v1/{self.cfg.branch.tenant}/{self.cfg.branch.branch}"
        return Monitor(self.broker.host, self.broker.port, root,
                       creds=self.files["credentials"] / "monitor-hq-tool.toml")

    # ------------------------------------------------------------------ the simulator's CLI

    def sim(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([*TESSERA, "sim", *args, "--socket", str(self.socket)],
                           capture_output=True, text=True, env=self.env, timeout=120)
        if check:
            assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r

    def press(self, name: str) -> None:
        """Press like a person: the same button again only after the dispatcher's repeat
        window (a faster second press is chatter, dropped by design)."""
        assert self.cfg is not None
        window = self.cfg.gpio.repeat_ms / 1000 + 0.1
        wait = self._pressed.get(name, -1e9) + window - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self.sim("press", name)
        self._pressed[name] = time.monotonic()

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.sim("state").stdout)
        return out

    def tickets(self) -> list[dict[str, Any]]:
        """Decoded tickets, each with its ``number`` read back from the paper."""
        return [{**t, "number": ticket_number(t)} for t in self.state()["tickets"]]

    def hall_text(self) -> str:
        assert self.cfg is not None
        signs = self.state()["board"]["signs"]
        return str(signs.get(self.cfg.board.hall_address, ""))

    # ------------------------------------------------------------------ the stores

    def db(self, device: str) -> sqlite3.Connection:
        assert self.cfg is not None
        path = self.cfg.path(self.cfg.storage.dir) / f"{device}.db"
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)

    def numbers(self) -> list[str]:
        with self.db("engine") as c:
            return [r[0] for r in c.execute("SELECT number FROM tickets ORDER BY rowid")]

    def pending(self, device: str) -> int:
        with self.db(device) as c:
            (n,) = c.execute("SELECT count(*) FROM outbox WHERE delivered_at IS NULL").fetchone()
            return int(n)

    def broker_log(self) -> str:
        assert self.broker is not None
        return self.broker.log_path.read_text(errors="replace")

    # ------------------------------------------------------------------ context

    def __enter__(self) -> SimBranch:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        for name in list(self.procs):
            if name != "hardware":
                try:
                    self.stop(name)
                except AssertionError:
                    pass
        if "hardware" in self.procs:
            try:
                self.stop("hardware")
            except AssertionError:
                pass


__all__ = ["Monitor", "SimBranch", "bank_toml", "free_port", "press_mock", "ticket_number",
           "until"]
