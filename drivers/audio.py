"""Audio output: the ``AudioOut`` port, ALSA playback via ``aplay``, and a directory sink.

    out = DirectoryOutput("/tmp/announcements")
    out.play("/tmp/call.wav")      # copied as /tmp/announcements/0001-call.wav

``play`` blocks until the sound has finished (or, for the directory sink, is
written), which is what lets one worker guarantee announcements never overlap.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path
from typing import Protocol

from tessera.drivers.errors import DeviceError


class AudioError(DeviceError):
    """Playback failed (no sound device, aplay missing, unreadable file)."""


class AudioOut(Protocol):
    """Where announcements are played."""

    def play(self, wav_path: str | Path) -> None:
        """Play one WAV file, blocking until done."""
        ...


class AplayOutput:
    """ALSA playback through the ``aplay`` command (alsa-utils).

        AplayOutput(device="default").play("call.wav")
    """

    def __init__(self, *, device: str = "", timeout_s: float = 60.0) -> None:
        self._device = device
        self._timeout = timeout_s

    def play(self, wav_path: str | Path) -> None:
        cmd = ["aplay", "-q", *(["-D", self._device] if self._device else []), str(wav_path)]
        try:
            res = subprocess.run(cmd, capture_output=True, timeout=self._timeout, check=False)
        except FileNotFoundError as e:
            raise AudioError("aplay not found; install the Debian package alsa-utils") from e
        except subprocess.TimeoutExpired as e:
            raise AudioError(f"aplay did not finish {wav_path} within {self._timeout} s") from e
        if res.returncode != 0:
            detail = res.stderr.decode(errors="replace").strip()
            raise AudioError(f"aplay failed on {wav_path}: {detail or res.returncode}")


class DirectoryOutput:
    """Writes each played WAV into ``directory`` as ``NNNN-<name>.wav``, in order.

    Used by the simulator and the tests in place of a loudspeaker.

        DirectoryOutput("var/sound").play("call.wav")
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._count = len(list(self.directory.glob("*.wav")))

    def play(self, wav_path: str | Path) -> None:
        src = Path(wav_path)
        with self._lock:
            self._count += 1
            dest = self.directory / f"{self._count:04d}-{src.name}"
            try:
                shutil.copyfile(src, dest.with_suffix(".part"))
                dest.with_suffix(".part").replace(dest)  # readers never see half a file
            except OSError as e:
                raise AudioError(f"cannot write announcement to {dest}: {e}") from e

    def played(self) -> list[Path]:
        """Files written so far, oldest first."""
        return sorted(self.directory.glob("*.wav"))
