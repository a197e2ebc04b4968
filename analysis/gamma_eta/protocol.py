"""The γ paper's learning-rate protocol: η lattice, divergence rule, probe, per-γ window, η*.

η values live on one lattice, η_k = η_top · 10^(−k / per_decade) (k = 0, 1, 2, …, going from
large to small), so every γ's window is a slice of the same lattice and a heat map over
(γ, η) needs no interpolation.

1. **Probe.** Short runs (`probe_steps`) over the whole searched range `[eta_min, eta_max]`.
   The paper's rule — a diverged run marks every larger η at that γ diverged — gives per γ
   the *first stable η* coming from above: the largest η below the smallest diverged one.
2. **Window.** The main sweep runs, per γ, `window_decades · per_decade + 1` lattice values
   from the first stable η downwards (it may extend below `eta_min`: that bound only limits
   the probe's search). If the probe found no stable η, the window starts one lattice step
   below the smallest probed η. If nothing diverged in the probe, the boundary is *censored*
   (only known to be above `eta_max`).
3. **Read-out.** After the main sweep the rule is applied again (long runs may diverge where
   the short probe did not). `final_loss` is the mean test loss over the recordings in the
   last 10% of steps; `eta_star(γ)` the η with the lowest seed-mean final loss among η where
   every seed is stable, and `eta_max(γ)` the largest such η (the measured boundary, at the
   lattice resolution).
"""

from __future__ import annotations

import math

import numpy as np


def lattice(eta_top: float, per_decade: float, k: np.ndarray) -> np.ndarray:
    """η_k = η_top · 10^(−k/per_decade) for integer offsets `k` (any shape)."""
    return eta_top * 10.0 ** (-np.asarray(k, dtype=np.float64) / per_decade)


def probe_offsets(eta_min: float, eta_max: float, per_decade: float) -> np.ndarray:
    """Lattice offsets k (increasing, so η decreasing) covering [eta_min, eta_max]."""
    n = int(math.floor(math.log10(eta_max / eta_min) * per_decade + 1e-9)) + 1
    return np.arange(n)


def window_size(window_decades: float, per_decade: float) -> int:
    """Number of lattice values in a window of `window_decades` below (and at) its top."""
    return int(round(window_decades * per_decade)) + 1


def divergence_rule(diverged: np.ndarray) -> np.ndarray:
    """The paper's rule on (γ, η ascending, seed): a diverged run marks every larger η diverged."""
    return np.asarray(np.logical_or.accumulate(np.asarray(diverged, bool), axis=1))


def first_stable(diverged_desc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From a probe over η *decreasing* (γ, η, seed) → per γ the index of the first stable η.

    The rule is applied across seeds (a γ, η cell is stable only if every seed is). Returns
    `(index, censored)`: `index` = the first stable position (= n_eta when none is stable);
    `censored` = True where nothing diverged (the boundary lies above the probed range).
    """
    ascending = np.asarray(np.asarray(diverged_desc)[:, ::-1].any(axis=-1))
    marked = divergence_rule(ascending)[:, ::-1]  # (γ, η desc)
    n = marked.shape[1]
    index = np.where(marked.all(1), n, np.argmin(marked, axis=1))
    censored = np.asarray(~np.asarray(diverged_desc).any(axis=(1, 2)))
    return index, censored


def window_offsets(first: np.ndarray, n_window: int) -> np.ndarray:
    """Per γ the lattice offsets of its window, sorted so η *increases* along axis 1."""
    k = first[:, None] + np.arange(n_window)[None, :]
    return k[:, ::-1]


def final_loss(test_loss: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Mean test loss over the recordings in the last 10% of steps: (..., step) → (...)."""
    tail = steps >= 0.9 * steps[-1]
    return test_loss[..., tail].mean(-1)


def eta_star(
    loss: np.ndarray, marked: np.ndarray, etas: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """η* and η_max per γ from (γ, η, seed) final losses, divergence marks and η (γ, η) table.

    **Returns:** `(eta_star, eta_max, best_loss)`, NaN (inf for the loss) where no η is
    stable for every seed.
    """
    etas = np.broadcast_to(etas, loss.shape[:2])
    stable = np.asarray(~marked.any(-1))
    mean = np.where(stable, np.where(marked, np.inf, loss).mean(-1), np.inf)
    mean = np.where(np.isfinite(mean), mean, np.inf)
    has = np.isfinite(mean).any(1)
    rows = np.arange(loss.shape[0])
    best = np.where(has, etas[rows, np.argmin(mean, axis=1)], np.nan)
    top = np.where(stable, etas, -np.inf).max(1)
    largest = np.where(stable.any(1), top, np.nan)
    return best, largest, np.asarray(mean).min(axis=1)
