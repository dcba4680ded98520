"""The store refuses corrupt, foreign and newer files, leaving them byte-for-byte untouched."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest
from engine_support import START, make_config

from tessera.clock import VirtualClock
from tessera.engine import Engine
from tessera.engine.store import SCHEMA_VERSION, open_store
from tessera.errors import StoreError


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _open(path: Path) -> Engine:
    return Engine.open(make_config(), VirtualClock(START), path, trust=lambda: True)


def _assert_refused(path: Path, match: str) -> None:
    before = (_digest(path), os.stat(path).st_mtime_ns, sorted(os.listdir(path.parent)))
    with pytest.raises(StoreError, match=match) as ei:
        _open(path)
    assert "left untouched" in str(ei.value)
    assert before == (_digest(path), os.stat(path).st_mtime_ns, sorted(os.listdir(path.parent)))


def test_not_a_sqlite_file(tmp_path: Path) -> None:
    p = tmp_path / "engine.db"
    p.write_bytes(b"this is a shopping list, not a database\n" * 100)
    _assert_refused(p, "not a SQLite database")


def test_corrupt_sqlite_file(tmp_path: Path) -> None:
    p = tmp_path / "engine.db"
    e = _open(p)
    for _ in range(50):
        e.issue("cash")
    e.close()
    data = bytearray(p.read_bytes())
    assert len(data) > 8192
    data[4096:8192] = os.urandom(4096)  # scramble page 2
    p.write_bytes(bytes(data))
    for extra in ("-wal", "-shm"):
        (tmp_path / f"engine.db{extra}").unlink(missing_ok=True)
    _assert_refused(p, "damaged|integrity")


def test_foreign_sqlite_database(tmp_path: Path) -> None:
    p = tmp_path / "engine.db"
    other = sqlite3.connect(p)
    other.execute("CREATE TABLE recipes (name TEXT)")
    other.execute("INSERT INTO recipes VALUES ('soup')")
    other.commit()
    other.close()
    _assert_refused(p, "some other program.*recipes")


def test_newer_schema_version(tmp_path: Path) -> None:
    p = tmp_path / "engine.db"
    _open(p).close()
    conn = sqlite3.connect(p)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    _assert_refused(p, "newer Tessera")


def test_new_file_is_created_with_schema_and_reopens(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "engine.db"
    e = _open(p)
    a = e.issue("cash")
    e.close()
    conn = open_store(p)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    conn.close()
    e2 = _open(p)
    assert e2.get_ticket(a.id).number == "A001"
    assert e2.issue("cash").number == "A002"
    e2.close()


def test_empty_sqlite_file_is_initialised(tmp_path: Path) -> None:
    p = tmp_path / "engine.db"
    sqlite3.connect(p).close()  # zero bytes / empty database
    e = _open(p)
    assert e.issue("cash").number == "A001"
    e.close()
