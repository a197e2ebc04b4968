"""`Dataset`: a fixed train/test split held as JAX arrays (a pytree, so it can enter `jit`)."""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..errors import require


def one_hot(labels: Int[Array, " n"], num_classes: int) -> Float[Array, "n c"]:
    """One-hot encode integer labels.

    **Arguments:**

    - `labels`: integer class labels of shape `(n,)`, in `0 … num_classes-1`.
    - `num_classes`: the number of classes `c`.

    **Returns:** float array of shape `(n, c)` (default float dtype) with a single 1 per row.
    """
    return jax.nn.one_hot(labels, num_classes, dtype=jnp.result_type(float))


@functools.partial(jax.jit, static_argnums=(2, 3))
def _noisy_labels(key: PRNGKeyArray, y: Int[Array, " n"], count: int, num_classes: int):
    """`y` with `count` entries, chosen without replacement, redrawn uniformly from the classes."""
    pkey, lkey = jax.random.split(key)
    chosen = jax.random.permutation(pkey, y.shape[0])[:count]
    new = jax.random.randint(lkey, (count,), 0, num_classes, dtype=y.dtype)
    return y.at[chosen].set(new)


class Dataset(eqx.Module):
    """A train/test split.

    Classification: `y_train`, `y_test` are integer labels of shape `(n,)` and `num_classes >= 2`.
    Regression: they are float targets of shape `(n, k)` and `num_classes == 0`.

    Arrays are pytree leaves; `name` and `num_classes` are static, so a `Dataset` can be passed
    straight into a jitted function.

    **Fields:**

    - `x_train`, `y_train`, `x_test`, `y_test`: the arrays.
    - `name`: a short name (`"mnist1d"`, `"teacher"`, …), used in results and figures.
    - `num_classes`: number of classes, or 0 for regression.
    """

    x_train: Float[Array, "n_train ..."]
    y_train: Array
    x_test: Float[Array, "n_test ..."]
    y_test: Array
    name: str = eqx.field(static=True)
    num_classes: int = eqx.field(static=True)

    def __check_init__(self):
        require(
            self.x_train.shape[0] == self.y_train.shape[0],
            f"dataset {self.name!r}: {self.x_train.shape[0]} train inputs but "
            f"{self.y_train.shape[0]} train targets; build it with matching lengths",
        )
        require(
            self.x_test.shape[0] == self.y_test.shape[0],
            f"dataset {self.name!r}: {self.x_test.shape[0]} test inputs but "
            f"{self.y_test.shape[0]} test targets; build it with matching lengths",
        )
        if self.num_classes == 0:
            require(
                self.y_train.ndim == 2,
                f"dataset {self.name!r}: regression targets must have shape (n, k), "
                f"got {self.y_train.shape}; reshape them to (n, k)",
            )
        else:
            require(
                self.y_train.ndim == 1,
                f"dataset {self.name!r}: class labels must have shape (n,), "
                f"got {self.y_train.shape}; pass integer labels, not one-hot",
            )

    @property
    def is_classification(self) -> bool:
        return self.num_classes > 0

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example, e.g. `(40,)` or `(28, 28, 1)`."""
        return tuple(int(s) for s in self.x_train.shape[1:])

    @property
    def out_dim(self) -> int:
        """Network output dimension: `num_classes`, or `k` for regression targets `(n, k)`."""
        return self.num_classes if self.is_classification else int(self.y_train.shape[1])

    def targets(self, y: Array) -> Float[Array, "n k"]:
        """Float training targets: one-hot labels for classification, `y` itself for regression."""
        return one_hot(y, self.num_classes) if self.is_classification else y

    def one_hot(self, y: Array) -> Float[Array, "n k"]:
        """Alias of `targets` (one-hot for classification)."""
        return self.targets(y)

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> Dataset:
        """The first `n_train` training and first `n_test` test examples (`None` keeps all).

        Deterministic (no shuffling): loaders already return shuffled or fixed-order sets.
        """
        n_train = self.n_train if n_train is None else n_train
        n_test = self.n_test if n_test is None else n_test
        require(
            1 <= n_train <= self.n_train,
            f"n_train={n_train} but {self.name!r} has {self.n_train} training examples; "
            f"pass 1 <= n_train <= {self.n_train}",
        )
        require(
            1 <= n_test <= self.n_test,
            f"n_test={n_test} but {self.name!r} has {self.n_test} test examples; "
            f"pass 1 <= n_test <= {self.n_test}",
        )
        return Dataset(
            self.x_train[:n_train],
            self.y_train[:n_train],
            self.x_test[:n_test],
            self.y_test[:n_test],
            name=self.name,
            num_classes=self.num_classes,
        )

    def with_label_noise(self, fraction: float, *, key: PRNGKeyArray) -> Dataset:
        """Randomize the labels of a fraction of the *training* set (test labels stay clean).

        Exactly `round(fraction · n_train)` training examples, chosen uniformly without
        replacement, get a new label drawn uniformly from all `num_classes` classes (as in
        Zhang et al. 2017, so about `1/num_classes` of them keep their label by chance).

        **Arguments:**

        - `fraction`: in `[0, 1]`.
        - `key`: PRNG key (keyword-only).

        **Returns:** a new `Dataset`, same `name` with a `-noisy` suffix.
        """
        require(
            self.is_classification,
            f"label noise needs class labels but {self.name!r} is a regression set; "
            "use a classification dataset",
        )
        require(
            0.0 <= float(fraction) <= 1.0, f"label-noise fraction must be in [0, 1], got {fraction}"
        )
        count = int(round(float(fraction) * self.n_train))
        y_train = _noisy_labels(key, self.y_train, count, self.num_classes)
        return Dataset(
            self.x_train,
            y_train,
            self.x_test,
            self.y_test,
            name=f"{self.name}-noisy",
            num_classes=self.num_classes,
        )

    def binary(self, threshold: int) -> Dataset:
        """Two classes: label `1` where the class label is `> threshold`, else `0`.

        E.g. `threshold=4` gives the "class > 4" binary MNIST / CIFAR-10 of PAPERS.md §5.
        """
        require(
            self.is_classification,
            f"binary() needs class labels but {self.name!r} is a regression set; "
            "use a classification dataset",
        )
        require(
            0 <= threshold < self.num_classes - 1,
            f"binary threshold must be in 0..{self.num_classes - 2} for {self.num_classes} "
            f"classes, got {threshold}",
        )
        dtype = self.y_train.dtype
        return Dataset(
            self.x_train,
            (self.y_train > threshold).astype(dtype),
            self.x_test,
            (self.y_test > threshold).astype(dtype),
            name=f"{self.name}-binary",
            num_classes=2,
        )
