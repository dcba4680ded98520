"""``tessera appointments load FILE``: load bookings into the running engine, over MQTT.

The file is checked here first, line by line, with the engine's own check
(:func:`tessera.engine.appointments.load_bookings`): a bad file is refused
(exit 2, every ``file:line: field …``) before anything is sent. It is then
sent as ``load-appointments`` requests from a ``supervisor`` device
(``mqtt.devices = {office = ["supervisor"]}``), in batches that fit
``mqtt.command_max_bytes``: first every batch as a dry run (the engine checks
it against its store: a booking that has checked in cannot move), then, only if
no batch was refused, for real. Each batch is idempotent by code, so a load cut
short is finished by running the same command again.

    tessera appointments load bookings.csv --config /etc/tessera/branch.toml
    # -> bookings.csv: 40 added, 2 moved, 118 unchanged (4 batches)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tessera.config import BranchConfig
from tessera.engine.appointments import Booking

# what a request adds around its args: {"id": <uuid7>, "issued_at": <RFC 3339>, "args": …}
ENVELOPE_BYTES = 160
MAX_LINES = 500  # per request (the command's schema)
Send = Callable[[dict[str, Any]], dict[str, Any]]


def register(sub: Any) -> None:
    p = sub.add_parser("appointments", help="bookings of the running branch")
    inner = p.add_subparsers(dest="appointments_command", metavar="ACTION")
    load = inner.add_parser(
        "load", help="load a bookings CSV (code,service,slot) into the running engine",
        description="Check FILE line by line, then send it to the running engine as "
        "load-appointments commands from a supervisor device (mqtt.devices), all or "
        "nothing. Idempotent by booking code: loading the same file again changes nothing; "
        "a booking not yet checked in moves to a changed slot.")
    load.add_argument("file", type=Path, metavar="FILE", help="bookings CSV (UTF-8)")
    load.add_argument("--config", type=Path, default=Path("/etc/tessera/branch.toml"),
                      help="branch config (default: /etc/tessera/branch.toml)")
    load.add_argument("--device", default=None,
                      help="the supervisor device to send as (default: the config's only one)")
    load.add_argument("--dry-run", action="store_true",
                      help="check against the engine's bookings and change nothing")
    load.add_argument("--timeout", type=float, default=30.0,
                      help="seconds to wait for the engine per request (default 30)")
    load.set_defaults(func=run)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run(args: argparse.Namespace) -> int:
    from tessera.config import load_config
    from tessera.engine.appointments import load_bookings
    from tessera.errors import ConfigError

    try:
        # no role's device checks: this runs on a staff PC, not on the kiosk's Pi
        cfg = load_config(args.config, roles=("supervisor",))
    except ConfigError as e:
        return _fail(f"{args.config}: {e}")
    if not math.isfinite(args.timeout) or not 1 <= args.timeout <= 600:
        return _fail(f"--timeout {args.timeout:g}: give 1 to 600 seconds")
    try:
        bookings = load_bookings(args.file, cfg)
    except ConfigError as e:
        for line in e.errors:
            print(line, file=sys.stderr)
        return _fail(f"{args.file}: {len(e.errors)} bad line(s); nothing was sent")
    if not bookings:
        print(f"{args.file}: no bookings in the file; nothing to do")
        return 0
    device = _device(cfg, args.device)
    if isinstance(device, int):
        return device
    if not cfg.mqtt.url:
        return _fail("mqtt.url is empty: the engine is reached over MQTT; set mqtt.url to "
                     "the branch broker (or name the file in engine.appointments_file and "
                     "restart the engine)")
    batches = split_batches(str(args.file)[-200:], bookings, cfg.mqtt.command_max_bytes)
    try:
        with _client(cfg, device, args.timeout) as send:
            return load(send, str(args.file), batches, dry_run=args.dry_run)
    except ConfigError as e:  # the device's login (mqtt.credentials_dir), the URL
        return _fail(str(e))


def split_batches(source: str, bookings: list[Booking], max_bytes: int
                  ) -> list[dict[str, Any]]:
    """The ``load-appointments`` args for ``bookings``, each request within ``max_bytes``."""
    out: list[dict[str, Any]] = []
    head = len(json.dumps({"file": source, "lines": [], "dry_run": False}))
    size, lines = head, list[dict[str, Any]]()
    for b in bookings:
        line: dict[str, Any] = {"line": b.line, "code": b.code, "service": b.service,
                "slot": b.slot.isoformat().replace("+00:00", "Z")}
        n = len(json.dumps(line)) + 2
        if lines and (size + n + ENVELOPE_BYTES > max_bytes or len(lines) >= MAX_LINES):
            out.append({"file": source, "lines": lines})
            size, lines = head, list[dict[str, Any]]()
        lines.append(line)
        size += n
    out.append({"file": source, "lines": lines})
    return out


def load(send: Send, source: str, batches: list[dict[str, Any]], *, dry_run: bool) -> int:
    """Dry-run every batch, then (unless ``dry_run`` or a batch was refused) apply each."""
    checked = [send({**b, "dry_run": True}) for b in batches]
    if _refused(checked):
        print(f"{source}: refused by the engine; nothing was loaded", file=sys.stderr)
        return 1
    if dry_run:
        print(f"{source}: would add {_sum(checked, 'added')}, move {_sum(checked, 'moved')}, "
              f"leave {_sum(checked, 'unchanged')} unchanged{_past(checked)} "
              f"({len(batches)} batches)")
        return 0
    done: list[dict[str, Any]] = []
    for b in batches:
        answer = send({**b, "dry_run": False})
        if _refused([answer]):
            print(f"{source}: {len(done)} of {len(batches)} batches were loaded before the "
                  "engine refused one (its bookings changed meanwhile); fix the file and run "
                  "the same command again: loading is idempotent", file=sys.stderr)
            return 1
        done.append(answer)
    print(f"{source}: {_sum(done, 'added')} added, {_sum(done, 'moved')} moved, "
          f"{_sum(done, 'unchanged')} unchanged{_past(done)} ({len(batches)} batches)")
    return 0


def _refused(answers: list[dict[str, Any]]) -> bool:
    bad = [a for a in answers if a.get("status") != "done"]
    for a in bad:
        detail = str(a.get("detail") or "")
        if a.get("code") == "bad-bookings":
            for part in detail.removesuffix("; nothing was loaded").split("; "):
                print(part, file=sys.stderr)
        else:
            print(f"engine: {a.get('code')}: {detail}", file=sys.stderr)
    return bool(bad)


def _past(answers: list[dict[str, Any]]) -> str:
    n = _sum(answers, "past")
    return f", {n} not booked (their check-in window had ended)" if n else ""


def _sum(answers: list[dict[str, Any]], key: str) -> int:
    return sum(int(a.get("result", {}).get(key, 0)) for a in answers)


def _device(cfg: BranchConfig, wanted: str | None) -> str | int:
    from tessera.identity import branch_devices

    ours = sorted(d.id for d in branch_devices(cfg).values() if d.role == "supervisor")
    if wanted is not None and wanted not in ours:
        return _fail(f"--device {wanted!r} is not a supervisor device of this branch; "
                     + (f"configured: {', '.join(ours)}" if ours else
                        'add one, e.g. mqtt.devices = { office = ["supervisor"] }'))
    if wanted is None and len(ours) != 1:
        return _fail("no supervisor device in the config: add one, e.g. mqtt.devices = "
                     '{ office = ["supervisor"] }, and give this PC its login '
                     "(tessera broker config)" if not ours else
                     f"several supervisor devices ({', '.join(ours)}): choose one with --device")
    return wanted or ours[0]


@contextmanager
def _client(cfg: BranchConfig, device: str, timeout_s: float) -> Iterator[Send]:
    from tessera.clock import SystemClock
    from tessera.mqtt.command_client import CommandClient
    from tessera.mqtt.link import DeviceLink

    clock = SystemClock()
    store = cfg.path(cfg.storage.dir)
    with tempfile.TemporaryDirectory(prefix="tessera-appointments-") as tmp:
        # the device publishes no events: its outbox only keeps presence and the mark
        db = (store if store.is_dir() else Path(tmp)) / f"{device}.db"
        link = DeviceLink.from_config(cfg, device, clock=clock, db_path=db,
                                      meta={"role": ["supervisor"]})
        client = CommandClient(link.port, link.uplink, link.topics, clock=clock,
                               expiry_s=math.ceil(cfg.mqtt.command_max_age_s))
        link.start()
        try:
            yield lambda args: client.request("load-appointments", args, timeout=timeout_s)
        finally:
            link.stop()


def _fail(message: str) -> int:
    print(f"tessera appointments: {message}", file=sys.stderr)
    return 2
