"""Builds a DisplayRole from the branch config (real line and speaker, or simulated).

    role = build_role(cfg, clock, emit=emit, snapshot=engine.snapshot)
    role.start()

``board.url`` may be a device path, a pty from ``tessera sim board`` or any
pyserial URL; ``voice.output = "dir:PATH"`` writes WAV files instead of
playing them. Missing clips are generated with espeak-ng on first run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from tessera.clock import Clock
from tessera.config import BranchConfig
from tessera.display.announcer import Announcer
from tessera.display.link import BoardLink, Emit
from tessera.display.role import DisplayRole, Snapshot
from tessera.display.voice import ClipLibrary, generate_clips
from tessera.drivers.alpha import AlphaBoard, CallerBoard
from tessera.drivers.audio import AplayOutput, AudioOut, DirectoryOutput

log = logging.getLogger(__name__)


def clips_root(cfg: BranchConfig) -> Path:
    return cfg.path(cfg.voice.clips_dir) if cfg.voice.clips_dir else \
        cfg.path(cfg.storage.dir) / "clips"


def audio_output(cfg: BranchConfig) -> AudioOut:
    out = cfg.voice.output
    return DirectoryOutput(cfg.path(out[4:])) if out.startswith("dir:") else AplayOutput()


def board_opener(cfg: BranchConfig, url: str | None = None) -> Callable[[], CallerBoard]:
    b = cfg.board

    def open_board() -> CallerBoard:
        return AlphaBoard.open(url or b.url, baudrate=b.baudrate, bytesize=b.bytesize,
                               parity=b.parity, stopbits=b.stopbits, flash=b.flash,
                               sign=b.sign, hall_lines=b.history)

    return open_board


def build_announcer(cfg: BranchConfig, clock: Clock, *, out: AudioOut | None = None,
                    emit: Emit | None = None, clips: Path | None = None) -> Announcer:
    v = cfg.voice
    langs = v.languages or cfg.branch.languages
    root = clips or clips_root(cfg)
    made = generate_clips(root, langs)  # keeps installer recordings; fills only gaps
    if made:
        log.info("generated %d voice clips with espeak-ng in %s", len(made), root)

    def on_fault(kind: str, detail: str) -> None:
        if emit is not None:
            emit("device.fault", {"kind": kind, "state": "error", "detail": detail})

    return Announcer(ClipLibrary(root), out or audio_output(cfg), clock, languages=langs,
                     tz=cfg.tz, repeat=v.repeat, chime=v.chime, quiet_hours=v.quiet_hours,
                     volume=v.volume, max_age_s=v.max_age_s, on_fault=on_fault)


def build_role(cfg: BranchConfig, clock: Clock, *, emit: Emit | None = None,
               snapshot: Callable[[], Snapshot] | None = None, board_url: str | None = None,
               audio: AudioOut | None = None) -> DisplayRole:
    """The display role as configured; no board when neither board.url nor board_url is set."""
    link = None
    if (board_url or cfg.board.url) and cfg.board.brightness and cfg.board.sign != "solar":
        from tessera.drivers.alpha import SIGN_TYPES

        log.warning("board.brightness is set but %s", SIGN_TYPES[cfg.board.sign].note)
    if board_url or cfg.board.url:
        link = BoardLink(board_opener(cfg, board_url), clock, emit=emit,
                         ping_interval_s=cfg.board.ping_interval_s)
    announcer = build_announcer(cfg, clock, out=audio, emit=emit) if cfg.voice.enabled else None
    return DisplayRole(cfg, clock=clock, link=link, announcer=announcer, snapshot=snapshot)
