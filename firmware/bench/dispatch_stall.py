"""The stall scenario of ``tessera bench dispatch``: decisions by edge time, not by Python time.

A simulator process (``python -m tessera.bench.dispatch_stall SOCKET``, a
:class:`tessera.sim.bus.GpioBus`) plays :data:`PLAN` — bounce bursts, a press
released just before its hold deadline, a real hold, a stuck button — and stamps
every drive with CLOCK_MONOTONIC, the edge's true time. This process runs the
shipped input path on the simulated bus (``SimFactory`` → :class:`ButtonPanel`
→ ring → :class:`Dispatcher`) and records the actions and device events.

The stalled run holds the GIL for :data:`STALL_MS` from a thread (a ``PyDLL``
call keeps the GIL across ``usleep``) across the release that comes just
before a hold deadline, with both cores kept busy by two spinning processes.
Its decisions, like the unstalled run's, must equal :func:`replay` of the
edges the simulator stamped (what an unstalled dispatcher decides for exactly
those edges: a loaded simulator may drift from the plan, its stamps are the
truth); each ring record's stamp minus the drive's true time is the stamp
error. Run with ``factory_stamps=False``
(``push_now`` in gpiozero's callback) to see what the factory stamps buy.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tessera.cext import PRESS, RELEASE
from tessera.dispatch import Act, Binding, ButtonAction, Dispatcher, Timing

if TYPE_CHECKING:
    from tessera.sim.gpio import SimFactory

# (ms after t0, pin, level driven: 0 = pressed to GND, None = let go → pull-up 1)
PLAN: tuple[tuple[float, int, int | None], ...] = (
    (20.0, 5, 0),  # NEXT pressed...
    (100.0, 17, 0), (100.6, 17, None), (101.3, 17, 0), (101.9, 17, None),
    (102.6, 17, 0),  # a kiosk press with contact bounce, inside the stall
    (130.0, 17, None), (130.5, 17, 0), (131.2, 17, None),  # its bouncy release
    (145.0, 17, 0), (175.0, 17, None),  # mashed again within repeat_ms: suppressed
    (160.0, 5, None),  # ...released 10 ms before its hold deadline (170), inside the stall
    (250.0, 6, 0),  # RECALL pressed and stuck (fault at 650)...
    (300.0, 5, 0), (520.0, 5, None),  # NEXT held past hold_ms: a pause, no call
    (800.0, 6, None),  # ...released: recovered
)
PLAN_SORTED = tuple(sorted(PLAN))
TIMING = Timing(debounce_ms=10, hold_ms=150, stuck_ms=400, repeat_ms=50)
BINDINGS = (Binding(5, Act.NEXT, "c1", hold_action=Act.PAUSE), Binding(17, Act.ISSUE, "cash"),
            Binding(6, Act.RECALL, "c1"))
# NEXT taps on its release (160) and its hold is a pause only: tap or hold, never both
EXPECTED = (("action", "issue", 17, False), ("action", "next", 5, False),
            ("action", "recall", 6, False), ("action", "pause", 5, True),
            ("fault", "gpio", 6, False), ("recovered", "gpio", 6, False))
STALL_AT_MS = 80.0
STALL_MS = 100.0
END_MS = 900.0
LEAD_S = 0.3  # from handing t0 to the simulator to the first edge
BUSY = "while True: pass"

Decision = tuple[str, str, int, bool]


@dataclass
class StallRun:
    decisions: list[Decision] = field(default_factory=list)
    stamp_errors_ns: list[int] = field(default_factory=list)
    edges_missing: int = 0
    edges: list[tuple[int, int, int]] = field(default_factory=list)  # true (t_ns, pin, kind)

    def reference(self) -> list[Decision]:
        """The decisions for these edges (their true times) without any thread or
        stall: :meth:`Dispatcher.feed` in order, then the timers to the end."""
        return replay(self.edges)


def replay(edges: list[tuple[int, int, int]]) -> list[Decision]:
    """What an unstalled dispatcher decides for ``edges`` (true ``(t_ns, pin, kind)``)."""
    from tessera.cext._ring_py import Ring

    out = StallRun()

    def on_action(a: ButtonAction) -> None:
        out.decisions.append(("action", a.action.value, a.binding.pin, a.held))

    d = Dispatcher(Ring(2), BINDINGS, on_action, timing=TIMING,
                   on_fault=_recorder(out, "fault"), on_recovered=_recorder(out, "recovered"))
    quiet = logging.getLogger("tessera.dispatch")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        for t_ns, pin, kind in sorted(edges):
            d.feed(t_ns, pin, kind, 1 if kind == PRESS else 0)
        if edges:
            d.advance(max(edges)[0] + int(10 * TIMING.stuck_ms * 1e6))
    finally:
        quiet.setLevel(level)
    return out.decisions


class _Tap:
    """The ring, with every stamp it is given recorded (pin, t_ns) for the error."""

    def __init__(self, ring: object) -> None:
        self.ring = ring
        self.stamps: list[tuple[int, int]] = []

    def push(self, t_ns: int, pin: int, kind: int, value: int) -> bool:
        self.stamps.append((pin, t_ns))
        return bool(self.ring.push(t_ns, pin, kind, value))  # type: ignore[attr-defined]

    def push_now(self, pin: int, kind: int, value: int) -> bool:
        return self.push(time.monotonic_ns(), pin, kind, value)


def hold_gil(seconds: float) -> None:
    """Block every other Python thread for ``seconds``: libc ``usleep`` through
    ``ctypes.PyDLL``, which keeps the GIL during the call."""
    ctypes.PyDLL(None).usleep(int(seconds * 1e6))


def _connect(factory_cls: type[SimFactory], sock: Path,
             child: subprocess.Popen[str]) -> SimFactory:
    """The firmware's factory, once the simulator child listens (bounded)."""
    from tessera.sim.gpio import SimulatorNotRunning

    deadline = time.monotonic() + 30
    while True:
        try:
            return factory_cls(device="main", socket_path=sock)
        except SimulatorNotRunning:
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the stall scenario's simulator did not start") from None
            time.sleep(0.02)


def _stall_at(t: float) -> None:
    _sleep_until(t)
    hold_gil(STALL_MS / 1000)


def _sleep_until(t: float) -> None:
    while (left := t - time.monotonic()) > 0:
        time.sleep(min(left, 0.05) if left > 0.002 else 0)


def run_once(*, stall: bool, factory_stamps: bool = True,
             ring_cls: Callable[[int], Any] | None = None) -> StallRun:
    """Play :data:`PLAN` through the shipped input path; see the module docstring.
    ``ring_cls`` defaults to ``tessera.cext.Ring`` (the tests pass each implementation)."""
    out = StallRun()
    quiet = logging.getLogger("tessera.dispatch")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the stuck button is part of the plan
    try:
        _play_through(out, stall=stall, factory_stamps=factory_stamps, ring_cls=ring_cls)
    finally:
        quiet.setLevel(level)
    return out


def _recorder(out: StallRun, what: str) -> Callable[[str, str], None]:
    def report(kind: str, detail: str) -> None:
        pin = int(detail.split()[1]) if detail.startswith("pin ") else -1
        out.decisions.append((what, kind, pin, False))
    return report


def _play_through(out: StallRun, *, stall: bool, factory_stamps: bool,
                  ring_cls: Callable[[int], Any] | None) -> None:
    from tessera.cext import Ring
    from tessera.drivers.gpio import ButtonPanel
    from tessera.sim.gpio import SimFactory

    with tempfile.TemporaryDirectory(prefix="tsb-") as tmp:
        sock = Path(tmp) / "bus.sock"
        child = subprocess.Popen([sys.executable, "-m", "tessera.bench.dispatch_stall",
                                  str(sock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True)
        busy: list[subprocess.Popen[bytes]] = []
        try:
            factory = _connect(SimFactory, sock, child)
            ring = (ring_cls or Ring)(1024)
            tap = _Tap(ring)
            def on_action(a: ButtonAction) -> None:
                out.decisions.append(("action", a.action.value, a.binding.pin, a.held))

            d = Dispatcher(ring, BINDINGS, on_action, timing=TIMING,
                           on_fault=_recorder(out, "fault"),
                           on_recovered=_recorder(out, "recovered"))
            panel = ButtonPanel(tap, [b.pin for b in BINDINGS], pin_factory=factory,
                                factory_stamps=factory_stamps)
            d.start()
            try:
                assert child.stdin is not None and child.stdout is not None
                if child.stdout.readline().strip() != "ready":
                    raise RuntimeError("the stall scenario's simulator did not get ready")
                t0 = time.monotonic() + LEAD_S
                child.stdin.write(f"{t0!r}\n")
                child.stdin.flush()
                hog: threading.Thread | None = None
                if stall:
                    busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(2)]
                    hog = threading.Thread(target=_stall_at, args=(t0 + STALL_AT_MS / 1000,))
                    hog.start()
                true_times: list[float] = json.loads(child.stdout.readline())
                out.edges = [(round(t * 1e9), pin, PRESS if level == 0 else RELEASE)
                             for (_ms, pin, level), t in zip(PLAN_SORTED, true_times,
                                                             strict=True)]
                _sleep_until(t0 + END_MS / 1000 + 0.1)
                if hog is not None:
                    hog.join()
            finally:
                for p in busy:
                    p.kill()
                    p.wait()
                d.stop()
                panel.close()
                factory.close()
        finally:
            with contextlib.suppress(OSError):
                if child.stdin is not None:
                    child.stdin.close()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    for pin in {p for _ms, p, _lv in PLAN}:
        truth = [round(t * 1e9) for (_ms, p, _lv), t in zip(PLAN_SORTED, true_times, strict=True)
                 if p == pin]
        got = [t for p, t in tap.stamps if p == pin]
        out.edges_missing += abs(len(truth) - len(got))
        out.stamp_errors_ns.extend(g - t for g, t in zip(got, truth, strict=False))


def play(sock: Path) -> None:
    """The simulator's side (a separate process, so the stall cannot delay its stamps)."""
    from tessera.sim.bus import GpioBus

    with GpioBus(sock, devices=["main"]) as bus:
        for pin in {p for _ms, p, _lv in PLAN}:
            if not bus.wait_listening("main", pin, timeout_s=30):
                raise SystemExit(f"the firmware never opened pin {pin}")
        print("ready", flush=True)
        t0 = float(sys.stdin.readline())
        times = []
        for ms, pin, level in PLAN_SORTED:
            _sleep_until(t0 + ms / 1000)
            times.append(bus.drive("main", pin, level))
        print(json.dumps(times), flush=True)
        sys.stdin.read()  # until the firmware side is done with the bus


if __name__ == "__main__":
    play(Path(sys.argv[1]))
