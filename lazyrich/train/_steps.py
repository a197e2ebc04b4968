"""Training steps the engine runs: any optax transformation, or a custom `Step`.

A step sees one run (the engine vmaps it): its trainable `params`, its optimizer `state`, the
batch `(x, y)`, the run's hyperparameters `hp` (a dict of traced scalars: `eta`, `gamma`,
`seed`, ...), its `apply(params, x)` and a PRNG key for this step. It returns the new params,
the new state and the batch loss *before* the update (the value divergence is judged on).
"""

from __future__ import annotations

import abc
import functools
import hashlib
import types
from collections.abc import Callable
from typing import Any, ClassVar

import equinox as eqx
import jax
import numpy as np
import optax
from jaxtyping import Array, PRNGKeyArray, PyTree

from ..errors import ConfigError

Apply = Callable[[PyTree, Array], Array]
LossFn = Callable[[Array, Array], Array]
HParams = dict[str, Array]


class Step(eqx.Module):
    """A training step for the engine (`lazyrich.train.train`).

    Subclass it for methods that are not gradient transformations (a line search that
    evaluates the loss, a step that draws coins, a step that needs the model's structure).
    Fields are the step's configuration; array fields are inputs of the compiled program
    (not constants), non-array fields are part of its cache key.

    A subclass that branches per run with `lax.cond` (e.g. PLWS's coin) sets the class
    attribute `branches = True`: a chunk of one run is then not vmapped, so the cond stays a
    conditional that runs one branch (under `vmap` it becomes a select that runs both). Other
    steps are vmapped even for one run, so results do not depend on the chunk size.
    """

    branches: ClassVar[bool] = False

    @abc.abstractmethod
    def init(self, params: PyTree, *, apply: Apply, hp: HParams, key: PRNGKeyArray) -> Any:
        """The optimizer state of one run."""

    @abc.abstractmethod
    def update(
        self,
        params: PyTree,
        state: Any,
        batch: tuple[Array, Array],
        *,
        apply: Apply,
        hp: HParams,
        key: PRNGKeyArray,
        loss: LossFn,
    ) -> tuple[PyTree, Any, Array]:
        """`(params, state, batch_loss)` after one step; `batch_loss` is before the update."""


class OptaxStep(Step):
    """A step of an optax transformation on the gradient of the batch loss.

    `optimizer` is a `GradientTransformation`, or a function `hp -> GradientTransformation`
    (so the learning rate can be a swept axis: `lambda hp: optax.sgd(hp["eta"])`). A
    `GradientTransformationExtraArgs` (e.g. `optax.lbfgs`, `lazyrich.optim.exact_gauss_newton`)
    also receives `value`, `grad`, `value_fn` (the batch loss as a function of params),
    `x`, `y` and `apply`.

    A swept learning rate times a fixed multiplier applied to any direction, θ ← θ −
    η·N·direction(∇L) with η = `hp["eta"]` (μP's width N; `direction` e.g. `optax.identity()`
    for SGD, `optax.trace(0.9)` for momentum), is
    `lambda hp: optax.chain(direction, optax.scale(-hp["eta"] * N))`.

    **Fields:**

    - `optimizer`: the transformation, or a function `hp -> transformation`.
    """

    optimizer: Any

    def _transform(self, hp: HParams) -> optax.GradientTransformation:
        opt = self.optimizer
        if isinstance(opt, optax.GradientTransformation):
            return opt
        return opt(hp)

    def init(self, params, *, apply, hp, key):
        del apply, key
        return self._transform(hp).init(params)

    def update(self, params, state, batch, *, apply, hp, key, loss):
        del key
        x, y = batch
        value_fn = lambda p: loss(apply(p, x), y)
        value, grads = jax.value_and_grad(value_fn)(params)
        opt = self._transform(hp)
        if isinstance(opt, optax.GradientTransformationExtraArgs):
            updates, state = opt.update(
                grads,
                state,
                params,
                value=value,
                grad=grads,
                value_fn=value_fn,
                x=x,
                y=y,
                apply=apply,
            )
        else:
            updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value


class _Unkeyable(Exception):
    pass


_SCALARS = (bool, int, float, complex, str, bytes, type(None))


def _structure(obj: Any, depth: int = 0) -> Any:
    """A hashable description of a closure that equals another's iff both compute the same.

    Python scalars and dtypes by value, tuples / lists / dicts element-wise, functions by code
    object, defaults and closure contents, `functools.partial` by its parts, an array by its
    shape, dtype and contents (a closure bakes it into the program as a constant), any other
    pytree (an `eqx.Module`) by its tree structure and its leaves so described; anything else
    (an arbitrary object, a tracer) raises `_Unkeyable`.
    """
    if depth > 12:
        raise _Unkeyable
    go = functools.partial(_structure, depth=depth + 1)
    if isinstance(obj, _SCALARS):
        return (type(obj), obj)
    if isinstance(obj, (tuple, list)):
        return (type(obj), tuple(go(o) for o in obj))
    if isinstance(obj, dict):
        return (dict, tuple((go(k), go(v)) for k, v in obj.items()))
    if isinstance(obj, types.FunctionType):
        try:
            cells = tuple(go(c.cell_contents) for c in obj.__closure__ or ())
        except ValueError:  # an empty cell
            raise _Unkeyable from None
        kw = obj.__kwdefaults__ or {}
        return ("fn", obj.__code__, go(obj.__defaults__ or ()), go(dict(kw)), cells)
    if isinstance(obj, functools.partial):
        return ("partial", go(obj.func), go(obj.args), go(dict(obj.keywords)))
    if isinstance(obj, (type, types.BuiltinFunctionType)):
        return ("id", obj)
    if isinstance(obj, np.dtype):
        return ("dtype", str(obj))
    if isinstance(obj, (np.ndarray, np.generic, jax.Array)):
        if isinstance(obj, jax.core.Tracer):  # pyright: ignore[reportAttributeAccessIssue]
            raise _Unkeyable
        a = np.asarray(obj)
        return ("array", a.shape, str(a.dtype), hashlib.sha256(a.tobytes()).hexdigest())
    leaves, treedef = jax.tree.flatten(obj)
    if not (len(leaves) == 1 and leaves[0] is obj):  # a pytree node (an eqx.Module, ...)
        return ("tree", treedef, tuple(go(leaf) for leaf in leaves))
    raise _Unkeyable


class _Keyed:
    """A function that compares (and hashes) by `_structure`, so two `optax.sgd(0.1)` built
    apart share one compiled program. A function whose captured values cannot be described
    (`_structure`) is a `ConfigError`: there is no identity fallback."""

    __slots__ = ("fn", "key")

    def __init__(self, fn: Callable):
        self.fn = fn
        try:
            self.key = _structure(fn)
            hash(self.key)
        except (_Unkeyable, TypeError):
            name = getattr(fn, "__qualname__", repr(fn))
            raise ConfigError(
                f"the optimizer function {name} captures a value that cannot be compared by "
                "value (an arbitrary object or a traced array), so its compiled program cannot "
                "be keyed: hold that value in a pytree (an eqx.Module field, e.g. of a "
                "lazyrich.train.Step subclass) instead of a closure"
            ) from None

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def __eq__(self, other):
        return isinstance(other, _Keyed) and (self.fn is other.fn or self.key == other.key)

    def __hash__(self):
        return hash(self.key)


def _keyed(optimizer: Any) -> Any:
    """`optimizer` with its plain-function leaves wrapped in `_Keyed` (arrays, equinox
    modules and their bound methods are left to the usual pytree handling)."""
    return jax.tree.map(
        lambda leaf: _Keyed(leaf) if isinstance(leaf, types.FunctionType) else leaf, optimizer
    )


def as_step(step: Step | optax.GradientTransformation | Callable) -> Step:
    """A `Step` from a `Step`, an optax transformation or a function `hp -> transformation`.

    **Arguments:**

    - `step`: a `Step` (returned as is), or anything `OptaxStep` takes.

    **Returns:** a `Step`: `step` itself or `OptaxStep(step)`. The compiled programs are keyed on
    what the transformation's closures compute (code, defaults, Python scalars captured), so a
    second `optax.sgd(0.1, momentum=0.9)` built apart reuses the first one's programs. A closure
    that captures an array is keyed on the array's shape, dtype and contents, one that captures
    a pytree (an `eqx.Module`) on its structure and leaves.

    **Raises:** `ConfigError` for a function that captures a value comparable neither by value
    nor as a pytree (an arbitrary object, a traced array).
    """
    if isinstance(step, Step):
        return step
    return OptaxStep(_keyed(step))
