"""Empirical NTK (against a dense Jacobian and neural-tangents), infinite-width twins, measures."""

import functools
import math

import chex
import equinox as eqx
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
from lazyrich.models._dense import Dense

POOL = 512


def normal(seed, shape, dtype=None):
    """Standard normal test inputs (default dtype: float64 under `x64`, else float32).

    Slices of one fixed-size draw per seed: `jax.random.normal` compiles once per output shape
    (~0.4 s each on CPU), this once per dtype.
    """
    size = math.prod(shape)
    assert size <= POOL, shape
    dtype = jnp.dtype(dtype or jnp.result_type(float)).name
    return jnp.asarray(_pool(seed, dtype)[:size].reshape(shape))


@functools.cache
def _pool(seed, dtype):
    # sliced on the host: slicing on the device would compile once per size
    return np.asarray(jax.random.normal(jax.random.PRNGKey(seed), (POOL,), dtype))


def dense_jacobians(apply, params, x1, x2):
    """Oracle: the flattened `jax.jacrev` Jacobians `(n, k, P)` of `apply` on `x1` and `x2`."""
    x = jnp.concatenate([x1, x2])
    j = jax.jacrev(lambda p: apply(p, x))(params)
    n, k = apply(params, x).shape
    j = jnp.concatenate([leaf.reshape(n, k, -1) for leaf in jax.tree.leaves(j)], axis=-1)
    return j[: len(x1)], j[len(x1) :]


def dense_ntk(j1, j2, trace):
    """Oracle: `J1 J2ᵀ` from dense Jacobians, traced as a mean over the logits."""
    full = jnp.einsum("icp,jdp->ijcd", j1, j2)
    return jnp.trace(full, axis1=2, axis2=3) / full.shape[2] if trace else full


def coupling_model(seed, d=6, h=7, k=3):
    """A tiny reversible coupling network (RevMLP-like): two additive coupling blocks."""
    c = normal(seed, (d // 2, h)) / h**0.5  # fixed
    u = jnp.linalg.qr(normal(seed + 1, (d, k)))[0]  # fixed readout
    params = {
        "wf": normal(seed + 2, (h, d // 2)) * 0.3,
        "bf": normal(seed + 3, (d // 2,)) * 0.1,
        "wg": normal(seed + 4, (h, d // 2)) * 0.3,
        "bg": normal(seed + 5, (d // 2,)) * 0.1,
    }

    def apply(p, x):
        x1, x2 = x[:, : d // 2], x[:, d // 2 :]
        y1 = x1 + jax.nn.relu(x2 @ c) @ p["wf"] + p["bf"]
        y2 = x2 + jax.nn.relu(y1 @ c) @ p["wg"] + p["bg"]
        y = jnp.concatenate([y1, y2], axis=1)
        return jnp.tanh(y) @ u

    return params, apply, d


def init_key(seed):
    """Initialization keys: XLA's RngBitGenerator compiles ~2× faster than threefry on CPU."""
    return jax.random.key(seed, impl="rbg")


# Tests that build networks reuse these shapes (or those of `wide_mlp`): initialization
# compiles one random draw per weight shape and dtype.
def mlp(depth=2, **kw):
    return MLP(5, 9, depth, 3, key=init_key(kw.pop("seed", 0)), **kw)


def cnn(**kw):
    return CNN((4, 2), 2, 3, key=init_key(kw.pop("seed", 0)), **kw)


def wide_mlp(width, depth=2, seed=0, **kw):
    """The float32 MLPs of the width-convergence, chunking and probe tests: `4 → width → 2`."""
    return MLP(4, width, depth, 2, key=init_key(seed), **kw)


def make_model(kind):
    """`(params, apply, input shape)` in the default dtype (float64 under `x64`)."""
    if kind == "mlp":
        return *functional(mlp(parameterization="ntk", use_bias=True)), (5,)
    if kind == "cnn":
        return *functional(cnn(parameterization="mup", use_bias=True)), (4, 2)
    params, apply, d = coupling_model(10)
    return params, apply, (d,)


@functools.cache
def float64_case(kind):
    """Shared by the float64 tests (call under `x64`): the model, inputs and dense Jacobians.

    Cached per kind so the same `apply` is reused: the kernels compiled for it are too.
    """
    params, apply, shape = make_model(kind)
    assert jax.tree.leaves(params)[0].dtype == jnp.float64
    x1, x2 = normal(1, (5, *shape)), normal(2, (4, *shape))
    j1, j2 = jax.jit(lambda p: dense_jacobians(apply, p, x1, x2))(params)  # one compilation
    return params, apply, x1, x2, j1, j2


# Every (method, chunk_size) combination is checked on the MLP and on the coupling network (a
# dict of parameters, a fixed readout), with the trace setting alternating so that each is
# checked traced and untraced. The CNN (2-d per-example inputs, whose only input-shape-specific
# code is the per-example slicing of both methods and the padding of chunks) is checked on the
# two chunked combinations, one per method (its compilations are the most expensive).
COMBOS = [  # (method, chunk_size, symmetric): symmetric means x2=None (mirrored chunks)
    ("jacobian", None, False),
    ("ntvp", None, False),
    ("ntvp", 2, False),
    ("auto", None, True),
    ("jacobian", 2, True),
]
FIRST_TRACE = {"mlp": True, "cnn": True, "coupling": False}
CNN_COMBOS = (2, 4)


def nt_kernels(apply):
    """neural-tangents' traced and untraced empirical NTKs of `apply`, in one compiled call."""
    traced = nt.empirical_ntk_fn(apply, trace_axes=(-1,))
    full = nt.empirical_ntk_fn(apply, trace_axes=())
    return jax.jit(lambda x1, x2, p: (traced(x1, x2, p), full(x1, x2, p)))


@pytest.mark.parametrize("kind", ["mlp", "cnn", "coupling"])
def test_empirical_ntk_matches_dense_and_nt(x64, kind):
    params, apply, x1, x2, j1, j2 = float64_case(kind)
    for trace, k_nt in zip((True, False), nt_kernels(apply)(x1, x2, params), strict=True):
        assert rel_err(k_nt, dense_ntk(j1, j2, trace)) < 1e-10, trace
    for i, (method, chunk, symmetric) in enumerate(COMBOS):
        if kind == "cnn" and i not in CNN_COMBOS:
            continue
        trace = FIRST_TRACE[kind] == (i % 2 == 0)
        axes = (-1,) if trace else ()
        x2_, j2_ = (None, j1) if symmetric else (x2, j2)
        k = empirical_ntk(apply, params, x1, x2_, trace_axes=axes, method=method, chunk_size=chunk)
        n2 = 5 if symmetric else 4
        chex.assert_shape(k, (5, n2) if trace else (5, n2, 3, 3))
        assert rel_err(k, dense_ntk(j1, j2_, trace)) < 1e-10, (method, chunk, symmetric, trace)


def rel_err(a, b):
    return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


def test_structured_matches_dense(x64):
    """Per-layer Gram products = J Jᵀ: biases, 1/γ and centring (the frozen initial copy's
    Dense layers must be left out), traced and untraced, chunked with mirrored blocks."""
    params, apply, x1, x2, j1, j2 = float64_case("mlp")  # ntk parameterization with biases
    for trace, x2_, j2_, chunk in [(True, x2, j2, None), (False, None, j1, 2)]:
        axes = (-1,) if trace else ()
        k = empirical_ntk(
            apply, params, x1, x2_, trace_axes=axes, method="structured", chunk_size=chunk
        )
        assert rel_err(k, dense_ntk(j1, j2_, trace)) < 1e-10, trace
    net = mlp(parameterization="mup", activation="erf", seed=3)
    params, apply = functional(scaled(net, gamma=0.05, centre=True))
    j1, j2 = jax.jit(lambda p: dense_jacobians(apply, p, x1, x2))(params)
    for trace in (True, False):
        k = empirical_ntk(apply, params, x1, x2, trace_axes=(-1,) if trace else ())
        assert rel_err(k, dense_ntk(j1, j2, trace)) < 1e-10, trace  # "auto" = structured here


class _SharedDense(eqx.Module):
    layer: Dense

    def __call__(self, x):
        return self.layer(jnp.tanh(self.layer(x)))


def test_structured_refuses_models_it_cannot_handle():
    """A parameter outside a Dense layer, or one Dense used twice: a clear error; "auto" falls
    back to the Jacobian method and stays right."""
    shared = _SharedDense(Dense(3, 3, parameterization="ntk", key=init_key(0)))
    for model, shape, why in [
        (cnn(), (4, 2), "not weights or biases of lazyrich Dense layers"),
        (shared, (3,), "called more than once"),
    ]:
        params, apply = functional(model)
        x = normal(4, (3, *shape))
        with pytest.raises(ConfigError, match=why) as err:
            empirical_ntk(apply, params, x, method="structured")
        assert "method='jacobian'" in str(err.value) and "\n" not in str(err.value)
        chex.assert_trees_all_close(
            empirical_ntk(apply, params, x), empirical_ntk(apply, params, x, method="jacobian")
        )


def test_multi_axis_outputs_match_nt(x64):
    """Outputs (n, 2, 3): partial traces follow neural-tangents' axis conventions."""
    w = normal(0, (4, 6), jnp.float64)

    def apply(p, x):
        return jnp.tanh(x @ p).reshape(x.shape[0], 2, 3)

    x = normal(1, (5, 4))
    cases = [((), None), ((-1,), 2), ((1,), None), ((1, 2), 2)]
    fns = [nt.empirical_ntk_fn(apply, trace_axes=axes) for axes, _ in cases]
    refs = jax.jit(lambda x, w: [f(x, None, w) for f in fns])(x, w)  # one compilation
    for (axes, chunk), ref in zip(cases, refs, strict=True):
        got = empirical_ntk(apply, w, x, trace_axes=axes, chunk_size=chunk)
        chex.assert_trees_all_close(got, ref, rtol=1e-12, atol=1e-13)


def test_chunked_equals_unchunked_float32():
    params, apply = functional(wide_mlp(64, parameterization="ntk", use_bias=True))
    x = normal(3, (11, 4))
    full = empirical_ntk(apply, params, x)
    for c in (1, 4, 11, 50):  # 1×1 blocks, padded last chunk, one block, chunk > n
        chex.assert_trees_all_close(empirical_ntk(apply, params, x, chunk_size=c), full, rtol=1e-5)


@pytest.mark.parametrize("kind", ["mlp", "coupling"])
def test_ntk_vector_product(x64, kind):
    params, apply, x, _, j, _ = float64_case(kind)
    v = normal(5, (5, 3))
    expected = jnp.einsum("ijcd,jd->ic", dense_ntk(j, j, trace=False), v)
    chex.assert_trees_all_close(ntk_vector_product(apply, params, x, v), expected, rtol=1e-11)


def test_bad_inputs_raise_one_line_config_errors():
    params, apply = functional(wide_mlp(64))  # outputs (n, 2)
    x = jnp.ones((3, 4))
    cases = [
        dict(x2=jnp.ones((3, 5))),
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
        ntk_vector_product(apply, params, x, jnp.ones((3, 3)))
    with pytest.raises(ConfigError, match="mismatched input shapes"):
        infinite_kernels(wide_mlp(64), x, jnp.ones((2, 5)))


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
    kw = dict(parameterization=parameterization, use_bias=use_bias, sigma_w=1.3, sigma_b=0.4)
    if kind == "mlp":
        m = mlp(activation="erf", seed=7, **kw)
        x = normal(1, (4, 5))
    else:
        m = cnn(activation="tanh", seed=7, **kw)
        x = normal(1, (3, 4, 2))
    sig = dict(sigma_w=1.3, sigma_b=0.4) if parameterization == "standard" else {}
    twin = stax_twin(scaled(m, gamma=0.3), **sig)
    params, apply = functional(m)
    ntk_fn = nt.empirical_ntk_fn(twin.apply_fn)
    out, theirs = jax.jit(lambda p, x: (twin.apply_fn(p, x), ntk_fn(x, None, p)))(twin.params, x)
    chex.assert_trees_all_close(out, apply(params, x), rtol=1e-12)
    chex.assert_trees_all_close(empirical_ntk(apply, params, x), theirs, rtol=1e-11)


def test_gamma_centring_and_mup_factors(x64):
    x = normal(0, (4, 5))
    n = 9  # the width of `mlp()`
    ntk_net = mlp(parameterization="ntk", seed=1)
    mup_net = mlp(parameterization="mup", seed=1)
    base = infinite_kernels(ntk_net, x)
    mup = infinite_kernels(mup_net, x)
    chex.assert_trees_all_close(mup.ntk, base.ntk / n, rtol=1e-12)
    chex.assert_trees_all_close(mup.nngp, base.nngp / n, rtol=1e-12)
    cen = infinite_kernels(scaled(ntk_net, gamma=0.2, centre=True), x)
    unc = infinite_kernels(scaled(ntk_net, gamma=0.2, centre=False), x)
    chex.assert_trees_all_close(cen.ntk, base.ntk / 0.04, rtol=1e-12)
    chex.assert_trees_all_close(unc.nngp, base.nngp / 0.04, rtol=1e-12)
    assert float(jnp.max(jnp.abs(cen.nngp))) == 0.0
    # with a readout bias: K_mup = (K_ntk - σ_b²)/N + σ_b²
    bn = infinite_kernels(mlp(parameterization="ntk", use_bias=True, sigma_b=0.5, seed=1), x)
    bm = infinite_kernels(mlp(parameterization="mup", use_bias=True, sigma_b=0.5, seed=1), x)
    chex.assert_trees_all_close(bm.ntk, (bn.ntk - 0.25) / n + 0.25, rtol=1e-12)
    with pytest.raises(ConfigError, match="sigma_w= and sigma_b="):
        infinite_kernels(mlp(depth=1, parameterization="standard", seed=1), x)


def sphere_inputs():
    x = normal(0, (5, 4))
    return x / jnp.linalg.norm(x, axis=1, keepdims=True) * 2.0


@pytest.mark.parametrize("parameterization", ["ntk", "mup"])
def test_empirical_ntk_converges_to_infinite_width(parameterization):
    """Relative Frobenius error of the empirical NTK at init falls like ~N^(-1/2)."""
    x = sphere_inputs()
    widths = np.array([256, 1024, 4096])
    seeds = 3
    errors = []
    for n in widths:
        err = 0.0
        models = [
            wide_mlp(int(n), depth=1, parameterization=parameterization, seed=s)
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
    x = sphere_inputs()
    errs = []
    for n in (64, 1024):
        models = [wide_mlp(n, parameterization="ntk", use_bias=True, seed=s) for s in range(3)]
        _, apply = functional(models[0])
        inf = infinite_kernels(models[0], x).ntk
        err = sum(
            float(jnp.linalg.norm(empirical_ntk(apply, functional(m)[0], x) - inf)) for m in models
        )
        errs.append(err / 3 / float(jnp.linalg.norm(inf)))
    assert errs[1] < errs[0] / 2.5, errs  # 16× the width: ~4× smaller error expected


# ---------------------------------------------------------------- measures


def test_kernel_distance_and_alignment():
    a = normal(0, (6, 6))
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
    x = normal(0, (20, 5))
    q = jnp.linalg.qr(normal(1, (5, 5)))[0]
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
    y = normal(2, (20, 3))
    assert float(linear_cka(x, y)) < 0.9
    assert abs(float(linear_cka(x * jnp.array([1, 1, 1, 1, 10.0]), x)) - 1.0) > 1e-3


def test_debiased_cka_matches_brute_force_unbiased_hsic(x64):
    x = normal(0, (7, 4))
    y = x[:, :2] @ normal(1, (2, 3)) + 0.5 * normal(2, (7, 3))

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
    params, apply = functional(wide_mlp(64, parameterization="ntk", use_bias=True))
    x = normal(0, (6, 4))
    v = normal(1, (6, 2))
    kv = ntk_vector_product(apply, params, x, v)
    assert abs(float(ntk_probe_similarity(kv, 2.0 * kv)) - 1.0) < 1e-6
    assert abs(float(ntk_probe_similarity(kv, -kv)) + 1.0) < 1e-6
    other = jax.tree.map(lambda a: a * 1.5 + 0.3, params)
    kv2 = ntk_vector_product(apply, other, x, v)
    expected = float(jnp.vdot(kv, kv2) / (jnp.linalg.norm(kv) * jnp.linalg.norm(kv2)))
    assert abs(float(ntk_probe_similarity(kv, kv2)) - expected) < 1e-6
    assert float(ntk_probe_similarity(kv, kv2)) < 0.9999
