"""Synthetic regression tasks on Gaussian inputs: online streams and fixed sets.

Every task is an `eqx.Module` with a pure `sample(key, n) -> (x, y)`: `x ~ N(0, I_D)` of shape
`(n, D)` and float targets `y` of shape `(n, k)`. `sample` is jittable and vmappable over `key`
(`n` must be a Python int). The task's arrays (teacher weights, index direction) are pytree
leaves, so a task can be passed into a jitted training step.

Online (one-pass) training draws a fresh batch every step with `online_batch`, which folds the
step into the key: batch `t` depends only on `(key, t)`, so runs are reproducible, resumable
from any step, and two runs with the same key see identical batches.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..errors import ConfigError, require
from ._dataset import Dataset

# E[tanh(z)^2] for z ~ N(0, 1), by adaptive quadrature (checked in tests/test_data.py).
_TANH_VAR = 0.3942944903978412
_RELU_MEAN = 1.0 / math.sqrt(2.0 * math.pi)
_RELU_STD = math.sqrt(0.5 - 1.0 / (2.0 * math.pi))

# Links standardised to mean 0 and variance 1 under z ~ N(0, 1). `heK` is the probabilists'
# Hermite polynomial He_K / sqrt(K!) (information exponent K).
LINKS: dict[str, Callable[[Array], Array]] = {
    "he1": lambda z: z,
    "he2": lambda z: (z**2 - 1.0) / math.sqrt(2.0),
    "he3": lambda z: (z**3 - 3.0 * z) / math.sqrt(6.0),
    "he4": lambda z: (z**4 - 6.0 * z**2 + 3.0) / math.sqrt(24.0),
    "relu": lambda z: (jax.nn.relu(z) - _RELU_MEAN) / _RELU_STD,
    "tanh": lambda z: jnp.tanh(z) / math.sqrt(_TANH_VAR),
}

TASKS = ("teacher", "single-index", "staircase")


class Task(eqx.Module):
    """Base class of the synthetic tasks: inputs `N(0, I_dim)`, targets of width `out_dim`.

    A subclass defines `target(x)` (the noiseless function) and `name`; `sample(key, n)`
    draws `x ~ N(0, I_dim)` in the default float dtype and returns `(x, target(x))`.

    **Fields:**

    - `dim`: input dimension D (an abstract field each subclass sets).
    """

    dim: eqx.AbstractVar[int]

    @property
    def out_dim(self) -> int:
        return 1

    @property
    def name(self) -> str:
        raise NotImplementedError

    def target(self, x: Float[Array, "n dim"]) -> Float[Array, "n k"]:
        """The noiseless target function."""
        raise NotImplementedError

    def sample(
        self, key: PRNGKeyArray, n: int
    ) -> tuple[Float[Array, "n dim"], Float[Array, "n k"]]:
        """Draw `n` fresh examples `(x, y)`; pure, jittable, vmappable over `key`."""
        x = jax.random.normal(key, (n, self.dim), dtype=jnp.result_type(float))
        return x, self.target(x)


def _check_dim(dim: int) -> None:
    require(isinstance(dim, int) and dim >= 1, f"input dimension must be an int >= 1, got {dim}")


# the teacher's activations (the names of `lazyrich.models.ACTIVATIONS`; data does not import
# models)
_ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "erf": jax.scipy.special.erf,
    "linear": lambda x: x,
}


def _teacher_apply(weights: tuple[Array, ...], activation: str, x: Array) -> Array:
    """The ntk-parameterized bias-free MLP `W_L φ(… φ(W_1 x / √d) …) / √N` on a batch."""
    phi = _ACTIVATIONS[activation]
    h = x.reshape(x.shape[0], -1)
    for i, w in enumerate(weights):
        h = phi(h) if i > 0 else h
        h = (1.0 / w.shape[1] ** 0.5) * (h @ w.T)  # as `Dense`: a Python-float multiplier
    return h


@functools.partial(jax.jit, static_argnums=range(1, 8))
def _build_teacher(key, dim, width, depth, out_dim, activation, chunk, n_chunks):
    """The teacher's weights (those of `lazyrich.models.MLP(dim, width, depth, out_dim,
    parameterization="ntk")` from the same key: standard normal, `(fan_out, fan_in)`), and
    the mean and standard deviation of each output over `chunk · n_chunks` Gaussian inputs
    (one compiled program)."""
    tkey, ekey = jax.random.split(key)
    dims = [dim] + [width] * depth + [out_dim]
    dtype = jnp.result_type(float)
    weights = tuple(
        jax.random.normal(jax.random.split(k)[0], (dims[i + 1], dims[i]), dtype)
        for i, k in enumerate(jax.random.split(tkey, depth + 1))
    )

    def outputs(k):
        x = jax.random.normal(k, (chunk, dim), dtype=dtype)
        return _teacher_apply(weights, activation, x)

    f = jax.lax.map(outputs, jax.random.split(ekey, n_chunks)).reshape(chunk * n_chunks, -1)
    std = jnp.std(f, axis=0)
    return weights, jnp.mean(f, axis=0), jnp.where(std > 0, std, 1.0)


class TeacherTask(Task):
    """A random MLP teacher, normalised so the noiseless targets have mean 0, variance 1.

    The teacher is the function of `lazyrich.models.MLP(dim, width, depth, out_dim)` in the
    `ntk` parameterization (no biases), held as plain weight arrays (`weights`, input layer
    first) so that `lazyrich.data` does not depend on `lazyrich.models`. At construction each
    output is centred and scaled with its
    mean and standard deviation over `n_estimate` fixed Gaussian inputs, so over the input
    distribution the noiseless targets have mean ≈ 0 and variance ≈ 1 (up to the sampling error
    of the estimate, about `sqrt(2/n_estimate)` relative). Labels are
    `y = (teacher(x) - mean) / std + noise · ε` with `ε ~ N(0, 1)`, so `Var y ≈ 1 + noise²`.

    **Arguments:**

    - `dim`: input dimension D.
    - `out_dim`: number of target outputs k.
    - `depth`, `width`: hidden layers and their width.
    - `activation`: `relu`, `tanh`, `erf` or `linear`.
    - `noise`: standard deviation of additive label noise.
    - `n_estimate`: inputs used to estimate the normalisation.
    - `key`: PRNG key (keyword-only); fixes the teacher and its normalisation.
    """

    weights: tuple[Float[Array, "out fan_in"], ...]
    shift: Float[Array, " k"]
    scale: Float[Array, " k"]
    dim: int = eqx.field(static=True)
    k: int = eqx.field(static=True)
    noise: float = eqx.field(static=True)
    activation: str = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        *,
        out_dim: int = 1,
        depth: int = 2,
        width: int = 256,
        activation: str = "relu",
        noise: float = 0.0,
        n_estimate: int = 16384,
        key: PRNGKeyArray,
    ):
        _check_dim(dim)
        require(noise >= 0.0 and math.isfinite(noise), f"noise must be >= 0, got {noise}")
        require(n_estimate >= 2, f"n_estimate must be >= 2, got {n_estimate}")
        require(
            activation in _ACTIVATIONS,
            f"unknown activation {activation!r}: choose one of {', '.join(_ACTIVATIONS)}",
        )
        chunk = min(n_estimate, 1024)
        self.activation = activation
        self.weights, self.shift, self.scale = _build_teacher(
            key, dim, width, depth, out_dim, activation, chunk, -(-n_estimate // chunk)
        )
        self.dim, self.k, self.noise = dim, out_dim, float(noise)

    @property
    def out_dim(self) -> int:
        return self.k

    @property
    def name(self) -> str:
        return "teacher"

    def teacher(self, x: Float[Array, "n d"]) -> Float[Array, "n k"]:
        """The raw (unnormalised) teacher output."""
        return _teacher_apply(self.weights, self.activation, x)

    def target(self, x):
        return (self.teacher(x) - self.shift) / self.scale

    def sample(self, key, n):
        xkey, nkey = jax.random.split(key)
        x, y = super().sample(xkey, n)
        if self.noise > 0:
            y = y + self.noise * jax.random.normal(nkey, y.shape, y.dtype)
        return x, y


class SingleIndexTask(Task):
    """Single-index target `y = link(w · x)` with a random unit direction `|w| = 1`.

    Named links are standardised (mean 0, variance 1 under `N(0, 1)`, see `LINKS`): `he1`…`he4`
    are normalised Hermite polynomials `He_k/sqrt(k!)` (information exponent k), `relu` is
    `(relu(z) - 1/sqrt(2π)) / sqrt(1/2 - 1/(2π))`, `tanh` is `tanh(z)/sqrt(E tanh²)`. A callable
    link is used as given.

    **Arguments:**

    - `dim`: input dimension D.
    - `link`: a name in `LINKS` or a callable `z -> link(z)`.
    - `key`: PRNG key (keyword-only) for the direction `w`.
    """

    w: Float[Array, " dim"]
    dim: int = eqx.field(static=True)
    link: str | Callable = eqx.field(static=True)

    def __init__(self, dim: int, *, link: str | Callable = "he3", key: PRNGKeyArray):
        _check_dim(dim)
        if isinstance(link, str):
            require(
                link in LINKS, f"unknown link {link!r}: choose one of {', '.join(sorted(LINKS))}"
            )
        else:
            require(callable(link), f"link must be a name in {sorted(LINKS)} or a callable")
        w = jax.random.normal(key, (dim,), dtype=jnp.result_type(float))
        self.w = w / jnp.linalg.norm(w)
        self.dim, self.link = dim, link

    @property
    def name(self) -> str:
        return "single-index"

    def target(self, x):
        fn = LINKS[self.link] if isinstance(self.link, str) else self.link
        return fn(x @ self.w)[:, None]


class StaircaseTask(Task):
    """Multi-index staircase `y = x1 + x1 x2 + x1 x2 x3 + … + x1⋯x_degree`.

    Each term is a product of distinct independent standard normals, so every term already has
    variance 1 and the terms are orthogonal: `Var y = degree`. Deterministic (no key needed).

    **Arguments:**

    - `dim`: input dimension D (>= `degree`).
    - `degree`: number of terms.
    - `key`: ignored (accepted so that `make_task` passes every task a key).

    **Raises:** `ConfigError` unless `1 <= degree <= dim`.
    """

    dim: int = eqx.field(static=True)
    degree: int = eqx.field(static=True)

    def __init__(self, dim: int, *, degree: int = 3, key: PRNGKeyArray | None = None):
        del key  # accepted for a uniform factory signature; the task is deterministic
        _check_dim(dim)
        require(degree >= 1, f"staircase degree must be >= 1, got {degree}")
        require(dim >= degree, f"staircase needs dim >= degree, got dim={dim} < degree={degree}")
        self.dim, self.degree = dim, degree

    @property
    def name(self) -> str:
        return "staircase"

    def target(self, x):
        return jnp.sum(jnp.cumprod(x[:, : self.degree], axis=1), axis=1, keepdims=True)


def online_batch(
    task: Task, key: PRNGKeyArray, step: Int[Array, ""] | int, batch: int
) -> tuple[Float[Array, "batch dim"], Float[Array, "batch k"]]:
    """The batch for global step `step` of an online (one-pass) stream.

    Equal to `task.sample(jax.random.fold_in(key, step), batch)`: a pure function of
    `(key, step)`, so the same seed gives the same stream, any step can be recomputed without
    replaying earlier ones (resume), and `step` may be traced (inside `lax.scan`).

    **Arguments:**

    - `task`: the task.
    - `key`: PRNG key of the stream (the seed of the run).
    - `step`: global step, counting from 0 (traced or Python int).
    - `batch`: batch size (Python int).

    **Returns:** `(x, y)`, x `(batch, dim)` and y `(batch, k)` in the default float dtype.
    """
    return task.sample(jax.random.fold_in(key, step), batch)


@eqx.filter_jit
def _sample(task: Task, key: PRNGKeyArray, n: int):
    return task.sample(key, n)


def fixed_set(task: Task, n_train: int, n_test: int, *, key: PRNGKeyArray) -> Dataset:
    """A finite regression `Dataset` (num_classes 0): `task.sample(key, n_train + n_test)`,
    the first `n_train` draws for training and the rest for testing.

    **Arguments:**

    - `task`: the task.
    - `n_train`, `n_test`: sizes of the two splits (each `>= 1`).
    - `key`: PRNG key of the draws.

    **Returns:** a `Dataset` named `task.name` with x `(n, dim)` and y `(n, k)` float.

    **Raises:** `ConfigError` if a size is below 1.
    """
    require(n_train >= 1, f"n_train must be >= 1, got {n_train}")
    require(n_test >= 1, f"n_test must be >= 1, got {n_test}")
    x, y = _sample(task, key, n_train + n_test)
    return Dataset(
        x[:n_train], y[:n_train], x[n_train:], y[n_train:], name=task.name, num_classes=0
    )


def make_task(name: str, dim: int, *, key: PRNGKeyArray, **kw) -> Task:
    """Build a task by name: `"teacher"`, `"single-index"` or `"staircase"`; `kw` go to it.

    **Arguments:**

    - `name`: one of `TASKS`.
    - `dim`: input dimension D.
    - `key`: PRNG key of the task (the teacher's weights, the index direction; the staircase
      ignores it).

    **Returns:** a `TeacherTask`, `SingleIndexTask` or `StaircaseTask`.

    **Raises:** `ConfigError` for an unknown name or an option the task does not take.
    """
    classes = {"teacher": TeacherTask, "single-index": SingleIndexTask, "staircase": StaircaseTask}
    if name not in classes:
        raise ConfigError(f"unknown synthetic task {name!r}: choose one of {', '.join(TASKS)}")
    try:
        return classes[name](dim, key=key, **kw)
    except TypeError as err:
        raise ConfigError(f"bad option for task {name!r}: {err}") from None
