"""Announcement clips: per-language clip sets, espeak-ng generation, WAV assembly.

A clip set is a directory per language holding ``<name>.wav`` files:
``digit_0``..``digit_9``, ``letter_A``..``letter_Z``, ``ticket``, ``counter``,
``window`` (Mandarin only) and ``chime``. Tessera generates them with espeak-ng
at install or first run; an installer may drop in recordings of a real voice
under the same names (same sample rate, width and channels for the whole set).

    clips = ClipLibrary("var/clips")
    generate_clips(clips.root, ["zh", "en"])
    clips.announcement_clips("A023", 3, ["zh", "en"], chime=True)
    # -> ['zh/chime', 'zh/ticket', 'zh/letter_A', 'zh/digit_0', ...]

Numbers are read digit by digit ("A 0 2 3"). Mandarin uses espeak-ng's
``cmn-latn-pinyin`` voice, fed pinyin with tone numbers, because ``cmn``
mispronounces pinyin as English; letters use the English voice, as Chinese
halls say them.
"""

from __future__ import annotations

import array
import math
import re
import shutil
import subprocess
import sys
import wave
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tessera.errors import DeviceError

CHIME = "chime"
NUMBER, COUNTER_NO = "{number}", "{counter}"
SAMPLE_RATE = 22050  # espeak-ng's native rate; the chime matches it


class VoiceError(DeviceError):
    """A clip is missing or unreadable, or espeak-ng / one of its voices is not installed."""


@dataclass(frozen=True)
class Language:
    voice: str  # espeak-ng voice for words and digits
    letter_voice: str
    words: dict[str, str]  # clip name -> text spoken by espeak-ng
    digits: tuple[str, ...]
    template: tuple[str, ...]  # clip names with {number}/{counter} placeholders


LANGUAGES: dict[str, Language] = {
    "en": Language(
        voice="en", letter_voice="en",
        words={"ticket": "Ticket", "counter": "please go to counter"},
        digits=("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
        template=("ticket", NUMBER, "counter", COUNTER_NO),
    ),
    "zh": Language(
        voice="cmn-latn-pinyin", letter_voice="en",
        words={"ticket": "qing3", "counter": "hao4 dao4", "window": "hao4 chuang1 kou3"},
        digits=("ling2", "yi1", "er4", "san1", "si4", "wu3", "liu4", "qi1", "ba1", "jiu3"),
        template=("ticket", NUMBER, "counter", COUNTER_NO, "window"),
    ),
}


def clip_texts(lang: str) -> dict[str, tuple[str, str]]:
    """Every clip of ``lang`` except the chime: name -> (espeak voice, text)."""
    spec = LANGUAGES[lang]
    texts = {name: (spec.voice, text) for name, text in spec.words.items()}
    texts.update({f"digit_{i}": (spec.voice, d) for i, d in enumerate(spec.digits)})
    texts.update({f"letter_{c}": (spec.letter_voice, c) for c in map(chr, range(65, 91))})
    return texts


def spoken_names(number: str, counter_number: int, lang: str) -> list[str]:
    """Clip names of one sentence, e.g. ['ticket', 'letter_A', 'digit_0', ...]."""
    out: list[str] = []
    for part in LANGUAGES[lang].template:
        if part == NUMBER:
            out.extend(_char_clip(c, number) for c in number)
        elif part == COUNTER_NO:
            out.extend(_char_clip(c, number) for c in str(counter_number))
        else:
            out.append(part)
    return out


def _char_clip(ch: str, number: str) -> str:
    if ch.isdigit() and ch.isascii():
        return f"digit_{ch}"
    if "A" <= ch <= "Z":
        return f"letter_{ch}"
    raise VoiceError(f"cannot announce {number!r}: no clip for character {ch!r}")


def fallback_text(number: str, counter_number: int, lang: str) -> tuple[str, str]:
    """(voice, sentence) for espeak-ng when a clip is missing: the clips' texts joined."""
    texts = clip_texts(lang)
    words = [texts[n][1] for n in spoken_names(number, counter_number, lang)]
    return LANGUAGES[lang].voice, " ".join(words)


def generated_clips_dir(storage_dir: Path) -> Path:
    """Where clips are generated when ``voice.clips_dir`` is empty."""
    return storage_dir / "clips"


def have_clips(root: Path, langs: Iterable[str], prefixes: Iterable[str]) -> bool:
    """Every clip the branch needs exists under ``root`` (files only, not their format)."""
    prefixes = list(prefixes)
    return all((root / lang / f"{name}.wav").is_file()
               for lang in langs for name in required_clips(lang, prefixes))


def required_clips(lang: str, prefixes: Iterable[str]) -> list[str]:
    """Clip names a branch needs for ``lang`` given its ticket prefixes."""
    letters = sorted({f"letter_{c}" for p in prefixes for c in p})
    return [CHIME, *LANGUAGES[lang].words, *(f"digit_{i}" for i in range(10)), *letters]


# --------------------------------------------------------------------------- espeak-ng


@lru_cache(maxsize=1)
def installed_voices() -> frozenset[str]:
    """Voice names espeak-ng knows; empty when espeak-ng itself is missing."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return frozenset()
    res = subprocess.run([exe, "--voices"], capture_output=True, text=True, timeout=10,
                         check=False)
    names: set[str] = set()
    for line in res.stdout.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 5:
            # a voice is selectable by language, by file name, and by its other languages
            names.update((cols[1], cols[4].rsplit("/", 1)[-1].lower()))
            names.update(re.findall(r"\((\S+) \d+\)", line))
    return frozenset(names)


def voice_problems(langs: Iterable[str]) -> list[str]:
    """Why espeak-ng cannot speak ``langs`` (empty when it can)."""
    voices = installed_voices()
    if not voices:
        return ["espeak-ng is not installed; install the Debian package espeak-ng "
                "or provide recorded clips in voice.clips_dir"]
    needed = {v for lang in langs if lang in LANGUAGES
              for v in (LANGUAGES[lang].voice, LANGUAGES[lang].letter_voice)}
    return [f"espeak-ng voice {v!r} is not installed; install espeak-ng-data with it"
            for v in sorted(needed - voices)]


def speak(text: str, voice: str, out: Path) -> Path:
    """Free text to a WAV file through espeak-ng."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise VoiceError("espeak-ng is not installed; install the Debian package espeak-ng")
    if voice not in installed_voices():
        raise VoiceError(f"espeak-ng voice {voice!r} is not installed")
    res = subprocess.run([exe, "-v", voice, "-s", "150", "-w", str(out), "--", text],
                         capture_output=True, timeout=30, check=False)
    if res.returncode != 0 or not out.is_file():
        raise VoiceError(f"espeak-ng failed on {text!r}: {res.stderr.decode(errors='replace')}")
    return out


def trim_silence(path: Path, *, threshold: int = 200, pad_s: float = 0.04) -> Path:
    """Cut espeak-ng's long leading/trailing silence so clips join at a natural pace."""
    params, frames = read_wav(path)
    if params[1] != 2 or params[0] != 1:
        return path
    samples = array.array("h", frames)
    if sys.byteorder == "big":
        samples.byteswap()
    first = next((i for i, v in enumerate(samples) if abs(v) > threshold), None)
    if first is None:
        return path
    last = next(i for i in range(len(samples) - 1, -1, -1) if abs(samples[i]) > threshold)
    pad = int(params[2] * pad_s)
    _write_wav(path, frames[max(first - pad, 0) * 2:(last + pad + 1) * 2], params)
    return path


def write_chime(out: Path, *, rate: int = SAMPLE_RATE) -> Path:
    """A two-tone ding-dong (E5 then C5, decaying), 16-bit mono."""
    samples = array.array("h")
    for freq, dur in ((659.25, 0.35), (523.25, 0.55)):
        n = int(rate * dur)
        for i in range(n):
            env = math.exp(-3.0 * i / n)
            samples.append(int(12000 * env * math.sin(2 * math.pi * freq * i / rate)))
    _write_wav(out, samples.tobytes(), (1, 2, rate))
    return out


def generate_clips(root: str | Path, langs: Sequence[str], *,
                   names: Iterable[str] | None = None, overwrite: bool = False) -> list[Path]:
    """Create missing clips under ``root/<lang>/`` with espeak-ng; keeps installer clips."""
    made: list[Path] = []
    wanted = set(names) if names is not None else None
    for lang in langs:
        if lang not in LANGUAGES:
            raise VoiceError(f"no announcement template for language {lang!r}; "
                             f"known: {', '.join(sorted(LANGUAGES))}")
        d = Path(root) / lang
        d.mkdir(parents=True, exist_ok=True)
        items = {CHIME: ("", ""), **clip_texts(lang)}
        for name, (voice, text) in items.items():
            path = d / f"{name}.wav"
            if (wanted is not None and name not in wanted) or (path.exists() and not overwrite):
                continue
            made.append(write_chime(path) if name == CHIME
                        else trim_silence(speak(text, voice, path)))
    return made


# --------------------------------------------------------------------------- assembly

Params = tuple[int, int, int]  # channels, sample width, rate


class ClipLibrary:
    """Clip files under ``root/<lang>/<name>.wav``, cached in memory once read.

        >>> ClipLibrary("var/clips").path("en", "ticket")
        PosixPath('var/clips/en/ticket.wav')
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._cache: dict[Path, tuple[Params, bytes]] = {}

    def path(self, lang: str, name: str) -> Path:
        return self.root / lang / f"{name}.wav"

    def read(self, path: Path) -> tuple[Params, bytes]:
        if path not in self._cache:
            self._cache[path] = read_wav(path)
        return self._cache[path]

    def forget(self, path: Path) -> None:
        """Drop a cached file (temporary fallback speech)."""
        self._cache.pop(path, None)

    def announcement_clips(self, number: str, counter_number: int, langs: Sequence[str], *,
                           chime: bool = True, repeat: int = 1) -> list[Path]:
        """The clip files of one announcement, in playing order."""
        paths = [self.path(langs[0], CHIME)] if chime and langs else []
        for _ in range(max(repeat, 1)):
            for lang in langs:
                paths.extend(self.path(lang, n) for n in spoken_names(number, counter_number, lang))
        return paths

    def assemble(self, paths: Sequence[Path], out: Path, *, volume: int = 100) -> Path:
        """Concatenate clips into one WAV at ``volume`` percent; all must share one format."""
        params: Params | None = None
        frames = bytearray()
        for p in paths:
            fmt, data = self.read(p)
            if params is None:
                params = fmt
            elif fmt != params:
                raise VoiceError(f"{p}: format {fmt} differs from the other clips {params}; "
                                 "record every clip with the same rate, width and channels")
            frames += data
        if params is None:
            raise VoiceError("nothing to announce")
        _write_wav(out, scale(bytes(frames), volume, params[1]), params)
        return out


def read_wav(path: Path) -> tuple[Params, bytes]:
    try:
        with wave.open(str(path), "rb") as w:
            return (w.getnchannels(), w.getsampwidth(), w.getframerate()), w.readframes(
                w.getnframes())
    except FileNotFoundError:
        raise VoiceError(f"missing clip file {path}; run 'tessera voice clips' or copy a "
                         "recording with that name") from None
    except (wave.Error, EOFError, OSError) as e:
        raise VoiceError(f"clip file {path} is not a readable WAV: {e}") from None


def scale(frames: bytes, volume: int, width: int) -> bytes:
    """Multiply 16-bit samples by ``volume`` %; other widths pass through unchanged."""
    if volume >= 100 or width != 2:
        return frames
    samples = array.array("h", frames)
    if sys.byteorder == "big":
        samples.byteswap()
    factor = max(volume, 0) / 100
    scaled = array.array("h", (int(s * factor) for s in samples))
    if sys.byteorder == "big":
        scaled.byteswap()
    return scaled.tobytes()


def _write_wav(out: Path, frames: bytes, params: Params) -> None:
    tmp = out.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(params[0])
        w.setsampwidth(params[1])
        w.setframerate(params[2])
        w.writeframes(frames)
    tmp.replace(out)


def check_clips(root: Path, langs: Iterable[str], prefixes: Iterable[str]) -> list[str]:
    """Config-check messages for missing or mismatched clip files."""
    errs: list[str] = []
    lib, params = ClipLibrary(root), None
    prefixes = list(prefixes)
    for lang in langs:
        for name in required_clips(lang, prefixes):
            p = lib.path(lang, name)
            try:
                fmt = read_wav(p)[0]
            except VoiceError as e:
                errs.append(f"voice.clips_dir: {e}")
                continue
            if params is not None and fmt != params:
                errs.append(f"voice.clips_dir: {p} has format {fmt}, the others {params}")
            params = params or fmt
    return errs


__all__ = ["LANGUAGES", "ClipLibrary", "VoiceError", "generate_clips",
           "speak", "spoken_names"]
