"""Per-seed read-outs of the γ–η sweep: the unit of replication of the claims is the seed.

- `eta_star_per_seed`: per (γ, seed) the η of that seed's lowest final loss among the η the
  seed survived (the divergence rule applied to the seed's own runs), and the largest such η
  (that seed's η_max). Both are lattice values.
- `plateau_per_seed`: a seed still on its plateau at its η* (its test loss there never falls
  to 0.9× the initial loss) is flagged and left out of that seed's fits, as the seed-mean
  read-out does for the seed-mean curve.
- `slopes_per_seed`: per seed, the broken power law fitted to that seed's values over the same
  γ as the seed-mean fit (every γ with a finite, unflagged value), by the least-squares twin
  (`lazyrich.fit.least_squares_broken_power_law`: a point estimate per seed in a fraction of a
  second; its posterior means of the small- and large-γ slopes `b1`, `b2` are the seed's
  slopes). A seed with too few points gives NaN.
"""

from __future__ import annotations

import math

import numpy as np
from jaxtyping import Bool, Float

from lazyrich.errors import ConfigError
from lazyrich.fit import least_squares_broken_power_law

from .dynamics import PLATEAU_FRACTION


def eta_star_per_seed(
    loss: Float[np.ndarray, "g e s"],
    marked: Bool[np.ndarray, "g e s"],
    etas: Float[np.ndarray, "g e"],
) -> tuple[Float[np.ndarray, "g s"], Float[np.ndarray, "g s"], np.ndarray]:
    """η*, η_max and the index of η* in the window, per (γ, seed).

    **Arguments:**

    - `loss`: final losses (γ, η ascending, seed).
    - `marked`: the divergence rule's marks, same shape.
    - `etas`: the η of each window cell (γ, η).

    **Returns:** `(eta_star, eta_max, index)`, each (γ, seed); NaN (index 0) where the seed has
    no stable η at that γ.
    """
    ok = ~np.asarray(marked, bool) & np.isfinite(loss)
    table = np.broadcast_to(np.asarray(etas, float)[:, :, None], loss.shape)
    masked = np.where(ok, loss, np.inf)
    has = ok.any(1)
    index = np.where(has, np.argmin(masked, axis=1), 0)
    best = np.where(has, np.take_along_axis(table, index[:, None, :], axis=1)[:, 0], np.nan)
    top = np.where(ok, table, -np.inf).max(1)
    return best, np.where(has, top, np.nan), index


def plateau_per_seed(
    test_loss: Float[np.ndarray, "g e s t"], index: np.ndarray, best: np.ndarray, loss0: float
) -> Bool[np.ndarray, "g s"]:
    """True where the seed's curve at its η* never falls to `PLATEAU_FRACTION` × `loss0`."""
    g, s = np.meshgrid(np.arange(index.shape[0]), np.arange(index.shape[1]), indexing="ij")
    curves = test_loss[g, index, s]  # (γ, seed, step)
    left = np.any(curves <= PLATEAU_FRACTION * loss0, axis=-1)
    return np.isfinite(best) & ~left


def slopes_per_seed(gammas: np.ndarray, values: Float[np.ndarray, "g s"]) -> dict[str, list]:
    """`{"small": [b1 per seed], "large": [b2 per seed]}` of per-seed broken power laws."""
    small, large = [], []
    for s in range(values.shape[1]):
        try:
            fit = least_squares_broken_power_law(gammas, values[:, s])
        except ConfigError:  # too few finite points: this seed is not measured
            small.append(math.nan)
            large.append(math.nan)
            continue
        small.append(float(fit["b1"].mean))
        large.append(float(fit["b2"].mean))
    return {"small": small, "large": large}


def best_gamma_per_seed(
    gammas: np.ndarray, final: Float[np.ndarray, "g e s"], marked: Bool[np.ndarray, "g e s"]
) -> list[float]:
    """Per seed the γ of its lowest final loss over the (γ, η) it survived (NaN if none)."""
    masked = np.where(~np.asarray(marked, bool) & np.isfinite(final), final, np.inf)
    flat = masked.reshape(-1, masked.shape[-1])
    out = []
    for s in range(flat.shape[1]):
        if not np.isfinite(flat[:, s]).any():
            out.append(math.nan)
            continue
        out.append(float(gammas[int(np.argmin(flat[:, s])) // masked.shape[1]]))
    return out
