"""MNIST / CIFAR-10 read from the data directory, shared by the studies that use those files.

The files are read once per process (`validate` checks the requested sizes against them before
anything is written, and `run` then takes its subset from the same cached copy).
"""

from __future__ import annotations

import functools

from lazyrich.data import Dataset, load_dataset, resolve_data_dir
from lazyrich.errors import require


@functools.lru_cache(maxsize=1)
def _load(name: str, root: str) -> Dataset:
    return load_dataset(name, root)


def load_files(name: str, data_dir: str | None = None) -> Dataset:
    """The whole dataset `name` ("mnist", "cifar10", …) from the resolved data directory
    (`--data-dir` / `LAZYRICH_DATA`; one clear error line if there is none or a file is
    missing)."""
    return _load(name, str(resolve_data_dir(data_dir)))


def require_sizes(name: str, n_train: int, n_test: int, data_dir: str | None = None) -> None:
    """One clear error line unless the files of `name` hold `n_train` and `n_test` examples."""
    full = load_files(name, data_dir)
    require(
        n_train <= full.n_train and n_test <= full.n_test,
        f"{name} has {full.n_train} training and {full.n_test} test examples: pass "
        f"--n-train <= {full.n_train} and --n-test <= {full.n_test}",
    )


def load_subset(name: str, n_train: int, n_test: int, data_dir: str | None = None) -> Dataset:
    """The first `n_train` training and `n_test` test examples of `name` (from `data_dir`, else
    the resolved data directory)."""
    return load_files(name, data_dir).subset(n_train, n_test)
