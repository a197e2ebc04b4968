"""Oracle tests for the plug-in information measures."""

import math
from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lazyrich.errors import ConfigError
from lazyrich.measures._information import (
    cmi,
    conditional_mutual_information,
    entropy,
    i_ly_given_f,
    joint_counts,
    mi,
    mu,
    mutual_information,
)
from lazyrich.measures._linear import fit_logistic, logistic_loss


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


# ------------------------------------------------- the best linear classifier L (measures.linear)


def _gaussians(key, n, d, delta, k=2):
    """k classes with means delta * e_c (identity covariance)."""
    k1, k2 = jax.random.split(key)
    y = jax.random.randint(k1, (n,), 0, k)
    means = delta * jnp.eye(k, d)
    return means[y] + jax.random.normal(k2, (n, d)), y


def test_logistic_matches_scipy_minimum(x64):
    import scipy.optimize

    x, y = _gaussians(jax.random.key(0), 2000, 6, 1.5, k=3)  # same shapes: one compile
    l2 = 1e-2
    params, predict = fit_logistic(x, y, num_classes=3, l2=l2, standardize=False)
    xn, yn = np.asarray(x), np.asarray(y)

    def objective(theta):
        w, b = theta[:18].reshape(6, 3), theta[18:]
        z = xn @ w + b
        zmax = z.max(1, keepdims=True)
        lse = zmax[:, 0] + np.log(np.exp(z - zmax).sum(1))
        p = np.exp(z - lse[:, None])
        nll = np.mean(lse - z[np.arange(len(yn)), yn])
        g = (p - np.eye(3)[yn]) / len(yn)
        grad = np.concatenate([(xn.T @ g + l2 * w).ravel(), g.sum(0)])
        return nll + 0.5 * l2 * np.sum(w**2), grad

    ref = scipy.optimize.minimize(
        objective, np.zeros(21), jac=True, method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 0}
    )
    assert abs(float(params["loss"]) - ref.fun) < 1e-9, (float(params["loss"]), ref.fun)
    assert float(params["grad_norm"]) < 1e-6
    np.testing.assert_allclose(np.asarray(params["w"]), ref.x[:18].reshape(6, 3), atol=1e-4)
    assert float(logistic_loss(params, x, y, l2)) == pytest.approx(ref.fun, abs=1e-9)
    assert predict(x).shape == (2000,) and predict(x).dtype == jnp.int32


def test_logistic_reaches_bayes_accuracy(x64):
    # three unit-variance Gaussians at delta * e_c: the Bayes rule is argmax_c x_c
    delta = 1.5
    x, y = _gaussians(jax.random.key(1), 2000, 6, delta, k=3)
    xt, yt = _gaussians(jax.random.key(2), 20000, 6, delta, k=3)
    _, predict = fit_logistic(x * 10.0 + 3.0, y, num_classes=3)  # standardisation undoes this
    acc = float(jnp.mean(predict(xt * 10.0 + 3.0) == yt))
    bayes = float(jnp.mean(jnp.argmax(xt[:, :3], -1) == yt))
    assert bayes - 0.015 < acc < bayes + 0.005, (acc, bayes)
    chance_level = 1 / 3
    assert bayes > chance_level + 0.3


def test_logistic_bad_inputs():
    x = jnp.zeros((4, 2))
    with pytest.raises(ConfigError, match="samples"):
        fit_logistic(x, jnp.array([0, 1, 0]), num_classes=2)
    with pytest.raises(ConfigError, match="integer"):
        fit_logistic(x, jnp.array([0.0, 1.0, 0.0, 1.0]), num_classes=2)
    with pytest.raises(ConfigError, match="num_classes"):
        fit_logistic(x, jnp.array([0, 1, 2, 1]), num_classes=2)


# ------------------------------------------------- Miller–Madow and the permutation test


def test_miller_madow_oracle():
    from lazyrich.measures import conditional_mutual_information_mm, entropy_mm

    counts = jnp.array([[5, 0], [3, 2]])
    n, m = 10, 3
    p = np.array([5, 3, 2]) / n
    plug = -np.sum(p * np.log2(p))
    assert float(entropy_mm(counts)) == pytest.approx(plug + (m - 1) / (2 * n * math.log(2)))
    # independent binary X, Y given binary Z: truth 0; plug-in biased by ≈ 2/(2 n ln2) bits,
    # the corrected estimate unbiased to first order (mean over many draws)
    n = 400
    keys = jax.random.split(jax.random.key(0), 2000)

    def draw(k):
        kx, ky, kz = jax.random.split(k, 3)
        z = jax.random.bernoulli(kz, 0.5, (n,)).astype(jnp.int32)
        x = jax.random.bernoulli(kx, 0.3 + 0.4 * z).astype(jnp.int32)
        y = jax.random.bernoulli(ky, 0.6 - 0.2 * z).astype(jnp.int32)
        c = joint_counts(x, y, z, num_values=2)
        return conditional_mutual_information(c), conditional_mutual_information_mm(c)

    plug, corrected = (np.asarray(a) for a in jax.vmap(draw)(keys))
    bias = 2 / (2 * n * math.log(2))
    assert plug.mean() == pytest.approx(bias, rel=0.15)
    assert abs(corrected.mean()) < 0.1 * bias


def test_permutation_test_oracle():
    from lazyrich.measures import cmi_permutation_test

    key = jax.random.key(1)
    n = 600
    kz, kx, ky, kt = jax.random.split(key, 4)
    z = jax.random.bernoulli(kz, 0.5, (n,)).astype(jnp.int32)
    y = (z ^ jax.random.bernoulli(ky, 0.2, (n,))).astype(jnp.int32)
    x_null = (z ^ jax.random.bernoulli(kx, 0.3, (n,))).astype(jnp.int32)  # X ⊥ Y | Z
    x_dep = (y ^ jax.random.bernoulli(kx, 0.1, (n,))).astype(jnp.int32)  # X carries Y beyond Z
    out = cmi_permutation_test(jnp.stack([x_null, x_dep]), y, z, num_values=2,
                               num_permutations=199, key=kt)  # fmt: skip
    assert float(out["p_value"][1]) == pytest.approx(1 / 200)
    assert float(out["p_value"][0]) > 0.01
    # the statistic is the corrected CMI; under the null its mean is ≈ 0 (bias removed)
    c = joint_counts(x_dep, y, z, num_values=2)
    from lazyrich.measures import conditional_mutual_information_mm

    assert float(out["statistic"][1]) == pytest.approx(float(conditional_mutual_information_mm(c)))
    assert abs(float(out["null_mean"][0])) < 0.003
    # under the null the p-value is uniform: rejections at 10% about 10% of the time
    ps = [
        float(cmi_permutation_test(
            (z ^ jax.random.bernoulli(jax.random.key(100 + i), 0.3, (n,))).astype(jnp.int32),
            y, z, num_values=2, num_permutations=49, key=jax.random.key(i))["p_value"])
        for i in range(60)
    ]  # fmt: skip
    assert 1 <= sum(p <= 0.1 for p in ps) <= 14
    # the shuffle keeps the strata's contents
    from lazyrich.measures._permutation import _shuffle_within

    xs = _shuffle_within(x_dep, z, key)
    for v in (0, 1):
        assert int(xs[z == v].sum()) == int(x_dep[z == v].sum())
    with pytest.raises(ConfigError, match="num_permutations must be an int >= 1"):
        cmi_permutation_test(x_dep, y, z, num_values=2, num_permutations=0, key=key)


def test_null_tables_follow_the_law_of_shuffles_brute_force():
    """Every permutation of X within the strata of Z, enumerated: the distribution of the count
    table they give equals the frequencies of `null_tables` (3 values, two strata of 6 and 5)."""
    import itertools
    from collections import Counter

    from lazyrich.measures._permutation import null_tables

    x = np.array([0, 1, 2, 2, 1, 0, 2, 0, 1, 1, 2])
    y = np.array([2, 1, 0, 0, 1, 2, 1, 1, 0, 2, 0])
    z = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    sizes = (3, 3, 2)

    def table(xx):
        c = np.zeros(sizes, dtype=np.int64)
        np.add.at(c, (xx, y, z), 1)
        return c

    exact: Counter = Counter()
    s0, s1 = np.nonzero(z == 0)[0], np.nonzero(z == 1)[0]
    for p0 in itertools.permutations(x[s0]):
        for p1 in itertools.permutations(x[s1]):
            xx = x.copy()
            xx[s0], xx[s1] = p0, p1
            exact[table(xx).tobytes()] += 1
    total = sum(exact.values())
    draws = null_tables(table(x), 40_000, np.random.default_rng(0))
    assert draws.shape == (40_000, 3, 3, 2)
    np.testing.assert_array_equal(draws.sum(2), np.broadcast_to(table(x).sum(1), (40_000, 3, 2)))
    np.testing.assert_array_equal(draws.sum(1), np.broadcast_to(table(x).sum(0), (40_000, 3, 2)))
    seen = Counter(t.tobytes() for t in draws)
    assert set(seen) <= set(exact)
    worst = max(abs(seen[k] / 40_000 - v / total) for k, v in exact.items())
    assert worst < 0.01, worst  # Monte-Carlo error of 40,000 draws: sd <= 0.0025


def test_permutation_test_tables_agree_with_shuffles():
    from lazyrich.measures import cmi_permutation_test

    n = 800
    kz, ky, kx, kt = jax.random.split(jax.random.key(5), 4)
    z = jax.random.bernoulli(kz, 0.5, (n,)).astype(jnp.int32)
    y = (z ^ jax.random.bernoulli(ky, 0.2, (n,))).astype(jnp.int32)
    # weak dependence on Y beyond Z: p-values spread over (0, 1) rather than at the edges
    rows = jnp.stack([(jnp.where(jax.random.bernoulli(jax.random.fold_in(kx, i), q, (n,)), y, z)
                       ^ jax.random.bernoulli(jax.random.fold_in(kx, 99 + i), 0.3, (n,)))
                      for i, q in enumerate((0.0, 0.05, 0.1))]).astype(jnp.int32)  # fmt: skip
    a = cmi_permutation_test(rows, y, z, num_values=2, num_permutations=1999, key=kt)
    b = cmi_permutation_test(rows, y, z, num_values=2, num_permutations=1999, key=kt,
                             method="shuffle")  # fmt: skip
    np.testing.assert_allclose(np.asarray(a["statistic"]), np.asarray(b["statistic"]), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(a["p_value"]), np.asarray(b["p_value"]), atol=0.04)
    np.testing.assert_allclose(np.asarray(a["null_mean"]), np.asarray(b["null_mean"]), atol=3e-4)
    with pytest.raises(ConfigError, match="method must be"):
        cmi_permutation_test(rows[0], y, z, num_values=2, num_permutations=9, key=kt,
                             method="exact")  # fmt: skip
