"""One branch's hardware in one process: GPIO bus, printer and caller board, records.

    wiring = Wiring([Wire("kiosk.cash", "main", 17, "button"),
                     Wire("kiosk.ready", "main", 4, "lamp")])
    with SimHardware(wiring, out=Path("sim"), socket_path=sim_socket_path()) as hw:
        hw.printer.path, hw.board.path      # the ptys the firmware's config points at
        hw.handle({"op": "press", "name": "kiosk.cash"})
        hw.state()["lamps"]["kiosk.ready"]

The wiring (which name is which device's pin) comes from the caller
(``tessera.demo.hardware.sim_wiring`` derives it from a branch config): the
simulator knows pins and names, never the firmware's config types.

What the firmware did is appended to ``out/events.jsonl`` as it happens, one
JSON object a line with ``kind`` and ``t`` (CLOCK_MONOTONIC, the firmware's
clock too) and ``time`` (wall clock): ``lamp`` (device, pin, name, state),
``output`` (an unnamed output pin), ``setup``, ``input`` (what the bus drove),
``connect``/``disconnect`` (firmware processes), ``start`` (this simulator, each
run), ``ticket`` (the printer
emulator's decoded record; PNG and JSON under ``out/tickets``), ``board``
(sign address and text; ``out/board/<address>.txt``/``.png``), ``wav`` (a new
announcement file), ``printer``/``board-line`` (faults set by control
requests) and ``control`` (each request).
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from tessera.sim.board import BoardEmulator
from tessera.sim.bus import PINS, BusError, Event, GpioBus
from tessera.sim.control import PRESS_MS, PRINTER_STATES, BadRequest, check_request, normal_name
from tessera.sim.printer import PrinterEmulator, PrinterSimState

log = logging.getLogger(__name__)

WATCH_S = 0.05  # how often tickets, board content and WAVs are looked at


@dataclass(frozen=True)
class Wire:
    """One named pin: ``Wire("counter-c1.next", "main", 5, "button", "counters[0].panel.next")``."""

    name: str
    device: str
    pin: int
    kind: str  # "button" (the simulator presses it) or "lamp" (the firmware drives it)
    where: str = ""  # where the config wires it


class Wiring:
    """Every named pin of a branch; names are ``<group>.<key>`` (``kiosk.cash``)."""

    def __init__(self, wires: Iterable[Wire]) -> None:
        self.wires = tuple(wires)
        self.buttons: dict[str, Wire] = {}
        self.lamps: dict[str, Wire] = {}
        self._at: dict[tuple[str, int], Wire] = {}
        for w in self.wires:
            table = self.buttons if w.kind == "button" else self.lamps
            if w.name in table or (w.device, w.pin) in self._at:
                raise ValueError(f"{w.name}: name or {w.device} pin {w.pin} wired twice")
            table[w.name] = w
            self._at[w.device, w.pin] = w
        self.devices = tuple(dict.fromkeys(w.device for w in self.wires))

    def at(self, device: str, pin: int) -> Wire | None:
        return self._at.get((device, pin))

    def button(self, name: str) -> Wire:
        """The button called ``name``, or ``DEVICE:PIN`` for any pin; BadRequest naming the
        valid ones otherwise."""
        name = normal_name(name)
        if ":" in name:
            device, _, pin_text = name.partition(":")
            if device not in self.devices:
                raise BadRequest(f"unknown device {device!r}; valid: {', '.join(self.devices)}")
            if not pin_text.isdigit() or int(pin_text) not in PINS:
                raise BadRequest(f"{name!r}: pin must be a BCM GPIO number, 0-27")
            wire = self.at(device, int(pin_text))
            if wire is not None and wire.kind == "lamp":
                raise BadRequest(f"{name!r} is the lamp {wire.name}, an output; press a button")
            return wire or Wire(name, device, int(pin_text), "button")
        if name in self.buttons:
            return self.buttons[name]
        group = name.split(".", 1)[0]
        groups = list(dict.fromkeys(n.split(".", 1)[0] for n in self.buttons))
        if group not in groups:
            raise BadRequest(f"unknown button {name!r}: no {group!r} here; valid groups: "
                             f"{', '.join(groups)} (e.g. {next(iter(self.buttons), '')}), "
                             f"or DEVICE:PIN with a device of {', '.join(self.devices)}")
        same = [n for n in self.buttons if n.split(".", 1)[0] == group]
        lamp = " (that is a lamp, an output)" if name in self.lamps else ""
        raise BadRequest(f"unknown button {name!r}{lamp}; {group} has {', '.join(same)}")


class Recorder:
    """``events.jsonl``: one JSON object a line, flushed as written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file: IO[str] | None = open(path, "a", encoding="utf-8")  # noqa: SIM115
        self.count = 0

    def write(self, kind: str, **fields: Any) -> None:
        rec = {"kind": kind, "t": fields.pop("t", time.monotonic()),
               "time": datetime.now(UTC).isoformat(timespec="milliseconds"), **fields}
        line = json.dumps(rec, ensure_ascii=False, separators=(",", ":"), default=str)
        with self._lock:
            if self._file is not None:
                self._file.write(line + "\n")
                self._file.flush()
                self.count += 1

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class SimHardware:
    """The bus, a printer emulator and a board emulator, answering control requests."""

    def __init__(self, wiring: Wiring, out: Path, *, socket_path: Path,
                 printer_width_dots: int = 576, printer_cutter: bool = True,
                 board_baudrate: int = 9600,
                 wav_dir: Path | None = None, press_ms: tuple[float, float] = PRESS_MS,
                 info: dict[str, str] | None = None) -> None:
        self.wiring = wiring
        self.out = out
        self.wav_dir = wav_dir or out / "wav"
        self.press_ms = press_ms
        self.info = dict(info or {})
        self.printer = PrinterEmulator(out_dir=out / "tickets", width_dots=printer_width_dots,
                                       cutter=printer_cutter)
        self.board = BoardEmulator(baudrate=board_baudrate)
        self.bus = GpioBus(socket_path, devices=wiring.devices, control=self.handle,
                           on_event=self._on_bus_event)
        self.recorder: Recorder | None = None
        self.tickets: list[dict[str, Any]] = []
        self.signs: dict[str, str] = {}
        self.wavs: list[str] = []
        self._rng = random.Random()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._state_lock = threading.Lock()  # tickets, signs, wavs

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SimHardware:
        for sub in ("tickets", "board"):
            (self.out / sub).mkdir(parents=True, exist_ok=True)
        self.wav_dir.mkdir(parents=True, exist_ok=True)
        self.recorder = Recorder(self.out / "events.jsonl")
        self.printer.start()
        self.board.start()
        try:
            self.bus.start()
        except BaseException:
            self.printer.stop()
            self.board.stop()
            raise
        self._stop.clear()
        self._watcher = threading.Thread(target=self._watch, name="sim-hardware-watch",
                                         daemon=True)
        self._watcher.start()
        # the log is appended to across runs on one --out: each run starts with this
        self.record("start", pid=os.getpid(), socket=str(self.bus.path),
                    printer=self.printer.path, board=self.board.path, **self.info)
        return self

    def stop(self) -> None:
        self._stop.set()
        self.bus.stop()
        if self._watcher is not None:
            self._watcher.join(2.0)
        self.printer.stop()
        self.board.stop()
        if self.recorder is not None:
            self.recorder.close()

    def __enter__(self) -> SimHardware:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def record(self, kind: str, **fields: Any) -> None:
        if self.recorder is not None:
            self.recorder.write(kind, **fields)

    # ------------------------------------------------------------------ control

    def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        """One control request → its reply (see ``tessera.sim.control``); never raises."""
        try:
            req = check_request(msg)
            if req["op"] == "state":
                return {"ok": True, "state": self.state()}
            if req["op"] == "scenario":
                return self._scenario(req["steps"])
            self._resolve(req)
            self.record("control", **{k: v for k, v in req.items() if k != "wire"})
            return {"ok": True, **self._do(req)}
        except (BadRequest, BusError) as e:
            return {"ok": False, "code": "bad-input", "error": str(e)}

    def _resolve(self, req: dict[str, Any]) -> None:
        if req["op"] in ("press", "hold"):
            req["wire"] = self.wiring.button(req["name"])

    def _do(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req["op"]
        if op in ("press", "hold"):
            wire: Wire = req["wire"]
            seconds = req.get("seconds")
            if seconds is None:
                ms = req.get("duration_ms") or self._rng.uniform(*self.press_ms)
                seconds = ms / 1000.0
            listening = self.bus.listening(wire.device, wire.pin)
            t_down, t_up = self.bus.press(wire.device, wire.pin, duration_s=seconds,
                                          bounce=req.get("bounce", 0))
            return {"name": wire.name, "device": wire.device, "pin": wire.pin,
                    "t_down": t_down, "t_up": t_up, "held_s": round(t_up - t_down, 4),
                    "listening": listening}
        if op == "printer":
            self.printer.state = PrinterSimState(PRINTER_STATES[req["state"]])
            self.record("printer", state=str(self.printer.state))
            return {"printer": str(self.printer.state)}
        assert op == "board"
        # every sign loses memory and content and answers on (a power cut of the signs)
        if req["state"] == "power-cycle":
            self.board.power_cycle()
            self.record("board-line", state="power-cycle")
            return {"board": "power-cycle"}
        self.board.answer = req["state"] == "ok"
        self.record("board-line", state=req["state"])
        return {"board": req["state"]}

    def _scenario(self, steps: list[dict[str, Any]]) -> dict[str, Any]:
        errors: list[str] = []
        for i, step in enumerate(steps):
            try:
                self._resolve(step)
            except BadRequest as e:
                errors.append(f"step {i + 1}: {e}")
        if errors:  # nothing has been done yet: a bad scenario leaves the branch untouched
            return {"ok": False, "code": "bad-input", "error": "\n".join(errors)}
        start = time.monotonic()
        results: list[dict[str, Any]] = []
        for step in steps:
            delay = start + step["at"] - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            self.record("control", scenario=True,
                        **{k: v for k, v in step.items() if k != "wire"})
            results.append({"at": step["at"], "op": step["op"], **self._do(step)})
        return {"ok": True, "steps": len(results), "results": results,
                "took_s": round(time.monotonic() - start, 3)}

    # ------------------------------------------------------------------ records

    def _on_bus_event(self, ev: Event) -> None:
        kind = ev.pop("kind")
        wire = self.wiring.at(ev["device"], ev["pin"]) if "pin" in ev else None
        if kind == "output" and wire is not None and wire.kind == "lamp":
            self.record("lamp", name=wire.name, **ev)
        elif kind in ("input", "output", "setup"):
            self.record(kind, name=wire.name if wire else "", **ev)
        else:
            self.record(kind, **ev)

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_S):
            try:
                self._look()
            except Exception:  # a render or listing hiccup must not stop the records
                log.exception("sim hardware: watching the emulators")

    def _look(self) -> None:
        with self._state_lock:  # the watcher and a state request may look at once
            self._look_locked()

    def _look_locked(self) -> None:
        for i in range(len(self.tickets), len(self.printer.tickets)):
            rec = self.printer.tickets[i].record
            ticket = {"index": i + 1, "text": list(rec.get("text", [])),
                      "qr": list(rec.get("qr", [])), "bytes": rec.get("bytes", 0),
                      "printer_state": rec.get("state", ""), "png": rec.get("png", ""),
                      "json": str(self.out / "tickets" / f"ticket-{i + 1:04d}.json")}
            self.tickets.append(ticket)
            self.record("ticket", **ticket)
        for address in sorted(list(self.board.signs)):
            text = self.board.text(address)
            if self.signs.get(address) == text:
                continue
            self.signs[address] = text
            (self.out / "board" / f"{address}.txt").write_text(text + "\n", encoding="utf-8")
            self.board.render_png(address, self.out / "board" / f"{address}.png")
            self.record("board", address=address, text=text)
        try:
            names = sorted(os.listdir(self.wav_dir))
        except OSError:
            names = []
        seen = set(self.wavs)
        for name in names:
            if name not in seen and name.endswith(".wav"):
                self.wavs.append(name)
                self.record("wav", file=str(self.wav_dir / name))

    def state(self) -> dict[str, Any]:
        """Lamps, buttons, tickets, board content, WAVs: what ``tessera sim state`` prints."""
        self._look()
        lamps: dict[str, Any] = {}
        outputs: dict[str, Any] = {}
        devices: dict[str, Any] = {}
        connected = self.bus.connected()
        for device in self.wiring.devices:
            views = self.bus.pins(device)
            buttons = {w.name: {"pin": w.pin, "level": self.bus.level(device, w.pin),
                                "listening": self.bus.listening(device, w.pin)}
                       for w in self.wiring.buttons.values() if w.device == device}
            devices[device] = {"connected": connected.get(device, []), "buttons": buttons}
            for pin, v in views.items():
                wire = self.wiring.at(device, pin)
                if v.function != "output":
                    continue
                entry = {"device": device, "pin": pin, "state": v.state, "lit": v.state == 1,
                         "t": v.t, "changes": v.changes}
                if wire is not None and wire.kind == "lamp":
                    lamps[wire.name] = entry
                else:
                    outputs[f"{device}:{pin}"] = entry
        for wire in self.wiring.lamps.values():  # wired but not (yet) opened by the firmware
            lamps.setdefault(wire.name, {"device": wire.device, "pin": wire.pin,
                                         "state": None, "lit": False, "t": None, "changes": 0})
        with self._state_lock:
            tickets, signs, wavs = list(self.tickets), dict(self.signs), list(self.wavs)
        return {
            **self.info,
            "socket": str(self.bus.path),
            "out": str(self.out),
            "log": str(self.out / "events.jsonl"),
            "devices": devices,
            "lamps": dict(sorted(lamps.items())),
            "outputs": outputs,
            "printer": {"path": self.printer.path, "state": str(self.printer.state),
                        "tickets": len(tickets), "status_queries": self.printer.status_queries,
                        "beeps": self.printer.beeps},
            "tickets": tickets,
            "board": {"path": self.board.path, "answers": self.board.answer, "signs": signs,
                      "rejected": dict(self.board.rejected)},
            "wavs": wavs,
            "names": {"buttons": list(self.wiring.buttons), "lamps": list(self.wiring.lamps)},
        }
