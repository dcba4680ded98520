"""``tessera bench branch``: the whole branch, from a GPIO press to paper, board and sound.

Measured in one run on this machine:

- press → ticket bytes fully written to the printer pty (the emulator has the
  cut), p50/p99, with the emulator unthrottled and throttled at the profile's
  baud rate; baseline: the same ticket's bytes written straight to a fresh
  emulator (no GPIO, no engine, no rendering);
- NEXT press → hall-board frame on the board pty, and → announcement WAV ready;
- per role (``tessera run ROLE --sim`` subprocesses, a local mosquitto for the
  MQTT roles) and all-in-one: spawn → "ready" line, and peak RSS (VmHWM) after
  serving a few presses; baseline: ``python -c pass`` start-up.

Role processes start from bytecode, as an installed package does (the
sources are compiled to ``__pycache__`` first). The counter role is measured
as one counter Pi runs it (``--device main``: the
panels wired to that Pi); ``tessera run counter`` without ``--device`` in
simulation runs every device's panels, each with its own MQTT link.

Floors, same run: a bare interpreter that only imports the third-party
libraries a role cannot run without (``ROLE_LIBS``: paho-mqtt, msgspec,
gpiozero, python-escpos, Pillow, pyserial...) and exits: ``ready_floor_ms``
(spawn → exit) and ``rss_floor_mib`` (its peak RSS). A target below its floor
cannot be met by any code on top of those libraries on this machine.

Notes: ``--sim`` processes host their emulators (printer, board threads), so
their RSS includes a little simulator; the targets in the issue are for the
roles themselves.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tessera.stats import percentile

ROLES = ("engine", "kiosk", "counter", "display", "all")
_BASE_LIBS = ("msgspec", "tomllib", "zoneinfo", "paho.mqtt.client")
ROLE_LIBS: dict[str, tuple[str, ...]] = {
    "engine": (*_BASE_LIBS, "sqlite3"),
    "display": (*_BASE_LIBS, "sqlite3", "serial", "wave"),
    "counter": (*_BASE_LIBS, "sqlite3", "gpiozero"),
    "kiosk": (*_BASE_LIBS, "sqlite3", "gpiozero", "serial", "escpos.printer", "PIL.ImageDraw",
              "PIL.ImageFont", "segno"),
}
ROLE_LIBS["all"] = tuple(dict.fromkeys(m for libs in ROLE_LIBS.values() for m in libs))
ROLE_ARGS: dict[str, tuple[str, ...]] = {"counter": ("--device", "main")}  # one counter Pi
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bank.toml"


def _pct(values: list[float], q: float) -> float:
    return round(percentile(values, q), 2)


def _wait(cond: Callable[[], Any], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.0002)
    return bool(cond())


# --------------------------------------------------------------------------- in-process


def _more_than(items: list[Any], k: int) -> Callable[[], bool]:
    return lambda: len(items) > k


def _shows(board: Any, address: str, text: str) -> Callable[[], bool]:
    return lambda: text in board.text(address)


def _new_file(directory: Path, before: set[str], part: str) -> Callable[[], bool]:
    return lambda: any(part in f for f in set(os.listdir(directory)) - before)


def _press_to_ticket(n: int, *, baud: int | None, clips: Path) -> tuple[list[float], int]:
    """Latencies (ms) from drive_low to the emulator's cut; returns them and ticket bytes."""
    from tessera.config import load_config
    from tessera.demo.rig import sim_rig
    from tessera.sim.scenario import press_pin

    with tempfile.TemporaryDirectory(prefix="bench-branch-") as tmp, \
            sim_rig(load_config(EXAMPLE), Path(tmp), voice=False, save_tickets=False,
                    printer_baud=baud, clips_dir=clips) as rig:
        rig.clock.advance(3600)  # 10:00: every service open
        pin = rig.branch.factories["main"].pin(17)
        out: list[float] = []
        for i in range(n):
            handled = rig.branch.router.handled + 1
            t0 = time.perf_counter()
            press_pin(pin, settle_s=rig.settle_s)
            if not _wait(_more_than(rig.printer.tickets, i)):
                raise RuntimeError("no ticket reached the printer emulator")
            out.append((time.perf_counter() - t0) * 1000)
            rig.branch.router.wait_for(handled, 10)  # the confirm step, before the next press
        nbytes = int(rig.printer.tickets[-1].record.get("bytes", 0))
    return out, nbytes


def _pty_baseline(n: int, nbytes: int, baud: int | None) -> list[float]:
    """Write a raster job of about ``nbytes`` (GS v 0 + cut) straight into an emulator."""
    import serial

    from tessera.sim.printer import PrinterEmulator

    width = 72  # bytes per row: 576 dots
    rows = max(1, nbytes // width)
    raster = b"\x1dv0\x00" + bytes([width, 0, rows & 0xFF, rows >> 8]) + b"\x00" * width * rows
    job = b"\x1b@" + raster + b"\x1dV\x00"
    out: list[float] = []
    with PrinterEmulator(baudrate=baud) as emu:
        port = serial.serial_for_url(emu.path, baudrate=baud or 115200, timeout=1)
        try:
            for i in range(n):
                t0 = time.perf_counter()
                port.write(job)
                port.flush()
                if not emu.wait_tickets(i + 1, 10):
                    raise RuntimeError("baseline job never cut")
                out.append((time.perf_counter() - t0) * 1000)
        finally:
            port.close()
    return out


def _next_to_board_and_wav(n: int, clips: Path) -> tuple[list[float], list[float]]:
    from tessera.config import load_config
    from tessera.demo.rig import sim_rig

    with tempfile.TemporaryDirectory(prefix="bench-branch-") as tmp, \
            sim_rig(load_config(EXAMPLE), Path(tmp), voice=True, save_tickets=False,
                    clips_dir=clips) as rig:
        rig.clock.advance(3600)
        panel = rig.cfg.counter("c2").panel
        assert panel is not None and panel.done is not None
        for _ in range(n):
            rig.press("main", 17)
        wav = rig.out / "wav"
        hall = rig.cfg.board.hall_address
        board_ms: list[float] = []
        wav_ms: list[float] = []
        for _ in range(n):
            role = rig.branch.counters["c2"]
            before = set(os.listdir(wav))
            t0 = time.perf_counter()
            rig.press("main", panel.next)
            number = role.current
            if number is None:
                break
            if _wait(_shows(rig.board, hall, number)):
                board_ms.append((time.perf_counter() - t0) * 1000)
            if _wait(_new_file(wav, before, number), 30):
                wav_ms.append((time.perf_counter() - t0) * 1000)
            rig.press("main", panel.done)
            rig.clock.advance(30)
    return board_ms, wav_ms


# --------------------------------------------------------------------------- subprocesses


def role_config(tmp: Path, broker_url: str) -> Path:
    """``examples/bank.toml`` with its store under ``tmp`` and ``mqtt.url`` set, written to
    ``tmp/bank.toml``: a config ``tessera run ROLE`` processes can share."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace('dir = "../var/bank"', f'dir = "{tmp / "var"}"')
    text = text.replace('url = ""                       # e.g.', f'url = "{broker_url}" # e.g.')
    if broker_url not in text or str(tmp / "var") not in text:
        raise RuntimeError(f"{EXAMPLE} changed: storage.dir or mqtt.url not found to replace")
    path = tmp / "bank.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _start(role: str, config: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], float]:
    """Start ``tessera run ROLE --config C --sim`` as systemd would (``Type=notify``);
    (process, spawn → ``READY=1`` ms)."""
    import socket

    cmd = [sys.executable, "-m", "tessera", "run", role, "--config", str(config), "--sim",
           *ROLE_ARGS.get(role, ())]
    with tempfile.TemporaryDirectory(prefix="bench-notify-") as tmp, \
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(f"{tmp}/notify")
        notify.settimeout(60)
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                text=True, env={**env, "NOTIFY_SOCKET": f"{tmp}/notify"})
        try:
            msg = notify.recv(4096).decode()
        except TimeoutError:
            msg = ""
        ready_ms = (time.perf_counter() - t0) * 1000
    if not msg.startswith("READY=1"):
        _stop(proc)
        raise RuntimeError(f"tessera run {role} did not become ready: {msg!r}")
    return proc, ready_ms


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _spawn(role: str, config: Path, env: dict[str, str]) -> tuple[float, float]:
    """(spawn → ready ms, peak RSS MiB) of one role process."""
    proc, ready_ms = _start(role, config, env)
    try:
        time.sleep(1.0)  # let its threads settle (board resync, first ticks)
        return ready_ms, _vm_hwm_mib(proc.pid)
    finally:
        _stop(proc)


def _vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _floor(role: str) -> tuple[float, float]:
    """(spawn → exit ms, peak RSS MiB) of an interpreter importing only ``ROLE_LIBS[role]``."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the (big) forking parent
    code = (f"import {', '.join(ROLE_LIBS[role])}\n"
            "print([ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0])")
    from tessera.drivers.escpos import capabilities_cache_dir

    env = dict(os.environ)
    # python-escpos reads the capabilities pickle the kiosk keeps (the roles ran first)
    env.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", str(capabilities_cache_dir()))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, env=env).stdout
    return (time.perf_counter() - t0) * 1000, round(int(out.split()[-2]) / 1024, 1)


def _sample(ready: dict[str, float], rss: dict[str, float], role: str, quick: bool,
            measure: Callable[..., tuple[float, float]], *args: Any) -> None:
    """Record the median time and the peak RSS of 1 (quick) or 3 ``measure(*args)`` runs."""
    samples = [measure(*args) for _ in range(1 if quick else 3)]
    ready[role] = round(statistics.median(s[0] for s in samples), 1)
    rss[role] = max(s[1] for s in samples)


def _floors(quick: bool) -> tuple[dict[str, float], dict[str, float]]:
    ready: dict[str, float] = {}
    rss: dict[str, float] = {}
    for role in ROLES:
        _sample(ready, rss, role, quick, _floor, role)
    return ready, rss


def install_sizes() -> dict[str, float]:
    """MiB on disk of what each role's install pulls in: the base, ``tessera[kiosk]``,
    ``tessera[demo]``, ``tessera[all]`` (installed distributions' files, Tessera included)."""
    from importlib import metadata

    try:
        from packaging.requirements import Requirement
    except ImportError:  # a Pi's install without the dev tools: no figure, not a guess
        return {}

    def closure(names: list[tuple[str, frozenset[str]]]) -> set[str]:
        seen: set[str] = set()
        todo = list(names)
        while todo:
            name, extras = todo.pop()
            try:
                dist = metadata.distribution(name)
            except metadata.PackageNotFoundError:
                continue
            key = dist.metadata["Name"].lower()
            for raw in dist.requires or []:
                req = Requirement(raw)
                envs = [{"extra": e} for e in extras] or [{"extra": ""}]
                if req.marker is None or any(req.marker.evaluate(e) for e in envs):
                    todo.append((req.name, frozenset(req.extras)))
            seen.add(key)
        return seen

    def size(dist_name: str) -> int:
        dist = metadata.distribution(dist_name)
        total = 0
        for f in dist.files or []:
            path = Path(str(dist.locate_file(f)))
            if path.is_file():
                total += path.stat().st_size
        return total

    out: dict[str, float] = {}
    for label, extras in (("base", frozenset()), ("kiosk", frozenset({"kiosk"})),
                          ("demo", frozenset({"demo"})), ("all", frozenset({"all"}))):
        names = closure([("tessera", extras)])
        out[label] = round(sum(size(n) for n in names) / (1 << 20), 1)
    return out


def _python_start_ms() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return (time.perf_counter() - t0) * 1000


def _ensure_bytecode() -> None:
    """Compile Tessera's sources to ``__pycache__`` as an installed wheel has them.

    An editable install leaves that to the first import, and with
    ``PYTHONDONTWRITEBYTECODE`` set (CI images, this build box) every start would
    compile ~60 modules from source again (~70 ms): not what a Pi runs.
    """
    import compileall

    root = Path(__file__).resolve().parents[2]
    for part in ("firmware", "drivers", "cext", "hw-sim"):
        compileall.compile_dir(str(root / part), quiet=1)


def _roles(quick: bool) -> tuple[dict[str, float], dict[str, float]]:
    from tessera.mqtt.local_broker import LocalBroker

    _ensure_bytecode()
    ready: dict[str, float] = {}
    rss: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-roles-") as name:
        tmp = Path(name)
        broker = LocalBroker(tmp / "broker").start()
        try:
            config = role_config(tmp, f"mqtt://{broker.host}:{broker.port}")
            env = dict(os.environ)
            # a first display start generates the voice clips once, as on a Pi's first boot
            _spawn("display", config, env)
            for role in ("engine", "all"):
                _sample(ready, rss, role, quick, _spawn, role, config, env)
            # the MQTT roles, with an engine answering their commands (as on a branch LAN)
            engine, _ = _start("engine", config, env)
            try:
                for role in ("kiosk", "counter", "display"):
                    _sample(ready, rss, role, quick, _spawn, role, config, env)
            finally:
                _stop(engine)
        finally:
            broker.stop()
    return ready, rss


# --------------------------------------------------------------------------- entry


def run(args: argparse.Namespace) -> dict[str, Any]:
    quick = bool(getattr(args, "quick", False))
    n = 15 if quick else 60
    with tempfile.TemporaryDirectory(prefix="bench-clips-") as clips_dir:
        clips = Path(clips_dir)
        fast, nbytes = _press_to_ticket(n, baud=None, clips=clips)
        from tessera.config import load_config

        baud = load_config(EXAMPLE).kiosk.printer.baudrate
        slow, _ = _press_to_ticket(max(5, n // 4), baud=baud, clips=clips)
        base = _pty_baseline(n, nbytes, None)
        board_ms, wav_ms = _next_to_board_and_wav(max(5, n // 6), clips)
    ready, rss = _roles(quick)
    ready_floor, rss_floor = _floors(quick)
    py_ms = _python_start_ms()
    return {
        "press_to_ticket_p50_ms": _pct(fast, 0.5),
        "press_to_ticket_p99_ms": _pct(fast, 0.99),
        "press_to_ticket_throttled_p50_ms": _pct(slow, 0.5),
        "press_to_ticket_throttled_p99_ms": _pct(slow, 0.99),
        "printer_baud": baud,
        "ticket_bytes": nbytes,
        "baseline_pty_job_p50_ms": _pct(base, 0.5),
        "press_to_ticket_vs_baseline": round(_pct(fast, 0.5) / max(_pct(base, 0.5), 1e-3), 1),
        "next_to_board_p50_ms": _pct(board_ms, 0.5),
        "next_to_board_p99_ms": _pct(board_ms, 0.99),
        "next_to_wav_p50_ms": _pct(wav_ms, 0.5),
        "next_to_wav_p99_ms": _pct(wav_ms, 0.99),
        "ready_ms": ready,  # spawn → READY=1 on a notify socket, as under Type=notify
        "rss_mib": rss,
        "install_size_mib": install_sizes(),
        "ready_floor_ms": ready_floor,
        "rss_floor_mib": rss_floor,
        "baseline_python_start_ms": round(py_ms, 1),
        "samples": len(fast),
    }
