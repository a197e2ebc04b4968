"""P-BFGS: quasi-Newton training in a DLDR subspace (Li et al., TPAMI 2022; PAPERS.md §3).

With `P ∈ R^(d×D)` (orthonormal rows, from `dldr_subspace`) and the start `w₀`, training moves
only along `w = w₀ + Pᵀα`. **Per mini-batch** (the authors' method): `g = P∇L(w)`;
`y = g − g_prev`; `s = s_prev` (the previous accepted step in α-space); if `yᵀs > 1e-20`, with
`ρ = 1/(yᵀs)`, `H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ` (`H₀ = I`); `p = −H g`; try
`0.4^m p` for `m = 0..19` and accept the first with `L(w + Pᵀ 0.4^m p) < L(w) + 0.4·0.4^m gᵀp`
(the loss on the *same* batch).

**No accepted trial.** `fallback` says what happens when none of the 20 trials passes:

- `"smallest"`: take the last trial `0.4^19 p` anyway. This is what the authors' code does
  (its loop ends with `m = 19` and applies that step).
- `"zero"` (the current default): take no step (`s = 0`; the next BFGS update is then skipped
  by the curvature guard). It never increases the batch loss.

The transformation and its reference:

- `p_bfgs(P)`: an optax `GradientTransformationExtraArgs`, like `optax.lbfgs`; `update` uses
  the `value`, `grad` and `value_fn` extra arguments (the engine `lazyrich.train.train`
  passes them). Its state holds only α-space quantities (`H`, `g_prev`, `s_prev`, the step
  count, the trials of the last line search); `P` is a field of the transformation (a pytree
  leaf, so a compiled program takes it as an input), never copied into the state. Its
  updates are `unravel(Pᵀ s)`, so starting from `w₀` the params stay in `w₀ + span(Pᵀ)`.
- the same method on flat vectors with `w = w₀ + Pᵀα` kept explicitly is the reference the
  optax form is tested against (`tests/_oracles.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, Int, PyTree

from ..errors import require

CURVATURE_EPS = 1e-20
ARMIJO_FACTOR = 0.4
ARMIJO_C = 0.4
ARMIJO_TRIES = 20
LineSearch = Literal["armijo", "optax"]
Fallback = Literal["zero", "smallest"]


def _check(linesearch: str, fallback: str) -> None:
    require(
        linesearch in ("armijo", "optax"),
        f"linesearch must be 'armijo' or 'optax', got {linesearch!r}",
    )
    require(
        fallback in ("zero", "smallest"), f"fallback must be 'zero' or 'smallest', got {fallback!r}"
    )


def bfgs_update(
    h: Float[Array, "d d"], s: Float[Array, " d"], y: Float[Array, " d"]
) -> Float[Array, "d d"]:
    """Inverse-Hessian BFGS update with the curvature guard.

    `H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ` with `ρ = 1/(yᵀs)` if `yᵀs > 1e-20`, else `H`.

    **Arguments:**

    - `h`: the inverse-Hessian estimate H, `(d, d)`.
    - `s`: the last step in α-space, `(d,)`.
    - `y`: the change of the gradient over that step, `(d,)`.

    **Returns:** the updated H, `(d, d)` (unchanged when the curvature guard fails).
    """
    ys = jnp.dot(y, s)
    ok = ys > CURVATURE_EPS
    rho = jnp.where(ok, 1.0 / jnp.where(ok, ys, 1.0), 0.0)
    eye = jnp.eye(h.shape[0], dtype=h.dtype)
    left = eye - rho * jnp.outer(s, y)
    new = left @ h @ left.T + rho * jnp.outer(s, s)
    return jnp.where(ok, new, h)


def _armijo(phi, value, slope, fallback):
    """First `t = 0.4^m` (m < 20) with `phi(t) < value + 0.4·t·slope`; `(t, trials)`."""

    def cond(c):
        m, accepted, _ = c
        return (m < ARMIJO_TRIES) & ~accepted

    def body(c):
        m, _, _ = c
        t = jnp.asarray(ARMIJO_FACTOR, value.dtype) ** m
        accepted = phi(t) < value + ARMIJO_C * t * slope
        return m + 1, accepted, t

    m, accepted, t = jax.lax.while_loop(
        cond, body, (jnp.zeros((), jnp.int32), jnp.zeros((), bool), jnp.ones((), value.dtype))
    )
    if fallback == "zero":
        t = jnp.where(accepted, t, 0.0)
    return t, m


def _direction(
    g: Array, h: Array, g_prev: Array, s_prev: Array, step: Array
) -> tuple[Array, Array]:
    """The BFGS update of H (skipped at step 0) and the search direction `−H g`."""
    h = jnp.where(step > 0, bfgs_update(h, s_prev, g - g_prev), h)
    return -h @ g, h


def _line_search(
    phi: Callable[[Array], Array],
    value: Array,
    slope: Array,
    linesearch: str,
    fallback: str,
) -> tuple[Array, Array]:
    """The step length `t` along the direction, and the trials it took.

    `phi(t)` is the batch loss at `w + t·v` with `v = Pᵀ(direction)` formed once, so a trial
    costs one forward pass and no product with P. Optax's backtracking search runs on the same
    one-dimensional problem (params `0`, update `1`, gradient `slope`).
    """
    if linesearch == "armijo":
        t, tries = _armijo(phi, value, slope, fallback)
        return t, jnp.asarray(tries, jnp.int32)
    ls = optax.scale_by_backtracking_linesearch(
        max_backtracking_steps=ARMIJO_TRIES - 1,
        slope_rtol=ARMIJO_C,
        decrease_factor=ARMIJO_FACTOR,
        increase_factor=1.0,
        max_learning_rate=1.0,
    )
    zero, one = jnp.zeros_like(value), jnp.ones_like(value)
    t, ls_state = ls.update(one, ls.init(zero), zero, value=value, grad=slope, value_fn=phi)
    tries = optax.tree_utils.tree_get(ls_state, "num_linesearch_steps")
    return jnp.asarray(t, value.dtype), jnp.asarray(tries, jnp.int32)


# --------------------------------------------------------------------------- optax form


class PBFGSState(NamedTuple):
    """State of `p_bfgs`: α-space quantities only (`P` stays in the transformation).

    **Fields:**

    - `h`: the inverse-Hessian estimate H, `(d, d)` (I at the start).
    - `g_prev`: the α-space gradient `P∇L` of the previous step, `(d,)`.
    - `s_prev`: the previous accepted step in α-space, `(d,)` (0 when none was accepted).
    - `step`: int32 scalar, steps taken (H is not updated at step 0).
    - `tries`: int32 scalar, line-search trials of the last step.
    """

    h: Float[Array, "d d"]
    g_prev: Float[Array, " d"]
    s_prev: Float[Array, " d"]
    step: Int[Array, ""]
    tries: Int[Array, ""]


class _PBFGS(eqx.Module):
    p: Float[Array, "d D"]
    linesearch: str = eqx.field(static=True)
    fallback: str = eqx.field(static=True)

    def init(self, params: PyTree) -> PBFGSState:
        flat, _ = ravel_pytree(params)
        require(
            self.p.ndim == 2 and self.p.shape[1] == flat.size,
            f"P has shape {self.p.shape} but the params have {flat.size} entries: build P "
            "from this model",
        )
        d = self.p.shape[0]
        z = jnp.zeros((d,), flat.dtype)
        return PBFGSState(
            h=jnp.eye(d, dtype=flat.dtype),
            g_prev=z,
            s_prev=z,
            step=jnp.zeros((), jnp.int32),
            tries=jnp.zeros((), jnp.int32),
        )

    def update(
        self,
        updates: PyTree,
        state: PBFGSState,
        params: PyTree = None,
        *,
        value: Array,
        grad: PyTree = None,
        value_fn: Callable[[PyTree], Array],
        **extra_args: Any,
    ) -> tuple[PyTree, PBFGSState]:
        del extra_args
        require(params is not None, "p_bfgs.update needs params (pass params=...)")
        w, unravel = ravel_pytree(params)
        p = self.p.astype(w.dtype)
        g = p @ ravel_pytree(updates if grad is None else grad)[0].astype(w.dtype)
        direction, h = _direction(g, state.h, state.g_prev, state.s_prev, state.step)
        v = direction @ p  # Pᵀ(direction), once per step: the trials only rescale it
        phi = lambda t: value_fn(unravel(w + t * v))
        value = jnp.asarray(value, w.dtype)
        t, tries = _line_search(phi, value, g @ direction, self.linesearch, self.fallback)
        new = PBFGSState(h=h, g_prev=g, s_prev=t * direction, step=state.step + 1, tries=tries)
        return unravel(t * v), new


def p_bfgs(
    p: Float[Array, "d D"],
    *,
    linesearch: LineSearch = "armijo",
    fallback: Fallback = "zero",
) -> optax.GradientTransformationExtraArgs:
    """P-BFGS (module docstring) as an optax transformation, in the shape of `optax.lbfgs`.

    `update(grad, state, params, value=..., grad=..., value_fn=...)` needs the batch loss
    `value` at `params`, its gradient, and `value_fn(params)`, the loss on the *same* batch
    (for the line search). Works on any params pytree whose `ravel_pytree` has `D` entries.

    ```python
    opt = p_bfgs(P)                        # P from dldr_subspace, (d, D)
    state = opt.init(params0)
    value, grad = jax.value_and_grad(value_fn)(params)
    updates, state = opt.update(grad, state, params, value=value, grad=grad,
                                value_fn=value_fn)
    params = optax.apply_updates(params, updates)     # += unravel(Pᵀ s)
    ```

    With the engine: `lazyrich.train.train(model_at_w0, p_bfgs(P), data, batch=1024, ...)`.

    **Arguments:**

    - `p`: `(d, D)` orthonormal rows (a pytree leaf of the transformation, not a constant).
    - `linesearch`: `"armijo"` (ours, exactly the paper's: `<`, factor 0.4, c = 0.4, 20 tries)
      or `"optax"` (`optax.scale_by_backtracking_linesearch` with the same constants, which
      accepts on `≤` and, if no trial passes, keeps the last one).
    - `fallback`: `"zero"` or `"smallest"` (the authors'), what our line search does when no
      trial passes (module docstring).

    **Returns:** an `optax.GradientTransformationExtraArgs`; `state.tries` is the number of
    line-search trials of the last step.
    """
    _check(linesearch, fallback)
    p = p if isinstance(p, jax.Array) else jnp.asarray(p)  # keeps a float64 P float64
    require(p.ndim == 2, f"P must be a (d, D) matrix, got shape {p.shape}")
    opt = _PBFGS(p, linesearch, fallback)
    return optax.GradientTransformationExtraArgs(opt.init, opt.update)  # pyright: ignore[reportArgumentType]
