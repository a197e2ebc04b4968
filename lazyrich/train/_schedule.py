"""When to record metrics: log-spaced steps."""

from __future__ import annotations

import numpy as np

from ..errors import require


def log_steps(total: int, num: int, *, first: int = 1) -> np.ndarray:
    """About `num` distinct integer steps, log-spaced from `first` to `total` (both included).

    Step t means "after t updates". Used as the recording times of a run; `0` is not
    included (record the initial state separately if needed).
    """
    require(total >= 1, f"number of steps must be >= 1, got {total}")
    require(num >= 1, f"number of recording points must be >= 1, got {num}")
    first = min(max(first, 1), total)
    pts = np.unique(np.round(np.geomspace(first, total, num)).astype(np.int64))
    return pts
