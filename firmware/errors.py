"""Tessera's exception tree, as seen from the firmware.

The root and the device-level leaves live in :mod:`tessera.drivers.errors`
(drivers never import the firmware); firmware-only leaves are added here or
next to the code that raises them (e.g. ``tessera.engine.errors``).
"""

from tessera.drivers.errors import ConfigError, DeviceError, StoreError, TesseraError

__all__ = ["ConfigError", "DeviceError", "StoreError", "TesseraError"]
