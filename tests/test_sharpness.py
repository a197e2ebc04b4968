"""Top Hessian eigenvalue from Hessian-vector products versus a dense Hessian."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from lazyrich.errors import ConfigError
from lazyrich.measures._sharpness import hvp, top_hessian_eigenvalue
from lazyrich.models import MLP, functional


@pytest.fixture(scope="module")
def problem():
    """A tiny tanh MLP's MSE loss in float64 and its dense Hessian (computed once)."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield _problem()
    finally:
        jax.config.update("jax_enable_x64", previous)


def _problem():
    model = MLP(3, 6, 2, 2, activation="tanh", parameterization="mup", key=jax.random.key(0))
    params, apply = functional(model)
    params = jax.tree.map(lambda p: p.astype(jnp.float64), params)
    x = jax.random.normal(jax.random.key(1), (16, 3), jnp.float64)
    y = jax.random.normal(jax.random.key(2), (16, 2), jnp.float64)

    @jax.jit
    def loss(p):
        return 0.5 * jnp.mean(jnp.sum((apply(p, x) - y) ** 2, -1))

    flat, unravel = ravel_pytree(params)
    dense = jax.jit(jax.hessian(lambda f: loss(unravel(f))))(flat)
    return loss, params, dense


def test_hvp_matches_dense(x64, problem):
    loss, params, dense = problem
    flat, unravel = ravel_pytree(params)
    v = jax.random.normal(jax.random.key(3), flat.shape, flat.dtype)
    got = ravel_pytree(hvp(loss, params, unravel(v)))[0]
    np.testing.assert_allclose(got, dense @ v, rtol=1e-10, atol=1e-12)


def test_lanczos_matches_dense_top_eigenvalue(x64, problem):
    loss, params, dense = problem
    n = dense.shape[0]
    evals = np.linalg.eigvalsh(np.asarray(dense))
    lam, vec = top_hessian_eigenvalue(loss, params, num_iters=40, key=jax.random.key(4))
    assert n > 40  # a genuine Krylov approximation, not the full space
    assert abs(float(lam) - evals[-1]) / abs(evals[-1]) < 1e-6, (float(lam), evals[-1])
    v = ravel_pytree(vec)[0]
    assert abs(float(jnp.linalg.norm(v)) - 1.0) < 1e-10
    resid = float(jnp.linalg.norm(dense @ v - lam * v))
    assert resid < 1e-4 * abs(evals[-1])
    # jit-compatible
    jl = jax.jit(lambda p: top_hessian_eigenvalue(loss, p, num_iters=40, key=jax.random.key(4))[0])
    assert abs(float(jl(params)) - evals[-1]) / abs(evals[-1]) < 1e-6


def test_lanczos_exact_with_full_krylov_space_and_negative_spectrum(x64):
    # a quadratic with a known spectrum whose largest-magnitude eigenvalue is negative
    evals = jnp.array([-5.0, -1.0, 0.5, 2.0, 3.0])
    q, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(5), (5, 5), jnp.float64))
    a = q @ jnp.diag(evals) @ q.T
    loss = lambda p: 0.5 * p["w"] @ a @ p["w"]
    params = {"w": jnp.ones(5, jnp.float64)}
    lam, _ = top_hessian_eigenvalue(loss, params, num_iters=50, key=jax.random.key(6))
    assert abs(float(lam) - 3.0) < 1e-10  # largest algebraic, num_iters capped at 5
    lam_p, _ = top_hessian_eigenvalue(
        loss, params, num_iters=300, method="power", key=jax.random.key(6)
    )
    assert abs(float(lam_p) + 5.0) < 1e-8  # power iteration: largest magnitude


def test_power_iteration_matches_dense(x64, problem):
    loss, params, dense = problem
    evals = np.linalg.eigvalsh(np.asarray(dense))
    assert abs(evals[-1]) > abs(evals[0])  # the positive end dominates, as for a training loss
    lam, _ = top_hessian_eigenvalue(
        loss, params, num_iters=500, method="power", key=jax.random.key(7)
    )
    assert abs(float(lam) - evals[-1]) / evals[-1] < 1e-4


def test_bad_arguments():
    params = {"w": jnp.ones(3)}
    loss = lambda p: jnp.sum(p["w"] ** 2)
    with pytest.raises(ConfigError, match="lanczos"):
        top_hessian_eigenvalue(loss, params, method="arnoldi", key=jax.random.key(0))
    with pytest.raises(ConfigError, match="num_iters"):
        top_hessian_eigenvalue(loss, params, num_iters=0, key=jax.random.key(0))
