"""The announcement queue: one worker, so two announcements never overlap.

    ann = Announcer(clips, DirectoryOutput("var/sound"), clock, languages=("zh", "en"))
    ann.start()
    ann.announce_call("A023", 3)          # queued; played in order
    ann.stop()

Calls are played in the order they were queued; a recall is queued again like
a call. Before playing, an announcement older than ``max_age_s`` (measured
from the call's own timestamp) is dropped rather than announced minutes late,
and one falling in quiet hours is skipped. Volume follows the time-of-day
schedule by scaling the samples.
"""

from __future__ import annotations

import logging
import queue
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from tessera.clock import Clock
from tessera.display.content import in_spans, scheduled
from tessera.display.voice import LANGUAGES, ClipLibrary, VoiceError, fallback_text, speak
from tessera.drivers.audio import AudioOut
from tessera.drivers.errors import DeviceError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Announcement:
    number: str
    counter_number: int
    at: datetime  # when the call happened (event ts)
    recall: bool = False
    text: str = ""  # free text (espeak-ng), used instead of number/counter when set
    lang: str = ""


@dataclass
class AnnouncerStats:
    played: int = 0
    stale: int = 0
    quiet: int = 0
    failed: int = 0
    fallback: int = 0


class Announcer:
    """Ordered, non-overlapping announcements from a clip library to an AudioOut."""

    def __init__(self, clips: ClipLibrary, out: AudioOut, clock: Clock, *,
                 languages: tuple[str, ...], tz: ZoneInfo | None = None, repeat: int = 1,
                 chime: bool = True, quiet_hours: tuple[str, ...] = (),
                 volume: Mapping[str, int] | None = None, max_age_s: float = 60.0,
                 work_dir: str | Path | None = None,
                 on_fault: Callable[[str, str], None] | None = None) -> None:
        self.clips, self.out, self.clock = clips, out, clock
        self.languages, self.tz = languages, tz or ZoneInfo("UTC")
        self.repeat, self.chime, self.quiet_hours = repeat, chime, quiet_hours
        self.volume = dict(volume or {})
        self.max_age_s = max_age_s
        self.stats = AnnouncerStats()
        self._on_fault = on_fault
        self._queue: queue.Queue[Announcement | None] = queue.Queue(maxsize=256)
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="tessera-voice-") if work_dir is None \
            else None
        self._work = Path(self._tmp.name if self._tmp else str(work_dir))
        self._work.mkdir(parents=True, exist_ok=True)
        self._seq = 0

    # ------------------------------------------------------------------ queueing

    def announce_call(self, number: str, counter_number: int, *, at: datetime | None = None,
                      recall: bool = False) -> None:
        self._put(Announcement(number, counter_number, at or self.clock.now(), recall))

    def announce_text(self, text: str, lang: str, *, at: datetime | None = None) -> None:
        """Free text through espeak-ng (e.g. a closing notice)."""
        self._put(Announcement("", 0, at or self.clock.now(), text=text, lang=lang))

    def _put(self, item: Announcement) -> None:
        self._idle.clear()
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            # a backlog this long is all stale anyway; dropping keeps memory bounded
            self.stats.stale += 1
            log.warning("announcement queue full; dropped %s", item.number or item.text)

    # ------------------------------------------------------------------ worker

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="announcer", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None
        if self._tmp is not None:
            self._tmp.cleanup()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far has been played or dropped."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self.handle(item)
            except Exception as e:  # the worker must survive any one bad announcement
                self.stats.failed += 1
                log.error("announcement %s failed: %s", item.number or item.text, e)
                if self._on_fault is not None:
                    self._on_fault("audio", str(e))
            finally:
                if self._queue.empty():
                    self._idle.set()

    def handle(self, item: Announcement) -> Path | None:
        """Render and play one announcement now; None when dropped."""
        now = self.clock.now()
        if (now - item.at).total_seconds() > self.max_age_s:
            self.stats.stale += 1
            log.info("dropped stale announcement %s (%.0f s old)", item.number,
                     (now - item.at).total_seconds())
            return None
        local = now.astimezone(self.tz).time()
        if in_spans(self.quiet_hours, local):
            self.stats.quiet += 1
            return None
        volume = scheduled(self.volume, local)
        wav = self.render(item, 100 if volume is None else volume)
        self.out.play(wav)
        self.stats.played += 1
        return wav

    def render(self, item: Announcement, volume: int = 100) -> Path:
        """The announcement as one WAV file in the work directory."""
        self._seq += 1
        name = item.number or "text"
        out = self._work / f"{self._seq:06d}-{name}{'-recall' if item.recall else ''}.wav"
        if item.text:
            return speak(item.text, _voice(item.lang), out)
        paths = self.clips.announcement_clips(item.number, item.counter_number, self.languages,
                                              chime=self.chime, repeat=self.repeat)
        try:
            return self.clips.assemble(paths, out, volume=volume)
        except VoiceError as e:
            if not any(not p.is_file() for p in paths):
                raise
            log.warning("%s; falling back to espeak-ng", e)
            self.stats.fallback += 1
            return self._fallback(item, out, volume)

    def _fallback(self, item: Announcement, out: Path, volume: int) -> Path:
        parts = []
        for lang in self.languages:
            voice, sentence = fallback_text(item.number, item.counter_number, lang)
            parts.append(speak(sentence, voice, self._work / f"fallback-{lang}.wav"))
        try:
            return self.clips.assemble(parts, out, volume=volume)
        finally:
            for p in parts:
                self.clips.forget(p)


def _voice(lang: str) -> str:
    if lang not in LANGUAGES:
        raise DeviceError(f"no voice for language {lang!r}")
    return LANGUAGES[lang].voice
