"""Tessera: queue-management firmware (kiosk, counters, caller board, voice, MQTT).

Nothing runs at import time; see ``tessera.cli`` for the entry point.
"""

from tessera._version import __version__

__all__ = ["__version__"]
