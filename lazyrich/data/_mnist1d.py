"""MNIST-1D (Greydanus 2020), generated locally at any size with the `mnist1d` package.

Nothing is downloaded: we call `mnist1d.data.make_dataset` directly (never `get_dataset`, which
may fetch a pickle from GitHub and writes files to the working directory).
"""

from __future__ import annotations

import functools
import random

import jax.numpy as jnp
import numpy as np

from ..errors import require
from ._dataset import Dataset


@functools.lru_cache(maxsize=8)
def _generate(num_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`num_samples` examples (x float64 (n, 40), y int (n,)) in the package's shuffled order.

    `make_dataset` seeds and draws from the *global* `numpy.random` and `random` states; both are
    saved and restored so calling this leaves the caller's random state untouched.
    """
    from mnist1d.data import get_dataset_args, get_templates, make_dataset

    args = get_dataset_args(as_dict=False)
    # we split ourselves: train_split 1 puts everything in 'x'
    vars(args).update(num_samples=num_samples, seed=seed, train_split=1.0)
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    try:
        data = make_dataset(args, template=get_templates())
    finally:
        np.random.set_state(np_state)  # noqa: NPY002
        random.setstate(py_state)
    x = np.concatenate([data["x"], data["x_test"]])
    y = np.concatenate([data["y"], data["y_test"]])
    return x, y


def mnist1d(n_train: int = 4000, n_test: int = 1000, *, seed: int = 0) -> Dataset:
    """MNIST-1D: 10 classes of 1-D signals of length 40.

    Generates `n_train + n_test` examples (rounded up to a multiple of 10: the generator makes
    the same number per class) with the package's default transformations and `seed`, takes
    the first `n_train` as training set and the next `n_test` as test set, and standardises
    x with the training set's mean and standard deviation (one scalar each, as the package does).
    Generation is cached in-process by `(size, seed)`. The package's own 4000/1000 split uses
    seed 42: `mnist1d(seed=42)` has the same examples in the same order.

    **Arguments:**

    - `n_train`, `n_test`: split sizes (>= 1).
    - `seed`: seed of the generator; the same seed gives the same dataset.

    **Returns:** a `Dataset` named `"mnist1d"`, x float32 `(n, 40)`, y int32 labels in 0..9.
    """
    require(n_train >= 1, f"mnist1d n_train must be >= 1, got {n_train}")
    require(n_test >= 1, f"mnist1d n_test must be >= 1, got {n_test}")
    require(seed >= 0, f"mnist1d seed must be >= 0, got {seed}")
    total = -(-(n_train + n_test) // 10) * 10
    x, y = _generate(total, int(seed))
    x = jnp.asarray(x, dtype=jnp.float32)
    y = jnp.asarray(y, dtype=jnp.int32)
    x_train, x_test = x[:n_train], x[n_train : n_train + n_test]
    mean, std = jnp.mean(x_train), jnp.std(x_train)
    return Dataset(
        (x_train - mean) / std,
        y[:n_train],
        (x_test - mean) / std,
        y[n_train : n_train + n_test],
        name="mnist1d",
        num_classes=10,
    )
