"""Appointment bookings from a CSV file: ``code,service,slot``.

``slot`` is an ISO 8601 time; without an offset it is local branch time.
A header line ``code,service,slot`` is optional; blank lines and lines
starting with ``#`` are skipped. Every bad line is reported, with its line
number and field. The same line check (:func:`check_lines`) validates the
lines a ``load-appointments`` command carries, with the file's line numbers.

    load_bookings(Path("bookings.csv"), cfg)
    # -> [Booking(code='K7Q2', service='doctor', slot=datetime(...))]
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tessera.config import BranchConfig
from tessera.config_decode import show
from tessera.errors import ConfigError

CODE_RE = re.compile(r"\A[A-Za-z0-9-]{1,32}\Z")
MAX_LINE = 1000  # characters
YEARS = (2000, 2999)  # a slot outside these years is a typo (and year 1 cannot become UTC)


@dataclass(frozen=True)
class Booking:
    """One appointment: booking code, service and slot (aware UTC)."""

    code: str
    service: str
    slot: datetime
    line: int = field(default=0, compare=False)  # where it was read (0: not from a file)


def parse_slot(text: str, cfg: BranchConfig) -> datetime:
    """An ISO time; naive means local branch time. Raises ValueError."""
    dt = datetime.fromisoformat(text.strip())
    if not YEARS[0] <= dt.year <= YEARS[1]:
        raise ValueError(f"year {dt.year} is out of range {YEARS[0]}-{YEARS[1]}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=cfg.tz)
    try:
        return dt.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range") from None


def load_bookings(path: Path, cfg: BranchConfig) -> list[Booking]:
    """Read and validate a bookings file; ConfigError lists every bad line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise ConfigError([f"{path}: cannot read appointments file ({e.strerror})"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text; save it as CSV (UTF-8)"]) from None
    return bookings_from_text(str(path), text, cfg)


def bookings_from_text(source: str, text: str, cfg: BranchConfig) -> list[Booking]:
    """The bookings of a CSV text named ``source`` (an upload of the web console, the
    text of a file): the same checks as :func:`load_bookings`; ConfigError lists every
    bad line as ``source:line: …``."""
    errors: list[str] = []
    rows = list(_rows(source, text, errors))
    out, more = check_lines(source, _booking_rows(rows), cfg)
    errors += more
    if errors:
        raise ConfigError(sorted(errors, key=_line_of))
    return out


def _booking_rows(rows: Iterable[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
    """The rows that are bookings: no blank, comment or (first-line) header rows."""
    for lineno, row in rows:
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in row]
        if lineno == 1 and [c.lower() for c in cells] == ["code", "service", "slot"]:
            continue
        yield lineno, cells


def check_lines(source: str, rows: Iterable[tuple[int, list[str]]],
                cfg: BranchConfig) -> tuple[list[Booking], list[str]]:
    """The bookings of ``(line number, cells)`` rows and every error, each as
    ``source:line: field 'x': what to fix``; a code twice is an error on its second line."""
    services = {s.id for s in cfg.services}
    errors: list[str] = []
    out: list[Booking] = []
    seen: dict[str, int] = {}
    for lineno, cells in rows:
        where = f"{source}:{lineno}"
        if len(cells) != 3:
            errors.append(f"{where}: expected 3 fields (code,service,slot), found {len(cells)}")
            continue
        code, service, slot_text = (c.strip() for c in cells)
        bad = False
        if not CODE_RE.match(code):
            errors.append(f"{where}: field 'code': {show(code)} must be 1-32 letters, digits "
                          "or '-'")
            bad = True
        elif code in seen:
            errors.append(f"{where}: field 'code': {show(code)} already booked on line "
                          f"{seen[code]}")
            bad = True
        if service not in services:
            errors.append(f"{where}: field 'service': unknown service {show(service)}; known: "
                          + ", ".join(sorted(services)))
            bad = True
        try:
            slot = parse_slot(slot_text, cfg)
        except ValueError as e:
            why = f" ({e})" if "out of range" in str(e) else ""
            errors.append(f"{where}: field 'slot': {show(slot_text)} is not an ISO time "
                          f"such as 2026-03-02T09:30{why}")
            bad = True
        if not bad:
            seen[code] = lineno
            out.append(Booking(code, service, slot, lineno))
    return out, errors


def _line_of(message: str) -> int:
    """The line number a ``file:line: ...`` message names (messages keep file order)."""
    m = re.search(r":(\d+): ", message)
    return int(m[1]) if m else 0


def _rows(path: Path | str, text: str, errors: list[str]) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of each CSV row; a row the csv module refuses (a field over
    its size limit, a NUL byte) is reported with its line and skipped."""
    lines = text.splitlines()
    for lineno, line in enumerate(lines, start=1):
        if len(line) > MAX_LINE:
            errors.append(f"{path}:{lineno}: line of {len(line)} characters; a booking line "
                          f"is at most {MAX_LINE}")
            continue
        try:
            rows = list(csv.reader([line]))
        except csv.Error as e:
            errors.append(f"{path}:{lineno}: not a CSV line ({e})")
            continue
        yield lineno, rows[0] if rows else []


def config_errors(cfg: BranchConfig) -> list[str]:
    """``engine.appointments_file``: every bad line, for ``tessera config check``."""
    name = cfg.engine.appointments_file
    if not name or not cfg.path(name).is_file():
        return []  # a missing file is reported by the config's own checks
    try:
        load_bookings(cfg.path(name), cfg)
    except ConfigError as e:
        return [f"engine.appointments_file: {m}" for m in e.errors]
    return []
