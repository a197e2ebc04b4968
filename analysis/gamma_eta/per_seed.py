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
from .protocol import divergence_rule, final_loss


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


def rich_line_slopes(gammas: np.ndarray, values: Float[np.ndarray, "g s"]) -> list[float]:
    """Per seed the least-squares slope of log10 `values` over log10 γ for γ > 1 (NaN with
    fewer than 3 finite positive points): the step-budget control's like-for-like estimator."""
    rich = np.asarray(gammas) > 1
    out = []
    for s in range(values.shape[1]):
        v = values[rich, s]
        ok = np.isfinite(v) & (v > 0)
        if ok.sum() < 3:
            out.append(math.nan)
            continue
        x = np.log10(np.asarray(gammas)[rich][ok])
        out.append(float(np.polyfit(x, np.log10(v[ok]), 1)[0]))
    return out


def budget_change(
    gammas: np.ndarray,
    etas: Float[np.ndarray, "g e"],
    main_star: Float[np.ndarray, "g s"],
    control: dict[str, np.ndarray],
    control_steps: np.ndarray,
    loss0: float,
) -> dict[str, list]:
    """The step-budget control: per seed the rich η* slope (`rich_line_slopes`) of the main
    sweep and of the control's longer runs over the same γ (≥ 1), η windows and seeds, and
    their difference (control − main). Each side's η* is that seed's own (plateau-flagged γ
    left out, as in the main read-out).

    **Arguments:**

    - `gammas`, `etas`: the control's γ and their η windows (γ, η ascending).
    - `main_star`: the main sweep's per-seed η* at those γ, plateau-flagged values NaN.
    - `control`: the control sweep's `test_loss` (γ, η, seed, step) and `diverged`.
    - `control_steps`: the control's recording steps. `loss0`: the initial test loss.

    **Returns:** `{"main": [...], "control": [...], "change": [...]}` per seed.
    """
    marked = divergence_rule(control["diverged"])
    final = final_loss(control["test_loss"], control_steps)
    star, _, idx = eta_star_per_seed(final, marked, etas)
    star = np.where(plateau_per_seed(control["test_loss"], idx, star, loss0), np.nan, star)
    main = rich_line_slopes(gammas, main_star)
    ctrl = rich_line_slopes(gammas, star)
    return {
        "main": main,
        "control": ctrl,
        "change": [c - m for c, m in zip(ctrl, main, strict=True)],
        "eta_star_control": [[float(v) for v in row] for row in star],
    }
