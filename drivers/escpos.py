"""ESC/POS receipt printer driver: transports, real status, reconnects.

The only module that imports python-escpos. It sends bytes the encoder built
(``tessera.drivers.escpos_encoder``) through python-escpos' command layer bound to a
concrete profile, and reads status itself: python-escpos 3.1 reports "paper OK"
for a printer that never answers, which would let a kiosk reserve numbers it
cannot print.

    printer = EscposPrinter("/dev/ttyUSB0", get_profile("TM-T20II"), baudrate=115200)
    printer.status().state                      # doctest: +SKIP
    # -> <PrinterState.ONLINE: 'online'>

URLs: a device path or any pyserial URL (``/dev/pts/3``, ``socket://h:p``,
``loop://``), ``tcp://host:9100`` (raw network port) and ``usb://VID:PID``
(needs the ``usb`` extra).
"""

from __future__ import annotations

import contextlib
import importlib.resources
import io
import json
import logging
import os
import pickle
import platform
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from tessera.drivers.errors import ConfigError, DeviceError
from tessera.drivers.printer_profiles import (
    CLEAR_DLE_DC4_8,
    CLEAR_DLE_ENQ_2,
    PrinterProfile,
)

log = logging.getLogger(__name__)

DLE_EOT = b"\x10\x04"
# real-time commands (Epson ESC/POS command reference, DLE DC4 / DLE ENQ); they run
# as they arrive, also in a fault state, where buffered commands wait
DLE_DC4_CLEAR = b"\x10\x14\x08\x01\x03\x14\x01\x06\x02\x08"  # fn=8 d1..d7 = 1 3 20 1 6 2 8
DLE_DC4_CLEAR_REPLY = b"\x37\x25\x00"  # "buffer clear" response
DLE_ENQ_CLEAR = b"\x10\x05\x02"  # recover from the error after clearing the buffers
DLE_DC4_PULSE = b"\x10\x14\x01\x00\x01"  # fn=1, pin 2, 1 x 100 ms on and off
USB_BYTES_PER_S = 1_000_000.0  # USB 1.1 full-speed bulk, what thermal printers negotiate
NET_BYTES_PER_S = 10_000_000.0


# one short beep: ESC B 1 beep x 2 (100 ms); ESC p pin 2, 100 ms on, 200 ms off
BUZZER_COMMANDS = {"esc-b": b"\x1bB\x01\x02", "drawer-pulse": b"\x1bp\x00\x32\x64"}
CLEAR_COMMANDS = {CLEAR_DLE_DC4_8: DLE_DC4_CLEAR, CLEAR_DLE_ENQ_2: DLE_ENQ_CLEAR}


class PrinterLinkError(DeviceError):
    """The link to the printer failed (unplugged, re-enumerated, network gone)."""


class PrinterState(StrEnum):
    """The one state a kiosk acts on, worst first."""

    UNKNOWN = "unknown"  # no valid reply: never assume paper is there
    COVER_OPEN = "cover_open"
    PAPER_OUT = "paper_out"
    OFFLINE = "offline"
    NEAR_END = "near_end"  # prints, but the roll needs replacing soon
    ONLINE = "online"


@dataclass(frozen=True)
class PrinterStatus:
    """Decoded ``DLE EOT 1..4`` replies. ``state`` is what the issuance path uses."""

    state: PrinterState
    detail: str = ""
    online: bool = False
    cover_open: bool = False
    paper_ok: bool = False
    near_end: bool = False
    paper_out: bool = False

    @property
    def ready(self) -> bool:
        return self.state in (PrinterState.ONLINE, PrinterState.NEAR_END)

    @classmethod
    def unknown(cls, detail: str) -> PrinterStatus:
        return cls(PrinterState.UNKNOWN, detail)


def valid_status_byte(b: int) -> bool:
    """Every DLE EOT reply has bit 1 and bit 4 set and bit 0 and bit 7 clear."""
    return b & 0b1001_0011 == 0b0001_0010


def parse_status(printer: int, offline: int, error: int, paper: int) -> PrinterStatus:
    """Turn the four DLE EOT replies (n = 1, 2, 3, 4) into a status."""
    for n, b in enumerate((printer, offline, error, paper), start=1):
        if not valid_status_byte(b):
            return PrinterStatus.unknown(f"invalid reply 0x{b:02x} to DLE EOT {n}")
    is_offline = bool(printer & 0x08)
    cover_open = bool(offline & 0x04)
    paper_out = bool(paper & 0x60) or bool(offline & 0x20)
    near_end = bool(paper & 0x0C)
    if cover_open:
        state, detail = PrinterState.COVER_OPEN, "cover open: close the printer cover"
    elif paper_out:
        state, detail = PrinterState.PAPER_OUT, "paper out: load a new roll"
    elif is_offline or error & 0x6C:
        state, detail = PrinterState.OFFLINE, f"printer offline (error status 0x{error:02x})"
    elif near_end:
        state, detail = PrinterState.NEAR_END, "paper near end: replace the roll soon"
    else:
        state, detail = PrinterState.ONLINE, ""
    return PrinterStatus(state, detail, online=not is_offline, cover_open=cover_open,
                         paper_ok=not (paper_out or near_end), near_end=near_end,
                         paper_out=paper_out)


class PrinterPort(Protocol):
    """What the firmware needs from a ticket printer."""

    profile: PrinterProfile

    def beep(self, *, during_fault: bool = False) -> bool: ...

    def clear_job(self) -> bool: ...

    def status(self, wait_s: float = 0.0) -> PrinterStatus: ...

    def send(self, data: bytes) -> None: ...

    def transfer_time_s(self, nbytes: int) -> float: ...

    def close(self) -> None: ...


CAPABILITIES_ENV = "ESCPOS_CAPABILITIES_PICKLE_DIR"


def capabilities_cache_dir() -> Path:
    """Where the kiosk keeps python-escpos' capabilities pickle (``$XDG_CACHE_HOME``)."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "tessera" / "escpos"


def use_capabilities_cache(cache_dir: Path | None = None) -> None:
    """Load python-escpos' printer database from a lasting, ready-made pickle.

    Without ``ESCPOS_CAPABILITIES_PICKLE_DIR`` python-escpos 3.1 pickles its
    printer database into a fresh temporary directory in every process, so each
    start YAML-parses 96 KB of JSON (~150 ms, ~3 MiB peak). The pickle is
    written here atomically (the library truncates it in place, which a second
    process starting at the same moment could read half-written) and rebuilt
    when the package's capabilities file is newer. The library reads that
    variable once, when ``escpos.capabilities`` is imported, and offers no other
    way to be told: so it is set for that import only and the environment is
    restored afterwards (nothing else in the process, nor a child process, sees
    it). A variable the user set is respected. Best effort: any OSError leaves
    the library's own behaviour.
    """
    if "escpos.capabilities" in sys.modules:
        return  # loaded already: its database is in memory
    if CAPABILITIES_ENV in os.environ:
        importlib.import_module("escpos.capabilities")
        return
    try:
        if cache_dir is None:
            cache_dir = capabilities_cache_dir()
        source = Path(str(importlib.resources.files("escpos") / "capabilities.json"))
        target = cache_dir / f"{platform.python_version()}.capabilities.pickle"
        if not target.exists() or target.stat().st_mtime < source.stat().st_mtime:
            cache_dir.mkdir(parents=True, exist_ok=True)
            # the file is JSON; json reads it to the same dict as the library's yaml.safe_load
            data = json.loads(source.read_text(encoding="utf-8"))
            fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    pickle.dump(data, f, protocol=2)
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
    except (OSError, RuntimeError) as e:  # RuntimeError: no home directory
        log.debug("escpos capabilities cache unavailable (%s); python-escpos parses its own", e)
        return
    os.environ[CAPABILITIES_ENV] = str(cache_dir)
    try:
        importlib.import_module("escpos.capabilities")
    finally:
        os.environ.pop(CAPABILITIES_ENV, None)


class _LogWriter(io.TextIOBase):
    """A text stream that turns python-escpos' prints into log records."""

    def write(self, s: str) -> int:
        for line in s.splitlines():
            if line.strip():
                log.warning("python-escpos: %s", line.strip())
        return len(s)


@contextlib.contextmanager
def _captured_stdout() -> Iterator[None]:
    with contextlib.redirect_stdout(_LogWriter()):
        yield


class _Link(Protocol):
    def write(self, data: bytes) -> None: ...

    def read_byte(self, timeout: float) -> int | None: ...

    def discard_input(self) -> None: ...

    def close(self) -> None: ...


class _SerialLink:
    """pyserial's serial_for_url: device paths, ptys, socket://, loop://."""

    def __init__(self, url: str, baudrate: int) -> None:
        import termios

        import serial

        try:
            self._ser = serial.serial_for_url(url, baudrate=baudrate, timeout=0.1,
                                              write_timeout=30.0)
        except (serial.SerialException, OSError, ValueError, termios.error) as e:
            raise PrinterLinkError(f"cannot open printer at {url!r}: {e}") from e

    def write(self, data: bytes) -> None:
        self._ser.write(data)

    def read_byte(self, timeout: float) -> int | None:
        self._ser.timeout = timeout
        b: bytes = self._ser.read(1)
        return b[0] if b else None

    def discard_input(self) -> None:
        self._ser.reset_input_buffer()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._ser.close()


class _UsbLink:
    """python-escpos' Usb printer (pyusb); re-opened after re-enumeration."""

    def __init__(self, url: str, escpos_profile: str) -> None:
        try:
            vid, pid = (int(x, 16) for x in url.removeprefix("usb://").split(":"))
        except ValueError:
            raise ConfigError([f"kiosk.printer.url: {url!r} is not usb://VID:PID "
                               "(hex, e.g. usb://04b8:0e15)"]) from None
        try:
            from escpos.printer import Usb
        except ImportError as e:  # pragma: no cover - depends on the extra
            raise PrinterLinkError("USB printing needs the usb extra: pip install "
                                   "'tessera[usb]'") from e
        with _captured_stdout():
            self._dev: Any = Usb(vid, pid, profile=escpos_profile, timeout=2000)
            try:
                self._dev.open(raise_not_found=True)
            except Exception as e:
                raise PrinterLinkError(f"USB printer {url} not found: {e}") from e
        self._pending = b""

    def write(self, data: bytes) -> None:
        self._dev._raw(data)

    def read_byte(self, timeout: float) -> int | None:
        if not self._pending:
            self._dev.device.default_timeout = int(timeout * 1000)
            try:
                self._pending = bytes(self._dev._read())
            except Exception:
                return None
        if not self._pending:
            return None
        b, self._pending = self._pending[0], self._pending[1:]
        return b

    def discard_input(self) -> None:
        self._pending = b""

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._dev.close()


def _open_link(url: str, profile: PrinterProfile, baudrate: int) -> _Link:
    if url.startswith("usb://"):
        return _UsbLink(url, profile.escpos_profile)
    if url.startswith("tcp://"):
        return _SerialLink("socket://" + url.removeprefix("tcp://"), baudrate)
    return _SerialLink(url, baudrate)


class EscposPrinter:
    """A ticket printer on a serial, network or USB link; reconnects by itself.

    ``send`` raises PrinterLinkError when the link fails; the next call opens it
    again (a re-plugged USB-serial adapter or a re-enumerated USB printer comes
    back without restarting the service). ``status`` never raises: a missing,
    silent or garbled printer is ``PrinterState.UNKNOWN``.
    """

    def __init__(self, url: str, profile: PrinterProfile, *, baudrate: int | None = None,
                 status_timeout_ms: int = 200) -> None:
        if not url:
            raise ConfigError(["kiosk.printer.url: empty; give a device path, "
                               "tcp://host:9100 or usb://VID:PID"])
        self.url = url
        self.profile = profile
        self.baudrate = baudrate or profile.baudrate
        self.status_timeout_s = status_timeout_ms / 1000.0
        self._link: _Link | None = None
        self._lock = threading.Lock()
        self._escpos = self._make_escpos()

    def _make_escpos(self) -> Any:
        use_capabilities_cache()
        from escpos.escpos import Escpos

        owner = self

        class _Bound(Escpos):  # type: ignore[misc]
            def _raw(self, msg: bytes) -> None:
                owner._require_link().write(msg)

        with _captured_stdout():
            return _Bound(profile=self.profile.escpos_profile)

    @property
    def link_kind(self) -> str:
        if self.url.startswith("usb://"):
            return "usb"
        if self.url.startswith(("tcp://", "socket://")):
            return "network"
        return "serial"

    def transfer_time_s(self, nbytes: int) -> float:
        """Seconds the link needs for ``nbytes`` (start + 8 data + stop bits on serial)."""
        if self.link_kind == "serial":
            return nbytes * 10 / self.baudrate
        return nbytes / (USB_BYTES_PER_S if self.link_kind == "usb" else NET_BYTES_PER_S)

    def _require_link(self) -> _Link:
        if self._link is None:
            self._link = _open_link(self.url, self.profile, self.baudrate)
            log.info("printer link open: %s", self.url)
        return self._link

    def _drop_link(self, why: object) -> None:
        if self._link is not None:
            if why == "closed":
                log.info("printer link closed: %s", self.url)
            else:
                log.warning("printer link lost (%s): %s", self.url, why)
            self._link.close()
            self._link = None

    def send(self, data: bytes) -> None:
        """Write a job; PrinterLinkError (after closing the link) when it fails."""
        with self._lock:
            try:
                with _captured_stdout():
                    self._escpos._raw(data)
            except PrinterLinkError:
                self._drop_link("open failed")
                raise
            except Exception as e:  # serial, socket and usb errors alike
                self._drop_link(e)
                raise PrinterLinkError(f"printer link {self.url} failed mid-job: {e}") from e

    def beep(self, *, during_fault: bool = False) -> bool:
        """One short beep to say "no ticket"; False when nothing can sound now.

        A model whose buzzer answers the real-time pulse (``realtime_beep``) gets
        ``DLE DC4 1 0 1``: it sounds at once, fault or not. Otherwise built-in
        buzzers take ``ESC B n t`` (n beeps of t x 50 ms) and Epson TM models drive
        a buzzer on the drawer-kick port with ``ESC p m t1 t2``; both are buffered,
        so during a fault (``during_fault``) nothing is sent: the beep would not
        sound now and would fire, late and queued, when the fault clears.
        PrinterLinkError when the link fails.
        """
        if self.profile.buzzer is None:
            return False
        if self.profile.realtime_beep:
            self.send(DLE_DC4_PULSE)
            return True
        cmd = BUZZER_COMMANDS.get(self.profile.buzzer)
        if cmd is None or during_fault:
            return False
        self.send(cmd)
        return True

    def clear_job(self) -> bool:
        """Empty the printer's receive and print buffers with a real-time command.

        For a job that must not print any more (voided mid-print: paper out,
        cover open): without it the printer keeps the rest of the job and prints
        it when the fault clears. ``DLE DC4 8`` is acknowledged with ``37 25 00``,
        read here so it cannot be taken for a status reply later; ``DLE ENQ 2``
        has no reply. False when the model has no clear command (the profile's
        ``clear_note`` says what happens then) or the link is down.
        """
        cmd = CLEAR_COMMANDS.get(self.profile.clear or "")
        if cmd is None:
            return False
        with self._lock:
            try:
                link = self._require_link()
                link.discard_input()
                link.write(cmd)
                if cmd == DLE_DC4_CLEAR:
                    got = bytearray()
                    while not got.endswith(DLE_DC4_CLEAR_REPLY) and len(got) < 16:
                        b = link.read_byte(self.status_timeout_s)
                        if b is None:
                            break
                        got.append(b)
                    if not got.endswith(DLE_DC4_CLEAR_REPLY):
                        log.warning("printer did not confirm the buffer clear (got %s)",
                                    bytes(got).hex() or "nothing")
            except Exception as e:  # serial, socket and usb errors alike
                self._drop_link(e)
                return False
        return True

    def status(self, wait_s: float = 0.0) -> PrinterStatus:
        """Query DLE EOT 1..4. ``wait_s`` extends the first wait (a job still in transfer)."""
        with self._lock:
            try:
                link = self._require_link()
            except (PrinterLinkError, ConfigError) as e:
                return PrinterStatus.unknown(str(e))
            replies: list[int] = []
            try:
                link.discard_input()
                for n in (1, 2, 3, 4):
                    link.write(DLE_EOT + bytes([n]))
                    timeout = self.status_timeout_s + (wait_s if n == 1 else 0.0)
                    b = link.read_byte(timeout)
                    if b is None:
                        return PrinterStatus.unknown(
                            f"no reply to DLE EOT {n} within {timeout * 1000:.0f} ms: "
                            "check the cable and that the printer is on")
                    if not valid_status_byte(b):
                        return PrinterStatus.unknown(f"invalid reply 0x{b:02x} to DLE EOT {n}")
                    replies.append(b)
            except Exception as e:
                self._drop_link(e)
                return PrinterStatus.unknown(f"printer link {self.url} failed: {e}")
            return parse_status(*replies)

    def close(self) -> None:
        with self._lock:
            self._drop_link("closed")
