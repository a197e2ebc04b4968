"""`load_dataset(name, ...)`: every dataset by name, for the command line and the studies."""

from __future__ import annotations

import os

import jax

from ..errors import ConfigError, require
from ._dataset import Dataset
from ._files import load_cifar5m, load_cifar10, load_mnist
from ._mnist1d import mnist1d
from ._synthetic import TASKS, fixed_set, make_task

FILE_DATASETS = ("mnist", "fashion-mnist", "cifar10", "cifar5m")
DATASETS = ("mnist1d",) + FILE_DATASETS + TASKS


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    **kw,
) -> Dataset:
    """Load or generate a dataset by name.

    - `"mnist1d"`: `mnist1d(n_train or 4000, n_test or 1000, seed=seed)`; no data directory.
    - `"mnist"`, `"fashion-mnist"`, `"cifar10"`, `"cifar5m"`: read from `data_dir` (else
      `$LAZYRICH_DATA`), then cut to the first `n_train` / `n_test` examples if given.
    - `"teacher"`, `"single-index"`, `"staircase"`: a fixed regression set from
      `make_task(name, dim, key=...)` (pass `dim=`, default 32; other `kw` go to the task) with
      `n_train or 4000` / `n_test or 1000` draws. The task is built from `PRNGKey(seed)` folded
      with 0 and the samples from it folded with 1.

    `kw` go to the loader (e.g. `standardize=False`, `parts=` for CIFAR-5m).

    **Arguments:**

    - `name`: one of `DATASETS`.
    - `data_dir`: directory of the file datasets (default: `$LAZYRICH_DATA`); ignored otherwise.
    - `n_train`, `n_test`: sizes (`>= 1`); `None` for the defaults above / the whole file.
    - `seed`: seed of `mnist1d` and of the synthetic tasks (file datasets ignore it).

    **Returns:** a `Dataset`.

    **Raises:** `ConfigError` for an unknown name, a size below 1 or an option the loader does
    not take; `DataError` (from the loaders) for a missing or corrupt file.
    """
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    require(n_train is None or n_train >= 1, f"n_train must be >= 1, got {n_train}")
    require(n_test is None or n_test >= 1, f"n_test must be >= 1, got {n_test}")
    if name == "mnist1d":
        return mnist1d(n_train or 4000, n_test or 1000, seed=seed, **kw)
    if name in TASKS:
        key = jax.random.PRNGKey(seed)
        dim = kw.pop("dim", 32)
        task = make_task(name, dim, key=jax.random.fold_in(key, 0), **kw)
        return fixed_set(task, n_train or 4000, n_test or 1000, key=jax.random.fold_in(key, 1))
    try:
        if name == "cifar5m":
            if n_test is not None:
                kw["n_test"] = n_test
            data = load_cifar5m(data_dir, n_train=n_train, **kw)
        elif name == "cifar10":
            data = load_cifar10(data_dir, **kw)
        else:
            data = load_mnist(data_dir, fashion=(name == "fashion-mnist"), **kw)
    except TypeError as err:
        raise ConfigError(f"bad option for dataset {name!r}: {err}") from None
    return data.subset(n_train, n_test)
