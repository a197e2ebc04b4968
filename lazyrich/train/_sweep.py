"""γ sweeps of online SGD: the engine (`train`) with a γ × η × seed grid.

`run_sweep(setup, grid, record_at)` is the engine on an online `Stream` with the model
`setup.make_model(key, γ)` and the step `θ ← θ − η·lr_multiplier·direction(∇L)`; it returns
NumPy arrays shaped like the grid. Per step, each seed's online batch is drawn once and shared
by every run with that seed, so runs that differ only in γ or η see identical data; the centred
model's frozen initial copy is evaluated on it once per seed (see `lazyrich.train.train`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import equinox as eqx
import jax
import numpy as np
import optax

from ..errors import require
from ..results import StudyDir
from ._engine import train
from ._grid import Grid
from ._losses import get_loss
from ._programs import Factory, Stream
from ._steps import Step

ModelFn = Callable[[jax.Array, jax.Array], Any]  # (key, gamma) -> model
METRICS = ("train_loss", "test_loss", "test_accuracy")
SampleFn = Callable[[jax.Array, int], tuple[jax.Array, jax.Array]]  # (key, n) -> (x, y)


@dataclass(frozen=True)
class OnlineSetup:
    """Everything that defines one run of a γ sweep except γ, η and the seed.

    **Fields:**

    - `make_model`: `(key, gamma) -> model`; traced under `jax.vmap`, so it must build the
      model from array γ (e.g. `lambda k, g: scaled(MLP(..., key=k), gamma=g)`).
    - `sample`: `(key, n) -> (x, y)`, the online stream (a fresh batch per step).
    - `test_x`, `test_y`: held-out set for test loss and accuracy.
    - `batch`: batch size. `loss`: `mse` or `ce`.
    - `lr_multiplier`: the learning rate is `eta * lr_multiplier` (μP: the width N).
    - `direction`: an optax transformation applied to the gradient before scaling by the
      learning rate (default: identity, i.e. plain SGD; `optax.trace(0.9)` for momentum).
    - `threshold`: a batch loss above this (or non-finite) marks the run diverged.
    """

    make_model: ModelFn
    sample: SampleFn
    test_x: jax.Array
    test_y: jax.Array
    batch: int
    loss: str = "mse"
    lr_multiplier: float = 1.0
    direction: optax.GradientTransformation = field(default_factory=optax.identity)
    threshold: float = 1e6

    def __post_init__(self):
        require(self.batch >= 1, f"batch size must be >= 1, got {self.batch}")
        require(self.threshold > 0, f"divergence threshold must be > 0, got {self.threshold}")
        get_loss(self.loss)


class _GammaModel(Factory):
    """`make_model(key, hp["gamma"])`; equal for equal `make_model`, so calls share programs."""

    make_model: ModelFn = eqx.field(static=True)

    def __call__(self, key, hp):
        return self.make_model(key, hp["gamma"])


class ScaledDirection(Step):
    """`θ ← θ − η·lr_multiplier·direction(∇L)` with η the run's `hp["eta"]`."""

    direction: optax.GradientTransformation
    lr_multiplier: float = eqx.field(static=True)

    def init(self, params, *, apply, hp, key):
        del apply, hp, key
        return self.direction.init(params)

    def update(self, params, state, batch, *, apply, hp, key, loss):
        del key
        x, y = batch
        value, grads = jax.value_and_grad(lambda p: loss(apply(p, x), y))(params)
        direction, state = self.direction.update(grads, state, params)
        step = (-hp["eta"] * self.lr_multiplier).astype(value.dtype)
        return jax.tree.map(lambda p, d: p + step * d, params, direction), state, value


def run_sweep(
    setup: OnlineSetup,
    grid: Grid,
    record_at: Sequence[int] | np.ndarray,
    *,
    chunk_size: int | None = None,
    x64: bool | Callable[[np.ndarray], bool] | None = None,
    store: StudyDir | None = None,
    tag: str = "sweep",
    progress: bool = True,
    description: str = "sweep",
    devices: Sequence[Any] | None = None,
    process: tuple[int, int] | None = None,
) -> dict[str, np.ndarray]:
    """Run every cell of a γ × η × seed `grid` with online SGD (see `lazyrich.train.train`).

    **Arguments:**

    - `setup`: the task, model and optimizer (see `OnlineSetup`).
    - `grid`: the γ × η × seed grid (`Grid.of`).
    - `record_at`: increasing step counts (>= 1); the last one is the length of every run.
    - `x64`: float64 for `True`, float32 for `False`, the current setting for `None`, or a
      function of γ values (e.g. `lambda g: g.min() < 1e-2`), applied per run.
    - `chunk_size`, `store`, `tag`, `progress`, `description`, `devices`, `process`: as in
      `train`.

    **Returns:** a dict of NumPy arrays: `train_loss`, `test_loss`, `test_accuracy` of shape
    (γ, η, seed, step) (NaN after a run's divergence), `diverged` and `diverged_step` of shape
    (γ, η, seed), and `step`.
    """
    by_gamma = (lambda hp: bool(x64(np.array([hp["gamma"]])))) if callable(x64) else x64
    ds = train(
        _GammaModel(setup.make_model),
        ScaledDirection(setup.direction, float(setup.lr_multiplier)),
        Stream(setup.sample, setup.test_x, setup.test_y),
        grid=grid,
        record_at=record_at,
        batch=setup.batch,
        loss=setup.loss,
        threshold=setup.threshold,
        chunk_size=chunk_size,
        x64=by_gamma,
        store=store,
        tag=tag,
        devices=devices,
        process=process,
        progress=progress,
        description=description,
    )
    assert not isinstance(ds, tuple)
    out = {k: ds[k].values for k in (*METRICS, "diverged", "diverged_step")}
    out["step"] = ds["step"].values
    return out
