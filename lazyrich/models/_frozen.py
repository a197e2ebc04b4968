"""Non-trainable arrays and the `(params, apply)` view of a model."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import equinox as eqx
import jax

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

        **Returns:** the model's output on the batch, `(n, k)`.
        """
        return self.model(params)(x)


def functional(model: Any) -> tuple[Any, Apply]:
    """The pure-function view of a batched model.

    **Arguments:**

    - `model`: an `eqx.Module` with `model(x)` mapping a batch `(n, ...)` to `(n, k)`.

    **Returns:**

    `(params, apply)` where `params` holds exactly the trainable leaves and `apply` is an
    `Apply`: `apply(params, x) = model_with(params)(x)` is pure (jit/grad/vmap-safe), and
    `apply` is itself a pytree (of the frozen arrays), so `eqx.filter_jit` caches on structure.
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
