"""Announcements: clip order, WAV format and length, ordering, staleness, quiet hours."""

from __future__ import annotations

import array
import wave
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from display_helpers import BranchStandIn, make_config

from tessera.clock import VirtualClock
from tessera.display.announcer import Announcer
from tessera.display.role import DisplayRole
from tessera.display.voice import ClipLibrary, VoiceError, installed_voices
from tessera.drivers.audio import DirectoryOutput
from tessera.errors import ConfigError

ZH_A023_3 = ["ticket", "letter_A", "digit_0", "digit_2", "digit_3", "counter", "digit_3",
             "window"]
EN_A023_3 = ["ticket", "letter_A", "digit_0", "digit_2", "digit_3", "counter", "digit_3"]


def frames_of(path: Path) -> tuple[tuple[int, int, int], bytes]:
    with wave.open(str(path), "rb") as w:
        return (w.getnchannels(), w.getsampwidth(), w.getframerate()), w.readframes(
            w.getnframes())


def expected_audio(clips: Path, sequence: list[str]) -> bytes:
    return b"".join(frames_of(clips / name)[1] for name in sequence)


def announcer(clips_dir: Path, out_dir: Path, clock: VirtualClock, **kw: object) -> Announcer:
    return Announcer(ClipLibrary(clips_dir), DirectoryOutput(out_dir), clock,
                     languages=("zh", "en"), tz=ZoneInfo("Asia/Shanghai"), **kw)  # type: ignore[arg-type]


def test_call_wav_has_the_clip_sequence_format_and_length(clips_dir: Path, tmp_path: Path,
                                                          clock: VirtualClock) -> None:
    ann = announcer(clips_dir, tmp_path / "out", clock)
    ann.start()
    ann.announce_call("A023", 3)
    assert ann.drain(10)
    ann.stop()
    (played,) = DirectoryOutput(tmp_path / "out").played()
    params, audio = frames_of(played)
    assert params == (1, 2, 22050)
    sequence = ["zh/chime", *(f"zh/{n}" for n in ZH_A023_3), *(f"en/{n}" for n in EN_A023_3)]
    assert audio == expected_audio(clips_dir, [f"{s}.wav" for s in sequence])
    clip_seconds = sum(len(frames_of(clips_dir / f"{s}.wav")[1]) / 2 / 22050 for s in sequence)
    assert abs(len(audio) / 2 / 22050 - clip_seconds) < 0.01
    assert 3.0 < clip_seconds < 20.0  # a real sentence, not silence or a runaway


def test_two_quick_calls_play_one_after_the_other(clips_dir: Path, tmp_path: Path,
                                                  clock: VirtualClock) -> None:
    ann = announcer(clips_dir, tmp_path / "out", clock, chime=False)
    ann.start()
    ann.announce_call("A001", 1)
    ann.announce_call("B002", 2)
    assert ann.drain(10)
    ann.stop()
    first, second = DirectoryOutput(tmp_path / "out").played()
    lib = ClipLibrary(clips_dir)
    for played, (number, counter) in ((first, ("A001", 1)), (second, ("B002", 2))):
        paths = lib.announcement_clips(number, counter, ["zh", "en"], chime=False)
        assert frames_of(played)[1] == b"".join(frames_of(p)[1] for p in paths)


def test_stale_call_is_dropped_not_announced_late(clips_dir: Path, tmp_path: Path,
                                                  clock: VirtualClock) -> None:
    ann = announcer(clips_dir, tmp_path / "out", clock, max_age_s=60)
    ann.announce_call("A001", 1)  # queued while the worker is not running yet
    ann.announce_call("A002", 1, at=clock.now() + timedelta(seconds=50))
    clock.advance(90)  # A001 is 90 s old, A002 40 s
    ann.start()
    assert ann.drain(10)
    ann.stop()
    assert ann.stats.stale == 1 and ann.stats.played == 1
    (played,) = DirectoryOutput(tmp_path / "out").played()
    assert "A002" in played.name


def test_recall_repeats_and_repeat_count_doubles_the_sentence(
        clips_dir: Path, tmp_path: Path, clock: VirtualClock) -> None:
    cfg = make_config(clips=clips_dir, out=tmp_path / "out", extra="repeat = 2\nchime = false")
    ann = announcer(clips_dir, tmp_path / "out", clock, repeat=2, chime=False)
    role = DisplayRole(cfg, clock=clock, announcer=ann)
    branch = BranchStandIn(cfg, clock)
    role.start(thread=False)
    role.on_event(branch.open("c3"))
    role.on_event(branch.call("c3", "A023"))
    role.on_event(branch.recall("c3"))
    assert ann.drain(10)
    role.stop()
    call, recall = DirectoryOutput(tmp_path / "out").played()
    assert "recall" in recall.name
    once = [f"zh/{n}.wav" for n in ZH_A023_3] + [f"en/{n}.wav" for n in EN_A023_3]
    assert frames_of(call)[1] == expected_audio(clips_dir, once * 2)
    assert frames_of(recall)[1] == frames_of(call)[1]


def test_quiet_hours_and_volume_schedule(clips_dir: Path, tmp_path: Path,
                                         clock: VirtualClock) -> None:
    # the clock reads 10:30 in Shanghai
    quiet = announcer(clips_dir, tmp_path / "q", clock, quiet_hours=("10:00-10:45",))
    quiet.start()
    quiet.announce_call("A001", 1)
    assert quiet.drain(10)
    quiet.stop()
    assert quiet.stats.quiet == 1 and DirectoryOutput(tmp_path / "q").played() == []

    loud = announcer(clips_dir, tmp_path / "loud", clock, chime=False)
    soft = announcer(clips_dir, tmp_path / "soft", clock, chime=False,
                     volume={"08:00": 50, "20:00": 100})
    for a in (loud, soft):
        a.start()
        a.announce_call("A001", 1)
        assert a.drain(10)
        a.stop()
    (full,) = DirectoryOutput(tmp_path / "loud").played()
    (half,) = DirectoryOutput(tmp_path / "soft").played()
    peak_full = max(map(abs, array.array("h", frames_of(full)[1])))
    peak_half = max(map(abs, array.array("h", frames_of(half)[1])))
    assert peak_full > 1000
    assert abs(peak_half - peak_full / 2) <= 1


def test_missing_clip_falls_back_to_espeak(clips_dir: Path, tmp_path: Path,
                                           clock: VirtualClock) -> None:
    partial = tmp_path / "clips"
    for lang in ("zh", "en"):
        (partial / lang).mkdir(parents=True)
        for f in (clips_dir / lang).glob("*.wav"):
            if f.stem != "digit_7":
                (partial / lang / f.name).write_bytes(f.read_bytes())
    ann = announcer(partial, tmp_path / "out", clock)
    ann.start()
    ann.announce_call("A007", 1)
    assert ann.drain(20)
    ann.stop()
    assert ann.stats.fallback == 1 and ann.stats.played == 1
    (played,) = DirectoryOutput(tmp_path / "out").played()
    assert len(frames_of(played)[1]) > 22050  # over half a second of speech


def test_bad_numbers_and_clips_are_reported(clips_dir: Path, tmp_path: Path) -> None:
    lib = ClipLibrary(clips_dir)
    with pytest.raises(VoiceError, match="no clip for character"):
        lib.announcement_clips("a-1", 1, ["en"])
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not a wave")
    with pytest.raises(VoiceError, match="not a readable WAV"):
        lib.assemble([broken], tmp_path / "x.wav")


def test_config_check_names_the_missing_clip(clips_dir: Path, tmp_path: Path) -> None:
    partial = tmp_path / "clips"
    for lang in ("zh", "en"):
        (partial / lang).mkdir(parents=True)
        for f in (clips_dir / lang).glob("*.wav"):
            if f.name != "letter_B.wav" or lang == "zh":
                (partial / lang / f.name).write_bytes(f.read_bytes())
    with pytest.raises(ConfigError) as err:
        make_config(clips=partial)
    assert err.value.errors == [
        f"voice.clips_dir: missing clip file {partial}/en/letter_B.wav; run 'tessera voice "
        "clips' or copy a recording with that name"]


def test_config_check_reports_board_and_voice_problems(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    extra = 'languages = ["zh", "fr"]\nquiet_hours = ["22:00"]\nvolume = { "25:00" = 150 }'
    monkeypatch.setenv("PATH", str(tmp_path))  # espeak-ng is "not installed"
    installed_voices.cache_clear()
    try:
        with pytest.raises(ConfigError) as err:
            make_config(url="x", extra=extra).board  # noqa: B018
    finally:
        installed_voices.cache_clear()
    text = "\n".join(err.value.errors)
    assert "voice.languages: no announcement template for 'fr'" in text
    assert "voice.quiet_hours[0]: '22:00' is not a span" in text
    assert "voice.volume.25:00: '25:00' is not a time of day" in text
    assert "voice.volume.25:00: 150 is out of range; use a whole number between 0 and 100" \
        in text
    assert "voice: espeak-ng is not installed" in text
    bad_addr = "\n[[counters]]\nid = \"c9\"\nnumber = 9\nservices = [{ service = \"cash\" }]\n"
    with pytest.raises(ConfigError) as err:
        make_config(url="x", extra=bad_addr.replace("number = 9",
                                                    'number = 9\nboard_address = "1G"'))
    assert any("counters[3].board_address: board address '1G' is out of range" in e
               for e in err.value.errors)


def test_generated_clips_spare_the_espeak_check_at_start(monkeypatch: pytest.MonkeyPatch,
                                                        clips_dir: Path, tmp_path: Path) -> None:
    """With voice.clips_dir empty, clips are generated into <storage.dir>/clips at the
    first start, so espeak-ng must be there; once that set is complete a start no longer
    runs espeak-ng to list its voices (a display Pi's start-up), and a missing clip
    brings the check back."""
    import shutil

    from tessera.display.voice import generated_clips_dir, required_clips

    made = generated_clips_dir(tmp_path / "var")
    for lang in ("zh", "en"):
        (made / lang).mkdir(parents=True)
        for name in required_clips(lang, ["A", "B"]):
            shutil.copy(clips_dir / lang / f"{name}.wav", made / lang / f"{name}.wav")
    monkeypatch.setenv("PATH", str(tmp_path))  # espeak-ng is "not installed"
    installed_voices.cache_clear()
    try:
        storage = f'[storage]\ndir = "{tmp_path / "var"}"'
        make_config(url="x", extra=storage)  # complete: no espeak-ng needed
        (made / "en" / "digit_7.wav").unlink()
        with pytest.raises(ConfigError, match="espeak-ng is not installed"):
            make_config(url="x", extra=storage)
    finally:
        installed_voices.cache_clear()


def test_voice_not_installed_is_a_clear_error(clips_dir: Path, tmp_path: Path,
                                              clock: VirtualClock) -> None:
    from tessera.display.voice import speak

    with pytest.raises(VoiceError, match="voice 'xx-nope' is not installed"):
        speak("hello", "xx-nope", tmp_path / "x.wav")
    ann = announcer(clips_dir, tmp_path / "out", clock)
    ann.start()
    ann.announce_text("closing in ten minutes", "fr")  # no such language: counted, not fatal
    ann.announce_call("A001", 1)
    assert ann.drain(10)
    ann.stop()
    assert ann.stats.failed == 1 and ann.stats.played == 1


def test_malformed_events_are_ignored(clips_dir: Path, tmp_path: Path,
                                      clock: VirtualClock) -> None:
    cfg = make_config(clips=clips_dir, out=tmp_path / "out")
    role = DisplayRole(cfg, clock=clock)
    role.on_event({"type": "ticket.called", "data": {"number": "A001"}})  # no ticket_id
    role.on_event({"type": "ticket.called", "data": None})
    role.on_event({"type": "ticket.called", "data": {"ticket_id": "t", "number": "A1",
                                                     "counter": "c1", "counter_number": "x"}})
    role.on_event({"nonsense": True})
    assert role.content()["hall"] == []

