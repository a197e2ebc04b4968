"""Empirical NTK (against a dense Jacobian and neural-tangents), infinite-width twins, measures."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lazyrich.errors import ConfigError
from lazyrich.kernels import (
    empirical_ntk,
    infinite_kernels,
    kernel_alignment,
    kernel_distance,
    linear_cka,
    linear_cka_debiased,
    ntk_probe_similarity,
    ntk_vector_product,
    stax_twin,
)
from lazyrich.kernels._nt_compat import nt
from lazyrich.models import CNN, MLP, functional, scaled


def dense_ntk(apply, params, x1, x2, trace):
    """Oracle: flattened `jax.jacrev` Jacobians, `J1 J2ᵀ`, traced as a mean over the logits."""

    def jac(x):
        j = jax.jit(jax.jacrev(lambda p: apply(p, x)))(params)
        n, k = apply(params, x).shape
        return jnp.concatenate([leaf.reshape(n, k, -1) for leaf in jax.tree.leaves(j)], axis=-1)

    j1, j2 = jac(x1), jac(x2)
    full = jnp.einsum("icp,jdp->ijcd", j1, j2)
    return jnp.trace(full, axis1=2, axis2=3) / full.shape[2] if trace else full


def coupling_model(key, d=6, h=7, k=3):
    """A tiny reversible coupling network (RevMLP-like): two additive coupling blocks."""
    ks = jax.random.split(key, 6)
    c = jax.random.normal(ks[0], (d // 2, h)) / h**0.5  # fixed
    u = jnp.linalg.qr(jax.random.normal(ks[1], (d, k)))[0]  # fixed readout
    params = {
        "wf": jax.random.normal(ks[2], (h, d // 2)) * 0.3,
        "bf": jax.random.normal(ks[3], (d // 2,)) * 0.1,
        "wg": jax.random.normal(ks[4], (h, d // 2)) * 0.3,
        "bg": jax.random.normal(ks[5], (d // 2,)) * 0.1,
    }

    def apply(p, x):
        x1, x2 = x[:, : d // 2], x[:, d // 2 :]
        y1 = x1 + jax.nn.relu(x2 @ c) @ p["wf"] + p["bf"]
        y2 = x2 + jax.nn.relu(y1 @ c) @ p["wg"] + p["bg"]
        y = jnp.concatenate([y1, y2], axis=1)
        return jnp.tanh(y) @ u

    return params, apply, d


def make_model(kind):
    key = jax.random.PRNGKey(0)
    if kind == "mlp":
        m = MLP(5, 9, 2, 3, parameterization="ntk", use_bias=True, key=key)
        return *functional(m), (5,)
    if kind == "cnn":
        m = CNN((4, 2), 2, 3, parameterization="mup", use_bias=True, key=key)
        return *functional(m), (4, 2)
    params, apply, d = coupling_model(key)
    return params, apply, (d,)


@pytest.mark.parametrize("kind", ["mlp", "cnn", "coupling"])
@pytest.mark.parametrize("trace", [True, False])
def test_empirical_ntk_matches_dense_and_nt(x64, kind, trace):
    params, apply, shape = make_model(kind)
    params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
    x1 = jax.random.normal(jax.random.PRNGKey(1), (5, *shape))
    x2 = jax.random.normal(jax.random.PRNGKey(2), (4, *shape))
    axes = (-1,) if trace else ()
    ref = dense_ntk(apply, params, x1, x2, trace)
    ref_sym = dense_ntk(apply, params, x1, x1, trace)
    k_nt = nt.empirical_ntk_fn(apply, trace_axes=axes)(x1, x2, params)
    assert rel_err(k_nt, ref) < 1e-10
    for method, chunk in [("jacobian", None), ("ntvp", None), ("ntvp", 2)]:
        k = empirical_ntk(apply, params, x1, x2, trace_axes=axes, method=method, chunk_size=chunk)
        chex.assert_shape(k, (5, 4) if trace else (5, 4, 3, 3))
        assert rel_err(k, ref) < 1e-10, (method, chunk)
    for method, chunk in [("auto", None), ("jacobian", 2)]:
        ks = empirical_ntk(apply, params, x1, trace_axes=axes, method=method, chunk_size=chunk)
        assert rel_err(ks, ref_sym) < 1e-10, (method, chunk)


def rel_err(a, b):
    return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


def test_multi_axis_outputs_match_nt(x64):
    """Outputs (n, 2, 3): partial traces follow neural-tangents' axis conventions."""
    w = jax.random.normal(jax.random.PRNGKey(0), (4, 6), jnp.float64)

    def apply(p, x):
        return jnp.tanh(x @ p).reshape(x.shape[0], 2, 3)

    x = jax.random.normal(jax.random.PRNGKey(1), (5, 4))
    for axes, chunk in [((), None), ((-1,), 2), ((1,), None), ((1, 2), 2)]:
        ref = nt.empirical_ntk_fn(apply, trace_axes=axes)(x, None, w)
        got = empirical_ntk(apply, w, x, trace_axes=axes, chunk_size=chunk)
        chex.assert_trees_all_close(got, ref, rtol=1e-12, atol=1e-13)


def test_chunked_equals_unchunked_float32():
    params, apply, shape = make_model("mlp")
    x = jax.random.normal(jax.random.PRNGKey(3), (11, *shape))
    full = empirical_ntk(apply, params, x)
    for c in (1, 3, 4, 11, 50):
        chex.assert_trees_all_close(empirical_ntk(apply, params, x, chunk_size=c), full, rtol=1e-5)


@pytest.mark.parametrize("kind", ["mlp", "coupling"])
def test_ntk_vector_product(x64, kind):
    params, apply, shape = make_model(kind)
    params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
    x = jax.random.normal(jax.random.PRNGKey(4), (6, *shape))
    v = jax.random.normal(jax.random.PRNGKey(5), (6, 3))
    full = dense_ntk(apply, params, x, x, trace=False)
    expected = jnp.einsum("ijcd,jd->ic", full, v)
    chex.assert_trees_all_close(ntk_vector_product(apply, params, x, v), expected, rtol=1e-11)


def test_bad_inputs_raise_one_line_config_errors():
    params, apply, shape = make_model("mlp")
    x = jnp.ones((3, *shape))
    cases = [
        dict(x2=jnp.ones((3, 4))),
        dict(chunk_size=0),
        dict(chunk_size=1.5),
        dict(trace_axes=(2,)),
        dict(trace_axes=(0,)),
        dict(trace_axes=(-3,)),
        dict(method="fast"),
    ]
    for kw in cases:
        x2 = kw.pop("x2", None)
        with pytest.raises(ConfigError) as err:
            empirical_ntk(apply, params, x, x2, **kw)
        assert "\n" not in str(err.value) and len(str(err.value)) > 20
    with pytest.raises(ConfigError, match="mismatched input shapes"):
        empirical_ntk(apply, params, x, jnp.ones((2, 7)))
    with pytest.raises(ConfigError, match="does not exist"):
        empirical_ntk(apply, params, x, trace_axes=(3,))
    with pytest.raises(ConfigError, match="chunk_size"):
        empirical_ntk(apply, params, x, chunk_size=-2)
    with pytest.raises(ConfigError, match="shaped like"):
        ntk_vector_product(apply, params, x, jnp.ones((3, 2)))
    with pytest.raises(ConfigError, match="mismatched input shapes"):
        infinite_kernels(MLP(5, 4, 1, key=jax.random.PRNGKey(0)), x, jnp.ones((2, 4)))


# ---------------------------------------------------------------- infinite-width twins


@pytest.mark.parametrize(
    "parameterization, kind, use_bias",
    [
        ("standard", "mlp", True),
        ("standard", "cnn", False),
        ("ntk", "mlp", False),
        ("ntk", "cnn", True),
        ("mup", "mlp", True),
        ("mup", "cnn", False),
    ],
)
def test_twin_is_the_same_network(x64, parameterization, kind, use_bias):
    """Same parameters → same outputs and same empirical NTK in neural-tangents' stax."""
    key = jax.random.PRNGKey(7)
    kw = dict(parameterization=parameterization, use_bias=use_bias, sigma_w=1.3, sigma_b=0.4)
    act = "erf" if kind == "mlp" else "tanh"
    if kind == "mlp":
        m = MLP(6, 5, 2, 2, activation=act, key=key, **kw)
        x = jax.random.normal(jax.random.PRNGKey(1), (4, 6))
    else:
        m = CNN((4, 1), 2, 2, activation=act, key=key, **kw)
        x = jax.random.normal(jax.random.PRNGKey(1), (3, 4, 1))
    sig = dict(sigma_w=1.3, sigma_b=0.4) if parameterization == "standard" else {}
    twin = stax_twin(scaled(m, gamma=0.3), **sig)
    params, apply = functional(m)
    chex.assert_trees_all_close(twin.apply_fn(twin.params, x), apply(params, x), rtol=1e-12)
    ours = empirical_ntk(apply, params, x)
    theirs = nt.empirical_ntk_fn(twin.apply_fn)(x, None, twin.params)
    chex.assert_trees_all_close(ours, theirs, rtol=1e-11)


def test_gamma_centring_and_mup_factors(x64):
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 3))
    key = jax.random.PRNGKey(1)
    ntk_net = MLP(3, 16, 2, 1, parameterization="ntk", key=key)
    mup_net = MLP(3, 16, 2, 1, parameterization="mup", key=key)
    base = infinite_kernels(ntk_net, x)
    mup = infinite_kernels(mup_net, x)
    chex.assert_trees_all_close(mup.ntk, base.ntk / 16, rtol=1e-12)
    chex.assert_trees_all_close(mup.nngp, base.nngp / 16, rtol=1e-12)
    cen = infinite_kernels(scaled(ntk_net, gamma=0.2, centre=True), x)
    unc = infinite_kernels(scaled(ntk_net, gamma=0.2, centre=False), x)
    chex.assert_trees_all_close(cen.ntk, base.ntk / 0.04, rtol=1e-12)
    chex.assert_trees_all_close(unc.nngp, base.nngp / 0.04, rtol=1e-12)
    assert float(jnp.max(jnp.abs(cen.nngp))) == 0.0
    # with a readout bias: K_mup = (K_ntk - σ_b²)/N + σ_b²
    bn = infinite_kernels(
        MLP(3, 16, 2, 1, parameterization="ntk", use_bias=True, sigma_b=0.5, key=key), x
    )
    bm = infinite_kernels(
        MLP(3, 16, 2, 1, parameterization="mup", use_bias=True, sigma_b=0.5, key=key), x
    )
    chex.assert_trees_all_close(bm.ntk, (bn.ntk - 0.25) / 16 + 0.25, rtol=1e-12)
    with pytest.raises(ConfigError, match="sigma_w= and sigma_b="):
        infinite_kernels(MLP(3, 4, 1, 1, parameterization="standard", key=key), x)


@pytest.mark.parametrize("parameterization", ["ntk", "mup"])
def test_empirical_ntk_converges_to_infinite_width(parameterization):
    """Relative Frobenius error of the empirical NTK at init falls like ~N^(-1/2)."""
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 4))
    x = x / jnp.linalg.norm(x, axis=1, keepdims=True) * 2.0
    widths = np.array([256, 1024, 4096])
    seeds = 3
    errors = []
    for n in widths:
        err = 0.0
        models = [
            MLP(4, int(n), 1, 2, parameterization=parameterization, key=jax.random.PRNGKey(s))
            for s in range(seeds)
        ]
        _, apply = functional(models[0])  # same structure: one compiled kernel for all seeds
        inf = infinite_kernels(models[0], x).ntk
        for m in models:
            k = empirical_ntk(apply, functional(m)[0], x)
            err += float(jnp.linalg.norm(k - inf) / jnp.linalg.norm(inf)) / seeds
        errors.append(err)
    errors = np.array(errors)
    slope = np.polyfit(np.log(widths), np.log(errors), 1)[0]
    assert -0.8 <= slope <= -0.3, (slope, errors)
    assert errors[-1] < 0.1, errors


def test_depth_two_converges():
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 3))
    errs = []
    for n in (64, 1024):
        models = [
            MLP(3, n, 2, 1, parameterization="ntk", use_bias=True, key=jax.random.PRNGKey(s))
            for s in range(3)
        ]
        _, apply = functional(models[0])
        inf = infinite_kernels(models[0], x).ntk
        err = sum(
            float(jnp.linalg.norm(empirical_ntk(apply, functional(m)[0], x) - inf)) for m in models
        )
        errs.append(err / 3 / float(jnp.linalg.norm(inf)))
    assert errs[1] < errs[0] / 2.5, errs  # 16× the width: ~4× smaller error expected


# ---------------------------------------------------------------- measures


def test_kernel_distance_and_alignment():
    a = jax.random.normal(jax.random.PRNGKey(0), (6, 6))
    k = a @ a.T
    assert abs(float(kernel_distance(k, k))) < 1e-6
    assert abs(float(kernel_distance(k, 3.7 * k))) < 1e-6
    i = jnp.eye(4)
    off = jnp.ones((4, 4)) - i
    assert abs(float(kernel_distance(i, off)) - 1.0) < 1e-6  # Frobenius-orthogonal
    assert abs(float(kernel_distance(i, -i)) - 2.0) < 1e-6
    y = jnp.array([1.0, -1.0, 1.0, -1.0])
    assert abs(float(kernel_alignment(jnp.outer(y, y) * 2.0, y)) - 1.0) < 1e-6
    # brute-force value
    expected = float(jnp.sum(k[:4, :4] * jnp.outer(y, y)) / (jnp.linalg.norm(k[:4, :4]) * 4.0))
    assert abs(float(kernel_alignment(k[:4, :4], y)) - expected) < 1e-5
    with pytest.raises(ConfigError):
        kernel_distance(k, k[:3, :3])


def test_linear_cka_known_answers(x64):
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (20, 5))
    q = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(1), (5, 5)))[0]
    assert abs(float(linear_cka(x, x)) - 1.0) < 1e-12
    assert abs(float(linear_cka(x, 2.5 * x @ q)) - 1.0) < 1e-12  # rotation + isotropic scale
    assert abs(float(linear_cka_debiased(x, 2.5 * x @ q)) - 1.0) < 1e-12
    # orthogonal (centred) features: CKA 0
    e = (
        jnp.zeros((4, 2))
        .at[:2, 0]
        .set(jnp.array([1.0, -1.0]))
        .at[2:, 1]
        .set(jnp.array([1.0, -1.0]))
    )
    f = jnp.zeros((4, 1)).at[:, 0].set(jnp.array([1.0, 1.0, -1.0, -1.0]))
    assert abs(float(linear_cka(e, f))) < 1e-12
    # anisotropic scaling changes it
    y = jax.random.normal(jax.random.PRNGKey(2), (20, 3))
    assert float(linear_cka(x, y)) < 0.9
    assert abs(float(linear_cka(x * jnp.array([1, 1, 1, 1, 10.0]), x)) - 1.0) > 1e-3


def test_debiased_cka_matches_brute_force_unbiased_hsic(x64):
    x = jax.random.normal(jax.random.PRNGKey(0), (7, 4))
    y = x[:, :2] @ jax.random.normal(jax.random.PRNGKey(1), (2, 3)) + 0.5 * jax.random.normal(
        jax.random.PRNGKey(2), (7, 3)
    )

    def hsic_u(k, l):  # noqa: E741  Song et al. (2012), sums over distinct index tuples
        k, l = np.asarray(k), np.asarray(l)  # noqa: E741
        n = k.shape[0]
        idx = range(n)
        t1 = sum(k[i, j] * l[i, j] for i in idx for j in idx if i != j)
        t2 = sum(
            k[i, j] * l[a, b]
            for i in idx
            for j in idx
            for a in idx
            for b in idx
            if len({i, j, a, b}) == 4
        )
        t3 = sum(k[i, j] * l[i, a] for i in idx for j in idx for a in idx if len({i, j, a}) == 3)
        from math import perm

        return t1 / perm(n, 2) + t2 / perm(n, 4) - 2 * t3 / perm(n, 3)

    k, l = x @ x.T, y @ y.T  # noqa: E741
    expected = hsic_u(k, l) / np.sqrt(hsic_u(k, k) * hsic_u(l, l))
    assert abs(float(linear_cka_debiased(x, y)) - expected) < 1e-10
    assert abs(float(linear_cka(x, y)) - expected) > 1e-3  # the biased one differs


def test_ntk_probe_similarity():
    params, apply, shape = make_model("mlp")
    x = jax.random.normal(jax.random.PRNGKey(0), (6, *shape))
    v = jax.random.normal(jax.random.PRNGKey(1), (6, 3))
    kv = ntk_vector_product(apply, params, x, v)
    assert abs(float(ntk_probe_similarity(kv, 2.0 * kv)) - 1.0) < 1e-6
    assert abs(float(ntk_probe_similarity(kv, -kv)) + 1.0) < 1e-6
    other = jax.tree.map(lambda a: a * 1.5 + 0.3, params)
    kv2 = ntk_vector_product(apply, other, x, v)
    expected = float(jnp.vdot(kv, kv2) / (jnp.linalg.norm(kv) * jnp.linalg.norm(kv2)))
    assert abs(float(ntk_probe_similarity(kv, kv2)) - expected) < 1e-6
    assert float(ntk_probe_similarity(kv, kv2)) < 0.9999
