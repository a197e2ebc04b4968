"""Tasks and models of the γ–η study: online streams and centred μP MLPs and CNNs.

Synthetic tasks (`teacher`, `single-index`, `staircase`) are true online streams: every batch
is fresh Gaussian inputs. `mnist1d` has no generator of unlimited size here, so its stream
samples *with replacement* from a pool of `pool` generated training examples (the test set is
generated alongside, disjoint from the pool). Generating mnist1d costs about 3 ms per example
on a CPU, so pools stay moderate; with `steps × batch` larger than the pool examples repeat.

Architectures: `mlp` (`lazyrich.models.MLP` with L − 1 hidden layers, L = `--depth` the
number of weight layers, as in the authors' code) on every task, and `cnn`
(`lazyrich.models.CNN`: conv(N) → avgpool → conv(2N) → avgpool → fc(8N) → readout, μP with
conv layers scaled by 1/sqrt(C_in)) on image-shaped tasks only: mnist1d, whose examples are
40-long 1-D signals, fed to the CNN as shape (40, 1) (length, one channel). Both are wrapped
by `scaled(..., centre=True)` and trained at learning rate η0·N, N the model's width (the
first convolution's channels for the CNN; its `lr_multiplier`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lazyrich.data import make_task, mnist1d
from lazyrich.errors import ConfigError, require
from lazyrich.models import CNN, MLP, scaled
from lazyrich.train import Factory, Grid, Stream, get_loss, train

SYNTHETIC = ("teacher", "single-index", "staircase")
TASKS = (*SYNTHETIC, "mnist1d")
CLASSIFICATION = ("mnist1d",)
IMAGE = ("mnist1d",)  # tasks with image-shaped inputs (spatial axes), which the CNN can take
ARCHS = ("mlp", "cnn")
CNN_DEPTH = 4  # weight layers of the CNN: conv, conv, fc, readout (the pools have no weights)


@dataclass(frozen=True)
class OnlineSetup:
    """Everything that defines one run of the study's γ sweep except γ, η and the seed: the
    study's configuration of `lazyrich.train.train` (see `sweep`).

    **Fields:**

    - `make_model`: `(key, gamma) -> model`; traced under `jax.vmap`, so it builds the model
      from array γ.
    - `sample`: `(key, n) -> (x, y)`, the online stream. `test_x`, `test_y`: held-out set.
    - `batch`: batch size. `loss`: `mse` or `ce`.
    - `lr_multiplier`: the learning rate is `eta * lr_multiplier` (μP: the width N).
    - `direction`: an optax transformation of the gradient (identity: plain SGD).
    - `threshold`: a batch loss above this (or non-finite) marks the run diverged.
    """

    make_model: Callable[[jax.Array, jax.Array], Any]
    sample: Callable[[jax.Array, int], tuple[jax.Array, jax.Array]]
    test_x: jax.Array
    test_y: jax.Array
    batch: int
    loss: str = "mse"
    lr_multiplier: float = 1.0
    direction: optax.GradientTransformation = field(default_factory=optax.identity)
    threshold: float = 1e6

    @property
    def stream(self) -> Stream:
        """The online data as the engine takes it."""
        return Stream(self.sample, self.test_x, self.test_y)

    @property
    def factory(self) -> Factory:
        """The engine's model factory, `make_model(key, hp["gamma"])`."""
        return GammaModel(self.make_model)

    @property
    def step(self) -> Callable:
        """The step θ ← θ − η·`lr_multiplier`·direction(∇L) as `hp -> transformation` (η the
        run's `hp["eta"]`); equal setups give steps that share compiled programs."""
        direction, mult = self.direction, float(self.lr_multiplier)
        return lambda hp: optax.chain(direction, optax.scale(-hp["eta"] * mult))


class GammaModel(Factory):
    """`make_model(key, hp["gamma"])`; equal for the same `make_model`, so calls share programs."""

    make_model: Callable = eqx.field(static=True)

    def __call__(self, key, hp):
        return self.make_model(key, hp["gamma"])


SWEPT = ("train_loss", "test_loss", "test_accuracy", "diverged", "diverged_step")


def sweep(
    setup: OnlineSetup, grid: Grid, record_at: Sequence[int] | np.ndarray, **kw: Any
) -> dict[str, np.ndarray]:
    """One γ × η × seed sweep of `setup` through the engine (`lazyrich.train.train`).

    **Arguments:**

    - `setup`: model, stream and step (`OnlineSetup`).
    - `grid`: the γ × η × seed grid (`Grid.of`).
    - `record_at`: increasing steps (>= 1); the last one is the length of every run.
    - `kw`: passed to `train` (`x64` as a function of a run's hyperparameters, `chunk_size`,
      `store`, `tag`, `devices`, `progress`, `description`).

    **Returns:** NumPy arrays: `train_loss`, `test_loss`, `test_accuracy` of shape
    (γ, η, seed, step) (NaN after a run's divergence), `diverged` and `diverged_step` of shape
    (γ, η, seed), and `step`.
    """
    ds = train(
        setup.factory,
        setup.step,
        setup.stream,
        grid=grid,
        record_at=record_at,
        batch=setup.batch,
        loss=setup.loss,
        threshold=setup.threshold,
        **kw,
    )
    out = {k: ds[k].values for k in SWEPT}
    out["step"] = ds["step"].values
    return out


@dataclass(frozen=True)
class OnlineTask:
    """A task of the study: its online data (a `lazyrich.train.Stream`) and the sizes its
    models need, which the stream alone does not say (classes of integer labels, image shape)."""

    name: str
    stream: Stream
    out_dim: int
    in_shape: tuple[int, ...] | None = None
    """Spatial shape plus channels of one example for the CNN; None for flat-vector tasks."""

    @property
    def in_dim(self) -> int:
        """Features of one flat example (the test inputs' last axis)."""
        return int(self.stream.x_test.shape[-1])


def make_stream(name: str, dim: int, n_test: int, *, pool: int, seed: int = 12345) -> OnlineTask:
    """The task `name` and its stream (synthetic tasks use `dim`; mnist1d has 40 inputs, 10
    classes)."""
    if name == "mnist1d":
        data = mnist1d(pool, n_test, seed=seed)
        x_pool, y_pool = data.x_train, data.y_train

        def sample(key, n):
            idx = jax.random.randint(key, (n,), 0, x_pool.shape[0])
            return x_pool[idx], y_pool[idx]

        length = data.x_train.shape[1]
        return OnlineTask(name, Stream(sample, data.x_test, data.y_test), 10, (length, 1))
    task = make_task(name, dim, key=jax.random.key(seed))
    test_x, test_y = task.sample(jax.random.key(seed + 1), n_test)
    return OnlineTask(name, Stream(task.sample, test_x, test_y), task.out_dim)


def make_setup(
    stream: OnlineTask,
    *,
    arch: str = "mlp",
    width: int,
    depth: int,
    activation: str,
    batch: int,
    loss: str,
    threshold: float,
    bias: bool = True,
) -> OnlineSetup:
    """Centred μP model f = (f_θ − f_θ0)/γ, plain SGD at learning rate η0·N (the paper's).

    `arch="mlp"`: an MLP with `depth` = L weight layers (L − 1 hidden layers of width
    N = `width`). Biases (`bias`) as the authors': zero-initialised inside each layer's
    scaling, trained (`bias_style="paper"`). `arch="cnn"`: the
    CNN with N = `width` channels in its first convolution (its depth is fixed; `depth` is
    ignored); the stream must be image-shaped (`stream.in_shape`).
    """
    require(arch in ARCHS, f"unknown --arch {arch!r}: choose one of {', '.join(ARCHS)}")
    require(depth >= 2, f"--depth {depth}: L counts weight layers; pass --depth 2 or more")
    biases = {"use_bias": bias, "bias_style": "paper"}
    if arch == "cnn":
        in_shape = stream.in_shape
        if in_shape is None:
            raise ConfigError(
                f"--arch cnn needs an image-shaped task, and {stream.name} has flat vector "
                f"inputs: use --task {' or '.join(IMAGE)}, or --arch mlp"
            )

        def make_model(key, gamma):
            net = CNN(in_shape, width, stream.out_dim, activation=activation, key=key, **biases)
            return scaled(net, gamma=gamma, centre=True)
    else:

        def make_model(key, gamma):
            net = MLP(
                stream.in_dim, width, depth - 1, stream.out_dim,
                activation=activation, key=key, **biases,
            )  # fmt: skip
            return scaled(net, gamma=gamma, centre=True)

    return OnlineSetup(
        make_model=make_model,
        sample=stream.stream.sample,
        test_x=stream.stream.x_test,
        test_y=stream.stream.y_test,
        batch=batch,
        loss=loss,
        lr_multiplier=float(width),
        threshold=threshold,
    )


def initial_loss(setup: OnlineSetup, out_dim: int) -> float:
    """Test loss of the centred model at initialisation (its output is exactly 0)."""
    zero = jnp.zeros((setup.test_y.shape[0], out_dim), jnp.float32)
    return float(get_loss(setup.loss)(zero, setup.test_y))
