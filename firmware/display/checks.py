"""Config checks for ``[board]``, ``[voice]`` and the counters' board addresses.

Registered in ``tessera.config.EXTRA_CHECKERS``; every problem is returned at
once with its path and what to fix.
"""

from __future__ import annotations

from tessera.config import BranchConfig, parse_hhmm
from tessera.drivers.alpha import BoardAddressError, check_address

BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400)


def config_errors(cfg: BranchConfig) -> list[str]:
    return [*_board_errors(cfg), *_voice_errors(cfg)]


def _board_errors(cfg: BranchConfig) -> list[str]:
    b, errs = cfg.board, []
    addrs = [("board.hall_address", b.hall_address)]
    addrs += [(f"counters[{i}].board_address", c.board_address)
              for i, c in enumerate(cfg.counters) if c.board_address is not None]
    if cfg.alerts.board_address is not None:
        addrs.append(("alerts.board_address", cfg.alerts.board_address))
    seen: dict[str, str] = {}
    for path, addr in addrs:
        try:
            norm = check_address(addr)
        except BoardAddressError as e:
            errs.append(f"{path}: {e}")
            continue
        if norm in seen:
            errs.append(f"{path}: board address {addr!r} already used by {seen[norm]}")
        seen.setdefault(norm, path)
    if b.baudrate not in BAUDRATES:
        errs.append(f"board.baudrate: {b.baudrate} is not a rate Alpha signs use; "
                    f"choose one of {', '.join(map(str, BAUDRATES))}")
    if b.bytesize not in (7, 8):
        errs.append(f"board.bytesize: {b.bytesize} must be 7 or 8")
    if b.stopbits not in (1, 2):
        errs.append(f"board.stopbits: {b.stopbits} must be 1 or 2")
    if not 1 <= b.history <= 20:
        errs.append(f"board.history: {b.history} must be between 1 and 20 lines")
    if b.highlight_s < 0:
        errs.append("board.highlight_s: must not be negative")
    if b.ping_interval_s < 0:
        errs.append("board.ping_interval_s: must not be negative (0 = no read-back)")
    errs.extend(_schedule_errors("board.brightness", b.brightness))
    return errs


def _voice_errors(cfg: BranchConfig) -> list[str]:
    from tessera.display import voice

    v, errs = cfg.voice, []
    langs = v.languages or cfg.branch.languages
    for lang in langs:
        if lang not in voice.LANGUAGES:
            errs.append(f"voice.languages: no announcement template for {lang!r}; "
                        f"known: {', '.join(sorted(voice.LANGUAGES))}")
    if not (v.output == "aplay" or (v.output.startswith("dir:") and len(v.output) > 4)):
        errs.append(f"voice.output: {v.output!r}; use \"aplay\" or \"dir:PATH\"")
    if v.repeat < 1 or v.repeat > 5:
        errs.append(f"voice.repeat: {v.repeat} must be between 1 and 5")
    if v.max_age_s <= 0:
        errs.append("voice.max_age_s: must be positive")
    for i, span in enumerate(v.quiet_hours):
        parts = span.split("-")
        try:
            if len(parts) != 2:
                raise ValueError(f"{span!r} is not a span; write HH:MM-HH:MM, e.g. 22:00-07:00")
            start, end = (parse_hhmm(p) for p in parts)
            if start == end:
                raise ValueError(f"{span!r} is empty; start and end must differ")
        except ValueError as e:
            errs.append(f"voice.quiet_hours[{i}]: {e}")
    errs.extend(_schedule_errors("voice.volume", v.volume))
    if not v.enabled:
        return errs
    known = [lang for lang in langs if lang in voice.LANGUAGES]
    if v.clips_dir:
        root = cfg.path(v.clips_dir)
        if not root.is_dir():
            errs.append(f"voice.clips_dir: {root} does not exist; create it with "
                        "'tessera voice clips DIR' or leave clips_dir empty")
        else:
            errs.extend(voice.check_clips(root, known, (s.prefix for s in cfg.services)))
    elif not voice.have_clips(voice.generated_clips_dir(cfg.path(cfg.storage.dir)), known,
                              (s.prefix for s in cfg.services)):
        # the clips are generated at the first start: espeak-ng and its voices must be
        # there (once they are, a start does not run espeak-ng to list its voices)
        errs.extend(f"voice: {p}" for p in voice.voice_problems(known))
    return errs


def _schedule_errors(path: str, schedule: dict[str, int]) -> list[str]:
    errs = []
    for key, value in schedule.items():
        try:
            parse_hhmm(key)
        except ValueError as e:
            errs.append(f"{path}.{key}: {e}")
        if not 0 <= value <= 100:
            errs.append(f"{path}.{key}: {value} must be a percentage 0..100")
    return errs
