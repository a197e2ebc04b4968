"""Sharpness: the top Hessian eigenvalue of a loss, from Hessian-vector products only.

The Hessian is never formed. A Hessian-vector product is forward-over-reverse,
`Hv = jvp(grad(loss), (θ,), (v,))[1]`, costing about two gradient evaluations.

- `method="lanczos"` (default): `num_iters` Lanczos steps with full reorthogonalisation build
  a tridiagonal T = Qᵀ H Q; the largest eigenvalue of T (the top Ritz value) converges to the
  largest *algebraic* eigenvalue of H, typically to machine precision in a few dozen steps.
  It is exact once `num_iters` reaches the number of parameters (the Krylov space is all of it).
- `method="power"`: power iteration on H; converges to the eigenvalue of largest *magnitude*
  (equal to the sharpness when the spectrum's positive end dominates, as it does for a
  training loss), at the rate |λ₂/λ₁| per step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PRNGKeyArray

from ..errors import ConfigError

METHODS = ("lanczos", "power")


def hvp(loss_fn: Callable[[Any], Array], params: Any, v: Any) -> Any:
    """Hessian-vector product H(params) v of a scalar `loss_fn(params)` (forward-over-reverse).

    `Hv = jvp(grad(loss_fn), (params,), (v,))[1]`; the Hessian is never formed.

    **Arguments:**

    - `loss_fn`: scalar function of a parameter pytree.
    - `params`: the point θ at which the Hessian is taken.
    - `v`: the direction, a pytree shaped like `params`.

    **Returns:** H(θ) v, a pytree shaped like `params`.
    """
    return jax.jvp(jax.grad(loss_fn), (params,), (v,))[1]


def top_hessian_eigenvalue(
    loss_fn: Callable[[Any], Array],
    params: Any,
    *,
    num_iters: int = 30,
    method: str = "lanczos",
    key: PRNGKeyArray,
) -> tuple[Float[Array, ""], Any]:
    """Top eigenvalue (and unit eigenvector) of the Hessian of `loss_fn` at `params`.

    **Arguments:**

    - `loss_fn`: scalar function of a parameter pytree (close over the data batch).
    - `params`: the parameter pytree.
    - `num_iters`: Lanczos steps (capped at the number of parameters) or power iterations.
    - `method`: `"lanczos"` (largest algebraic eigenvalue) or `"power"` (largest magnitude).
    - `key`: PRNG key for the random start vector (keyword-only).

    **Returns:**

    `(eigenvalue, eigenvector)`; the eigenvector is a pytree like `params` with unit norm.
    Jit-compatible in `params` (`num_iters` and `method` are static).
    """
    if method not in METHODS:
        raise ConfigError(f"unknown sharpness method {method!r}: use one of {', '.join(METHODS)}")
    if int(num_iters) < 1:
        raise ConfigError(f"num_iters must be >= 1, got {num_iters}: pass 20 or more")
    flat, unravel = ravel_pytree(params)
    if flat.size == 0:
        raise ConfigError("params has no floating-point leaves: pass the trainable parameters")

    def matvec(v: Array) -> Array:
        return ravel_pytree(hvp(loss_fn, params, unravel(v)))[0]

    v0 = jax.random.normal(key, flat.shape, flat.dtype)
    v0 = v0 / jnp.linalg.norm(v0)
    if method == "power":
        value, vec = _power(matvec, v0, int(num_iters))
    else:
        value, vec = _lanczos(matvec, v0, min(int(num_iters), flat.size))
    return value, unravel(vec)


def _power(matvec: Callable[[Array], Array], v0: Array, num_iters: int) -> tuple[Array, Array]:
    def body(_, v):
        w = matvec(v)
        return w / jnp.maximum(jnp.linalg.norm(w), jnp.finfo(w.dtype).tiny)

    v = jax.lax.fori_loop(0, num_iters, body, v0)
    return jnp.vdot(v, matvec(v)), v


def _lanczos(matvec: Callable[[Array], Array], v0: Array, m: int) -> tuple[Array, Array]:
    """m Lanczos steps with full reorthogonalisation; returns the top Ritz pair."""
    n = v0.size
    dtype = v0.dtype
    eps = jnp.finfo(dtype).eps

    def body(j, carry):
        q, alpha, beta = carry
        qj = q[j]
        w = matvec(qj)
        a = jnp.vdot(qj, w)
        # full reorthogonalisation against every stored vector (twice is enough)
        mask = (jnp.arange(m) <= j).astype(dtype)[:, None]
        w = w - (q * mask).T @ ((q * mask) @ w)
        w = w - (q * mask).T @ ((q * mask) @ w)
        b = jnp.linalg.norm(w)
        # breakdown (an invariant subspace was found): the rest of T decouples harmlessly
        nxt = jnp.where(b > eps * jnp.maximum(jnp.abs(a), 1.0), w / b, jnp.zeros_like(w))
        q = jax.lax.dynamic_update_index_in_dim(q, nxt, jnp.minimum(j + 1, m - 1), 0)
        q = jnp.where(j + 1 < m, q, carry[0])
        return q, alpha.at[j].set(a), beta.at[j].set(b)

    q0 = jnp.zeros((m, n), dtype).at[0].set(v0)
    q, alpha, beta = jax.lax.fori_loop(0, m, body, (q0, jnp.zeros(m, dtype), jnp.zeros(m, dtype)))
    off = beta[: m - 1]
    t = jnp.diag(alpha) + jnp.diag(off, 1) + jnp.diag(off, -1)
    evals, evecs = jnp.linalg.eigh(t)
    vec = q.T @ evecs[:, -1]
    return evals[-1], vec / jnp.linalg.norm(vec)
