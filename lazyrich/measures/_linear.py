"""The best linear classifier L: multinomial logistic regression trained to convergence.

Objective (full batch, strictly convex in the weights):

    J(W, b) = mean_i [ logsumexp(x̃_i W + b) − (x̃_i W + b)_{y_i} ] + (l2 / 2) ‖W‖²

with x̃ the flattened inputs, z-scored with the training mean and standard deviation when
`standardize=True` (the transform is stored in `params` and applied by `predict`). The bias is
not penalised. Minimised with L-BFGS and a zoom line search (`optax.lbfgs`) inside one jitted
`lax.while_loop`, stopped when the gradient norm falls below `tol` or after `steps` iterations.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import cast

import jax
import jax.numpy as jnp
import optax
import optax.tree_utils as otu
from jaxtyping import Array, Float, Int

from ..errors import ConfigError

Params = dict[str, Array]


def logistic_loss(params: Params, x: Float[Array, "n d"], y: Int[Array, " n"], l2: float) -> Array:
    """The objective J above, on already-transformed features x (no standardisation here).

    **Arguments:**

    - `params`: `{"w": (d, K), "b": (K,)}` (other entries are ignored).
    - `x`: features `(n, d)`, already flattened (and standardised if wanted).
    - `y`: integer labels `(n,)` in `[0, K)`.
    - `l2`: the weight decay on W.

    **Returns:** the scalar J(W, b): mean cross-entropy plus `(l2 / 2) ‖W‖²`.
    """
    logits = x @ params["w"] + params["b"]
    nll = jax.nn.logsumexp(logits, -1) - jnp.take_along_axis(logits, y[:, None], -1)[:, 0]
    return jnp.mean(nll) + 0.5 * l2 * jnp.sum(params["w"] ** 2)


def fit_logistic(
    x: Float[Array, "n ..."],
    y: Int[Array, " n"],
    *,
    num_classes: int,
    l2: float = 1e-4,
    steps: int = 500,
    tol: float = 1e-7,
    standardize: bool = True,
) -> tuple[Params, Callable[[Array], Array]]:
    """Fit multinomial logistic regression to convergence (L-BFGS, full batch, jitted).

    **Arguments:**

    - `x`: inputs of shape `(n, ...)` (flattened to `(n, d)`).
    - `y`: integer labels in `[0, num_classes)`.
    - `num_classes`: K.
    - `l2`: weight decay on W (> 0 keeps the optimum finite on separable data).
    - `steps`: maximum L-BFGS iterations; `tol`: stop when ‖∇J‖ < tol.
    - `standardize`: z-score features with the training statistics first.

    **Returns:**

    `(params, predict)`: `params` has `w (d, K)`, `b (K,)`, `mean (d,)`, `scale (d,)`,
    `loss` (final objective), `grad_norm` and `iterations`; `predict(x)` returns hard labels
    `(n,)` (int32) and is jit-compatible.
    """
    x = jnp.asarray(x)
    y = jnp.asarray(y)
    if x.ndim < 2 or y.ndim != 1:
        raise ConfigError(
            f"expected x of shape (n, ...) and y of shape (n,), got {x.shape} and {y.shape}"
        )
    if x.shape[0] != y.shape[0]:
        raise ConfigError(
            f"x has {x.shape[0]} samples but y has {y.shape[0]}: pass matching inputs and labels"
        )
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise ConfigError(f"labels have dtype {y.dtype}: pass integer class labels (.astype(int))")
    if num_classes < 2:
        raise ConfigError(f"num_classes must be >= 2, got {num_classes}")
    if int(y.min()) < 0 or int(y.max()) >= num_classes:
        raise ConfigError(
            f"labels span [{int(y.min())}, {int(y.max())}] but num_classes={num_classes}: "
            "map labels to 0..num_classes-1"
        )
    if not l2 >= 0:
        raise ConfigError(f"l2 must be >= 0, got {l2}")
    x = x.reshape(x.shape[0], -1)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    if standardize:
        mean = x.mean(0)
        scale = jnp.where(x.std(0) > 1e-8, x.std(0), 1.0)
    else:
        mean = jnp.zeros(x.shape[1], x.dtype)
        scale = jnp.ones(x.shape[1], x.dtype)
    params = _fit(
        (x - mean) / scale, y.astype(jnp.int32), num_classes, float(l2), int(steps), float(tol)
    )
    params = {**params, "mean": mean, "scale": scale}

    def predict(xq: Array) -> Array:
        xq = jnp.asarray(xq).reshape(jnp.shape(xq)[0], -1)
        logits = ((xq - params["mean"]) / params["scale"]) @ params["w"] + params["b"]
        return jnp.argmax(logits, -1).astype(jnp.int32)

    return params, predict


@functools.partial(jax.jit, static_argnums=(2, 4))
def _fit(x: Array, y: Array, k: int, l2: float, steps: int, tol: float) -> Params:
    d = x.shape[1]
    init = {"w": jnp.zeros((d, k), x.dtype), "b": jnp.zeros(k, x.dtype)}
    fun = lambda p: logistic_loss(p, x, y, l2)
    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(fun)

    def step(carry):
        p, state = carry
        value, grad = value_and_grad(p, state=state)
        updates, state = opt.update(grad, state, p, value=value, grad=grad, value_fn=fun)
        return optax.apply_updates(p, updates), state

    def keep_going(carry):
        _, state = carry
        count = otu.tree_get(state, "count")
        grad = otu.tree_get(state, "grad")
        return (count == 0) | ((count < steps) & (otu.tree_norm(grad) >= tol))

    final, state = jax.lax.while_loop(keep_going, step, (init, opt.init(init)))
    p = cast(Params, final)
    value, grad = jax.value_and_grad(fun)(p)
    return {
        "w": p["w"],
        "b": p["b"],
        "loss": value,
        "grad_norm": otu.tree_norm(grad),
        "iterations": otu.tree_get(state, "count"),
    }
