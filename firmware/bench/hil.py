"""``tessera bench hil``: a press on the simulated GPIO bus vs. on in-process mock pins.

Both paths in one run, on the same config: ``examples/bank.toml`` as
``tessera sim hardware`` derives it (every service open, voice off, debounce and
repeat window 5 ms so presses can follow each other), kiosk button ``cash``:

- **bus**: the simulator (``tessera.sim.hardware.SimHardware``: the bus, printer
  and board emulators) in this process; the firmware in a child process,
  assembled by ``build_branch`` exactly as ``tessera run all`` does on
  ``gpio.pin_factory = "tessera-sim"``, plus a probe on its action router that
  reports when each handler starts. A press starts at the bus's falling edge
  (its CLOCK_MONOTONIC stamp: one clock for both processes) and is measured
  to the handler's start in the child and to the cut ticket at the printer
  emulator;
- **in-process**: the same assembly with gpiozero's MockFactory in this process
  (``tessera run --sim``): ``drive_low()`` → handler → cut ticket, the printer
  emulator in the same process.

``bus_added_*_ms`` is what crossing the socket costs, measured directly in the
child: from the bus's stamp on a falling edge to the end of the pin factory's
handling of it (reader thread woken, one JSON line parsed, gpiozero's callback
run: the edge is in the ring). From there both paths are the same code. Aim:
under 1 ms at p99. (Bus minus in-process press → handler, also reported as
``bus_minus_inprocess_handler_*_ms``, adds two processes' scheduling noise.)
"""

from __future__ import annotations

import argparse
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tessera.bench.branch import EXAMPLE, _pct
from tessera.dispatch import ButtonAction

PIN = 17  # kiosk button "cash" on device main
SERVICE_BUTTON = "kiosk.cash"
HOLD_S = 0.02  # after the ticket is out: release, then a quiet gap above the debounce
GAP_S = 0.01
WARMUP = 2  # first presses load fonts and the printing stack: not counted
READY_TIMEOUT_S = 60.0


def _bench_config(out: Path, printer_url: str, board_url: str) -> Any:
    import msgspec

    from tessera.config import load_config
    from tessera.demo.hardware import derived_config

    rep = msgspec.structs.replace
    cfg = derived_config(load_config(EXAMPLE), out=out, printer_url=printer_url,
                         board_url=board_url, always_open=True)
    return rep(cfg, voice=rep(cfg.voice, enabled=False),
               gpio=rep(cfg.gpio, debounce_ms=5.0, repeat_ms=5.0),
               kiosk=rep(cfg.kiosk, checkin=""))


def probe_handler(router: Any, report: Callable[[int, int, str], None]) -> None:
    """Wrap ``router.handle``: ``report(start_ns, end_ns, action)`` after each action.
    The dispatcher calls ``router.on_button``, which looks ``handle`` up at call time."""
    original = router.handle

    def handle(ba: ButtonAction) -> Any:
        t0 = time.monotonic_ns()
        try:
            return original(ba)
        finally:
            report(t0, time.monotonic_ns(), ba.name)

    setattr(router, "handle", handle)  # noqa: B010 - an instance attribute over the method


# --------------------------------------------------------------------------- bus


def child(config: Path) -> int:
    """The firmware side of the bus path (``python -m tessera.bench.hil --child CONFIG``):
    ``tessera run all``'s assembly plus the handler probe, until stdin closes."""
    from tessera.clock import SystemClock
    from tessera.config import load_config
    from tessera.sim.gpio import SimFactory
    from tessera.wiring import build_branch

    lock = threading.Lock()
    on_drive = SimFactory._on_drive

    def timed_drive(factory: SimFactory, msg: dict[str, Any]) -> None:
        on_drive(factory, msg)
        done = time.monotonic_ns()
        if msg.get("level") == 0:
            with lock:
                print(f"edge {msg['t']!r} {done}", flush=True)

    setattr(SimFactory, "_on_drive", timed_drive)  # noqa: B010 - the bench's probe
    cfg = load_config(config, roles=("all",))
    branch = build_branch(cfg, SystemClock(), roles=("all",))

    def report(t0: int, t1: int, action: str) -> None:
        with lock:
            print(f"handled {t0} {t1} {action}", flush=True)

    probe_handler(branch.router, report)
    stop = threading.Event()

    def until_stdin_closes() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=until_stdin_closes, daemon=True).start()
    print("ready", flush=True)
    try:
        while not stop.wait(1.0):
            branch.tick()
    finally:
        branch.close()
    return 0


def _lines(stream: Any, into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line.strip())
    into.put("")  # EOF


def _next(lines: queue.Queue[str], kind: str, timeout_s: float = 10.0) -> list[str]:
    """The fields of the child's next ``kind`` line (``ready``, ``edge``, ``handled``)."""
    try:
        line = lines.get(timeout=timeout_s)
    except queue.Empty:
        raise RuntimeError(f"no {kind!r} report from the firmware within {timeout_s:g} s"
                           ) from None
    if not line:
        raise RuntimeError("the firmware process exited")
    fields = line.split(" ")
    if fields[0] != kind:
        raise RuntimeError(f"expected {kind!r} from the firmware, got {line!r}")
    return fields[1:]


Samples = tuple[list[float], list[float], list[float]]


def _bus_path(n: int, tmp: Path) -> Samples:
    """(press → handler, press → ticket, bus hop) in ms over the bus, ``n`` presses."""
    out = tmp / "bus"
    with tempfile.TemporaryDirectory(prefix="tessera-hil-", dir="/tmp") as sockdir:
        return _bus_presses(n, out, Path(sockdir) / "bus.sock")  # short: AF_UNIX's limit


def _bus_presses(n: int, out: Path, sock: Path) -> Samples:
    from tessera.demo.hardware import config_toml, sim_wiring
    from tessera.sim.hardware import SimHardware

    wiring = sim_wiring(_bench_config(out, "", ""))
    handler_ms: list[float] = []
    ticket_ms: list[float] = []
    hop_ms: list[float] = []
    with SimHardware(wiring, out, socket_path=sock) as hw:
        cfg = _bench_config(out, hw.printer.path, hw.board.path)
        config = out / "branch.toml"
        config.write_text(config_toml(cfg), encoding="utf-8")
        errors = out / "firmware.err"
        with open(errors, "w", encoding="utf-8") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tessera.bench.hil", "--child", str(config)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                env={**os.environ, "TESSERA_SIM_SOCKET": str(sock)})
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
        try:
            try:
                _next(lines, "ready", READY_TIMEOUT_S)
            except RuntimeError as e:
                raise RuntimeError(f"{e}: {errors.read_text(encoding='utf-8')[-2000:]}"
                                   ) from None
            if not hw.bus.wait_listening("main", PIN, 10):
                raise RuntimeError("the firmware never opened the kiosk button's pin")
            for i in range(n + WARMUP):
                t_down = hw.bus.drive("main", PIN, 0)
                sent, done = _next(lines, "edge")
                t0 = int(_next(lines, "handled")[0])
                if not hw.printer.wait_tickets(i + 1, 10):
                    raise RuntimeError("no ticket reached the printer emulator")
                t_ticket = time.monotonic()
                hw.bus.drive("main", PIN, None)
                if i >= WARMUP:
                    handler_ms.append((t0 / 1e9 - t_down) * 1000)
                    ticket_ms.append((t_ticket - t_down) * 1000)
                    hop_ms.append((int(done) / 1e9 - float(sent)) * 1000)
                time.sleep(HOLD_S + GAP_S)
        finally:
            _stop(proc)
    return handler_ms, ticket_ms, hop_ms


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.stdin is not None:
        proc.stdin.close()  # the child closes its branch and exits
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


# --------------------------------------------------------------------------- in-process


def _inprocess_path(n: int, tmp: Path) -> tuple[list[float], list[float]]:
    from tessera.clock import SystemClock
    from tessera.sim.board import BoardEmulator
    from tessera.sim.printer import PrinterEmulator
    from tessera.wiring import build_branch

    starts: queue.Queue[int] = queue.Queue()
    handler_ms: list[float] = []
    ticket_ms: list[float] = []
    with PrinterEmulator() as printer, BoardEmulator() as board:
        cfg = _bench_config(tmp / "inprocess", printer.path, board.path)
        branch = build_branch(cfg, SystemClock(), roles=("all",), sim=True)
        try:
            probe_handler(branch.router, lambda t0, t1, action: starts.put(t0))
            pin = branch.factories["main"].pin(PIN)
            for i in range(n + WARMUP):
                t_down = time.monotonic_ns()
                pin.drive_low()
                t0 = starts.get(timeout=10)
                if not printer.wait_tickets(i + 1, 10):
                    raise RuntimeError("no ticket reached the printer emulator")
                t_ticket = time.monotonic_ns()
                pin.drive_high()
                if i >= WARMUP:
                    handler_ms.append((t0 - t_down) / 1e6)
                    ticket_ms.append((t_ticket - t_down) / 1e6)
                time.sleep(HOLD_S + GAP_S)
        finally:
            branch.close()
    return handler_ms, ticket_ms


# --------------------------------------------------------------------------- entry


def run(args: argparse.Namespace) -> dict[str, Any]:
    n = 15 if getattr(args, "quick", False) else 100
    with tempfile.TemporaryDirectory(prefix="bench-hil-") as name:
        tmp = Path(name)
        bus_handler, bus_ticket, hop = _bus_path(n, tmp)
        local_handler, local_ticket = _inprocess_path(n, tmp)
    result: dict[str, Any] = {}
    for q, label in ((0.5, "p50"), (0.99, "p99")):
        result[f"bus_press_to_handler_{label}_ms"] = _pct(bus_handler, q)
        result[f"bus_press_to_ticket_{label}_ms"] = _pct(bus_ticket, q)
        result[f"inprocess_press_to_handler_{label}_ms"] = _pct(local_handler, q)
        result[f"inprocess_press_to_ticket_{label}_ms"] = _pct(local_ticket, q)
        result[f"bus_added_{label}_ms"] = _pct(hop, q)
        result[f"bus_minus_inprocess_handler_{label}_ms"] = round(
            _pct(bus_handler, q) - _pct(local_handler, q), 2)
    result["samples"] = len(bus_handler)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tessera.bench.hil")
    p.add_argument("--child", type=Path, required=True, help="firmware side: this config")
    return child(p.parse_args(argv).child)


if __name__ == "__main__":
    sys.exit(main())
