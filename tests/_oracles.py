"""Test oracles: references that library code is checked against, kept out of the public API.

- Flat-vector P-BFGS (`init_p_bfgs`, `p_bfgs_step`, `p_bfgs_params`, `subspace_value_and_grad`):
  the method of `lazyrich.optim.p_bfgs` on flat vectors with `w = w0 + Pᵀα` kept explicitly,
  written separately from the optax form (it shares only the BFGS update and the line search of
  `lazyrich/optim/_pbfgs.py`), so the optax transformation on a parameter pytree can be
  compared with it step by step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from lazyrich.errors import require
from lazyrich.optim._pbfgs import Fallback, LineSearch, _check, _direction, _line_search


class FlatPBFGSState(NamedTuple):
    """State of the flat-vector P-BFGS (`p_bfgs_step`): `w = w0 + Pᵀ alpha`.

    **Fields:**

    - `w0`: the flat start `(D,)`.
    - `p`: the subspace, `(d, D)` orthonormal rows.
    - `alpha`: the coordinates α, `(d,)`.
    - `h`, `g_prev`, `s_prev`, `step`, `tries`: as in `PBFGSState`.
    - `loss`: the batch loss at the start of the last step (0 before the first).
    """

    w0: Float[Array, " D"]
    p: Float[Array, "d D"]
    alpha: Float[Array, " d"]
    h: Float[Array, "d d"]
    g_prev: Float[Array, " d"]
    s_prev: Float[Array, " d"]
    step: Int[Array, ""]
    loss: Float[Array, ""]
    tries: Int[Array, ""]


def init_p_bfgs(w0: Float[Array, " D"], p: Float[Array, "d D"]) -> FlatPBFGSState:
    """Initial flat P-BFGS state: `alpha = 0`, `H = I`.

    **Arguments:**

    - `w0`: the flat start `(D,)` (`ravel_pytree` of the parameters).
    - `p`: `(d, D)` orthonormal rows (from `dldr_subspace`); α, H and the loss take its dtype.

    **Returns:** a `FlatPBFGSState` at step 0.

    **Raises:** `ConfigError` unless `w0` is 1-D and `p` is `(d, D)` with D = `w0.size`.
    """
    w0 = jnp.asarray(w0)
    p = jnp.asarray(p)
    require(w0.ndim == 1, f"w0 must be a flat vector (use ravel_pytree), got shape {w0.shape}")
    require(
        p.ndim == 2 and p.shape[1] == w0.shape[0],
        f"P has shape {p.shape} but w0 has {w0.shape[0]} entries: build P from this model",
    )
    d = p.shape[0]
    z = jnp.zeros((d,), p.dtype)
    return FlatPBFGSState(
        w0=w0,
        p=p,
        alpha=z,
        h=jnp.eye(d, dtype=p.dtype),
        g_prev=z,
        s_prev=z,
        step=jnp.zeros((), jnp.int32),
        loss=jnp.zeros((), p.dtype),
        tries=jnp.zeros((), jnp.int32),
    )


def subspace_value_and_grad(
    loss_fn: Callable[[Array, Any], Array],
    w0: Float[Array, " D"],
    p: Float[Array, "d D"],
    alpha: Float[Array, " d"],
    batch: Any,
) -> tuple[Float[Array, ""], Float[Array, " d"]]:
    """`L(w)` and the α-space gradient `g = P ∇L(w)` at `w = w0 + Pᵀα`.

    **Arguments:**

    - `loss_fn`: `loss_fn(w_flat, batch) -> scalar`.
    - `w0`: the flat start `(D,)`.
    - `p`: the subspace, `(d, D)`.
    - `alpha`: the coordinates α, `(d,)`.
    - `batch`: anything `loss_fn` takes.

    **Returns:** `(L(w), g)`, a scalar and `(d,)`.
    """
    w = w0 + p.T @ alpha
    value, grad_w = jax.value_and_grad(loss_fn)(w, batch)
    return value, p @ grad_w


def p_bfgs_step(
    loss_fn: Callable[[Array, Any], Array],
    state: FlatPBFGSState,
    batch: Any,
    *,
    linesearch: LineSearch = "armijo",
    fallback: Fallback = "zero",
) -> FlatPBFGSState:
    """One flat P-BFGS step on one mini-batch (jittable; `loss_fn` and the options static).

    **Arguments:**

    - `loss_fn`: `loss_fn(w_flat, batch) -> scalar`, with `w_flat` the raveled parameters.
    - `state`: from `init_p_bfgs` or a previous step.
    - `batch`: anything `loss_fn` takes; the line search reuses it.
    - `linesearch`, `fallback`: as in `p_bfgs`.

    **Returns:** the new state; `state.loss` is the batch loss at the start of the step and
    `state.tries` the number of line-search trials used.
    """
    _check(linesearch, fallback)
    w = state.w0 + state.alpha @ state.p
    value, grad_w = jax.value_and_grad(loss_fn)(w, batch)
    g = state.p @ grad_w
    direction, h = _direction(g, state.h, state.g_prev, state.s_prev, state.step)
    v = direction @ state.p
    phi = lambda t: loss_fn(w + t * v, batch)
    t, tries = _line_search(phi, value, g @ direction, linesearch, fallback)
    s = t * direction
    return state._replace(
        alpha=state.alpha + s,
        h=h,
        g_prev=g,
        s_prev=s,
        step=state.step + 1,
        loss=value,
        tries=tries,
    )


def p_bfgs_params(state: FlatPBFGSState) -> Float[Array, " D"]:
    """The current flat parameters `w0 + Pᵀα`.

    **Arguments:**

    - `state`: a `FlatPBFGSState`.

    **Returns:** the flat parameters `(D,)`.
    """
    return state.w0 + state.p.T @ state.alpha
