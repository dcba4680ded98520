"""Helpers of the web tests: a button tap on the simulated panel, a bounded wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tessera.roles.branch import Branch

# the console accounts' password in the web tests (conftest hashes it once per session)
PASSWORD = "correct horse battery"


def press(branch: Branch, pin: int, device: str = "main") -> None:
    """A tap on a simulated panel button (pins are active low)."""
    p = branch.factories[device].pin(pin)
    p.drive_low()
    time.sleep(0.08)
    p.drive_high()


def wait_for(cond: Callable[[], Any], timeout_s: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what or cond}")
