"""When to record metrics: log-spaced steps."""

from __future__ import annotations

import numpy as np

from ..errors import require


def log_steps(total: int, num: int, *, first: int = 1) -> np.ndarray:
    """About `num` distinct integer steps, log-spaced from `first` to `total` (both included).

    Step t means "after t updates". Used as the recording times of a run; `0` is not
    included (record the initial state separately if needed).

    **Arguments:**

    - `total`: the last step (`>= 1`).
    - `num`: the number of geometrically spaced points before rounding (`>= 1`); rounding
      merges duplicates, so fewer may come back.
    - `first`: the first step, clipped to `[1, total]` (default 1).

    **Returns:** a sorted int64 NumPy array of distinct steps in `[first, total]`.

    **Raises:** `ConfigError` for `total < 1` or `num < 1`.
    """
    require(total >= 1, f"number of steps must be >= 1, got {total}")
    require(num >= 1, f"number of recording points must be >= 1, got {num}")
    first = min(max(first, 1), total)
    pts = np.unique(np.round(np.geomspace(first, total, num)).astype(np.int64))
    return pts
