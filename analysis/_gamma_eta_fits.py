"""Broken-power-law fits of the γ–η study: Bayesian (NUTS) or a cheap least-squares twin.

`nuts` is `lazyrich.fit.fit_broken_power_law` (posterior means and 90% intervals). Each NUTS
fit costs seconds of compilation on a CPU, too much for the quick preset, which uses
`least-squares`: the same smoothly broken law (`v = a + b1 z + (b2 − b1) Δ softplus(z/Δ)`,
z = log10 x − c, Δ = 0.2 decades) fitted by linear least squares at each crossover c of a
201-point grid over the data range. With flat priors and σ integrated out, c has the
profile posterior ∝ SSE(c)^(−(n−3)/2); 500 draws take c from it and then (a, b1, b2) from the
Gaussian linear-model posterior at that c (covariance SSE/(n − 4) · (XᵀX)⁻¹). Means and 90%
intervals are over the draws. Either way the result is a `lazyrich.fit.FitResult` (`band` too).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lazyrich.errors import ConfigError
from lazyrich.fit import Estimate, FitResult, fit_broken_power_law

METHODS = ("nuts", "least-squares")
WIDTH = 0.2


def _design(u, c):
    z = u - c
    sp = WIDTH * jax.nn.softplus(z / WIDTH)
    return jnp.stack([jnp.ones_like(u), z - sp, sp], -1)


@functools.partial(jax.jit, static_argnums=3)
def _draws(u, v, key, draws: int) -> dict[str, jax.Array]:
    """Posterior draws of (a, b1, b2, log10_xc, sigma); one compiled program per data size."""
    n = u.size
    cs = jnp.linspace(u.min(), u.max(), 201)

    def solve(c):
        X = _design(u, c)
        beta = jnp.linalg.pinv(X) @ v
        return beta, jnp.sum((X @ beta - v) ** 2)

    betas, sse = jax.vmap(solve)(cs)
    sse = jnp.maximum(sse, 1e-30)
    # profile posterior of c (flat priors, σ integrated out): ∝ SSE(c)^(−(n − 3)/2)
    logw = -0.5 * (n - 3) * jnp.log(sse / sse.min())
    kc, kb = jax.random.split(key)
    idx = jax.random.categorical(kc, logw, shape=(draws,))

    def chol(c, s):
        X = _design(u, c)
        m = s / max(n - 4, 1) * jnp.linalg.pinv(X.T @ X)
        return jnp.linalg.cholesky(0.5 * (m + m.T) + 1e-12 * jnp.eye(3))

    z = jax.random.normal(kb, (draws, 3))
    s = betas[idx] + jnp.einsum("nij,nj->ni", jax.vmap(chol)(cs, sse)[idx], z)
    return {
        "a": s[:, 0],
        "b1": s[:, 1],
        "b2": s[:, 2],
        "log10_xc": cs[idx],
        "sigma": jnp.sqrt(sse[idx] / max(n - 4, 1)),
    }


def least_squares_broken_power_law(x, y, *, draws: int = 500, seed: int = 0) -> FitResult:
    """Least-squares smoothly broken power law (module docstring); FitResult like NUTS's."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    n = int(keep.sum())
    if n < 5:
        raise ConfigError(
            f"too few points to fit a slope ({n} finite positive points, a broken power law "
            "needs at least 5): widen the grid or report the slope as not measured"
        )
    u, v = jnp.asarray(np.log10(x[keep])), jnp.asarray(np.log10(y[keep]))
    if float(u.max() - u.min()) <= 0:
        raise ConfigError("all x values are equal: a slope needs at least two distinct x values")
    samples = _draws(u, v, jax.random.key(seed), draws)
    params = {}
    for k, val in samples.items():
        val = np.asarray(val)
        lo, hi = np.quantile(val, [0.05, 0.95])
        params[k] = Estimate(float(val.mean()), float(lo), float(hi))
    return FitResult("broken", params, samples, n, WIDTH)


def broken_fit(x, y, *, method: str, samples: int) -> tuple[dict[str, Any], FitResult | None]:
    """The fit as a JSON-ready dict, or `{"not_measured": reason}` when it cannot be made."""
    try:
        if method == "nuts":
            fit = fit_broken_power_law(x, y, num_samples=samples, num_warmup=samples)
        else:
            fit = least_squares_broken_power_law(x, y)
    except ConfigError as err:
        return {"not_measured": str(err)}, None
    return {**fit.to_dict(), "method": method}, fit
