"""DLDR: trajectory sampling, Gram-matrix PCA, P-SGD and P-BFGS against dense oracles."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from lazyrich.errors import ConfigError
from lazyrich.models import MLP, functional
from lazyrich.optim import TrajectorySampler, dldr_subspace, p_bfgs, p_sgd
from lazyrich.optim._pbfgs import bfgs_update
from tests._oracles import init_p_bfgs, p_bfgs_params, p_bfgs_step, subspace_value_and_grad


def _random_subspace(key, d, dim, dtype=jnp.float64):
    q, _ = jnp.linalg.qr(jax.random.normal(key, (dim, d), dtype))
    return q.T  # (d, D) orthonormal rows


# ------------------------------------------------------------------ sampler


def test_sampler_records_flat_float32_and_spills(tmp_path):
    model = MLP(3, 5, 2, 2, use_bias=True, key=jax.random.key(0))
    params, _ = functional(model)
    mem, disk = TrajectorySampler(), TrajectorySampler(tmp_path / "traj", chunk_rows=2)
    expect = []
    for i in range(5):
        p = jax.tree.map(lambda x, i=i: x + i, params)
        mem.record(p)
        disk.record(p)
        expect.append(np.asarray(ravel_pytree(p)[0], np.float32))
    a, b = mem.samples(), disk.samples()
    assert a.dtype == np.float32 and a.shape == (5, ravel_pytree(params)[0].size)
    np.testing.assert_array_equal(a, np.stack(expect))
    np.testing.assert_array_equal(b, a)
    assert len(list((tmp_path / "traj").glob("chunk_*.npy"))) == 2  # 2 + 2 spilled, 1 in memory
    assert len(disk) == 5
    chex.assert_trees_all_close(mem.unravel(jnp.asarray(a[0])), params)


def test_sampler_rejects_other_model():
    s = TrajectorySampler()
    s.record(jnp.zeros(3))
    with pytest.raises(ConfigError, match="same model"):
        s.record(jnp.zeros(4))
    with pytest.raises(ConfigError, match="record"):
        TrajectorySampler().samples()


# ------------------------------------------------------------------ subspace


def test_dldr_subspace_equals_svd_of_centred_samples(x64):
    t, dim, d = 9, 50, 4
    # anisotropic samples so the singular values are well separated
    scales = jnp.array([10.0, 5.0, 3.0, 2.0, 1.0, 0.5, 0.3, 0.2, 0.1])
    z = jax.random.normal(jax.random.key(0), (t, t)) * scales
    basis = _random_subspace(jax.random.key(1), t, dim)
    samples = z @ basis + 3.0
    p, ratio = dldr_subspace(samples, d)
    chex.assert_shape(p, (d, dim))
    chex.assert_shape(ratio, (t - 1,))
    x = samples - samples.mean(0)
    _, sv, vt = np.linalg.svd(np.asarray(x), full_matrices=False)
    for i in range(d):
        sign = np.sign(np.dot(np.asarray(p[i]), vt[i]))
        np.testing.assert_allclose(sign * np.asarray(p[i]), vt[i], atol=1e-10)
    np.testing.assert_allclose(p @ p.T, np.eye(d), atol=1e-12)
    np.testing.assert_allclose(ratio, sv[: t - 1] ** 2 / np.sum(sv**2), rtol=1e-10)
    assert np.all(np.diff(np.asarray(ratio)) <= 0)


def test_dldr_subspace_float32_is_orthonormal():
    samples = jax.random.normal(jax.random.key(2), (12, 300))
    p, ratio = dldr_subspace(samples, 8)
    np.testing.assert_allclose(p @ p.T, np.eye(8), atol=1e-5)
    np.testing.assert_allclose(float(ratio.sum()), 1.0, rtol=1e-5)


def test_dldr_subspace_validation():
    samples = jax.random.normal(jax.random.key(0), (5, 20))
    with pytest.raises(ConfigError, match=r"d=5 exceeds samples−1=4; sample more often or lower d"):
        dldr_subspace(samples, 5)
    with pytest.raises(ConfigError, match="d must be >= 1"):
        dldr_subspace(samples, 0)
    with pytest.raises(ConfigError, match="identical"):
        dldr_subspace(jnp.ones((5, 20)), 2)
    rank2 = jnp.concatenate([samples[:3], samples[:3]])  # 3 distinct points → 2 directions
    with pytest.raises(ConfigError, match="independent directions"):
        dldr_subspace(rank2, 3)


# ------------------------------------------------------------------ BFGS formula


def _bfgs_reference(h, s, y):
    """Expanded inverse-BFGS formula (Nocedal & Wright 6.17, multiplied out), in numpy."""
    h, s, y = map(np.asarray, (h, s, y))
    sy = s @ y
    if sy <= 1e-20:
        return h
    hy = h @ y
    return h + (sy + y @ hy) * np.outer(s, s) / sy**2 - (np.outer(hy, s) + np.outer(s, hy)) / sy


def test_bfgs_update_matches_reference_formula(x64):
    d = 6
    for seed in range(5):
        k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
        a = jax.random.normal(k1, (d, d))
        h = a @ a.T + jnp.eye(d)
        s = jax.random.normal(k2, (d,))
        y = s + 0.3 * jax.random.normal(k3, (d,))  # yᵀs > 0
        new = bfgs_update(h, s, y)
        np.testing.assert_allclose(new, _bfgs_reference(h, s, y), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(new @ y, s, rtol=1e-9, atol=1e-12)  # secant condition
        np.testing.assert_allclose(new, new.T, atol=1e-12)
    # curvature guard: yᵀs <= 1e-20 leaves H unchanged
    np.testing.assert_array_equal(bfgs_update(h, s, -s), h)
    np.testing.assert_array_equal(bfgs_update(h, jnp.zeros(d), y), h)


# ------------------------------------------------------------------ subspace gradient


def test_subspace_gradient_equals_p_times_dense_gradient(x64):
    model = MLP(4, 6, 2, 1, activation="tanh", use_bias=True, key=jax.random.key(0))
    params, apply = functional(model)
    w0, unravel = ravel_pytree(params)
    x = jax.random.normal(jax.random.key(1), (7, 4))
    yt = jax.random.normal(jax.random.key(2), (7, 1))

    def loss(w, batch):
        xb, yb = batch
        return 0.5 * jnp.mean((apply(unravel(w), xb) - yb) ** 2)

    p = _random_subspace(jax.random.key(3), 5, w0.size)
    alpha = 0.1 * jax.random.normal(jax.random.key(4), (5,))
    _, g = subspace_value_and_grad(loss, w0, p, alpha, (x, yt))
    w = w0 + p.T @ alpha
    # dense oracle: Jacobian of the residuals r(w) (n × D), ∇L = Jᵀ r / n
    resid = lambda w: (apply(unravel(w), x) - yt).ravel()  # noqa: E731
    jac = jax.jacfwd(resid)(w)
    np.testing.assert_allclose(g, p @ (jac.T @ resid(w)) / x.shape[0], rtol=1e-10, atol=1e-13)
    # and central finite differences in α
    fd = jax.jit(
        jax.vmap(lambda e: (loss(w + 1e-6 * e, (x, yt)) - loss(w - 1e-6 * e, (x, yt))) / 2e-6)
    )(p)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-10)


# ------------------------------------------------------------------ P-BFGS convergence


def _quadratic_problem(dim=30, d=5):
    k = jax.random.split(jax.random.key(7), 4)
    a = jax.random.normal(k[0], (dim, dim))
    hess = a @ a.T / dim + 0.5 * jnp.eye(dim)
    p = _random_subspace(k[1], d, dim)
    w0 = jax.random.normal(k[2], (dim,))
    alpha_star = jax.random.normal(k[3], (d,))
    w_star = w0 + p.T @ alpha_star

    def loss(w, batch):
        del batch
        r = w - w_star
        return 0.5 * r @ hess @ r

    return loss, p, w0, alpha_star, w_star


@pytest.mark.parametrize("linesearch", ["armijo", "optax"])
def test_p_bfgs_converges_to_minimum_in_subspace(x64, linesearch):
    loss, p, w0, alpha_star, w_star = _quadratic_problem()
    opt = p_bfgs(p, linesearch=linesearch)
    value_fn = lambda w: loss(w, None)  # noqa: E731

    @jax.jit
    def step(w, state):
        value, grad = jax.value_and_grad(value_fn)(w)
        u, state = opt.update(grad, state, w, value=value, grad=grad, value_fn=value_fn)
        return optax.apply_updates(w, u), state

    w, state = w0, opt.init(w0)
    for _ in range(40):
        w, state = step(w, state)
    np.testing.assert_allclose(p @ (w - w0), alpha_star, atol=1e-8)
    np.testing.assert_allclose(w, w_star, atol=1e-8)
    # H stays symmetric positive definite under the curvature guard
    np.testing.assert_allclose(state.h, state.h.T, atol=1e-10)
    assert float(jnp.linalg.eigvalsh(state.h).min()) > 0


def test_p_bfgs_first_step_is_armijo_backtracked_gradient_step(x64):
    loss, p, w0, *_ = _quadratic_problem()
    state = init_p_bfgs(w0, p)
    new = jax.jit(lambda s: p_bfgs_step(loss, s, None))(state)
    value, g = subspace_value_and_grad(loss, w0, p, state.alpha, None)
    # brute force: first m with L(w0 + Pᵀ 0.4^m (−g)) < L + 0.4 · 0.4^m gᵀ(−g)
    for m in range(20):
        t = 0.4**m
        if loss(w0 + p.T @ (-t * g), None) < value + 0.4 * t * (g @ -g):
            break
    np.testing.assert_allclose(new.alpha, -t * g, rtol=1e-12)
    assert int(new.tries) == m + 1
    np.testing.assert_allclose(new.loss, value)


def test_p_bfgs_fallback_when_no_trial_passes(x64):
    # loss increasing along every direction away from alpha=0 is impossible for a smooth loss,
    # so fake it: a loss that jumps up off the starting point
    p = jnp.eye(2, 4)
    w0 = jnp.zeros(4)

    def loss(w, batch):
        del batch
        return jnp.sum(w) + jnp.where(jnp.any(w != 0), 10.0, 0.0)

    zero = p_bfgs_step(loss, init_p_bfgs(w0, p), None, fallback="zero")
    np.testing.assert_array_equal(zero.alpha, jnp.zeros(2))
    assert int(zero.tries) == 20
    small = p_bfgs_step(loss, init_p_bfgs(w0, p), None, fallback="smallest")
    np.testing.assert_allclose(small.alpha, -(0.4**19) * jnp.ones(2), rtol=1e-12)


def test_p_bfgs_validation():
    with pytest.raises(ConfigError, match="build P from this model"):
        init_p_bfgs(jnp.zeros(5), jnp.zeros((2, 4)))
    with pytest.raises(ConfigError, match="linesearch"):
        p_bfgs(jnp.eye(2, 4), linesearch="wolfe")  # pyright: ignore[reportArgumentType]
    with pytest.raises(ConfigError, match="fallback"):
        p_bfgs(jnp.eye(2, 4), fallback="last")  # pyright: ignore[reportArgumentType]
    with pytest.raises(ConfigError, match="build P from this model"):
        p_bfgs(jnp.eye(2, 4)).init(jnp.zeros(5))


@pytest.mark.parametrize("fallback", ["zero", "smallest"])
@pytest.mark.parametrize("linesearch", ["armijo", "optax"])
def test_p_bfgs_optax_form_equals_flat_steps(x64, linesearch, fallback):
    """The optax transformation on a params pytree equals the flat `p_bfgs_step` sequence on
    changing batches (a non-quadratic loss, so the line search backtracks)."""
    model = MLP(4, 6, 1, 3, activation="tanh", use_bias=True, key=jax.random.key(0))
    params, apply = functional(model)
    w0, unravel = ravel_pytree(params)
    p = _random_subspace(jax.random.key(1), 4, w0.size)
    xs = jax.random.normal(jax.random.key(2), (6, 8, 4))
    ys = jax.random.normal(jax.random.key(3), (6, 8, 3))
    flat_loss = lambda w, b: jnp.mean((apply(unravel(w), b[0]) - b[1]) ** 2)  # noqa: E731
    flat = jax.jit(
        lambda s, b: p_bfgs_step(flat_loss, s, b, linesearch=linesearch, fallback=fallback)
    )
    opt = p_bfgs(p, linesearch=linesearch, fallback=fallback)

    @jax.jit
    def step(params, state, b):
        value_fn = lambda q: jnp.mean((apply(q, b[0]) - b[1]) ** 2)  # noqa: E731
        value, grad = jax.value_and_grad(value_fn)(params)
        u, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=value_fn)
        return optax.apply_updates(params, u), state

    ref, state = init_p_bfgs(w0, p), opt.init(params)
    assert not any(leaf.shape == p.shape for leaf in jax.tree.leaves(state))  # no P in state
    for t in range(6):
        ref = flat(ref, (xs[t], ys[t]))
        params, state = step(params, state, (xs[t], ys[t]))
        np.testing.assert_allclose(ravel_pytree(params)[0], p_bfgs_params(ref), atol=1e-12)
        np.testing.assert_allclose(state.h, ref.h, rtol=1e-9, atol=1e-12)
        assert int(state.tries) == int(ref.tries)
    assert float(jnp.linalg.norm(p_bfgs_params(ref) - w0)) > 1e-3


# ------------------------------------------------------------------ P-SGD


def test_p_sgd_projects_and_applies_momentum(x64):
    dim, d = 12, 3
    p = _random_subspace(jax.random.key(0), d, dim)
    params = {"a": jnp.arange(4.0), "b": jnp.ones((2, 4))}
    opt = p_sgd(0.1, p, momentum=0.9)
    state = opt.init(params)
    g1 = jax.random.normal(jax.random.key(1), (dim,))
    g2 = jax.random.normal(jax.random.key(2), (dim,))
    _, unravel = ravel_pytree(params)
    u1, state = opt.update(unravel(g1), state, params)
    u2, state = opt.update(unravel(g2), state, params)
    proj = p.T @ p
    m1 = proj @ g1
    m2 = 0.9 * m1 + proj @ g2
    np.testing.assert_allclose(ravel_pytree(u1)[0], -0.1 * m1, rtol=1e-12)
    np.testing.assert_allclose(ravel_pytree(u2)[0], -0.1 * m2, rtol=1e-12)


def test_p_sgd_iterates_stay_in_affine_subspace(x64):
    loss, p, w0, alpha_star, w_star = _quadratic_problem()
    opt = p_sgd(0.2, p)
    w, state = w0, opt.init(w0)
    for _ in range(300):
        u, state = opt.update(jax.grad(loss)(w, None), state, w)
        w = optax.apply_updates(w, u)
    off = (w - w0) - p.T @ (p @ (w - w0))
    np.testing.assert_allclose(off, 0.0, atol=1e-12)
    np.testing.assert_allclose(w, w_star, atol=1e-6)
