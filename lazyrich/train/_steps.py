"""Training steps the engine runs: any optax transformation, or a custom `Step`.

A step sees one run (the engine vmaps it): its trainable `params`, its optimizer `state`, the
batch `(x, y)`, the run's hyperparameters `hp` (a dict of traced scalars: `eta`, `gamma`,
`seed`, ...), its `apply(params, x)` and a PRNG key for this step. It returns the new params,
the new state and the batch loss *before* the update (the value divergence is judged on).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar

import equinox as eqx
import jax
import optax
from jaxtyping import Array, PRNGKeyArray, PyTree

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


def as_step(step: Step | optax.GradientTransformation | Callable) -> Step:
    """A `Step` from a `Step`, an optax transformation or a function `hp -> transformation`.

    **Arguments:**

    - `step`: a `Step` (returned as is), or anything `OptaxStep` takes.

    **Returns:** a `Step`: `step` itself or `OptaxStep(step)`.
    """
    if isinstance(step, Step):
        return step
    return OptaxStep(step)
