"""Control requests to a running ``tessera sim hardware``, and scenario files.

Requests travel on the bus socket (``tessera.sim.gpio.sim_socket_path``), one
JSON object a line, each answered by one line::

    {"op":"press","name":"kiosk.cash","duration_ms":120,"bounce":0}
    {"op":"hold","name":"counter-c3.next","seconds":2.5}
    {"op":"printer","state":"paper-out"}        ok near-end paper-out cover-open offline
                                                 silent garbage
    {"op":"board","state":"silent"}             ok silent
    {"op":"state"}
    {"op":"scenario","steps":[{"at":0.0,"op":"press","name":"kiosk.cash"}, ...]}

    {"ok":true, ...}  |  {"ok":false,"code":"bad-input"|"failed","error":"what to fix"}

A scenario file is TOML (``[[step]]`` tables) or JSON lines (one step
object a line, ``#`` comments allowed); each step has ``at`` (seconds from
the start, never decreasing) and one action::

    [[step]]
    at = 0.0
    press = "kiosk.cash"          # optional: duration_ms = 120, bounce = 4
    [[step]]
    at = 3.0
    hold = "counter-c1.next"
    seconds = 2.5
    [[step]]
    at = 8.0
    printer = "paper-out"         # or board = "silent"

    {"at": 0, "press": "kiosk.cash"}
    {"at": 3, "hold": "counter-c1.next", "seconds": 2.5}

Steps run one after another: a step starts at ``at`` or when the one before
it has finished, whichever is later.

    >>> check_request({"op": "printer", "state": "Paper_Out"})
    {'op': 'printer', 'state': 'paper-out'}
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tessera.sim.gpio import LineReader, connect, encode, sim_socket_path

# control name -> the printer emulator's state (tessera.sim.printer.PrinterSimState)
PRINTER_STATES: dict[str, str] = {"ok": "online", "near-end": "near_end",
                                  "paper-out": "paper_out", "cover-open": "cover_open",
                                  "offline": "offline", "silent": "silent",
                                  "garbage": "garbage"}
BOARD_STATES = ("ok", "silent", "power-cycle")
OPS = ("press", "hold", "printer", "board", "state", "scenario")
ACTIONS = ("press", "hold", "printer", "board")  # what a scenario step can do
PRESS_MS = (80.0, 150.0)  # a finger on a button: random in this range unless given
MAX_PRESS_MS = 60_000.0
MAX_HOLD_S = 3600.0
MAX_BOUNCE = 20
MAX_STEPS = 10_000
REPLY_MARGIN_S = 10.0


class BadRequest(ValueError):
    """A request or scenario step is malformed or names what does not exist."""


# --------------------------------------------------------------------------- requests


def normal_name(value: object) -> str:
    """Control names are lower case; ``_`` and ``-`` are the same (``no_show`` = ``no-show``)."""
    if not isinstance(value, str) or not value.strip():
        raise BadRequest("name: give a button name such as kiosk.cash or counter-c1.next")
    return value.strip().lower().replace("_", "-")


def _number(value: object, what: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(f"{what}: {value!r} is not a number")
    if not lo < value <= hi:
        raise BadRequest(f"{what}: {value:g} must be more than {lo:g} and at most {hi:g}")
    return float(value)


def _state(value: object, valid: tuple[str, ...] | dict[str, str], what: str) -> str:
    key = str(value).strip().lower().replace("_", "-")
    key = {"online": "ok"}.get(key, key)
    if key not in valid:
        raise BadRequest(f"unknown {what} state {value!r}; valid: {', '.join(valid)}")
    return key


def check_request(msg: Mapping[str, Any]) -> dict[str, Any]:
    """``msg`` validated and normalised (names, states, numbers), or BadRequest."""
    op = msg.get("op")
    if op not in OPS:
        raise BadRequest(f"unknown request {op!r}; valid: {', '.join(OPS)}")
    out: dict[str, Any] = {"op": op}
    if op in ("press", "hold"):
        out["name"] = normal_name(msg.get("name"))
        if op == "hold":
            out["seconds"] = _number(msg.get("seconds"), "seconds", 0.0, MAX_HOLD_S)
        elif msg.get("duration_ms") is not None:
            out["duration_ms"] = _number(msg["duration_ms"], "duration_ms", 0.0, MAX_PRESS_MS)
        bounce = msg.get("bounce", 0)
        if isinstance(bounce, bool) or not isinstance(bounce, int) or not \
                0 <= bounce <= MAX_BOUNCE:
            raise BadRequest(f"bounce: {bounce!r} must be a whole number from 0 to {MAX_BOUNCE}")
        out["bounce"] = bounce
    elif op == "printer":
        out["state"] = _state(msg.get("state"), PRINTER_STATES, "printer")
    elif op == "board":
        out["state"] = _state(msg.get("state"), BOARD_STATES, "board")
    elif op == "scenario":
        steps = msg.get("steps")
        if not isinstance(steps, list) or not steps or len(steps) > MAX_STEPS:
            raise BadRequest(f"steps: give 1 to {MAX_STEPS} scenario steps")
        out["steps"] = check_steps(steps)
    return out


def step_request(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A scenario step (file form ``{"at":1,"press":"kiosk.cash"}`` or wire form
    ``{"at":1,"op":"press","name":...}``) as a validated request with its ``at``."""
    if not isinstance(raw, Mapping):
        raise BadRequest("a step must be a table / JSON object")
    if "op" in raw:
        req = dict(raw)
    else:
        actions = [a for a in ACTIONS if a in raw]
        if len(actions) != 1:
            raise BadRequest(f"give exactly one of {', '.join(ACTIONS)}")
        req = {k: v for k, v in raw.items() if k != actions[0]}
        req["op"] = actions[0]
        req["name" if actions[0] in ("press", "hold") else "state"] = raw[actions[0]]
    allowed = {"at", "op", "name", "state", "seconds", "duration_ms", "bounce"}
    extra = sorted(set(req) - allowed)
    if extra:
        raise BadRequest(f"unknown key {extra[0]!r}; a step has at and one of "
                         f"{', '.join(ACTIONS)} (with seconds, duration_ms, bounce)")
    if req["op"] not in ACTIONS:
        raise BadRequest(f"a step cannot {req['op']!r}; valid: {', '.join(ACTIONS)}")
    at = req.pop("at", None)
    out = check_request(req)
    out["at"] = 0.0 if at == 0 else _number(at, "at", 0.0, 7 * 86400.0)
    return out


def check_steps(steps: list[Any], where: list[str] | None = None) -> list[dict[str, Any]]:
    """Every step validated; all problems reported at once (``step 3 (line 9): ...``)."""
    out: list[dict[str, Any]] = []
    errors: list[str] = []
    last = 0.0
    for i, raw in enumerate(steps):
        label = f"step {i + 1}" + (f" ({where[i]})" if where else "")
        try:
            step = step_request(raw)
        except BadRequest as e:
            errors.append(f"{label}: {e}")
            continue
        if step["at"] < last:
            errors.append(f"{label}: at = {step['at']:g} comes before the step above "
                          f"({last:g}); list steps in time order")
        last = max(last, step["at"])
        out.append(step)
    if errors:
        raise BadRequest("\n".join(errors))
    return out


def load_scenario(path: Path) -> list[dict[str, Any]]:
    """A scenario file (``.toml``, or JSON lines: ``.jsonl``/``.ndjson``/``.json``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise BadRequest(f"{path}: cannot read ({e.strerror})") from None
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        steps: list[Any] = []
        where: list[str] = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                steps.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise BadRequest(f"{path}:{n}: not a JSON object ({e.msg})") from None
            where.append(f"line {n}")
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise BadRequest(f"{path}: not valid TOML ({e})") from None
        extra = sorted(set(data) - {"step"})
        if extra or not isinstance(data.get("step", []), list):
            raise BadRequest(f"{path}: a scenario holds only [[step]] tables")
        steps = list(data.get("step", []))
        where = []
    if not steps:
        raise BadRequest(f"{path}: no steps")
    try:
        return check_steps(steps, where or None)
    except BadRequest as e:
        raise BadRequest(f"{path}:\n{e}") from None


def reply_timeout_s(req: Mapping[str, Any]) -> float:
    """How long a request may take before its reply is overdue."""
    if req.get("op") == "hold":
        return float(req["seconds"]) + REPLY_MARGIN_S
    if req.get("op") == "press":
        return float(req.get("duration_ms") or PRESS_MS[1]) / 1000 + REPLY_MARGIN_S
    if req.get("op") == "scenario":
        steps = req["steps"]
        busy = sum(float(s.get("seconds") or 0) + float(s.get("duration_ms") or PRESS_MS[1])
                   / 1000 for s in steps)
        return float(steps[-1]["at"]) + busy + REPLY_MARGIN_S
    return REPLY_MARGIN_S


# --------------------------------------------------------------------------- client


class NoReply(TimeoutError):
    """The simulator took a request but did not answer in time."""


def request(req: Mapping[str, Any], *, socket_path: Path | None = None,
            timeout_s: float | None = None) -> dict[str, Any]:
    """Send one request to the running simulator and return its reply.

    Raises ``tessera.sim.gpio.SimulatorNotRunning`` when nothing listens and
    :class:`NoReply` when the answer is overdue (every wait is bounded).
    """
    path = socket_path or sim_socket_path()
    wait = reply_timeout_s(req) if timeout_s is None else timeout_s
    sock = connect(path)
    try:
        sock.settimeout(wait)
        try:
            sock.sendall(encode(req))
            reply = LineReader(sock).read()
        except TimeoutError:
            raise NoReply(f"the simulator on {path} did not answer within {wait:g} s") from None
        if reply is None:
            raise NoReply(f"the simulator on {path} hung up without answering")
        return reply
    finally:
        sock.close()
