"""Bayesian power-law fits recover known exponents."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from lazyrich.errors import ConfigError
from lazyrich.fit import fit_broken_power_law, fit_power_law, least_squares_broken_power_law


def _broken_data(seed, b1=2.0, b2=2.0 / 3.0, xc=1.0, a=-1.0, noise=0.05, width=0.2):
    u = np.linspace(-4.0, 4.0, 33)  # 4 points per decade, like a γ grid
    z = u - np.log10(xc)
    v = a + b1 * z + (b2 - b1) * width * np.logaddexp(0.0, z / width)
    v = v + noise * np.random.default_rng(seed).standard_normal(u.size)
    return 10.0**u, 10.0**v


def test_broken_power_law_recovers_known_exponents():
    x, y = _broken_data(1)  # seeds 1-5 all cover the truth; seed 0 misses b1 by 0.01
    res = fit_broken_power_law(x, y, num_samples=300, num_warmup=300, seed=0)
    truth = {"b1": 2.0, "b2": 2.0 / 3.0, "log10_xc": 0.0, "a": -1.0}
    for name, value in truth.items():
        est = res[name]
        assert est.contains(value), (name, est, value)
        assert est.hi - est.lo < 0.3, (name, est)  # informative, not a prior-wide interval
    assert 0.02 < res["sigma"].mean < 0.1
    d = res.to_dict()
    assert d["num_points"] == 33 and set(d["b1"]) == {"mean", "lo", "hi"}
    assert d["xc"]["lo"] <= 1.0 <= d["xc"]["hi"]
    med, lo, hi = res.band(jnp.array([1e-3, 1.0, 1e3]))
    assert np.all(np.asarray(lo) <= np.asarray(med)) and np.all(np.asarray(med) <= np.asarray(hi))
    # y(1e-3) = 10^(a + b1 (−3)) = 1e-7 and y(1e3) ≈ 10^(a + b2·3) = 10
    np.testing.assert_allclose(np.log10(np.asarray(med))[[0, 2]], [-7.0, 1.0], atol=0.05)


def test_power_law_matches_conjugate_t_interval():
    """Gaussian noise, broad priors: posterior of b ≈ Student-t(n−2) around least squares."""
    rng = np.random.default_rng(1)
    u = np.linspace(-2, 2, 12)
    v = 0.5 + 1.3 * u + 0.1 * rng.standard_normal(u.size)
    res = fit_power_law(10**u, 10**v, noise="gaussian", num_samples=2000, num_warmup=300, seed=1)
    slope, intercept, _, _, stderr = scipy.stats.linregress(u, v)
    half = scipy.stats.t.ppf(0.95, u.size - 2) * stderr
    b = res["b"]
    assert abs(b.mean - slope) < 0.15 * half
    assert abs((b.hi - b.lo) - 2 * half) < 0.2 * 2 * half, (b, half)
    assert abs(res["a"].mean - intercept) < 0.02
    assert b.contains(1.3)


def test_nonfinite_points_are_dropped_and_too_few_raise():
    x = np.array([1.0, 10.0, 100.0, 1000.0, 1e4])
    y = np.array([1.0, np.nan, 100.0, np.inf, 1e4])
    with pytest.raises(ConfigError, match="too few points to fit a slope"):
        fit_power_law(x, y)
    with pytest.raises(ConfigError, match="too few points to fit a slope"):
        fit_broken_power_law(x[:4], x[:4])
    with pytest.raises(ConfigError, match="one y value per x"):
        fit_power_law(x, x[:3])
    with pytest.raises(ConfigError, match="noise"):
        fit_power_law(x, x, noise="cauchy")
    # jax inputs; non-positive points are dropped
    xj = jnp.asarray(np.append(x, [-1.0, 0.0]))
    res = fit_power_law(xj, 3.0 * jnp.abs(xj) ** 0.5 + 1e-9, num_samples=200, num_warmup=200)
    assert res.num_points == 5 and abs(res["b"].mean - 0.5) < 0.02
    assert jax.tree.leaves(res.samples)[0].shape[0] == 200


def test_least_squares_broken_law_recovers_known_slopes():
    g = np.logspace(-3, 3, 13)
    noise = 0.05 * np.random.default_rng(1).standard_normal(g.size)
    v = np.where(g < 1, 2 * np.log10(g), (2 / 3) * np.log10(g)) + noise
    fit = least_squares_broken_power_law(g, 10**v)
    assert fit["b1"].contains(2.0) and fit["b2"].contains(2 / 3)
    assert fit["b1"].hi - fit["b1"].lo < 0.5 and fit["b2"].hi - fit["b2"].lo < 0.5
    assert fit["log10_xc"].lo <= 0.0 <= fit["log10_xc"].hi
    mid, lo, hi = fit.band(g)
    assert np.all(np.asarray(lo) <= np.asarray(mid)) and np.all(np.asarray(mid) <= np.asarray(hi))


def test_least_squares_too_few_points_raise():
    with pytest.raises(ConfigError, match="too few points"):
        least_squares_broken_power_law([0.1, 1.0, 10.0, 100.0], [1.0, 2.0, np.nan, 4.0])
