"""``tessera sim hardware|press|hold|state|scenario``, and the STATE of ``sim printer|board``.

    tessera sim hardware --config examples/bank.toml --out /tmp/branch   # runs until Ctrl-C
    tessera run all --config /tmp/branch/branch.toml                     # unmodified firmware
    tessera sim press kiosk.cash
    tessera sim hold counter-c1.next 2.5
    tessera sim printer paper-out
    tessera sim state

Every command finds the simulator at ``$TESSERA_SIM_SOCKET`` (else
``$XDG_RUNTIME_DIR/tessera-sim/bus.sock``, else ``/tmp/tessera-sim-$UID/bus.sock``)
or ``--socket``. Exit status: 0 done, 2 bad input (an unknown name or state:
the message lists the valid ones), 1 no simulator, no answer, or a press no
firmware was listening to.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tessera.commands.board_cmd import subgroup

SOCKET_HELP = "bus socket (default $TESSERA_SIM_SOCKET, else the per-user runtime dir)"
BOUNCE_HELP = "contact bounces at each end (two edges ~1 ms apart each)"


def register(sub: Any) -> None:
    s = subgroup(sub, "sim", "run a hardware emulator")
    h = s.add_parser("hardware", help="a branch's GPIO, printer and board for unmodified firmware")
    h.add_argument("--config", type=Path, required=True, help="branch config (TOML)")
    h.add_argument("--out", type=Path, default=Path("sim-hardware"),
                   help="directory for branch.toml (the firmware's config), events.jsonl, "
                        "tickets/, board/, wav/ and the firmware's storage")
    h.add_argument("--socket", type=Path, default=None, help=SOCKET_HELP)
    h.add_argument("--always-open", action="store_true",
                   help="drop the services' opening hours (tickets at any wall-clock time)")
    h.add_argument("--duration", type=float, default=0.0, help="stop after N seconds")
    h.add_argument("--ready-file", type=Path, default=None, help=argparse.SUPPRESS)
    h.set_defaults(func=sim_hardware)

    p = s.add_parser("press", help="press a button of the running sim hardware")
    p.add_argument("name", help="kiosk.<service>, counter-<id>.<key> or DEVICE:PIN")
    p.add_argument("--duration-ms", type=float, default=None,
                   help="time held down (default: random 80-150 ms, a finger)")
    p.add_argument("--bounce", type=int, default=0, help=BOUNCE_HELP)
    p.add_argument("--socket", type=Path, default=None, help=SOCKET_HELP)
    p.set_defaults(func=sim_press)

    o = s.add_parser("hold", help="hold a button down for SECONDS, then let go")
    o.add_argument("name", help="kiosk.<service>, counter-<id>.<key> or DEVICE:PIN")
    o.add_argument("seconds", type=float)
    o.add_argument("--bounce", type=int, default=0, help=BOUNCE_HELP)
    o.add_argument("--socket", type=Path, default=None, help=SOCKET_HELP)
    o.set_defaults(func=sim_hold)

    t = s.add_parser("state", help="lamps, tickets, board content and WAVs as JSON")
    t.add_argument("--socket", type=Path, default=None, help=SOCKET_HELP)
    t.set_defaults(func=sim_state)

    c = s.add_parser("scenario", help="play a scenario file (TOML or JSON lines)")
    c.add_argument("file", type=Path)
    c.add_argument("--socket", type=Path, default=None, help=SOCKET_HELP)
    c.set_defaults(func=sim_scenario)


def add_state_argument(parser: argparse.ArgumentParser, states: str) -> None:
    """The optional STATE of ``sim printer``/``sim board``: with it, a control request."""
    parser.add_argument("control_state", nargs="?", default=None, metavar="STATE",
                        help=f"set the running sim hardware's state ({states}) "
                             "instead of starting an emulator")
    parser.add_argument("--socket", type=Path, default=None, help=SOCKET_HELP)


# --------------------------------------------------------------------------- control


def _ask(prog: str, req: dict[str, Any], socket_path: Path | None) -> tuple[int, dict[str, Any]]:
    """Validate, send, and map the outcome to an exit status (message printed)."""
    from tessera.sim.control import BadRequest, NoReply, check_request, request
    from tessera.sim.gpio import SimulatorNotRunning

    try:
        req = check_request(req)
        reply = request(req, socket_path=socket_path)
    except BadRequest as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2, {}
    except (SimulatorNotRunning, NoReply) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1, {}
    if not reply.get("ok"):
        print(f"{prog}: {reply.get('error', reply)}", file=sys.stderr)
        return (2 if reply.get("code") == "bad-input" else 1), reply
    return 0, reply


def _pressed(prog: str, reply: dict[str, Any]) -> int:
    where = f"{reply['name']} ({reply['device']} pin {reply['pin']})"
    if not reply.get("listening"):
        print(f"{prog}: pressed {where}, but no firmware has that pin open as an input: "
              "is `tessera run` running on this simulator's branch.toml?", file=sys.stderr)
        return 1
    print(f"{where}: down {reply['held_s'] * 1000:.0f} ms", flush=True)
    return 0


def sim_press(args: argparse.Namespace) -> int:
    rc, reply = _ask("tessera sim press", {"op": "press", "name": args.name,
                                           "duration_ms": args.duration_ms,
                                           "bounce": args.bounce}, args.socket)
    return rc if rc else _pressed("tessera sim press", reply)


def sim_hold(args: argparse.Namespace) -> int:
    rc, reply = _ask("tessera sim hold", {"op": "hold", "name": args.name,
                                          "seconds": args.seconds, "bounce": args.bounce},
                     args.socket)
    return rc if rc else _pressed("tessera sim hold", reply)


def sim_state(args: argparse.Namespace) -> int:
    rc, reply = _ask("tessera sim state", {"op": "state"}, args.socket)
    if rc == 0:
        print(json.dumps(reply["state"], indent=1, ensure_ascii=False))
    return rc


def _control(device: str, args: argparse.Namespace) -> int:
    rc, reply = _ask(f"tessera sim {device}", {"op": device, "state": args.control_state},
                     args.socket)
    if rc == 0:
        print(f"{device}: {reply[device]}")
    return rc


def control_printer(args: argparse.Namespace) -> int:
    """``tessera sim printer STATE``: the running sim hardware's printer."""
    return _control("printer", args)


def control_board(args: argparse.Namespace) -> int:
    """``tessera sim board STATE``: ``silent`` (no sign answers read-backs) or ``ok``."""
    return _control("board", args)


def sim_scenario(args: argparse.Namespace) -> int:
    from tessera.sim.control import BadRequest, load_scenario

    prog = "tessera sim scenario"
    try:
        steps = load_scenario(args.file)
    except BadRequest as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    rc, reply = _ask(prog, {"op": "scenario", "steps": steps}, args.socket)
    if rc:
        return rc
    deaf = 0
    for r in reply["results"]:
        if r["op"] in ("press", "hold"):
            deaf += not r["listening"]
            print(f"{r['at']:8.3f}  {r['op']} {r['name']}: down {r['held_s'] * 1000:.0f} ms"
                  + ("" if r["listening"] else "  (no firmware listening)"))
        else:
            print(f"{r['at']:8.3f}  {r['op']}: {r.get(r['op'])}")
    print(f"{reply['steps']} step(s) in {reply['took_s']:.2f} s", flush=True)
    return 1 if deaf else 0


# --------------------------------------------------------------------------- hardware


def sim_hardware(args: argparse.Namespace) -> int:
    import signal
    import threading
    import time

    from tessera.config import load_config
    from tessera.demo.hardware import config_toml, derived_config, sim_wiring
    from tessera.drivers.printer_profiles import get_profile
    from tessera.errors import ConfigError
    from tessera.sim.gpio import SOCKET_ENV, sim_socket_path
    from tessera.sim.hardware import SimHardware

    prog = "tessera sim hardware"
    try:
        cfg = load_config(args.config)
        profile = get_profile(cfg.kiosk.printer.profile)
        width = profile.width_dots
    except ConfigError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    path = args.socket.resolve() if args.socket else sim_socket_path()
    target = out / "branch.toml"
    wiring = sim_wiring(derived_config(cfg, out=out, always_open=args.always_open))
    hw = SimHardware(wiring, out, socket_path=path, printer_width_dots=width,
                     printer_cutter=profile.cutter,
                     board_baudrate=cfg.board.baudrate,
                     info={"config": str(target), "source": str(args.config.resolve())})
    try:
        hw.start()
    except OSError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        derived = derived_config(cfg, out=out, printer_url=hw.printer.path,
                                 board_url=hw.board.path, always_open=args.always_open)
        tmp = target.with_name(target.name + ".new")
        tmp.write_text(config_toml(derived, header=(
            f"Written by `tessera sim hardware` from {args.config.resolve()}.\n"
            "The firmware's config for the simulated bus: "
            f"tessera run all --config {target}")), encoding="utf-8")
        tmp.replace(target)
        env = "" if path == sim_socket_path() else f"{SOCKET_ENV}={path} "
        print(f"{prog}: socket {path}", flush=True)
        print(f"{prog}: config {target}", flush=True)
        print(f"{prog}: printer {hw.printer.path}, board {hw.board.path}", flush=True)
        print(f"{prog}: log {out / 'events.jsonl'}", flush=True)
        print(f"{prog}: start the firmware with: {env}tessera run all --config {target}",
              flush=True)
        print(f"{prog}: ready", flush=True)
        if args.ready_file is not None:
            args.ready_file.write_text("ready\n", encoding="utf-8")
        deadline = time.monotonic() + args.duration if args.duration else None
        while not stop.wait(0.2):
            if deadline is not None and time.monotonic() >= deadline:
                break
    finally:
        hw.stop()
    print(f"{prog}: stopped", flush=True)
    return 0
