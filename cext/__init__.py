"""The GPIO event ring buffer: compiled (Cython) with a pure-Python twin.

    from tessera.cext import Ring, PRESS
    ring = Ring(1024)
    ring.push(time.monotonic_ns(), 17, PRESS, 1)
    ring.wait(0.5) and ring.pop_many(64)   # -> [(t_ns, 17, PRESS, 1)]
    ring.pop_wait(64, 0.5)                 # the same in one call ([] on timeout)

``Ring`` is the compiled class unless ``TESSERA_PURE_PYTHON=1`` is set when this
package is first imported; ``IMPLEMENTATION`` says which (``"cython"`` or
``"python"``). There is no silent fallback: if the extension is missing, the
import fails (the build is required to compile it). Imports only the stdlib.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tessera.cext import _ring_py

# Record kinds (the ``kind`` field). EDGE carries the raw level in ``value``
# (1 = pressed/active); PRESS and RELEASE are already-decoded edges.
EDGE = 0
PRESS = 1
RELEASE = 2

PURE_PYTHON_ENV = "TESSERA_PURE_PYTHON"


def _forced_pure() -> bool:
    return os.environ.get(PURE_PYTHON_ENV, "").strip().lower() in ("1", "true", "yes", "on")


IMPLEMENTATION: str
if TYPE_CHECKING:
    # both classes have the same API; type-check against the twin
    from tessera.cext._ring_py import Ring
elif _forced_pure():
    Ring = _ring_py.Ring
    IMPLEMENTATION = "python"
else:
    from tessera.cext import _ring

    Ring = _ring.Ring
    IMPLEMENTATION = "cython"


def implementations() -> dict[str, type[_ring_py.Ring]]:
    """Both ring classes by name (the tests run every ring test on each)."""
    from tessera.cext import _ring

    return {"cython": _ring.Ring, "python": _ring_py.Ring}  # type: ignore[dict-item]


__all__ = ["EDGE", "IMPLEMENTATION", "PRESS", "RELEASE", "Ring", "implementations"]
