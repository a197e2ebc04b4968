"""Training one model on a finite dataset: epoch-shuffled mini-batches, steps in `lax.scan`.

`fit` is the loop the finite-data studies share (DLDR, active parameters, exact GN baselines,
complexity). Steps between two recording points run as one jitted `lax.scan`; at each
recording point the full train and test sets are evaluated (in chunks) and an optional
callback adds its own measurements.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from ..data import Dataset, batch_indices, num_batches
from ..errors import require
from ._losses import accuracy, get_loss

StepFn = Callable[[Any, Any, jax.Array, jax.Array], tuple[Any, Any, jax.Array]]


def evaluate(apply, params, x, y, *, loss: str = "xent", chunk: int = 2048) -> tuple[float, float]:
    """Mean loss and accuracy of `apply(params, ·)` on `(x, y)`, in chunks of `chunk` rows.

    **Arguments:**

    - `apply`, `params`: the model as `(params, apply)` (see `lazyrich.functional`).
    - `x`: inputs `(n, ...)`.
    - `y`: integer labels `(n,)` or float targets `(n, k)`.
    - `loss`: `"xent"` (default; alias of `"ce"`) or `"mse"`, as in `get_loss`.
    - `chunk`: rows per jitted evaluation (bounds memory; default 2048).

    **Returns:** `(loss, accuracy)` as Python floats, example-weighted means over all n rows
    (`accuracy` as in `lazyrich.train.accuracy`, NaN for multi-output regression).
    """
    loss_fn = get_loss(loss)
    n = x.shape[0]
    total_loss, total_acc = 0.0, 0.0
    for lo in range(0, n, chunk):
        xb, yb = x[lo : lo + chunk], y[lo : lo + chunk]
        lv, av = _eval_chunk(apply, params, xb, yb, loss_fn)
        total_loss += float(lv) * xb.shape[0]
        total_acc += float(av) * xb.shape[0]
    return total_loss / n, total_acc / n


@eqx.filter_jit  # apply is a pytree (lazyrich.models.Apply): may hold arrays
def _eval_chunk(apply, params, x, y, loss_fn):
    pred = apply(params, x)
    return loss_fn(pred, y), accuracy(pred, y)


def sgd_step(apply, optimizer: optax.GradientTransformation, loss: str = "xent") -> StepFn:
    """`step(params, opt_state, x, y) -> (params, opt_state, loss)` for an optax optimizer.

    The same `(apply, optimizer, loss)` gives the same function, so `fit` reuses its compiled
    training loop across calls (e.g. several runs of one model from different starts).

    **Arguments:**

    - `apply`: the model's `apply(params, x)`.
    - `optimizer`: an optax transformation (a fresh, uncached step if it is not hashable).
    - `loss`: `"xent"` (default) or `"mse"`, as in `get_loss`.

    **Returns:** the step function; its `loss` is the batch loss before the update.
    """
    try:
        return _cached_sgd_step(apply, optimizer, loss)
    except TypeError:  # an unhashable optimizer: build a fresh step
        return _make_sgd_step(apply, optimizer, loss)


@functools.lru_cache(maxsize=64)
def _cached_sgd_step(apply, optimizer, loss):
    return _make_sgd_step(apply, optimizer, loss)


def _make_sgd_step(apply, optimizer, loss):
    loss_fn = get_loss(loss)

    def step(params, opt_state, x, y):
        value, grads = jax.value_and_grad(lambda p: loss_fn(apply(p, x), y))(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    return step


def fit(
    apply: Callable[[Any, jax.Array], jax.Array],
    params: Any,
    data: Dataset,
    optimizer: optax.GradientTransformation | None = None,
    *,
    batch: int,
    record_at: Sequence[int],
    key: jax.Array,
    loss: str = "xent",
    step: StepFn | None = None,
    opt_state: Any = None,
    callback: Callable[[int, Any], dict[str, float]] | None = None,
    progress: bool = False,
    description: str = "train",
) -> tuple[Any, dict[str, np.ndarray]]:
    """Train on `data` with epoch-shuffled batches; record metrics after `record_at` steps.

    **Arguments:**

    - `apply`, `params`: the model as `(params, apply)` (see `lazyrich.functional`).
    - `data`: a `lazyrich.data.Dataset`.
    - `optimizer`: an optax transformation (ignored when `step` is given).
    - `batch`: batch size (1 <= batch <= n_train); each epoch is a fresh permutation,
      the remainder dropped.
    - `record_at`: increasing global step counts (>= 0) at which to record; epoch e ends at
      step `(e + 1) * (n_train // batch)`.
    - `key`: shuffling key (keyword-only).
    - `loss`: `xent` or `mse`.
    - `step`: a custom `step(params, opt_state, x, y) -> (params, opt_state, loss)`
      (e.g. a Gauss-Newton step); default `sgd_step(apply, optimizer, loss)`.
    - `opt_state`: the optimizer state to start from (default `optimizer.init(params)`; give
      it with a custom `step`).
    - `callback`: `callback(step, params) -> dict` of extra measurements at each record.
    - `progress`, `description`: a tqdm bar over the records, and its label.

    **Returns:** `(params, history)`; history maps `step`, `epoch`, `train_loss` (window mean
    of batch losses since the previous record; NaN at step 0), `train_loss_full`,
    `train_accuracy`, `test_loss`, `test_accuracy` and the callback's keys to arrays.
    """
    record = np.asarray(record_at, dtype=np.int64)
    require(record.size >= 1 and record[0] >= 0, "record_at must be a non-empty list of steps >= 0")
    require(bool(np.all(np.diff(record) > 0)), "record_at must be increasing")
    nb = num_batches(data.n_train, batch)
    if step is None:
        require(optimizer is not None, "fit needs an optimizer or a step function")
        step = sgd_step(apply, optimizer, loss)
        if opt_state is None:
            opt_state = optimizer.init(params)

    x_train, y_train = data.x_train, data.y_train

    def advance(params, opt_state, start, num):
        # the data and key are arguments, not constants baked into the program (MNIST-sized
        # constants slow compilation and double memory); the program is reused across `fit`
        # calls with the same step function and shapes
        return _advance(step, batch, params, opt_state, start, num, x_train, y_train, key)

    history: dict[str, list] = {}
    t = 0
    for r in tqdm(record, desc=description, disable=not progress, unit="rec"):
        window = np.nan
        if r > t:
            params, opt_state, total = advance(params, opt_state, jnp.int32(t), jnp.int32(r - t))
            window = float(total) / (r - t)
            t = int(r)
        row = {"step": t, "epoch": t / nb, "train_loss": window}
        row["train_loss_full"], row["train_accuracy"] = evaluate(
            apply, params, x_train, y_train, loss=loss
        )
        row["test_loss"], row["test_accuracy"] = evaluate(
            apply, params, data.x_test, data.y_test, loss=loss
        )
        if callback is not None:
            row.update(callback(t, params))
        for k, v in row.items():
            history.setdefault(k, []).append(v)
    return params, {k: np.asarray(v) for k, v in history.items()}


@functools.partial(jax.jit, static_argnames=("step", "batch"))
def _advance(step, batch, params, opt_state, start, num, x_train, y_train, key):
    """`num` training steps from global step `start` (batches from `batch_indices`)."""
    n_train = x_train.shape[0]

    def body(t, carry):
        params, opt_state, total = carry
        idx = batch_indices(key, n_train, batch, t)
        params, opt_state, value = step(params, opt_state, x_train[idx], y_train[idx])
        return params, opt_state, total + value

    zero = jnp.zeros((), jnp.result_type(float))
    return jax.lax.fori_loop(start, start + num, body, (params, opt_state, zero))
