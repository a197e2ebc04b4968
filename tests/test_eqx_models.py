"""Plain Equinox modules through every public function, against dense references.

Three per-example models as a researcher writes them: `eqx.nn.MLP` (tanh), a Conv2d → relu →
flatten → Linear stack on `(n, 1, 5, 5)` images, and a user module whose activation is a
lambda (a non-array field the engine must keep static). Oracles: a dense Jacobian `J` from
`jax.jacfwd` on the flattened parameters (`J Jᵀ` for the NTK, `J Δθ = ε` for Gauss-Newton,
`J Jᵀ v` for NTK probes), `jax.hessian` for sharpness, plain loops for the engine, exact
kernel-regression GD for the lazy limit.
"""

from collections.abc import Callable

import chex
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import xarray as xr
from jax.flatten_util import ravel_pytree

from lazyrich.data import Dataset
from lazyrich.errors import ConfigError
from lazyrich.kernels import empirical_ntk, linear_cka, ntk_probe_similarity, ntk_vector_product
from lazyrich.kernels._structured import Layout, layout
from lazyrich.measures import (
    activity,
    fit_logistic,
    layer_report,
    select_active,
    top_hessian_eigenvalue,
)
from lazyrich.models import MLP, batched, convention, functional, per_example, scaled
from lazyrich.optim import ntk_gauss_newton
from lazyrich.theory import lazy_vs_network
from lazyrich.train import Grid, train


class ConvNet(eqx.Module):
    """Conv2d(1 → 2, 3×3) → relu → flatten → Linear(18 → 2), one `(1, 5, 5)` image per call."""

    conv: eqx.nn.Conv2d
    linear: eqx.nn.Linear

    def __init__(self, *, key):
        k1, k2 = jax.random.split(key)
        self.conv = eqx.nn.Conv2d(1, 2, 3, key=k1)
        self.linear = eqx.nn.Linear(2 * 3 * 3, 2, key=k2)

    def __call__(self, x):
        return self.linear(jax.nn.relu(self.conv(x)).reshape(-1))


class Tiny(eqx.Module):
    """Two Linears and a lambda activation held as an ordinary (non-static) field."""

    l1: eqx.nn.Linear
    l2: eqx.nn.Linear
    act: Callable

    def __init__(self, d, *, key):
        k1, k2 = jax.random.split(key)
        self.l1 = eqx.nn.Linear(d, 8, key=k1)
        self.l2 = eqx.nn.Linear(8, 2, key=k2)
        self.act = lambda z: z * jnp.tanh(z)

    def __call__(self, x):
        return self.l2(self.act(self.l1(x)))


class VmapWrapper(eqx.Module):
    """A researcher's own batching of a per-example module."""

    inner: eqx.Module

    def __call__(self, x):
        return jax.vmap(self.inner)(x)


def _mlp(key=0, **kw):
    kw = {"width_size": 8, "depth": 2, "activation": jax.nn.tanh, **kw}
    return eqx.nn.MLP(6, kw.pop("out_size", 3), key=jax.random.key(key), **kw)


def _models():
    """(name, model, x) for the three per-example models."""
    x = jax.random.normal(jax.random.key(1), (5, 6))
    img = jax.random.normal(jax.random.key(2), (5, 1, 5, 5))
    return [
        ("mlp", _mlp(), x),
        ("conv", ConvNet(key=jax.random.key(3)), img),
        ("tiny", Tiny(6, key=jax.random.key(4)), x),
    ]


def _f64(tree):
    return jax.tree.map(lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, tree)


def _dense_jacobian(apply, params, x):
    """`J`, `(n·k, P)`, by forward mode on the flattened parameters."""
    flat, unravel = ravel_pytree(params)
    return jax.jacfwd(lambda f: apply(unravel(f), x).reshape(-1))(flat)


def _dense_ntk(apply, params, x, k):
    """`J Jᵀ` on `x` from the dense Jacobian: full `(n, n, k, k)` and traced (mean) `(n, n)`."""
    j = _dense_jacobian(apply, params, x)
    n = x.shape[0]
    full = (j @ j.T).reshape(n, k, n, k).transpose(0, 2, 1, 3)
    return full, jnp.trace(full, axis1=2, axis2=3) / k


def _rel(a, b):
    return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


# --------------------------------------------------------------------------- conventions


def test_conventions_by_shape_and_explicit_wrappers():
    """Per-example modules are recognised and vmapped, batched ones called on the batch;
    a scalar output gets a trailing axis; a misfit is one ConfigError line, never a TypeError."""
    x = jax.random.normal(jax.random.key(0), (4, 6))
    mlp = _mlp()
    assert convention(mlp, x) == "per_example"
    params, apply = functional(mlp)
    chex.assert_trees_all_close(apply(params, x), jax.vmap(mlp)(x), atol=1e-6)
    assert convention(MLP(6, 8, 1, 3, key=jax.random.key(0)), x) == "batched"
    assert convention(jax.vmap(mlp), x) == "batched"  # a user's own vmap wrapper
    # a scalar per-example output comes back as (n, 1)
    scalar = _mlp(out_size="scalar")
    p, a = functional(scalar)
    chex.assert_shape(a(p, x), (4, 1))
    # explicit wrappers: what they say (a broadcasting module `x @ w` is batched by the rule)
    w = jnp.ones((6, 2))

    class Matmul(eqx.Module):
        w: jax.Array

        def __call__(self, x):
            return x @ self.w

    assert convention(Matmul(w), x) == "batched"
    assert convention(per_example(Matmul(w)), x) == "per_example"
    assert convention(batched(mlp), x) == "batched"
    p, a = functional(per_example(Matmul(w)))
    chex.assert_trees_all_close(a(p, x), x @ w)
    # a user's own vmap wrapper is batched: the same outputs and NTK as the module itself
    conv = ConvNet(key=jax.random.key(3))
    img = jax.random.normal(jax.random.key(2), (4, 1, 5, 5))
    p_raw, a_raw = functional(conv)
    p_wrap, a_wrap = functional(VmapWrapper(conv))
    assert convention(VmapWrapper(conv), img) == "batched"
    chex.assert_trees_all_close(
        empirical_ntk(a_wrap, p_wrap, img), empirical_ntk(a_raw, p_raw, img), rtol=1e-5
    )
    # inputs of the wrong size: one line naming the fix
    with pytest.raises(ConfigError, match="shape the model was built for") as err:
        apply(params, jnp.ones((4, 7)))
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="one example of shape") as err:
        wrapped_params, wrapped = functional(per_example(mlp))
        empirical_ntk(wrapped, wrapped_params, jnp.ones((4, 7)))
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- kernels


def test_ntk_equals_dense_jjt(x64):
    """Structured (eqx.nn.Linear layers known) and generic paths equal J Jᵀ in float64."""
    for name, model, x in _models():
        params, apply = functional(_f64(model))
        x = x.astype(jnp.float64)
        found, _ = layout(apply, params, x)
        # the conv model's structure is unknown: the generic path; the others are tapped
        assert isinstance(found, Layout) == (name != "conv"), (name, found)
        full, traced = _dense_ntk(apply, params, x, 3 if name == "mlp" else 2)
        k = empirical_ntk(apply, params, x, x[:3], trace_axes=())
        assert _rel(k, full[:, :3]) < 1e-10, name
        k = empirical_ntk(apply, params, x, trace_axes=(-1,), chunk_size=2)
        assert _rel(k, traced) < 1e-10, name
        if name == "conv":
            k = empirical_ntk(apply, params, x, x[:3], method="ntvp")
            assert _rel(k, traced[:, :3]) < 1e-10, name
    # scalar outputs and the 1/γ of a user module wrapped by `scaled`: Θ_f = Θ_net/γ²
    net = _f64(_mlp(out_size="scalar"))
    x = jax.random.normal(jax.random.key(1), (5, 6), jnp.float64)
    params, apply = functional(net)
    k_net = empirical_ntk(apply, params, x)
    assert _rel(k_net, _dense_ntk(apply, params, x, 1)[1]) < 1e-10
    params_s, apply_s = functional(scaled(net, gamma=0.25, centre=True))
    assert _rel(empirical_ntk(apply_s, params_s, x), k_net / 0.0625) < 1e-10


# --------------------------------------------------------------------------- training


def _regression(x, seed=0):
    y = jnp.sin(x.reshape(x.shape[0], -1)[:, :2] * 1.5)
    n = x.shape[0] - 4
    return Dataset(x[:n], y[:n], x[n:], y[n:], name=f"toy{seed}", num_classes=0)


def test_train_sweeps_lower_every_loss():
    """γ × η × seed through `train` with user models built by a factory (γ from `scaled`),
    and a shared model whose lambda activation must stay static: every run learns."""
    x = jax.random.normal(jax.random.key(5), (20, 6))
    img = jax.random.normal(jax.random.key(6), (20, 1, 5, 5))
    cases = [
        (lambda key, hp: scaled(Tiny(6, key=key), gamma=hp["gamma"]), x),
        (lambda key, hp: scaled(ConvNet(key=key), gamma=hp["gamma"]), img),
    ]
    grid = Grid.product(gamma=[0.5, 1.0], eta=[0.05, 0.1], seed=[0, 1])
    for make, inputs in cases:
        ds = train(
            make, lambda hp: optax.sgd(hp["eta"]), _regression(inputs), grid=grid,
            record_at=[0, 30], batch=None, progress=False,
        )  # fmt: skip
        assert isinstance(ds, xr.Dataset)
        loss = ds.train_loss_full.values
        assert np.isfinite(loss).all() and not ds.diverged.values.any()
        assert (loss[..., -1] < 0.9 * loss[..., 0]).all(), loss


def test_train_shared_module_equals_a_plain_loop(x64):
    """One shared eqx.nn.MLP, full-batch SGD: the engine's losses are a plain loop's."""
    data = _regression(jax.random.normal(jax.random.key(7), (16, 6)))
    model = _f64(_mlp(out_size=2))
    ds = train(model, optax.sgd(0.2), data, record_at=[0, 4], batch=None, progress=False)
    assert isinstance(ds, xr.Dataset)
    params, apply = functional(model)
    loss = lambda p: jnp.mean((apply(p, data.x_train) - data.y_train) ** 2)
    start = float(loss(params))
    for _ in range(4):
        params = jax.tree.map(lambda p, g: p - 0.2 * g, params, jax.grad(loss)(params))
    np.testing.assert_allclose(ds.train_loss_full.values[0], [start, float(loss(params))], 1e-10)


def test_lazy_vs_network_matches_kernel_theory_at_small_gamma():
    """At γ = 1e-4 the centred eqx.nn.MLP (one output) is its linearization:
    kernel-regression GD with its empirical NTK predicts both losses within 1%."""
    x = jax.random.normal(jax.random.key(8), (12, 6))
    y = jnp.sin(x[:, :1] + x[:, 1:2])
    gamma = 1e-4
    ds = lazy_vs_network(
        _mlp(width_size=16, out_size=1, activation=lambda z: jnp.tanh(z)),
        x[:8], y[:8], x[8:], y[8:],
        gamma=[gamma], eta0=0.5 * gamma**2, steps=[0, 10, 40],
    )  # fmt: skip
    assert "infinite_train_loss" not in ds  # no twin for a user module: empirical only
    for kind in ("train", "test"):
        net, theory = ds[f"{kind}_loss"].values[0], ds[f"empirical_{kind}_loss"].values[0]
        np.testing.assert_allclose(net, theory, rtol=0.01)
    assert ds.train_loss.values[0, -1] < 0.8 * ds.train_loss.values[0, 0]
    with pytest.raises(ConfigError, match="no infinite-width twin"):
        lazy_vs_network(_mlp(), x[:8], y[:8], x[8:], y[8:], gamma=[1.0], eta0=0.1, steps=[1],
                        kernels=("infinite",))  # fmt: skip


# --------------------------------------------------------------------------- optim, measures


def test_ntk_gauss_newton_solves_j_dtheta_eq_eps(x64):
    """NTK-space GN on a per-example module: J Δθ = ε (n·k < P, tiny damping)."""
    for name, model, x in _models():
        params, apply = functional(_f64(model))
        x = x.astype(jnp.float64)[:4]
        eps = jax.random.normal(jax.random.key(9), apply(params, x).shape, jnp.float64)
        for method in ("dense", "cg") if name == "mlp" else ("dense",):
            delta = ntk_gauss_newton(apply, params, x, eps, damping=1e-12, method=method, tol=1e-12)
            jd = _dense_jacobian(apply, params, x) @ ravel_pytree(delta)[0]
            assert _rel(jd, eps.reshape(-1)) < 1e-6, (name, method)


def test_sharpness_activity_cka_and_probes_on_an_eqx_mlp(x64):
    model = _f64(_mlp())
    params, apply = functional(model)
    x = jax.random.normal(jax.random.key(10), (12, 6), jnp.float64)
    y = jnp.cos(x[:, :3])
    loss = lambda p: jnp.mean((apply(p, x) - y) ** 2)
    # sharpness: Lanczos against the dense Hessian's top eigenvalue
    flat, unravel = ravel_pytree(params)
    top = jnp.linalg.eigvalsh(jax.hessian(lambda f: loss(unravel(f)))(flat))[-1]
    value, _ = top_hessian_eigenvalue(loss, params, num_iters=flat.size, key=jax.random.key(0))
    np.testing.assert_allclose(value, top, rtol=1e-8)
    # active parameters: one layer per eqx.nn.Linear (weight + bias), counts by brute force
    moved = jax.tree.map(lambda p, g: p - 0.3 * g, params, jax.grad(loss)(params))
    scores = activity(params, moved, kind="absolute")
    mask = select_active(scores, top_percent=10)
    report = layer_report(mask)
    assert [r["layer"] for r in report] == [f".layers[{i}]" for i in range(3)]
    flat_scores = np.abs(ravel_pytree(moved)[0] - flat)
    k = round(flat.size * 0.1)
    assert sum(r["active"] for r in report) == k
    top_idx = set(np.argsort(-np.asarray(flat_scores))[:k].tolist())
    assert set(np.flatnonzero(ravel_pytree(mask)[0]).tolist()) == top_idx
    # NTK probes: K v by NTK-vector products = dense J Jᵀ v; similarity 1 for the same params
    v = jax.random.normal(jax.random.key(11), (12, 3), jnp.float64)
    kv = ntk_vector_product(apply, params, x, v)
    j = _dense_jacobian(apply, params, x)
    np.testing.assert_allclose(kv.reshape(-1), j @ (j.T @ v.reshape(-1)), rtol=1e-10)
    kv_t = ntk_vector_product(apply, moved, x, v)
    assert float(ntk_probe_similarity(kv, kv)) == pytest.approx(1.0, abs=1e-12)
    assert float(ntk_probe_similarity(kv, kv_t)) < 1.0
    # CKA of the hidden features, and a linear probe on them
    hidden = jax.vmap(lambda xi: jnp.tanh(model.layers[0](xi)))(x)
    assert float(linear_cka(hidden, hidden @ jnp.linalg.qr(jax.random.normal(
        jax.random.key(12), (8, 8), jnp.float64))[0])) == pytest.approx(1.0, abs=1e-10)  # fmt: skip
    labels = (x[:, 0] > 0).astype(jnp.int32)
    _, predict = fit_logistic(hidden, labels, num_classes=2)
    assert predict(hidden).shape == (12,)
