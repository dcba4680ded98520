"""The one percentile Tessera uses: reports, the demo summary, the MQTT KPIs, benchmarks.

Linear interpolation between the two nearest ranks (the "inclusive" method:
``statistics.quantiles(xs, n=100, method="inclusive")``, numpy's default): the
median of ``[1, 2, 3, 4]`` is 2.5, its p90 3.7; one value is every percentile
of itself.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 0.5)
    2.5
    >>> round(percentile([1.0, 2.0, 3.0, 4.0], 0.9), 2)
    3.7
    >>> percentile([], 0.9)
    0.0
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q`` quantile (0 ≤ q ≤ 1) of ``values``; 0.0 when there are none (a caller
    that must tell "no data" from zero checks the count first)."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q!r} must be within 0..1")
    s = sorted(values)
    if not s:
        return 0.0
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return float(s[lo] + (s[hi] - s[lo]) * (pos - lo))
