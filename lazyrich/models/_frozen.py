"""Non-trainable arrays and the `(params, apply)` view of a model."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import equinox as eqx
import jax

from ._per_example import batch_call

T = TypeVar("T")


class Frozen(eqx.Module, Generic[T]):
    """Wraps a pytree that belongs to a model but is never trained.

    Fixed random matrices (RevMLP's `C` and `U`), the frozen initial copy of a centred
    network and the output scale γ live inside a `Frozen`. `functional` and `partition`
    put them in the static half of the model, so optimizers and kernels never see them,
    while they stay ordinary array leaves (γ can still be vmapped over).

    **Fields:**

    - `value`: the wrapped pytree (an array, a module, ...).
    """

    value: T


def _is_frozen(x: Any) -> bool:
    return isinstance(x, Frozen)


def _trainable(x: Any) -> bool:
    return (not _is_frozen(x)) and eqx.is_inexact_array(x)


def partition(model: Any) -> tuple[Any, Any]:
    """Split a model into `(params, rest)`: trainable floating arrays, and everything else.

    `eqx.combine(params, rest)` rebuilds the model. Leaves inside `Frozen` go to `rest`.

    **Arguments:**

    - `model`: any pytree, usually an `eqx.Module`.

    **Returns:** `(params, rest)`, two pytrees of the model's structure: `params` holds the
    inexact (floating or complex) array leaves not inside a `Frozen`, `None` elsewhere; `rest`
    holds everything else (integer arrays, `Frozen` values, static fields), `None` where a
    trainable leaf goes.
    """
    return eqx.partition(model, _trainable, is_leaf=_is_frozen)


class Apply(eqx.Module):
    """The pure function `apply(params, x)` of a model, as a pytree.

    Holds the non-trainable half of the model (`rest`: static fields, `Frozen` arrays, `None`
    where a trainable leaf goes). Because it is a pytree rather than a closure, compiled code
    is keyed on its structure: pass it through `eqx.filter_jit` (never as a
    `jax.jit(static_argnums=...)` argument: it holds arrays, so it is not hashable), and a
    second model of the same shapes reuses the compiled program.

    **Fields:**

    - `rest`: the non-trainable half of `partition(model)`.
    """

    rest: Any

    def model(self, params: Any) -> Any:
        """The model with trainable leaves `params`: `eqx.combine(params, rest)`."""
        return eqx.combine(params, self.rest)

    def __call__(self, params: Any, x: jax.Array) -> jax.Array:
        """**Arguments:**

        - `params`: the trainable half (shaped like `functional(model)[0]`).
        - `x`: a batch `(n, ...)`.

        **Returns:** the model's output on the batch, `(n, k)` (per-example models are
        vmapped; see `functional` for the rule).
        """
        return batch_call(self.model(params), x)


def functional(model: Any) -> tuple[Any, Apply]:
    """The pure-function view of a model: lazyrich's own, or any Equinox module as it is.

    **Arguments:**

    - `model`: an `eqx.Module`, either *batched* (`model(x)` maps a batch `(n, ...)` to
      `(n, k)`, as lazyrich's models do) or *per-example* (Equinox's convention: `model(x[i])`
      on one example, as `eqx.nn.MLP`, `eqx.nn.Conv2d` stacks and most user modules do).

    **Returns:**

    `(params, apply)` where `params` holds exactly the trainable leaves (the inexact arrays
    outside `Frozen`; activations and other non-array fields stay in the static half) and
    `apply` is an `Apply`: `apply(params, x)` on a batch `(n, ...)` returns `(n, *o)`, is pure
    (jit/grad/vmap-safe), and is itself a pytree (of the frozen arrays), so `eqx.filter_jit`
    caches on structure. Every lazyrich function that takes a model or `(apply, params)`
    (kernels, `train`, theory, optim, measures) goes through this `apply`.

    **How a module is recognised as per-example or batched** (the one rule, applied by
    `apply` each time it is traced; see `lazyrich.models.convention`):

    1. `lazyrich.models.per_example(m)` and `lazyrich.models.batched(m)` are what they say;
       lazyrich's own models (`MLP`, `CNN`, `RevMLP`, `Scaled`, ...) are batched.
    2. Otherwise the module is applied under `jax.eval_shape` (shapes only, nothing is
       computed) to the batch `x` and to one example `x[0]`: batched if `m(x)` works and
       returns `(n, ...)`, per-example if `m(x[0])` works.
    3. If both work (a module that broadcasts, e.g. `x @ w`), batched if a batch of `n + 1`
       also gives `(n + 1, ...)`, else per-example.
    4. If neither works: a one-line `ConfigError` naming both failures and the fix (inputs
       of the shape the model was built for, or an explicit wrapper).

    A per-example model is run on the batch with `jax.vmap`; a scalar output per example
    (`eqx.nn.MLP(..., out_size="scalar")`) becomes `(n, 1)`. Wrap a model explicitly to skip
    the shape probes, or when it accepts both a batch and one example and the rule picks the
    wrong one.
    """
    params, rest = partition(model)
    return params, Apply(rest)


def param_count(model: Any) -> int:
    """Number of trainable scalars in `model`.

    **Arguments:**

    - `model`: any pytree, usually an `eqx.Module`.

    **Returns:** a Python int, the total size of the leaves of `partition(model)[0]`.
    """
    params, _ = partition(model)
    return sum(int(x.size) for x in jax.tree.leaves(params))
