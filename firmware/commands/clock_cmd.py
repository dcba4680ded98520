"""``tessera clock set "YYYY-MM-DD HH:MM" --staff ID --config FILE [--device PI]``.

A member of staff sets the engine's time after a power cut on a Pi without RTC
and NTP (docs/engine.md, "Clock trust"). The command goes to the engine like every
staff command from a counter Pi: an MQTT ``set-clock`` request from a counter
device, here a login of its own listed in ``mqtt.devices`` (``{desk = ["counter"]}``
gives ``counter-desk``), so it never takes over a running panel's MQTT session.
The engine records ``clock.set`` naming the staff id and the device.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

EXIT_REFUSED = 1
EXIT_USAGE = 2


def register(sub: Any) -> None:
    p = sub.add_parser("clock", help="the engine's clock: set it after a power cut")
    csub = p.add_subparsers(dest="clock_command", metavar="ACTION")
    s = csub.add_parser("set", help="set the engine's time (local) by a member of staff",
                        description="Set the engine's time to the local date and time given "
                        "(read from a watch or phone), as the staff member named. Refused "
                        "while NTP keeps the clock, and for a time earlier than the last "
                        "recorded activity.")
    s.add_argument("time", help='local date and time, "YYYY-MM-DD HH:MM"')
    s.add_argument("--staff", required=True, help="who sets it: a [[staff]] id or a "
                   "counter's staff")
    s.add_argument("--config", required=True, help="branch config (TOML)")
    s.add_argument("--device", help="Pi name of the counter login to send from (an "
                   "mqtt.devices entry with role counter); default: the only one")
    s.add_argument("--timeout", type=float, default=None,
                   help="seconds to wait for the engine (default: until the request expires)")
    s.set_defaults(func=set_clock)
    p.set_defaults(func=lambda args: (p.print_help(), EXIT_USAGE)[1])


def _fail(message: str) -> int:
    print(f"tessera clock set: {message}", file=sys.stderr)
    return EXIT_USAGE


def set_clock(args: argparse.Namespace) -> int:
    from tessera.clock import SystemClock
    from tessera.config import load_config
    from tessera.engine.clocktrust import parse_local_time
    from tessera.errors import ConfigError
    from tessera.identity import counter_pis, device_id

    try:
        cfg = load_config(args.config, roles=("counter",))
    except ConfigError as e:
        return _fail(str(e))
    try:
        parse_local_time(args.time, cfg.tz)
    except ValueError as e:
        return _fail(f"TIME: {e}")
    staff = {s.id for s in cfg.staff} | {c.staff for c in cfg.counters if c.staff}
    if args.staff not in staff:
        return _fail(f"--staff: {args.staff!r} is not configured ([[staff]] or "
                     f"counters[].staff); known: {', '.join(sorted(staff)) or 'none'}")
    if not cfg.mqtt.url:
        return _fail("mqtt.url: not set; the command reaches the engine through the branch "
                     "broker (docs/install.md, 'After a power cut')")
    panels = set(counter_pis(cfg))
    tools = [pi for pi, roles in cfg.mqtt.devices.items() if "counter" in roles
             and pi not in panels]
    pi = args.device
    if pi is None:
        if len(tools) != 1:
            return _fail("--device: name the counter login to send from; "
                         + (f"configured: {', '.join(tools)}" if tools else
                            'add one to the config, e.g. mqtt.devices = { desk = ["counter"] }, '
                            "and run tessera broker config for its login"))
        pi = tools[0]
    elif pi in panels:
        return _fail(f"--device: {pi!r} runs counter panels; their login is theirs (a second "
                     "client would take over their MQTT session). Use an mqtt.devices entry")
    elif pi not in tools:
        return _fail(f"--device: no counter login {pi!r} in mqtt.devices; configured: "
                     f"{', '.join(tools) or 'none'}")
    answer = _request(cfg, device_id(cfg, "counter", pi), SystemClock(),
                      {"time": args.time.strip(), "staff": args.staff}, args.timeout)
    if answer.get("status") == "done":
        r = answer.get("result", {})
        print(f"engine clock set to {r.get('time')} (was {r.get('previous')}, step "
              f"{r.get('step_s')} s) by {r.get('staff')} from {r.get('device')}")
        return 0
    print(f"tessera clock set: {answer.get('code')}: {answer.get('detail')}", file=sys.stderr)
    return EXIT_REFUSED


def _request(cfg: Any, device: str, clock: Any, req_args: dict[str, Any],
             timeout: float | None) -> dict[str, Any]:
    from tessera.mqtt.command_client import CommandClient
    from tessera.mqtt.link import DeviceLink

    dl = DeviceLink.from_config(cfg, device, clock=clock, meta={"role": ["counter"]})
    client = CommandClient(dl.port, dl.uplink, dl.topics, clock=clock,
                           expiry_s=math.ceil(cfg.mqtt.command_max_age_s))
    dl.start()
    try:
        answer: dict[str, Any] = client.request("set-clock", req_args, timeout=timeout)
        return answer
    finally:
        dl.stop()


__all__ = ["register", "set_clock"]
