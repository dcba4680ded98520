"""Property: whatever an installer does to the example configs, ``tessera config check``
answers with exit 0 or 2 and no traceback, every error line names a path or a line
of the file, it creates nothing; and a config it accepts runs (``tessera run all
--sim`` starts and serves until SIGTERM).

More mutants: ``TESSERA_FUZZ_EXAMPLES=2000 pytest tests/config/test_config_fuzz.py``
(``TESSERA_FUZZ_RUNS`` accepted mutants are started; default 3).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tessera.cli import main
from tessera.config import _LISTS, _SECTIONS, load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = {name: (ROOT / "examples" / name).read_text(encoding="utf-8")
            for name in ("bank.toml", "clinic.toml")}
EXAMPLES_N = int(os.environ.get("TESSERA_FUZZ_EXAMPLES", "150"))
RUNS_N = int(os.environ.get("TESSERA_FUZZ_RUNS", "3"))
SEED = os.environ.get("TESSERA_FUZZ_SEED")  # unset: the same mutants every run
SECTIONS = {*_SECTIONS, *_LISTS}

# values an installer (or a bad copy-paste) puts where a value belongs
VALUES = [
    '""', '"pi 2"', '"+"', '"#"', '"../../pwned"', '"a\\nb"', '"acme-bank\\n"', '"Front"',
    "nan", "inf", "-inf", "-1", "0", "1", "70000", "1e308", "0.5", "true", "[]", "{}",
    "[1, 2]", '["x"]', "{ a = 1 }", "2026-03-02", "09:30:00", '"09:30"', '"25:00"',
    '"mqtt://127.0.0.1:abc"', '"mqtt://127.0.0.1:99999"', '"mqtt://[::1"', '"mqtt://h:1883"',
    '"~nouser/x"', '"/etc/passwd"', '"/"', '"/etc/passwd/x"', '"{est_wait_min:.0f}"',
    '"{number:d}"', '"{nope}"', '"{"', '"\\u0000"', '"\\t"', '"x"', '"A"', '"cash"',
    '"stdin"', f'"{"x" * 5000}"', '"zh"', '"en"', '"usb://zz"', '"tcp://h:abc"',
]
KEYS = ["device", "url", "dir", "tenant", "pin", "number", "foo", "checkins", "debounce",
        "service", "priority", "id", "hq"]

MUTATION = st.one_of(
    st.tuples(st.just("value"), st.integers(0, 10_000), st.sampled_from(VALUES)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.just("")),
    st.tuples(st.just("duplicate"), st.integers(0, 10_000), st.just("")),
    st.tuples(st.just("insert"), st.integers(0, 10_000),
              st.builds(lambda k, v: f"{k} = {v}", st.sampled_from(KEYS),
                        st.sampled_from(VALUES))),
    st.tuples(st.just("typo"), st.integers(0, 10_000), st.just("")),
    st.tuples(st.just("char"), st.integers(0, 100_000),
              st.sampled_from(["\x00", '"', "[", "]", "=", "\n", "{", "'''", "\ufeff"])),
    st.tuples(st.just("byte"), st.integers(0, 100_000),
              st.sampled_from(["ff", "c6e4", "e9", "efbbbf", "fffe"])),
    st.tuples(st.just("truncate"), st.integers(0, 100_000), st.just("")),
)

# an error line: "  <path>: ..." (path from a known section, or the unknown section /
# key it is about) or "  <file>:<line>[:<col>]: ..."
_SEG = r"(?:\.(?:'[^']*'|\"[^\"]*\"|(?:[^\s:.\[]|:(?!\s))+)|\[\d+\])"
PATH_LINE = re.compile(rf"  (?P<path>(?:[A-Za-z_][\w-]*|'[^']*'){_SEG}*): \S")


def mutate(text: str, mutations: list[tuple[str, int, str]]) -> bytes:
    lines = text.splitlines()
    raw: list[tuple[int, bytes]] = []  # inserted after encoding: bytes that are not UTF-8
    for kind, at, arg in mutations:
        if kind == "byte":
            raw.append((at, bytes.fromhex(arg)))
            continue
        if kind == "char":
            data = "\n".join(lines)
            pos = at % (len(data) + 1)
            lines = (data[:pos] + arg + data[pos:]).splitlines()
            continue
        if kind == "truncate":
            data = "\n".join(lines)
            lines = data[: at % (len(data) + 1)].splitlines()
            continue
        i = at % max(len(lines), 1)
        if not lines:
            lines = [arg]
        elif kind == "value" and "=" in lines[i]:
            lines[i] = lines[i].split("=", 1)[0] + "= " + arg
        elif kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "insert":
            lines.insert(i, arg)
        elif kind == "typo" and "=" in lines[i]:
            key, rest = lines[i].split("=", 1)
            lines[i] = key.rstrip()[:-1] + " =" + rest if len(key.strip()) > 1 else lines[i]
    out = ("\n".join(lines) + "\n").encode("utf-8")
    for at, insert in raw:
        pos = at % (len(out) + 1)
        out = out[:pos] + insert + out[pos:]
    return out


def check(path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["config", "check", str(path)])
    return rc, out.getvalue(), err.getvalue()


def assert_answer(path: Path, rc: int, out: str, err: str) -> None:
    assert rc in (0, 2), (rc, out, err)
    assert "Traceback" not in out + err
    if rc == 0:
        assert out.startswith(f"{path}: OK") and not err
        return
    header, *lines = err.splitlines()
    assert header.startswith(f"{path}: ") and "error(s)" in header, err
    assert lines, err
    for line in lines:
        if line.startswith(f"  {path}:"):
            assert re.match(rf"  {re.escape(str(path))}:\d+(:\d+)?: ", line), line
            continue
        m = PATH_LINE.match(line)
        assert m, f"error line names no path or line: {line!r}"
        head = re.split(r"[.\[]", m["path"], maxsplit=1)[0]
        assert head in SECTIONS or "unknown section" in line, line
        assert len(line) < 1200, line[:200]  # values are cut, never echoed in full


def config_with_storage(text: str, storage: Path) -> str:
    """The example with storage.dir in ``storage`` (so an accepted mutant can run)."""
    if "[storage]" in text:
        return re.sub(r'(?m)^dir = .*$', f'dir = "{storage}"', text, count=1)
    return text + f'\n[storage]\ndir = "{storage}"\n'


def test_mutated_examples_get_an_answer_and_accepted_ones_run(tmp_path: Path) -> None:
    accepted: list[bytes] = []

    @settings(max_examples=EXAMPLES_N, deadline=None, database=None, derandomize=SEED is None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @seed(int(SEED or 0))
    @given(st.sampled_from(sorted(EXAMPLES)), st.lists(MUTATION, min_size=1, max_size=3))
    def one(example: str, mutations: list[tuple[str, int, str]]) -> None:
        with tempfile.TemporaryDirectory(dir=tmp_path) as d:
            root = Path(d)
            path = root / "branch.toml"
            data = mutate(config_with_storage(EXAMPLES[example], root / "var"), mutations)
            path.write_bytes(data)
            rc, out, err = check(path)
            assert_answer(path, rc, out, err)
            assert sorted(p.name for p in root.iterdir()) == ["branch.toml"]  # made nothing
            if rc == 0 and data not in accepted and writes_inside(path, root) and \
                    all(data != config_with_storage(t, root / "var").encode()
                        for t in EXAMPLES.values()):
                accepted.append(data.replace(str(root).encode(), b"@ROOT@"))

    one()
    print(f"{len(accepted)} distinct accepted mutants; running {min(RUNS_N, len(accepted))}")
    assert accepted, "no mutant was accepted: the mutations are too coarse to test run"
    for data in accepted[:RUNS_N]:
        run_all_sim(tmp_path / f"run{len(list(tmp_path.glob('run*')))}", data)


def writes_inside(path: Path, root: Path) -> bool:
    """Whether running the config writes only under ``root`` (a mutant may well name
    "/" as its storage.dir, which the check rightly accepts when run as root)."""
    cfg = load_config(path)
    outs = [cfg.path(cfg.storage.dir)]
    if cfg.voice.output.startswith("dir:"):
        outs.append(cfg.path(cfg.voice.output[4:]))
    return all(o.resolve().is_relative_to(root.resolve()) for o in outs)


def run_all_sim(root: Path, data: bytes) -> None:
    """``tessera run all --sim`` on an accepted config: ready, serving, stops on SIGTERM."""
    root.mkdir()
    path = root / "branch.toml"
    path.write_bytes(data.replace(b"@ROOT@", str(root).encode()))
    ready = root / "ready"
    log = root / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tessera", "run", "all", "--sim",
                                 "--config", str(path), "--ready-file", str(ready),
                                 "--tick-s", "0.2"], stdout=out, stderr=subprocess.STDOUT,
                                cwd=root)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.exists() and proc.poll() is None, \
            f"accepted config did not start:\n{path.read_text()}\n{log.read_text()[-3000:]}"
        time.sleep(2.0)  # serving: the branch ticks, the emulators answer
        assert proc.poll() is None, f"stopped while serving:\n{log.read_text()[-3000:]}"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert "Traceback" not in log.read_text()


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_the_examples_themselves_are_accepted(example: str, tmp_path: Path) -> None:
    path = tmp_path / "branch.toml"
    path.write_text(config_with_storage(EXAMPLES[example], tmp_path / "var"), encoding="utf-8")
    assert_answer(path, *check(path))
    assert check(path)[0] == 0
