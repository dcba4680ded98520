"""The root of Tessera's one exception tree.

It lives in ``tessera.drivers`` (the lowest layer that raises domain-level
errors) so drivers can raise it without importing the firmware; the firmware
re-exports it from ``tessera.errors`` and adds its own leaves there.

Every leaf also subclasses the builtin it behaves like, so callers that only
know the builtin still catch it. Messages say what to fix.
"""

from __future__ import annotations


class TesseraError(Exception):
    """Base of every error Tessera raises on purpose."""


class ConfigError(TesseraError, ValueError):
    """The branch configuration is invalid.

    ``errors`` lists every problem found, each as ``"path: what to fix"``.
    """

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("invalid configuration:\n  " + "\n  ".join(self.errors))


class DeviceError(TesseraError, OSError):
    """A device (printer, board, GPIO, broker) failed or is unreachable."""


class StoreError(TesseraError, RuntimeError):
    """The SQLite store is corrupt, foreign or from an unknown schema version."""
