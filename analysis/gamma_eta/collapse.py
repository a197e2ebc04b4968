"""The ultra-rich time collapse and plateau growth, from dedicated runs at the rich γ.

**Runs.** At the rich γ_i (`--rich-gammas`, on the grid) the rich theory says the trajectory
depends on η, γ and t through τ = η γ^(−2/L) t only. Three learning-rate schedules are run,
η0(γ) = η_ref · (γ/γ_mid)^p for p = 2/L (theory: every γ then follows the same curve in t),
p = 1 and p = 0 (one η0 for all: no rescaling); γ_mid is the geometric middle of the rich γ and
η_ref = min_i η*(γ_i)·(γ_mid/γ_i)^(2/L) (η* moved to γ_mid by the theory, the smallest, so the
p = 2/L runs sit at or below every η*). Same stream, seeds, steps and records as the sweep.

**Alignment.** The plateau length also depends on the initial condition (the toy model's
escape time grows like γ^(1 − 2/L) in τ for L ≥ 3), which τ does not absorb; each curve is
therefore shifted in time to the step t_a where it first reaches `PLATEAU_FRACTION` × its
initial loss (log-log interpolation between records), and the curves are compared as
functions of t − t_a on the common range [0, min_i (t_end − t_a,i)] (64 points, linear
interpolation of log10 loss). The gap is the largest spread (max − min over γ) of log10 loss
there, in decades, per seed and schedule. A curve that never reaches the level, or diverges,
makes that seed's gap undefined. The gap is only as fine as the records: a drop narrower than
the spacing of the log-spaced records is blurred by the interpolation (raise --records).

**Plateau growth.** t_a of the p = 2/L runs against γ: a log-log least-squares slope per seed,
against the toy model's (`lazyrich.theory.deep_linear.plateau_length` at the same level,
f = (1 − √0.9) y, η ∝ γ^(2/L)).
"""

from __future__ import annotations

import math

import numpy as np

from lazyrich.theory import deep_linear as dl

from .dynamics import PLATEAU_FRACTION

SCHEDULES = ("2/L", "1", "0")


def exponents(depth: int) -> dict[str, float]:
    return {"2/L": 2.0 / depth, "1": 1.0, "0": 0.0}


def eta_table(gammas: np.ndarray, eta_star: np.ndarray, depth: int) -> np.ndarray | None:
    """(n_rich, 3) learning rates of the three schedules, or None without a finite η*."""
    mid = math.exp(np.mean(np.log(gammas)))
    moved = eta_star * (mid / gammas) ** (2.0 / depth)
    if not np.isfinite(moved).any():
        return None
    ref = float(np.nanmin(moved))
    return np.stack([ref * (gammas / mid) ** p for p in exponents(depth).values()], axis=1)


def align_step(steps: np.ndarray, loss: np.ndarray, loss0: float) -> float:
    """First (interpolated) step where the loss reaches PLATEAU_FRACTION·loss0; NaN if never."""
    level = PLATEAU_FRACTION * loss0
    t = np.concatenate([[0.5 * steps[0]], np.asarray(steps, float)])
    ell = np.concatenate([[loss0], np.asarray(loss, float)])
    if not np.all(np.isfinite(ell)):
        return math.nan
    below = np.nonzero(ell <= level)[0]
    if below.size == 0:
        return math.nan
    i = int(below[0])
    if i == 0:
        return float(t[0])
    x0, x1 = np.log(t[i - 1]), np.log(t[i])
    y0, y1 = np.log(ell[i - 1]), np.log(ell[i])
    frac = (np.log(level) - y0) / (y1 - y0) if y1 != y0 else 1.0
    return float(np.exp(x0 + frac * (x1 - x0)))


def aligned_gap(steps: np.ndarray, curves: np.ndarray, loss0: float, num: int = 64) -> float:
    """Largest spread of log10 loss between `curves` (γ, step) after aligning each at t_a."""
    ta = np.array([align_step(steps, c, loss0) for c in curves])
    if curves.shape[0] < 2 or not np.all(np.isfinite(ta)):
        return math.nan
    span = float(np.min(steps[-1] - ta))
    if not span > 0:
        return math.nan
    grid = np.linspace(0.0, span, num)
    t = np.asarray(steps, float)
    vals = []
    for c, a in zip(curves, ta, strict=True):
        tt = np.concatenate([[a], t[t > a]]) - a
        yy = np.concatenate([[np.log10(PLATEAU_FRACTION * loss0)], np.log10(c[t > a])])
        vals.append(np.interp(grid, tt, yy))
    v = np.stack(vals)
    return float((v.max(0) - v.min(0)).max())


def toy_plateau_slope(gammas: np.ndarray, depth: int, a0: float = 1.0) -> float:
    """Log-log slope of the toy model's escape step over `gammas` at η ∝ γ^(2/L), from the
    initial weight `a0` per factor (y = 1; the slope does not depend on η's prefactor)."""
    level = 1.0 - math.sqrt(PLATEAU_FRACTION)
    t = [
        dl.plateau_length(
            depth, 1.0, float(g), 1e-3 * float(g) ** (2.0 / depth), a0=a0, threshold=level
        )
        for g in gammas
    ]
    return float(np.polyfit(np.log10(gammas), np.log10(t), 1)[0])


def toy_matching_a0(gammas: np.ndarray, depth: int, slope: float) -> float | None:
    """The toy's initial weight a0 ∈ [1e-3, 1] whose plateau slope over `gammas` equals `slope`
    (bisection in log a0: a smaller a0 puts the same γ deeper into the toy's asymptotic regime,
    slope → 1 − 2/L, or → 0 like 1/ln γ for L = 2), or None when no a0 in that range gives it.
    The toy's escape time depends on γ only through γ·y/a0^L, so a0^L < 1 reads as the network
    behaving like the toy at a γ larger by 1/a0^L."""
    lo, hi = math.log(1e-3), 0.0
    s_lo, s_hi = toy_plateau_slope(gammas, depth, math.exp(lo)), toy_plateau_slope(gammas, depth)
    if not (min(s_lo, s_hi) <= slope <= max(s_lo, s_hi)):
        return None
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if (toy_plateau_slope(gammas, depth, math.exp(mid)) - slope) * (s_hi - s_lo) > 0:
            hi = mid
        else:
            lo = mid
    return math.exp(0.5 * (lo + hi))


def analyse(
    steps: np.ndarray, gammas: np.ndarray, etas: np.ndarray, test_loss: np.ndarray, loss0: float,
    depth: int,
) -> dict:  # fmt: skip
    """Gaps per schedule and seed, and the plateau-growth slopes, from `test_loss`
    (γ, schedule, seed, step)."""
    n_seed = test_loss.shape[2]
    gaps = {
        name: [aligned_gap(steps, test_loss[:, k, s], loss0) for s in range(n_seed)]
        for k, name in enumerate(SCHEDULES)
    }
    ta = np.array(
        [[align_step(steps, test_loss[i, 0, s], loss0) for s in range(n_seed)] for i in
         range(gammas.size)]
    )  # fmt: skip
    slopes = []
    for s in range(n_seed):
        ok = np.isfinite(ta[:, s])
        slopes.append(
            float(np.polyfit(np.log10(gammas[ok]), np.log10(ta[ok, s]), 1)[0])
            if ok.sum() >= 2
            else math.nan
        )
    return {
        "gammas": [float(g) for g in gammas],
        "eta": {n: [float(e) for e in etas[:, k]] for k, n in enumerate(SCHEDULES)},
        "exponents": exponents(depth),
        "gap_decades": gaps,
        "align_step": [[None if not np.isfinite(v) else float(v) for v in row] for row in ta],
        "plateau_slope_per_seed": slopes,
        "plateau_slope_toy": toy_plateau_slope(gammas, depth) if gammas.size >= 2 else math.nan,
    }
