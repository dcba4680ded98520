"""``tessera bench board``: call event → caller board and call event → announcement WAV.

The board half runs the display role against the Alpha emulator on a pty,
throttled to the line rate (9600 baud 7E1: 10 bits a character), and times
each call event until the emulator has the last byte of the last frame. The
line itself needs ``bytes × 10 / baud``; ``board_overhead_*`` is everything
beyond that (encoding, the serial write, the pty hop, the emulator's own
wake-up); ``board_own_*`` is only the time inside the role (event in → both
frames handed to the kernel). ``sleep_overshoot_p99_ms`` is the same run's
timer noise baseline: on a loaded machine the overhead p99 tracks it.

``bytes_per_call`` and ``blanks_per_call`` count everything one call costs
the line and the signs: the call itself and, a highlight later, the redraw
that turns its line from red to green (the bench's highlight is 50 ms so that
happens inside each iteration). A blank is the sign clearing its display,
which the emulator counts for every TEXT-file write and memory configuration
(the Alpha protocol's reason for STRING files); the target is 0 on a call.

The voice half times call event → WAV assembled and handed to playback.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tessera.clock import SystemClock
from tessera.config import parse_config
from tessera.stats import percentile

CONFIG = """
[branch]
tenant = "bench"
branch = "board"
languages = ["zh", "en"]
[[services]]
id = "cash"
prefix = "A"
names = {{ zh = "现金", en = "Cash" }}
[[counters]]
id = "c1"
number = 1
services = [{{ service = "cash" }}]
board_address = "11"
[[counters]]
id = "c2"
number = 12
services = [{{ service = "cash" }}]
board_address = "12"
[board]
url = "bench"
baudrate = {baud}
history = 4
highlight_s = {highlight}
ping_interval_s = 0
[voice]
clips_dir = "{clips}"
output = "dir:{out}"
"""
HIGHLIGHT_S = 0.05


def _call(i: int) -> dict[str, Any]:
    counter = ("c1", "c2")[i % 2]
    return {"type": "ticket.called", "ts": datetime.now(UTC).isoformat(),
            "data": {"ticket_id": f"t{i}", "number": f"A{i % 1000:03d}", "service": "cash",
                     "counter": counter, "counter_number": (1, 12)[i % 2], "staff": "",
                     "wait_s": 0}}


class _Stamp:
    """AudioOut that notes when each WAV is ready instead of playing it."""

    def __init__(self) -> None:
        self.ready: list[float] = []

    def play(self, wav_path: str | Path) -> None:
        self.ready.append(time.monotonic())


def bench_board(iterations: int, baud: int, clips: Path) -> dict[str, float]:
    from tessera.display.link import BoardLink
    from tessera.display.role import DisplayRole
    from tessera.drivers.alpha import AlphaBoard
    from tessera.sim.board import BoardEmulator

    cfg = parse_config(CONFIG.format(baud=baud, clips=clips, out=clips.parent / "wav",
                                     highlight=HIGHLIGHT_S))
    clock = SystemClock()
    emu = BoardEmulator(baudrate=baud, throttle=True).start()
    try:
        link = BoardLink(lambda: AlphaBoard.open(emu.path, baudrate=baud,
                                                 hall_lines=cfg.board.history), clock,
                         ping_interval_s=0)
        role = DisplayRole(cfg, clock=clock, link=link)
        role.start(thread=False)
        assert emu.wait_bytes(link.bytes_written, timeout=30)
        lat, over, own, sizes, totals, blanks = [], [], [], [], [], []
        for i in range(iterations):
            sent, blanked = link.bytes_written, emu.blanks()
            t0 = time.monotonic()
            role.on_event(_call(i))
            own.append(time.monotonic() - t0)
            n = link.bytes_written - sent
            if not emu.wait_bytes(link.bytes_written, timeout=10):
                raise RuntimeError("emulator did not receive the frames")
            t_last = emu.frame_times[-1]
            lat.append(t_last - t0)
            over.append(t_last - t0 - n * 10 / baud)
            sizes.append(n)
            time.sleep(max(HIGHLIGHT_S - (time.monotonic() - t0), 0) + 0.005)
            role.tick()  # the highlight ran out: red -> green
            if not emu.wait_bytes(link.bytes_written, timeout=10):
                raise RuntimeError("emulator did not receive the frames")
            totals.append(link.bytes_written - sent)
            blanks.append(emu.blanks() - blanked)
            time.sleep(0.01)  # line idle between calls, as in a real hall
        role.stop()
    finally:
        emu.stop()
    return {
        "bytes_per_call": statistics.median(totals),
        "blanks_per_call": float(statistics.mean(blanks)),
        "board_latency_p50_ms": percentile(lat, 0.5) * 1e3,
        "board_latency_p99_ms": percentile(lat, 0.99) * 1e3,
        "board_line_ms": statistics.median(sizes) * 10 / baud * 1e3,
        "board_bytes_per_call": statistics.median(sizes),
        "board_overhead_p50_ms": percentile(over, 0.5) * 1e3,
        "board_overhead_p99_ms": percentile(over, 0.99) * 1e3,
        "board_own_p50_ms": percentile(own, 0.5) * 1e3,
        "board_own_p99_ms": percentile(own, 0.99) * 1e3,
        "board_rejected_frames": float(sum(emu.rejected.values())),
    }


def bench_voice(iterations: int, clips: Path) -> dict[str, float]:
    import wave

    from tessera.display.announcer import Announcement, Announcer
    from tessera.display.role import DisplayRole
    from tessera.display.voice import ClipLibrary

    cfg = parse_config(CONFIG.format(baud=9600, clips=clips, out=clips.parent / "wav",
                                     highlight=10.0))
    clock = SystemClock()
    out = _Stamp()
    ann = Announcer(ClipLibrary(clips), out, clock, languages=("zh", "en"), max_age_s=600)
    role = DisplayRole(cfg, clock=clock, announcer=ann)
    role.start(thread=False)
    ready = []
    for i in range(iterations):
        t0 = time.monotonic()
        role.on_event(_call(i))
        if not ann.drain(30):
            raise RuntimeError("announcement not rendered")
        ready.append(out.ready[-1] - t0)
    wav = ann.render(Announcement("A023", 3, datetime.now(UTC)), 100)
    with wave.open(str(wav), "rb") as w:
        seconds = w.getnframes() / w.getframerate()
    role.stop()
    return {"voice_ready_p50_ms": percentile(ready, 0.5) * 1e3,
            "voice_ready_p99_ms": percentile(ready, 0.99) * 1e3,
            "voice_wav_s": seconds}


def sleep_overshoot(n: int = 200) -> float:
    """p99 of how late a 1 ms sleep wakes up on this machine right now (ms)."""
    late = []
    for _ in range(n):
        t = time.monotonic()
        time.sleep(0.001)
        late.append(time.monotonic() - t - 0.001)
    return percentile(late, 0.99) * 1e3


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tessera.display.voice import generate_clips

    quick = bool(getattr(args, "quick", False))
    with tempfile.TemporaryDirectory(prefix="tessera-bench-") as tmp:
        clips = Path(tmp) / "clips"
        (Path(tmp) / "wav").mkdir()  # voice.output: nothing is written there
        t = time.monotonic()
        generate_clips(clips, ["zh", "en"])
        gen_s = time.monotonic() - t
        result: dict[str, Any] = {"baud": 9600, "framing": "7E1",
                                  "iterations": 20 if quick else 200,
                                  "sleep_overshoot_p99_ms": sleep_overshoot()}
        result.update(bench_board(result["iterations"], 9600, clips))
        result.update(bench_voice(20 if quick else 100, clips))
        result["clip_generation_s"] = gen_s
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}
