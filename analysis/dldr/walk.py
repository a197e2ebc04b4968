"""The random-walk reference for "the trajectory lies in a low-dimensional space".

PCA of any path in a high-dimensional space concentrates its variance in the first components:
a random walk of `t` samples puts about 6/π² ≈ 0.61 of its variance in the first one
(Antognini & Sohl-Dickstein 2018, arXiv 1806.08805). So the fraction a trajectory's top `d`
directions explain means little on its own; it is compared here with that of a random walk.

In the limit of many dimensions (D ≫ t, here D ≈ 10⁵, t ≈ 40) independent random increments
are orthogonal, so a walk with step lengths `s_1 … s_{t−1}` (positions `x_0 = 0`,
`x_k = x_{k−1} + s_k ξ_k`, `ξ_k` orthonormal) has the Gram matrix `G_ik = Σ_{j ≤ min(i,k)} s_j²`
exactly, whatever the directions: its PCA spectrum is a deterministic function of the step
lengths. `walk_explained_variance` computes it from the eigenvalues of the centred Gram matrix
(the same construction as `lazyrich.optim.dldr_subspace`). With equal steps it is the isotropic
random walk; with a trajectory's own step lengths it is the matched control (a walk that moves
as far, as fast, but in independent directions).
"""

from __future__ import annotations

import numpy as np

from lazyrich.errors import require


def walk_explained_variance(step_norms, d: int) -> float:
    """Fraction of a high-dimensional random walk's variance in its top `d` principal directions.

    **Arguments:**

    - `step_norms`: the walk's `t − 1` step lengths `‖x_k − x_{k−1}‖` (≥ 0, not all zero); `t`
      samples including the start.
    - `d`: number of directions, `1 <= d <= t − 1`.

    **Returns:** `Σ_{i ≤ d} λ_i / Σ λ` of the centred Gram matrix of the walk's `t` positions
    (orthogonal increments: the limit of many dimensions), as a Python float.
    """
    s2 = np.asarray(step_norms, np.float64) ** 2
    require(s2.ndim == 1 and s2.size >= 1, f"step_norms must be a 1-d array, got {s2.shape}")
    require(bool(np.all(np.isfinite(s2))), "step_norms must be finite")
    require(float(s2.sum()) > 0, "step_norms are all zero: the walk does not move")
    t = s2.size + 1
    require(1 <= d <= t - 1, f"d={d} must be in 1..{t - 1} (steps)")
    cum = np.concatenate([[0.0], np.cumsum(s2)])  # Σ_{j ≤ k} s_j², k = 0..t−1
    g = cum[np.minimum.outer(np.arange(t), np.arange(t))]
    h = np.eye(t) - 1.0 / t
    lam = np.clip(np.linalg.eigvalsh(h @ g @ h)[::-1], 0.0, None)
    return float(lam[:d].sum() / lam.sum())


def isotropic_walk_explained_variance(t: int, d: int) -> float:
    """`walk_explained_variance` for `t` samples of a walk with equal steps.

    **Arguments:**

    - `t`: samples (the start and `t − 1` steps), `t >= 2`.
    - `d`: number of directions, `1 <= d <= t − 1`.

    **Returns:** the fraction of variance in the top `d` directions.
    """
    require(t >= 2, f"a walk needs at least 2 samples, got t={t}")
    return walk_explained_variance(np.ones(t - 1), d)


def step_norms(samples) -> np.ndarray:
    """The step lengths of sampled trajectories: `‖w_k − w_{k−1}‖` along the sample axis.

    **Arguments:**

    - `samples`: `(..., t, D)` sampled parameter vectors.

    **Returns:** `(..., t − 1)` float64 norms.
    """
    x = np.asarray(samples, np.float64)
    return np.linalg.norm(np.diff(x, axis=-2), axis=-1)
