"""``tessera sim board``, ``tessera voice clips`` and ``tessera voice test``.

    tessera sim board --out /tmp/board --throttle      # prints the pty path, runs until Ctrl-C
    tessera voice clips /var/lib/tessera/clips --lang zh --lang en
    tessera voice test --config branch.toml --number A023 --counter 3
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any


def subgroup(sub: Any, name: str, helptext: str, metavar: str = "DEVICE") -> Any:
    """The sub-subparsers of command ``name``, created once and shared by modules."""
    if name in sub.choices:
        parser = sub.choices[name]
        return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    parser = sub.add_parser(name, help=helptext)
    return parser.add_subparsers(dest=f"{name}_command", metavar=metavar, required=True)


def register(sub: Any) -> None:
    s = subgroup(sub, "sim", "run a hardware emulator")
    b = s.add_parser("board", help="Alpha-protocol caller boards on a pty")
    b.add_argument("--baud", type=int, default=9600, help="line rate for --throttle")
    b.add_argument("--throttle", action="store_true", help="pace input at baud (7E1)")
    b.add_argument("--silent", action="append", default=[], metavar="ADDR",
                   help="this board never answers read-back requests (repeatable)")
    b.add_argument("--echo", action="store_true",
                   help="echo every byte back, like a two-wire RS-485 adapter")
    b.add_argument("--out", default="", help="write <address>.png and .txt here on change")
    b.add_argument("--duration", type=float, default=0.0, help="stop after N seconds")
    from tessera.commands.sim_cmd import add_state_argument

    add_state_argument(b, "ok, silent, power-cycle (memory lost, as after a power cut)")
    b.set_defaults(func=sim_board)

    v = subgroup(sub, "voice", "announcement clips and test announcements", "ACTION")
    c = v.add_parser("clips", help="generate missing clips with espeak-ng into DIR")
    c.add_argument("dir", help="clip directory (one sub-directory per language)")
    c.add_argument("--lang", action="append", default=[], help="language (repeatable)")
    c.add_argument("--overwrite", action="store_true", help="regenerate existing clips too")
    c.set_defaults(func=voice_clips)
    t = v.add_parser("test", help="announce a call through the configured output")
    t.add_argument("--config", required=True, help="branch config (TOML)")
    t.add_argument("--number", default="A001")
    t.add_argument("--counter", type=int, default=1)
    t.set_defaults(func=voice_test)


def sim_board(args: argparse.Namespace) -> int:
    if args.control_state is not None:  # `sim board STATE`: tell the running sim hardware
        from tessera.commands.sim_cmd import control_board

        return control_board(args)
    from pathlib import Path

    from tessera.config_paths import dir_problem
    from tessera.sim.board import BoardEmulator

    out = Path(args.out) if args.out else None
    if out is not None:
        if problem := dir_problem(out, writable=True):
            print(f"tessera sim board: --out {args.out} {problem}", file=sys.stderr)
            return 2
        out.mkdir(parents=True, exist_ok=True)
    with BoardEmulator(baudrate=args.baud, throttle=args.throttle, echo=args.echo) as emu:
        emu.silent.update(a.upper() for a in args.silent)
        print(emu.path, flush=True)
        deadline = time.monotonic() + args.duration if args.duration else None
        shown: dict[str, str] = {}
        rejected = 0
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
            for addr in sorted(emu.signs):
                text = emu.text(addr)
                if shown.get(addr) != text:
                    shown[addr] = text
                    print(f"[{addr}] " + text.replace("\n", " | "), flush=True)
                    if out is not None:
                        (out / f"{addr}.txt").write_text(text + "\n", encoding="utf-8")
                        emu.render_png(addr, out / f"{addr}.png")
            total = sum(emu.rejected.values())
            if total != rejected:
                rejected = total
                print(f"rejected frames: {emu.rejected}", flush=True)
    return 0


def voice_clips(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tessera.config_paths import dir_problem
    from tessera.display.voice import LANGUAGES, VoiceError, generate_clips

    langs = args.lang or ["zh", "en"]
    problems = [f"--lang {lang[:40]!r}: no announcement template; known: "
                f"{', '.join(sorted(LANGUAGES))}" for lang in langs if lang not in LANGUAGES]
    if problem := dir_problem(Path(args.dir), writable=True):
        problems.append(f"{args.dir[:200]} {problem}")
    else:
        for lang in langs:
            if lang in LANGUAGES and (p := dir_problem(Path(args.dir) / lang, writable=True)):
                problems.append(f"{Path(args.dir) / lang} {p}")
    if problems:
        for p in problems:
            print(f"tessera voice clips: {p}", file=sys.stderr)
        return 2
    try:
        made = generate_clips(args.dir, langs, overwrite=args.overwrite)
    except VoiceError as e:
        print(f"tessera voice clips: {e}", file=sys.stderr)
        return 2
    print(f"{len(made)} clip(s) written to {args.dir}")
    return 0


def voice_test(args: argparse.Namespace) -> int:
    from tessera.clock import SystemClock
    from tessera.config import load_config
    from tessera.display.factory import build_announcer
    from tessera.errors import ConfigError, DeviceError

    try:
        cfg = load_config(args.config)
        ann = build_announcer(cfg, SystemClock())
    except (ConfigError, DeviceError) as e:
        print(f"tessera voice test: {e}", file=sys.stderr)
        return 2
    ann.start()
    ann.announce_call(args.number, args.counter)
    ok = ann.drain(120)
    ann.stop()
    print(f"played {ann.stats.played}, quiet {ann.stats.quiet}, failed {ann.stats.failed}")
    return 0 if ok and ann.stats.failed == 0 else 1
