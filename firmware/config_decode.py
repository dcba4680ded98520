"""From the bytes of a branch config to its sections, with messages an installer can act on.

* :func:`decode_text`: UTF-8, with or without a BOM; any other encoding is named
  (GB18030 as Chinese Windows saves it, Latin-1, UTF-16) with how to re-save it.
* :func:`toml_error`: tomllib's message with the file, line and column; for a
  string or array never closed, the line it starts on.
* :func:`convert`: msgspec conversion that reports *every* schema error of a
  section, not just the first: after each error the offending value is dropped
  (an optional key falls back to its default) or replaced by a placeholder, and
  conversion runs again. The paths it had to repair are returned as "tainted",
  so the cross-field checks that run on the repaired config do not report
  consequences of an error already reported.

    >>> from tessera.config import GpioSection
    >>> value, errors, tainted = convert({"ring_capacity": "8", "hold": 1}, GpioSection, "gpio")
    >>> errors[0]
    "gpio.ring_capacity: expected a whole number, got a string '8' (write it without quotes)"
    >>> errors[1]
    "gpio: unknown key 'hold'; did you mean 'hold_ms'?"
"""

from __future__ import annotations

import codecs
import copy
import difflib
import functools
import math
import re
import tomllib
import types
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import msgspec

from tessera.errors import ConfigError

T = TypeVar("T")
Seg = str | int
BARE_KEY = re.compile(r"[^\s.\"'\[\]\x00-\x1f\x7f-\x9f]{1,64}")  # printed unquoted in a path
SHOW_LIMIT = 60  # characters of a user's value quoted in a message
SECRET_KEYS = ("code", "password")  # values never quoted (messages reach logs)

_RESAVE = "re-save the file as UTF-8 (Notepad: File > Save as > Encoding: UTF-8; or iconv)"
_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
         (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


def show(value: Any, limit: int = SHOW_LIMIT) -> str:
    """``repr(value)``, cut to about ``limit`` characters (a 100 kB value is not echoed)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f" ({len(value)} characters)" if isinstance(value, str) else ""
    return text[: limit - 1] + "…" + size


def show_path(path: object) -> str:
    """A path as written in a message: plain when short and printable, else like show()."""
    text = str(path)
    return text if len(text) <= 200 and text.isprintable() else show(text, 200)


def key_text(key: str) -> str:
    """A key as it is written in a path: bare when TOML allows it, quoted otherwise."""
    return key if BARE_KEY.fullmatch(key) else show(key)


def join(prefix: str, segs: tuple[Seg, ...]) -> str:
    """``join("counters[0]", ("panel", "ratings", 2))`` -> ``counters[0].panel.ratings[2]``."""
    out = prefix
    for s in segs:
        if isinstance(s, int):
            out += f"[{s}]"
        else:
            out += f".{key_text(s)}" if out else key_text(s)
    return out


# --------------------------------------------------------------------------- text and TOML


def decode_text(data: bytes, source: str) -> str:
    """The config's text; ConfigError naming the encoding when it is not UTF-8."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise ConfigError([f"{source}:1: saved as {name}, not UTF-8; {_RESAVE}"])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ConfigError([f"{source}:{line}:{col}: not UTF-8 text (byte 0x{data[e.start]:02x}"
                           f"){_guess_encoding(data)}; {_RESAVE}"]) from None


def _guess_encoding(data: bytes) -> str:
    if data.count(b"\x00") * 4 > len(data):
        return "; it looks like UTF-16 without a byte-order mark"
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        pass
    else:
        if any("\u4e00" <= ch <= "\u9fff" for ch in text):
            return "; it looks like GB18030/GBK, as Chinese Windows saves text"
    return "; it looks like Latin-1/Windows-1252"


_AT = re.compile(r"(.*) \(at line (\d+), column (\d+)\)", re.S)
_AT_END = " (at end of document)"


def toml_error(text: str, source: str, err: tomllib.TOMLDecodeError) -> str:
    """``file:line:col: not valid TOML: what``, quoting the line."""
    msg = str(err)
    lines = text.splitlines()
    col: int | None = None
    if m := _AT.fullmatch(msg):
        what, line, col = m[1], int(m[2]), int(m[3])
    elif msg.endswith(_AT_END):
        what = msg[: -len(_AT_END)]
        line = _unfinished_line(lines)
        if what.startswith(("Unterminated", "Unclosed", "Expected")):
            what += "; it starts on this line and is never closed"
    else:
        what, line = msg, 1
    where = f"{source}:{line}" + (f":{col}" if col else "")
    quoted = f": {show(lines[line - 1].strip())}" if 0 < line <= len(lines) else ""
    return f"{where}: not valid TOML ({what[:1].lower()}{what[1:]}){quoted}"


def _unfinished_line(lines: list[str]) -> int:
    """The line of the statement that runs to the end: the first after the longest
    prefix of the file that parses."""
    for k in range(len(lines) - 1, -1, -1):
        try:
            tomllib.loads("\n".join(lines[:k]))
        except tomllib.TOMLDecodeError:
            continue
        return k + 1
    return 1


# --------------------------------------------------------------------------- types


def _unwrap(tp: Any) -> Any:
    """The type without ``Annotated`` and ``| None``."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


@functools.cache
def _hints(cls: type[msgspec.Struct]) -> dict[str, Any]:
    return get_type_hints(cls, include_extras=True)


def _child(tp: Any, seg: Seg | None) -> Any:
    """The type one step down (a struct field, a list item, a dict value)."""
    tp = _unwrap(tp)
    if _is_struct(tp):
        return _hints(tp).get(seg) if isinstance(seg, str) else None
    origin = get_origin(tp)
    if origin in (tuple, list):
        return get_args(tp)[0]
    if origin is dict:
        return get_args(tp)[1]
    return None


def _type_at(tp: Any, segs: tuple[Seg, ...]) -> Any:
    for s in segs:
        if tp is None:
            return None
        tp = _child(tp, s)
    return tp


def _required(tp: Any) -> list[str]:
    tp = _unwrap(tp)
    return [f.encode_name for f in msgspec.structs.fields(tp) if f.required] \
        if _is_struct(tp) else []


def _fields(tp: Any) -> list[str]:
    tp = _unwrap(tp)
    return [f.encode_name for f in msgspec.structs.fields(tp)] if _is_struct(tp) else []


def placeholder(tp: Any) -> Any:
    """A raw value that converts to ``tp`` (the lowest allowed number, empty string...)."""
    if get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp):
        return None
    info = _numeric(tp)
    base = _unwrap(tp)
    if info is not None:
        lo = info.ge if info.ge is not None else info.gt if info.gt is not None else 0
        hi = info.le if info.le is not None else info.lt
        if info.gt is not None and lo == info.gt:
            lo = lo + 1 if base is int else lo + (1.0 if hi is None else (hi - lo) / 2)
        return base(lo)
    if _is_struct(base):
        return {name: placeholder(_hints(base)[f.name]) for f in msgspec.structs.fields(base)
                for name in (f.encode_name,) if f.required}
    origin = get_origin(base)
    if origin is Literal:
        return get_args(base)[0]
    if origin in (tuple, list):
        return []
    if origin is dict:
        return {}
    return {str: "", bool: False}.get(base, "")


def _numeric(tp: Any) -> Any:
    """msgspec's IntType/FloatType (with its bounds) of ``tp``, or None."""
    try:
        info: Any = msgspec.inspect.type_info(tp)
    except (TypeError, ValueError):
        return None
    if isinstance(info, msgspec.inspect.Metadata):
        info = info.type
    if isinstance(info, msgspec.inspect.UnionType):
        info = next((t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)), None)
        if isinstance(info, msgspec.inspect.Metadata):
            info = info.type
    return info if isinstance(info, msgspec.inspect.IntType | msgspec.inspect.FloatType) \
        else None


def range_text(tp: Any) -> str:
    """``between 1 and 65535`` / ``at least 0`` for a bounded number type ("" if unbounded)."""
    info = _numeric(tp)
    if info is None:
        return ""
    lo = f"at least {info.ge}" if info.ge is not None else \
        f"more than {info.gt}" if info.gt is not None else ""
    hi = f"at most {info.le}" if info.le is not None else \
        f"less than {info.lt}" if info.lt is not None else ""
    if info.ge is not None and info.le is not None:
        return f"between {info.ge} and {info.le}"
    return " and ".join(p for p in (lo, hi) if p)


# --------------------------------------------------------------------------- conversion

_WORDS = {"str": "a string", "int": "a whole number", "float": "a number",
          "bool": "true or false", "array": "an array", "object": "a table",
          "datetime": "a date-time", "date": "a date", "time": "a time of day"}
_UNITS = (("_ms", " (milliseconds)"), ("_s", " (seconds)"), ("_mb", " (MB)"),
          ("_port", " (a TCP port)"), ("_pct", " (percent)"))
_PATH_RE = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[(\.\.\.)\]")
_MISSING = object()


def convert(raw: Any, typ: type[T], path: str) -> tuple[T, list[str], list[str]]:
    """``raw`` as ``typ``, every schema error of it, and the paths repaired to get there."""
    work = copy.deepcopy(raw)
    errors: list[str] = []
    tainted: list[str] = []
    seen: set[tuple[str, str]] = set()
    for _ in range(200):
        try:
            return msgspec.convert(work, typ, strict=True), errors, tainted
        except msgspec.ValidationError as e:
            text = str(e)
        msg, _, at = text.partition(" - at `$")
        segs = _resolve(work, typ, at.rstrip("`"))
        if segs is None or (join(path, segs), msg) in seen:
            break  # the repair did not help: give the whole of it up
        where = join(path, segs)
        seen.add((where, msg))
        if m := re.fullmatch(r"Object contains unknown field `(.*)`", msg, re.S):
            errors.append(_unknown_key(where, m[1], _fields(_type_at(typ, segs))))
            node = _get(work, segs)
            if isinstance(node, dict):
                node.pop(m[1], None)
            continue
        if m := re.fullmatch(r"Object missing required field `(.*)`", msg, re.S):
            needed = _required(_type_at(typ, segs))
            errors.append(f"{where}: missing key {m[1]!r}"
                          + (f" (required: {', '.join(needed)})" if len(needed) > 1 else ""))
            node = _get(work, segs)
            if isinstance(node, dict):
                node[m[1]] = placeholder(_type_at(typ, (*segs, m[1])))
            tainted.append(join(where, (m[1],)))
            continue
        value = _get(work, segs)
        if segs and segs[-1] in SECRET_KEYS:
            value = _MISSING  # a login code or password is never echoed
        errors.append(f"{where}: {_describe(msg, _type_at(typ, segs), value, where)}")
        if not segs or get_origin(_unwrap(_type_at(typ, segs[:-1]))) is not dict:
            tainted.append(where)  # (a table entry's key is still checked on its own)
        work = _repair(work, typ, segs)
    value = msgspec.convert(placeholder(typ), typ, strict=True)
    return value, errors or [f"{path}: not a valid {typ.__name__}"], [*tainted, path]


def _resolve(raw: Any, typ: Any, at: str) -> tuple[Seg, ...] | None:
    """msgspec's ``.a[2][...].b`` as segments, with ``[...]`` replaced by the failing key."""
    segs: list[Seg] = []
    node, tp = raw, typ
    for m in _PATH_RE.finditer(at):
        if m[1] is not None:
            seg: Seg = m[1]
        elif m[2] is not None:
            seg = int(m[2])
        else:
            if not isinstance(node, dict):
                return None
            vt = _child(tp, None)
            bad = [k for k, v in node.items() if not _converts(v, vt)]
            if not bad:
                return None
            seg = bad[0]
        segs.append(seg)
        node = _step(node, seg)
        tp = _child(tp, seg)
    return tuple(segs)


def _converts(value: Any, tp: Any) -> bool:
    try:
        msgspec.convert(value, tp, strict=True)
    except (msgspec.ValidationError, TypeError):
        return False
    return True


def _step(node: Any, seg: Seg) -> Any:
    if isinstance(seg, int):
        return node[seg] if isinstance(node, list) and seg < len(node) else _MISSING
    return node.get(seg, _MISSING) if isinstance(node, dict) else _MISSING


def _get(raw: Any, segs: tuple[Seg, ...]) -> Any:
    for s in segs:
        raw = _step(raw, s)
    return raw


def _repair(work: Any, typ: Any, segs: tuple[Seg, ...]) -> Any:
    """Drop the bad value of an optional key (its default applies) or put a placeholder
    there (a required key, a list item, a table entry: the other checks still see its
    key and its neighbours at their places)."""
    if not segs:
        return placeholder(typ)
    parent, last = _get(work, segs[:-1]), segs[-1]
    ptype = _unwrap(_type_at(typ, segs[:-1]))
    if isinstance(parent, dict) and isinstance(last, str) and _is_struct(ptype) \
            and last not in _required(ptype):
        parent.pop(last, None)
    elif isinstance(parent, dict | list):
        parent[last] = placeholder(_type_at(typ, segs))  # type: ignore[index]
    return work


def _unknown_key(where: str, key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else \
        f"valid keys: {', '.join(known)}" if known else "this table takes no keys"
    return f"{where}: unknown key {show(key)}; {hint}"


def _describe(msg: str, tp: Any, value: Any, where: str) -> str:
    if msg.startswith("Invalid enum value"):
        allowed = [str(a) for a in get_args(_unwrap(tp))]
        close = [a for a in allowed if isinstance(value, str) and a.lower() == value.lower()] \
            or difflib.get_close_matches(str(value), allowed, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"{show(value)} is not one of {', '.join(map(repr, allowed))}{hint}"
    m = re.fullmatch(r"Expected `([^`]*)`(?: ([<>]=?) \S+)?(?:, got `([^`]*)`)?", msg, re.S)
    if m is None:
        return msg
    unit = next((u for suffix, u in _UNITS if where.endswith(suffix)), "")
    if m[2]:  # a bound: out of range, or nan/inf
        number = "a whole number" if m[1] == "int" else "a number"
        problem = "is not a number" if isinstance(value, float) and math.isnan(value) else \
            "is not finite" if isinstance(value, float) and math.isinf(value) else \
            "is out of range"
        shown = "the value" if value is _MISSING else show(value)
        return f"{shown} {problem}; use {number} {range_text(tp)}{unit}"
    wanted = [_WORDS.get(w, w) for w in m[1].split(" | ") if w != "null"]
    optional = "null" in m[1].split(" | ")
    got = _WORDS.get(m[3] or "", m[3] or "something else")
    hint = ""
    if m[3] == "str" and any(w in ("int", "float", "bool") for w in m[1].split(" | ")):
        hint = " (write it without quotes)"
    elif m[1].startswith("str") and m[3] in ("int", "float", "bool"):
        hint = " (put it in quotes)"
    elif m[1].startswith("str") and m[3] in ("datetime", "date", "time"):
        hint = " (put it in quotes: TOML read it as a date/time)"
    elif optional:
        hint = " (or leave the key out)"
    shown = f" {show(value)}" if value is not _MISSING and m[3] not in ("object", "array") \
        else ""
    return f"expected {' or '.join(wanted)}{unit}, got {got}{shown}{hint}"


__all__ = ["convert", "decode_text", "join", "key_text", "placeholder", "range_text", "show",
           "show_path", "toml_error"]
