"""Ultra-rich dynamics: plateaus, drops and staircase steps in loss curves; the time collapse.

**Phases of a curve.** On log-spaced recordings (t_i, ℓ_i) with the initial loss ℓ_0 at t = 0,
take the log-log slope s_i = Δ log ℓ / Δ log t between consecutive recordings. A *drop* is a
maximal run of intervals with s_i < −`drop_slope` over which the loss falls by at least the
factor `min_drop` (0.8 = by 20%); the stretches between drops are plateaus. The *plateau
length* is the first recorded step at which the loss is below `plateau_fraction` · ℓ_0 (the
end of the initial plateau). More than one drop is a staircase; `staircase_steps` counts its
steps, merging drops separated by less than a doubling of time.

**Collapse.** Rich-regime theory says the trajectory depends on η, γ and t only through
τ = η γ^(−2/L) t. `collapse_score` puts the log10-loss curves of several γ on a common grid
of log-spaced times (the overlap of their ranges) by linear interpolation in (log t, log ℓ)
and returns the largest pairwise gap max_τ (max_i − min_i) log10 ℓ_i(τ) in decades; the same
with τ = t gives the unrescaled score.
"""

from __future__ import annotations

import numpy as np

PLATEAU_FRACTION = 0.9
"""A curve has left its plateau once its loss is at or below this fraction of the initial."""


def plateau_length(
    steps: np.ndarray, loss: np.ndarray, loss0: float, fraction: float = PLATEAU_FRACTION
):
    """First recorded step with loss <= `fraction`·loss0, or None if the curve never gets there."""
    below = np.nonzero(np.asarray(loss) <= fraction * loss0)[0]
    return int(steps[below[0]]) if below.size else None


def detect_drops(
    steps: np.ndarray,
    loss: np.ndarray,
    loss0: float,
    *,
    drop_slope: float = 0.5,
    min_drop: float = 0.8,
) -> list[dict[str, float]]:
    """The drops of one curve: `[{start, end, loss_before, loss_after}, …]` in step order.

    The curve is prefixed with (t = 0.5·t_1, loss0) so a drop right at the first recording is
    seen (log t needs t > 0; the initial loss is the loss at every t < t_1's first update).
    """
    t = np.concatenate([[0.5 * steps[0]], np.asarray(steps, float)])
    ell = np.concatenate([[loss0], np.asarray(loss, float)])
    ok = np.isfinite(ell) & (ell > 0)
    t, ell = t[ok], ell[ok]
    if t.size < 2:
        return []
    slope = np.diff(np.log(ell)) / np.diff(np.log(t))
    steep = slope < -drop_slope
    drops, i = [], 0
    while i < steep.size:
        if not steep[i]:
            i += 1
            continue
        j = i
        while j + 1 < steep.size and steep[j + 1]:
            j += 1
        before, after = ell[i], ell[j + 1]
        if after <= min_drop * before:
            drops.append(
                {
                    "start": float(t[i]),
                    "end": float(t[j + 1]),
                    "loss_before": float(before),
                    "loss_after": float(after),
                }
            )
        i = j + 1
    return drops


def staircase_steps(
    steps: np.ndarray, loss: np.ndarray, loss0: float, *, min_gap: float = 2.0
) -> int:
    """Number of steps of a staircase: the curve's drops (`detect_drops`), with drops whose
    separating stretch spans less than a factor `min_gap` in time merged into one (a noisy
    record inside one drop is not a plateau between two)."""
    n, last_end = 0, None
    for d in detect_drops(steps, loss, loss0):
        if last_end is None or d["start"] >= min_gap * last_end:
            n += 1
        last_end = d["end"]
    return n


def collapse_score(times: list[np.ndarray], losses: list[np.ndarray], num: int = 64):
    """Largest pairwise gap (decades of loss) between curves on their common log-time grid.

    **Returns:** `(score, grid)`; `(None, None)` when fewer than two curves have finite points
    or their time ranges do not overlap.
    """
    curves = []
    for t, ell in zip(times, losses, strict=True):
        t, ell = np.asarray(t, float), np.asarray(ell, float)
        ok = np.isfinite(ell) & (ell > 0) & (t > 0)
        if ok.sum() >= 2:
            curves.append((np.log10(t[ok]), np.log10(ell[ok])))
    if len(curves) < 2:
        return None, None
    lo = max(c[0][0] for c in curves)
    hi = min(c[0][-1] for c in curves)
    if not hi > lo:
        return None, None
    grid = np.linspace(lo, hi, num)
    values = np.stack([np.interp(grid, u, v) for u, v in curves])
    return float((values.max(0) - values.min(0)).max()), 10**grid


def rescale(steps: np.ndarray, eta: float, gamma: float, depth: int) -> np.ndarray:
    """τ = η γ^(−2/L) t."""
    return eta * gamma ** (-2.0 / depth) * np.asarray(steps, float)
