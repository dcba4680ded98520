"""ESC/POS printer emulator on a pseudo-terminal.

The driver opens ``emulator.path`` like any serial printer. The emulator
decodes what arrives with its own decoder (``tessera.sim.escpos_decoder``),
writes a PNG and a JSON record per cut into ``out_dir``, answers ``DLE EOT n``
from an injectable state, reads no faster than the configured baud rate, and
can drop the line mid-job or come back on a new pty behind the same symlink
(a USB-serial adapter re-plugged).

Like a real printer it prints nothing while it is faulted (paper out, cover
open, offline): what arrives then waits in its receive buffer and prints when
the fault clears, except real-time commands, which are executed as they
arrive (Epson ESC/POS reference: ``DLE EOT n`` status, ``DLE DC4 8`` and
``DLE ENQ 2`` clear the buffers, ``DLE DC4 1`` pulses the buzzer port).
``paper_out_after_bytes`` lets the paper run out in the middle of a job. A
printer without a cutter (``cutter=False``) ignores ``GS V``; a ticket ends
when the line has been idle for ``tear_idle_s`` and is torn off.

    >>> with PrinterEmulator(out_dir=Path("out"), baudrate=115200) as emu:  # doctest: +SKIP
    ...     print(emu.path)        # give this to EscposPrinter / --port
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import tty
from enum import StrEnum
from pathlib import Path
from types import TracebackType

from tessera.sim.escpos_decoder import EscPosDecoder, PrintedTicket

CHUNK = 64  # bytes per read; small so throttling is smooth at 9600 baud


class PrinterSimState(StrEnum):
    """What the emulated printer answers to DLE EOT."""

    ONLINE = "online"
    NEAR_END = "near_end"
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    OFFLINE = "offline"
    SILENT = "silent"  # no reply at all (unpowered, wrong baud, no status support)
    GARBAGE = "garbage"  # replies that break the fixed bits (line noise, wrong baud)


_BASE = 0x12  # bits 1 and 4 are always set in a real reply
_FAULTS = ("paper_out", "cover_open", "offline")
_DC4_CLEAR_PARAMS = bytes([1, 3, 20, 1, 6, 2, 8])  # DLE DC4 fn=8 d1..d7
_CLEAR_REPLY = bytes([0x37, 0x25, 0x00])
_REPLIES: dict[PrinterSimState, dict[int, int]] = {
    PrinterSimState.ONLINE: {},
    PrinterSimState.NEAR_END: {4: _BASE | 0x0C},
    PrinterSimState.PAPER_OUT: {1: _BASE | 0x08, 2: _BASE | 0x20, 4: _BASE | 0x6C},
    PrinterSimState.COVER_OPEN: {1: _BASE | 0x08, 2: _BASE | 0x04},
    PrinterSimState.OFFLINE: {1: _BASE | 0x08, 2: _BASE | 0x40, 3: _BASE | 0x40},
}


class PrinterEmulator:
    """A receipt printer at the far end of a pty; runs in a daemon thread."""

    def __init__(self, *, out_dir: Path | None = None, width_dots: int = 576,
                 baudrate: int | None = None, state: str = "online",
                 link_path: Path | None = None, cutter: bool = True,
                 tear_idle_s: float = 0.3) -> None:
        self.out_dir = out_dir
        self.width_dots = width_dots
        self.baudrate = baudrate
        self.cutter = cutter
        self.tear_idle_s = tear_idle_s
        self.state = PrinterSimState(state)
        self.state_after_cut: PrinterSimState | None = None
        self.drop_after_bytes: int | None = None
        self.paper_out_after_bytes: int | None = None  # the roll ends inside a job
        self.held = bytearray()  # receive buffer while faulted (not printed yet)
        self.clears = 0  # real-time buffer clears executed
        self.realtime_beeps = 0  # DLE DC4 1 pulses executed during a fault
        self._rt_carry = b""
        self._last_rx = 0.0
        self.link_path = link_path
        self.tickets: list[PrintedTicket] = []
        self.bytes_received = 0
        self.status_queries = 0
        self._master = -1
        self._slave = -1
        self._slave_name = ""
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._decoder = EscPosDecoder(width_dots, on_status=self._answer, cutter=cutter)

    # ------------------------------------------------------------- lifecycle

    @property
    def path(self) -> str:
        """The device path to open (the symlink when ``link_path`` is set)."""
        return str(self.link_path) if self.link_path else self._slave_name

    def start(self) -> str:
        self._open_pty()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="printer-emulator", daemon=True)
        self._thread.start()
        return self.path

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._close_pty()
        if self.link_path is not None and self.link_path.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                self.link_path.unlink()

    def __enter__(self) -> PrinterEmulator:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def drop_line(self) -> None:
        """Hang up now: the driver's next write or read fails."""
        self._close_pty()

    def reconnect(self) -> str:
        """Come back on a fresh pty (re-pointing ``link_path``), as after a re-plug."""
        self._close_pty()
        self._decoder = EscPosDecoder(self.width_dots, on_status=self._answer,
                                      cutter=self.cutter)
        self.held.clear()
        self._open_pty()
        return self.path

    @property
    def beeps(self) -> int:
        """Buzzer beeps heard since the last (re)connect (buffered and real-time)."""
        return self._decoder.beeps + self.realtime_beeps

    @property
    def faulted(self) -> bool:
        """True while the printer prints nothing (paper out, cover open, offline)."""
        return self.state.value in _FAULTS

    def wait_tickets(self, n: int, timeout: float = 10.0) -> bool:
        """Block until ``n`` tickets were cut (or the timeout passes)."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self.tickets) >= n, timeout)

    # ------------------------------------------------------------- pty

    def _open_pty(self) -> None:
        link = self.link_path
        if link is not None and link.exists() and not link.is_symlink():
            raise FileExistsError(f"{link} exists and is not a symlink; it is left alone "
                                  "(choose another link path)")
        master, slave = os.openpty()
        tty.setraw(master)
        tty.setraw(slave)  # raw at once: no echo, no CR/LF mangling of binary data
        self._master, self._slave = master, slave
        self._slave_name = os.ttyname(slave)
        if self.link_path is not None:
            tmp = self.link_path.with_name(self.link_path.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self._slave_name)
            tmp.replace(self.link_path)

    def _close_pty(self) -> None:
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1

    # ------------------------------------------------------------- loop

    def _run(self) -> None:
        started, counted = time.monotonic(), 0
        while not self._stop.is_set():
            fd = self._master
            if fd < 0:
                time.sleep(0.01)
                started, counted = time.monotonic(), 0
                continue
            if self.held and not self.faulted:  # paper reloaded: the buffer prints
                data, self.held = bytes(self.held), bytearray()
                self._print(data)
            try:
                ready, _, _ = select.select([fd], [], [], 0.05)
                if not ready:
                    started, counted = time.monotonic(), 0
                    self._maybe_tear()
                    continue
                data = os.read(fd, CHUNK)
            except OSError:
                time.sleep(0.01)
                continue
            if not data:
                continue
            if self.baudrate:  # the wire cannot deliver faster than baud / 10 bytes/s
                counted += len(data)
                due = started + counted * 10 / self.baudrate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            self._consume(data)

    def _consume(self, data: bytes) -> None:
        self._last_rx = time.monotonic()
        if self.drop_after_bytes is not None:
            left = self.drop_after_bytes - self.bytes_received
            if left <= len(data):
                data = data[:max(left, 0)]
                self.drop_after_bytes = None
                self.bytes_received += len(data)
                self._decoder.feed(data)
                self._close_pty()
                return
        if self.paper_out_after_bytes is not None:
            left = self.paper_out_after_bytes - self.bytes_received
            if left < len(data):
                head, data = data[:max(left, 0)], data[max(left, 0):]
                self.bytes_received += len(head)
                self._route(head)
                self.paper_out_after_bytes = None
                self.state = PrinterSimState.PAPER_OUT
        self.bytes_received += len(data)
        self._route(data)

    def _route(self, data: bytes) -> None:
        if self.faulted or self.held or self._rt_carry:
            self._hold(data)
        else:
            self._print(data)

    def _hold(self, data: bytes) -> None:
        """A faulted printer: execute real-time commands now, keep the rest buffered."""
        buf = self._rt_carry + data
        self._rt_carry = b""
        i = 0
        while i < len(buf):
            if buf[i] != 0x10:
                self.held.append(buf[i])
                i += 1
                continue
            cmd = buf[i + 1] if i + 1 < len(buf) else None
            need = {0x04: 3, 0x05: 3}.get(cmd or 0, 0)
            if cmd == 0x14:
                fn = buf[i + 2] if i + 2 < len(buf) else None
                need = 10 if fn == 8 else 5
            if cmd is None or (need and i + need > len(buf)):
                self._rt_carry = bytes(buf[i:])  # the rest of the command is on its way
                return
            seq = buf[i:i + need]
            if cmd == 0x04:
                self._answer(seq[2])
            elif cmd == 0x05 and seq[2] == 2:
                self._clear_buffers()
            elif cmd == 0x14 and seq[2] == 8 and seq[3:] == _DC4_CLEAR_PARAMS:
                self._clear_buffers()
                self._reply(_CLEAR_REPLY)
            elif cmd == 0x14 and seq[2] == 1:
                self.realtime_beeps += 1
            elif not need:  # a DLE that starts no real-time command is data
                self.held.append(buf[i])
                i += 1
                continue
            i += need

    def _clear_buffers(self) -> None:
        self.held.clear()
        self._decoder.clear()
        self.clears += 1

    def _maybe_tear(self) -> None:
        if self.cutter or self.faulted or self.held:
            return
        if time.monotonic() - self._last_rx < self.tear_idle_s:
            return
        ticket = self._decoder.tear()
        if ticket is not None:
            self._printed(ticket)

    def _print(self, data: bytes) -> None:
        tickets = self._decoder.feed(data)
        if self._decoder.clear_requests:  # DLE DC4 8 while printing: answered too
            self.clears += self._decoder.clear_requests
            self._decoder.clear_requests = 0
            self._reply(_CLEAR_REPLY)
        for ticket in tickets:
            self._printed(ticket)

    def _reply(self, data: bytes) -> None:
        if self._master >= 0 and self.state is not PrinterSimState.SILENT:
            with contextlib.suppress(OSError):
                os.write(self._master, data)

    def _printed(self, ticket: PrintedTicket) -> None:
        ticket.record["state"] = str(self.state)
        with self._changed:
            self.tickets.append(ticket)
            if self.out_dir is not None:
                png, _ = ticket.save(self.out_dir, len(self.tickets))
                ticket.record["png"] = str(png)
            if self.state_after_cut is not None:
                self.state, self.state_after_cut = self.state_after_cut, None
            self._changed.notify_all()

    def _answer(self, n: int) -> None:
        self.status_queries += 1
        if self.state is PrinterSimState.SILENT or self._master < 0:
            return
        if self.state is PrinterSimState.GARBAGE:
            reply = 0x81 | (n << 3)  # bit 0 and bit 7 set: never a valid status byte
        else:
            reply = _REPLIES[self.state].get(n, _BASE)
        with contextlib.suppress(OSError):
            os.write(self._master, bytes([reply]))
