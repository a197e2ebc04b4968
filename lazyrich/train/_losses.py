"""Losses and metrics on batches. Targets: float `(n, k)` or integer class labels `(n,)`."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..errors import require


def _as_targets(y: Array, k: int, dtype) -> Array:
    if jnp.issubdtype(y.dtype, jnp.integer):
        return jax.nn.one_hot(y, k, dtype=dtype)
    return y.astype(dtype).reshape(y.shape[0], -1)


def mse(pred: Float[Array, "n k"], y: Array) -> Float[Array, ""]:
    """Mean squared error, averaged over batch × outputs (one-hot targets for labels).

    `mean_{i,j} (pred_ij − y_ij)²`.

    **Arguments:**

    - `pred`: predictions `(n, k)`.
    - `y`: float targets `(n, k)` (or any shape with n rows, reshaped to `(n, -1)`), or
      integer labels `(n,)`, one-hot encoded to k outputs.

    **Returns:** a scalar in `pred`'s dtype.
    """
    return jnp.mean((pred - _as_targets(y, pred.shape[-1], pred.dtype)) ** 2)


def half_mse(pred: Float[Array, "n k"], y: Array) -> Float[Array, ""]:
    """Half the mean squared error, `1/(2 n k) Σ (f − y)²`: the convention of the lazy
    (kernel) theory and of `neural_tangents.predict` (`lazyrich.theory`).

    **Arguments:**

    - `pred`: `(n, k)` outputs.
    - `y`: float targets `(n, k)` or integer labels `(n,)` (one-hot targets).

    **Returns:** a scalar in `pred`'s dtype.
    """
    return 0.5 * mse(pred, y)


def cross_entropy(logits: Float[Array, "n k"], y: Array) -> Float[Array, ""]:
    """Softmax cross-entropy, averaged over the batch (labels or one-hot/soft targets).

    `−mean_i Σ_j y_ij log softmax(logits_i)_j`.

    **Arguments:**

    - `logits`: `(n, k)`.
    - `y`: integer labels `(n,)`, or one-hot / soft targets `(n, k)`.

    **Returns:** a scalar in `logits`' dtype.
    """
    targets = _as_targets(y, logits.shape[-1], logits.dtype)
    return -jnp.mean(jnp.sum(targets * jax.nn.log_softmax(logits), axis=-1))


def accuracy(pred: Float[Array, "n k"], y: Array) -> Float[Array, ""]:
    """Fraction of correct argmax predictions; for one output, sign agreement; NaN for
    real-valued multi-output regression targets.

    **Arguments:**

    - `pred`: predictions `(n, k)`.
    - `y`: integer labels `(n,)`, or float targets (`(n,)` or `(n, 1)` for sign agreement).

    **Returns:** a scalar in [0, 1] (NaN in `pred`'s dtype for float targets with k > 1).
    """
    if jnp.issubdtype(y.dtype, jnp.integer):
        return jnp.mean(jnp.argmax(pred, -1) == y)
    if pred.shape[-1] == 1:
        return jnp.mean(jnp.sign(pred[:, 0]) == jnp.sign(y.reshape(-1)))
    return jnp.asarray(jnp.nan, pred.dtype)


LOSSES: dict[str, Callable[[Array, Array], Array]] = {
    "mse": mse,
    "half_mse": half_mse,
    "ce": cross_entropy,
}
_ALIASES = {"xent": "ce"}  # the older name of "ce", still accepted


def get_loss(name: str) -> Callable[[Array, Array], Array]:
    """The loss named `name`.

    **Arguments:**

    - `name`: `"mse"` (mean over batch × outputs, no ½), `"half_mse"` (½·mse, the lazy
      theory's convention) or `"ce"` (softmax cross-entropy; `"xent"` is an alias).

    **Returns:** the function `(pred, y) -> scalar`.

    **Raises:** `ConfigError` naming the choices for any other name.
    """
    name = _ALIASES.get(name, name)
    require(name in LOSSES, f"unknown loss {name!r}: choose one of {', '.join(LOSSES)}")
    return LOSSES[name]
