"""Bayesian (smoothly broken) power-law fits with numpyro's NUTS.

Work in decades: u = log10 x, v = log10 y. The smoothly broken power law is

    v = a + b1 (u − c) + (b2 − b1) Δ softplus((u − c) / Δ),

slope b1 for u ≪ c, slope b2 for u ≫ c, crossover x_c = 10^c (the γ crossover when x = γ),
and `a` the value of the low-x asymptote at the crossover (both asymptotes meet there).
Δ (decades) is the width of the break, fixed (default 0.2 decades). The single power law is
v = a + b u. Noise: Student-t with ν = 4 degrees of freedom (robust to a few outlying grid
points, the default) or Gaussian, with scale σ.

Priors (weakly informative, in decades): b1, b2, b ~ Normal(0, 5); c ~ Uniform(min u, max u)
(the crossover lies inside the data); a ~ Normal(mean v, 10 · (std v + 1)); σ ~ HalfNormal(std
v + 0.1). Results are posterior means and equal-tailed 90% intervals.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jaxtyping import Array, Float
from numpyro.infer import MCMC, NUTS

from ..errors import ConfigError

NOISES = ("student", "gaussian")


@dataclasses.dataclass(frozen=True)
class Estimate:
    """Posterior summary of one parameter: mean and the 90% equal-tailed interval.

    **Fields:**

    - `mean`: posterior mean.
    - `lo`, `hi`: the 5% and 95% posterior quantiles.
    """

    mean: float
    lo: float
    hi: float

    def contains(self, value: float) -> bool:
        return self.lo <= value <= self.hi

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "lo": self.lo, "hi": self.hi}


@dataclasses.dataclass(frozen=True)
class FitResult:
    """A fitted (broken) power law.

    `params` maps names (`a`, `b1`, `b2`, `log10_xc`, `sigma` for the broken law; `a`, `b`,
    `sigma` for the single one) to `Estimate`s; `samples` holds the posterior draws;
    `num_points` the finite points used; `kind` is `"broken"` or `"single"`.

    **Fields:**

    - `kind`: `"broken"` or `"single"`.
    - `params`: `{name: Estimate}` (names above, all in decades except `sigma`'s scale).
    - `samples`: `{name: (num_samples · num_chains,) array}` of posterior draws.
    - `num_points`: the finite positive `(x, y)` pairs the fit used.
    - `smoothness`: Δ of the broken law in decades (0.0 for the single law).
    """

    kind: str
    params: dict[str, Estimate]
    samples: dict[str, Array]
    num_points: int
    smoothness: float

    def __getitem__(self, name: str) -> Estimate:
        return self.params[name]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: `{name: {mean, lo, hi}, ..., "num_points": n}`."""
        out: dict[str, Any] = {k: v.to_dict() for k, v in self.params.items()}
        out["num_points"] = self.num_points
        if self.kind == "broken":
            xc = self.params["log10_xc"]
            out["xc"] = {"mean": 10**xc.mean, "lo": 10**xc.lo, "hi": 10**xc.hi}
        return out

    def band(self, x: Float[Array, " m"]) -> tuple[Array, Array, Array]:
        """Posterior median and 90% band of the fitted curve y(x) (noise-free) at points x."""
        u = jnp.log10(jnp.asarray(x, dtype=jnp.float32))
        s = self.samples
        if self.kind == "broken":
            v = jax.vmap(lambda a, b1, b2, c: _broken(u, a, b1, b2, c, self.smoothness))(
                s["a"], s["b1"], s["b2"], s["log10_xc"]
            )
        else:
            v = s["a"][:, None] + s["b"][:, None] * u
        q = jnp.quantile(v, jnp.array([0.5, 0.05, 0.95]), axis=0)
        return 10 ** q[0], 10 ** q[1], 10 ** q[2]


def _broken(u, a, b1, b2, c, width):
    z = u - c
    return a + b1 * z + (b2 - b1) * width * jax.nn.softplus(z / width)


def _finite_points(x, y, min_points: int, what: str) -> tuple[Array, Array]:
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ConfigError(
            f"x and y have {x.size} and {y.size} points: pass one y value per x value"
        )
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    n = int(keep.sum())
    if n < min_points:
        raise ConfigError(
            f"too few points to fit a slope ({n} finite positive points, {what} needs at least "
            f"{min_points}): widen the grid or report the slope as not measured"
        )
    return jnp.asarray(np.log10(x[keep])), jnp.asarray(np.log10(y[keep]))


def _likelihood(mean, v, noise, sigma_scale):
    sigma = numpyro.sample("sigma", dist.HalfNormal(sigma_scale))
    if noise == "student":
        numpyro.sample("obs", dist.StudentT(4.0, mean, sigma), obs=v)
    else:
        numpyro.sample("obs", dist.Normal(mean, sigma), obs=v)


def _run(model, seed, num_warmup, num_samples, num_chains, names) -> dict[str, Array]:
    mcmc = MCMC(
        NUTS(model, target_accept_prob=0.9),
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        progress_bar=False,
        chain_method="sequential",
    )
    mcmc.run(jax.random.key(seed))
    s = mcmc.get_samples()
    return {k: s[k] for k in names}


def _summarise(samples: dict[str, Array]) -> dict[str, Estimate]:
    out = {}
    for k, v in samples.items():
        lo, hi = jnp.quantile(v, jnp.array([0.05, 0.95]))
        out[k] = Estimate(float(jnp.mean(v)), float(lo), float(hi))
    return out


def _check(noise, num_samples, num_warmup):
    if noise not in NOISES:
        raise ConfigError(f"unknown noise model {noise!r}: use one of {', '.join(NOISES)}")
    if num_samples < 10 or num_warmup < 10:
        raise ConfigError("num_samples and num_warmup must be >= 10: pass a few hundred each")


def fit_broken_power_law(
    x: Float[Array, " n"],
    y: Float[Array, " n"],
    *,
    num_samples: int = 500,
    num_warmup: int = 500,
    num_chains: int = 1,
    smoothness: float = 0.2,
    noise: str = "student",
    seed: int = 0,
) -> FitResult:
    """Fit y ≈ smoothly broken power law of x by NUTS (see the module docstring for the model).

    **Arguments:**

    - `x`, `y`: positive values (e.g. γ and η*); non-finite or non-positive pairs are dropped.
    - `num_samples`, `num_warmup`, `num_chains`: NUTS settings.
    - `smoothness`: Δ, the width of the break in decades.
    - `noise`: `"student"` (ν = 4) or `"gaussian"`.
    - `seed`: PRNG seed.

    **Returns:**

    A `FitResult` with `b1`, `b2`, `log10_xc`, `a`, `sigma`.

    Raises `ConfigError("too few points to fit a slope ...")` with fewer than 5 usable points.
    """
    _check(noise, num_samples, num_warmup)
    if not smoothness > 0:
        raise ConfigError(f"smoothness must be > 0 decades, got {smoothness}: try 0.2")
    u, v = _finite_points(x, y, 5, "a broken power law")
    lo_u, hi_u = float(u.min()), float(u.max())
    if hi_u - lo_u <= 0:
        raise ConfigError("all x values are equal: a slope needs at least two distinct x values")
    scale_a = 10.0 * (float(jnp.std(v)) + 1.0)
    mean_v, sigma_scale = float(jnp.mean(v)), float(jnp.std(v)) + 0.1

    def model():
        b1 = numpyro.sample("b1", dist.Normal(0.0, 5.0))
        b2 = numpyro.sample("b2", dist.Normal(0.0, 5.0))
        c = numpyro.sample("log10_xc", dist.Uniform(lo_u, hi_u))
        a = numpyro.sample("a", dist.Normal(mean_v, scale_a))
        _likelihood(_broken(u, a, b1, b2, c, smoothness), v, noise, sigma_scale)

    names = ("a", "b1", "b2", "log10_xc", "sigma")
    s = _run(model, seed, num_warmup, num_samples, num_chains, names)
    return FitResult("broken", _summarise(s), s, int(u.size), float(smoothness))


def fit_power_law(
    x: Float[Array, " n"],
    y: Float[Array, " n"],
    *,
    num_samples: int = 500,
    num_warmup: int = 300,
    num_chains: int = 1,
    noise: str = "student",
    seed: int = 0,
) -> FitResult:
    """Fit log10 y = a + b log10 x by NUTS; returns `a`, `b`, `sigma` (mean and 90% interval).

    Priors as in the module docstring; the intercept is sampled at the mean of log10 x (which
    decorrelates `a` and `b` for NUTS) and reported at x = 1.

    **Arguments:**

    - `x`, `y`: positive values; non-finite or non-positive pairs are dropped.
    - `num_samples`, `num_warmup`, `num_chains`: NUTS settings (samples and warmup `>= 10`).
    - `noise`: `"student"` (ν = 4) or `"gaussian"`.
    - `seed`: PRNG seed.

    **Returns:**

    A `FitResult` of kind `"single"` with `a`, `b`, `sigma`.

    **Raises:** `ConfigError("too few points to fit a slope ...")` with fewer than 4 usable
    points, if all x are equal, or for an unknown `noise` or too few samples.
    """
    _check(noise, num_samples, num_warmup)
    u, v = _finite_points(x, y, 4, "a power law")
    if float(u.max() - u.min()) <= 0:
        raise ConfigError("all x values are equal: a slope needs at least two distinct x values")
    scale_a = 10.0 * (float(jnp.std(v)) + 1.0)
    mean_v, sigma_scale = float(jnp.mean(v)), float(jnp.std(v)) + 0.1
    u_mean = float(jnp.mean(u))

    def model():
        b = numpyro.sample("b", dist.Normal(0.0, 5.0))
        # centred intercept decorrelates a and b for NUTS; a is reported at u = 0
        a_mid = numpyro.sample("a_mid", dist.Normal(mean_v, scale_a))
        numpyro.deterministic("a", a_mid - b * u_mean)
        _likelihood(a_mid + b * (u - u_mean), v, noise, sigma_scale)

    s = _run(model, seed, num_warmup, num_samples, num_chains, ("a", "b", "sigma"))
    return FitResult("single", _summarise(s), s, int(u.size), 0.0)
