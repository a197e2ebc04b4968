"""Oracle tests for the plug-in information measures."""

import math
from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lazyrich.errors import ConfigError
from lazyrich.measures.information import (
    cmi,
    conditional_mutual_information,
    entropy,
    i_ly_given_f,
    joint_counts,
    mi,
    mu,
    mutual_information,
)


def _brute_cmi(x, y, z):
    """I(X;Y|Z) by dict counts and math.log2 (the textbook sum)."""
    n = len(x)
    cxyz = Counter(zip(x, y, z, strict=True))
    cxz = Counter(zip(x, z, strict=True))
    cyz = Counter(zip(y, z, strict=True))
    cz = Counter(z)
    return sum(
        (c / n) * math.log2(c * cz[k] / (cxz[(i, k)] * cyz[(j, k)]))
        for (i, j, k), c in cxyz.items()
    )


def _brute_mi(x, y):
    return _brute_cmi(x, y, [0] * len(x))


def _brute_h(*vs):
    n = len(vs[0])
    return -sum((c / n) * math.log2(c / n) for c in Counter(zip(*vs, strict=True)).values())


def _random_labels(seed, n, k, skew=True):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    # correlated F and L: noisy copies of y
    f = np.where(rng.random(n) < 0.7, y, rng.integers(0, k, n))
    lin = np.where(rng.random(n) < 0.6, y, rng.integers(0, k, n))
    if skew:
        f = np.where(rng.random(n) < 0.2, lin, f)
    return f, lin, y


def test_joint_counts_matches_histogram():
    f, lin, y = _random_labels(0, 500, 3)
    c = joint_counts(jnp.asarray(f), jnp.asarray(lin), jnp.asarray(y), num_values=(3, 3, 3))
    ref, _ = np.histogramdd(np.stack([f, lin, y], 1), bins=(3, 3, 3), range=[(0, 3)] * 3)
    np.testing.assert_array_equal(np.asarray(c), ref.astype(int))
    # jit with static num_values; uneven sizes per variable
    jc = jax.jit(lambda a, b: joint_counts(a, b, num_values=(3, 4)))
    c2 = jc(jnp.asarray(f), jnp.asarray(y))
    assert c2.shape == (3, 4) and int(c2.sum()) == 500 and int(c2[:, 3].sum()) == 0


def test_three_identities_float64(x64):
    for seed, k in [(1, 2), (2, 3), (3, 5)]:
        f, lin, y = (jnp.asarray(v) for v in _random_labels(seed, 3000, k))
        m = float(mu(f, lin, y))
        # 1. symmetry: I(F;Y) − I(F;Y|L) = I(L;Y) − I(L;Y|F) = I(F;L) − I(F;L|Y)
        m_l = float(mi(lin, y) - i_ly_given_f(lin, y, f))
        m_y = float(mi(f, lin) - cmi(f, lin, y))
        # 2. co-information from entropies
        h = {
            s: float(entropy(joint_counts(*v, num_values=k)))
            for s, v in {
                "f": (f,),
                "l": (lin,),
                "y": (y,),
                "fl": (f, lin),
                "fy": (f, y),
                "ly": (lin, y),
                "fly": (f, lin, y),
            }.items()
        }
        co = h["f"] + h["l"] + h["y"] - h["fl"] - h["fy"] - h["ly"] + h["fly"]
        assert abs(m - m_l) < 1e-12 and abs(m - m_y) < 1e-12 and abs(m - co) < 1e-12
        # 3. bounded by both mutual informations (with a non-trivial μ > 0)
        assert 0.01 < m <= min(float(mi(f, y)), float(mi(lin, y))) + 1e-12


def test_xor_gives_minus_one_bit(x64):
    # all four (y, l) combinations equally often: plug-in values are exact
    y = jnp.array([0, 0, 1, 1] * 250)
    lin = jnp.array([0, 1, 0, 1] * 250)
    f = jnp.bitwise_xor(y, lin)
    assert abs(float(mi(f, y))) < 1e-12
    assert abs(float(cmi(f, y, lin)) - 1.0) < 1e-12
    assert abs(float(mu(f, lin, y)) + 1.0) < 1e-12
    assert abs(float(i_ly_given_f(lin, y, f)) - 1.0) < 1e-12


def test_independent_variables_plugin_bias(x64):
    """E[Î] for independent X, Y ≈ (|X|−1)(|Y|−1)/(2 n ln 2); averaged over 400 trials."""
    n, kx, ky, trials = 2000, 4, 3, 400
    keys = jax.random.split(jax.random.key(0), trials)

    def one(key):
        k1, k2 = jax.random.split(key)
        x = jax.random.randint(k1, (n,), 0, kx)
        y = jax.random.randint(k2, (n,), 0, ky)
        return mutual_information(joint_counts(x, y, num_values=(kx, ky)))

    est = jax.vmap(one)(keys)
    bias = (kx - 1) * (ky - 1) / (2 * n * math.log(2))
    mean = float(est.mean())
    # relative standard error of the mean ≈ sqrt(2/6)/sqrt(400) ≈ 3%: 10% tolerance
    assert abs(mean - bias) < 0.1 * bias, (mean, bias)
    assert float(est.min()) >= -1e-12


def test_matches_brute_force_random_tables(x64):
    for seed in range(4):
        rng = np.random.default_rng(seed)
        k = int(rng.integers(2, 6))
        n = int(rng.integers(20, 400))
        x, y, z = (rng.integers(0, k, n) for _ in range(3))
        y = np.where(rng.random(n) < 0.5, x, y)
        xs, ys, zs = (list(map(int, v)) for v in (x, y, z))
        c = joint_counts(jnp.asarray(x), jnp.asarray(y), jnp.asarray(z), num_values=k)
        assert abs(float(conditional_mutual_information(c)) - _brute_cmi(xs, ys, zs)) < 1e-12
        assert abs(float(mutual_information(c.sum(2))) - _brute_mi(xs, ys)) < 1e-12
        assert abs(float(entropy(c)) - _brute_h(xs, ys, zs)) < 1e-12
        assert (
            abs(float(cmi(jnp.asarray(x), jnp.asarray(y), jnp.asarray(z))) - _brute_cmi(xs, ys, zs))
            < 1e-12
        )


def test_mu_is_jittable_with_static_num_values():
    f, lin, y = (jnp.asarray(v) for v in _random_labels(5, 400, 2))
    jitted = jax.jit(lambda a, b, c: mu(a, b, c, num_values=2))
    assert abs(float(jitted(f, lin, y)) - float(mu(f, lin, y))) < 1e-5


def test_bad_inputs_raise_config_error():
    y = jnp.array([0, 1, 1, 0])
    with pytest.raises(ConfigError, match="different lengths"):
        mu(jnp.array([0, 1, 1]), y, y)
    with pytest.raises(ConfigError, match="integers"):
        mi(jnp.array([0.0, 1.0, 0.5, 1.0]), y)
    with pytest.raises(ConfigError, match="1-D"):
        mi(jnp.zeros((4, 2), dtype=int), y)
    with pytest.raises(ConfigError, match=">= 0"):
        mi(jnp.array([0, -1, 1, 0]), y)
    with pytest.raises(ConfigError, match="num_values"):
        mi(jnp.array([0, 3, 1, 0]), y, num_values=2)
    with pytest.raises(ConfigError, match="no samples"):
        mi(jnp.array([], dtype=int), jnp.array([], dtype=int))
