"""The 'sinusoidal ball': a 2-D binary task with a wavy boundary and label noise (the
synthetic task of Nakkiran et al. 2019, PAPERS.md §5)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ._dataset import Dataset

BALL_CENTRE = (0.3, 0.3)
BALL_RADIUS = 0.8
BALL_AMPLITUDE = 0.25
BALL_FREQUENCY = 6


def ball_labels(x: Float[Array, "n 2"]) -> Int[Array, " n"]:
    """Clean ball label: 1 iff ‖x − c‖ < r0·(1 + a·sin(k·θ)), θ the angle of x − c.

    **Arguments:**

    - `x`: points `(n, 2)` (any float dtype).

    **Returns:** int32 labels `(n,)` in {0, 1}, without label noise.
    """
    z = x - jnp.asarray(BALL_CENTRE, x.dtype)
    r = jnp.sqrt(jnp.sum(z**2, axis=1))
    theta = jnp.arctan2(z[:, 1], z[:, 0])
    boundary = BALL_RADIUS * (1.0 + BALL_AMPLITUDE * jnp.sin(BALL_FREQUENCY * theta))
    return (r < boundary).astype(jnp.int32)


@functools.partial(jax.jit, static_argnums=0)
def ball(n: int, *, noise: float, key: PRNGKeyArray) -> tuple[Array, Array, Array]:
    """`n` draws of the sinusoidal ball with label noise.

    x is uniform on the square [−1, 1]²; the clean label is `ball_labels(x)` (a wavy disc of
    radius r0 = 0.8 around c = (0.3, 0.3), amplitude a = 0.25, k = 6 lobes; about 47% ones, and
    the best linear classifier gets about 78% of clean labels right); each label is then flipped
    independently with probability `noise`.

    **Arguments:**

    - `n`: number of draws (a Python int, static under the `jax.jit` this is wrapped in).
    - `noise`: probability in [0, 1] of flipping each label.
    - `key`: PRNG key of the draws.

    **Returns:** `(x (n, 2) float, y (n,) int32 noisy labels, flipped (n,) bool)`.
    """
    kx, kf = jax.random.split(key)
    x = jax.random.uniform(kx, (n, 2), minval=-1.0, maxval=1.0)
    clean = ball_labels(x)
    flipped = jax.random.bernoulli(kf, noise, (n,))
    return x, jnp.where(flipped, 1 - clean, clean).astype(jnp.int32), flipped


def ball_dataset(n_train: int, n_test: int, *, noise: float, key: PRNGKeyArray) -> Dataset:
    """A train/test split of `ball(n_train + n_test, noise=noise, key=key)` (2 classes).

    **Arguments:**

    - `n_train`, `n_test`: sizes of the two splits (the first `n_train` draws train).
    - `noise`: probability of flipping each label, train and test alike.
    - `key`: PRNG key of the draws.

    **Returns:** a `Dataset` named `"ball"` with `num_classes=2`: x `(n, 2)` float32, y `(n,)`
    int32 noisy labels.
    """
    x, y, _ = ball(n_train + n_test, noise=noise, key=key)
    return Dataset(x[:n_train], y[:n_train], x[n_train:], y[n_train:], name="ball", num_classes=2)
