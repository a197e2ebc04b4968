"""The final params that `train(..., keep_params=True)` keeps in its Dataset, read back.

The engine returns one type, an `xarray.Dataset`. With `keep_params=True` each trainable leaf
of the runs' final params is one variable `params.<i>` (leaves in `jax.tree.leaves` order of
the model's trainable part, `lazyrich.models.partition`), with the grid's dimensions followed
by the leaf's own. `final_params(ds, model)` rebuilds the model's pytree from them, each leaf
stacked over the runs in grid (C) order; selecting runs first (`ds.sel(gamma=0.1)`) selects
their params too.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jaxtyping import PyTree

from ..errors import require
from ..models import partition
from ._programs import is_factory

PARAMS_PREFIX = "params."


class _AnyHyperparameters(dict):
    """Hyperparameters for tracing a factory's structure: any name reads as a zero scalar (an
    int32 for `seed`); the params' structure cannot depend on the values (runs are vmapped)."""

    def __missing__(self, name: str) -> jax.Array:
        return jnp.zeros((), jnp.int32 if name == "seed" else jnp.result_type(float))


def _template(model: Any) -> PyTree:
    """The trainable part of `model` (a module, or a factory traced for its structure)."""
    if not is_factory(model):
        return partition(model)[0]
    hp = _AnyHyperparameters()
    return eqx.filter_eval_shape(lambda: partition(model(jax.random.key(0), hp))[0])


def final_params(ds: xr.Dataset, model: Any) -> PyTree:
    """The final trainable params kept by `train(..., keep_params=True)`, as `model`'s pytree.

    **Arguments:**

    - `ds`: the Dataset `train` returned (or a selection of its runs).
    - `model`: the `model` argument given to `train` (a module or a factory; only its
      structure is used).

    **Returns:** the trainable part of the model (`lazyrich.models.partition`) with every leaf
    a NumPy array of shape `(runs, *leaf_shape)`, the runs of `ds` in grid (C) order; combine
    run `i` with the model's other leaves by `eqx.combine`.

    **Raises:** `ConfigError` if `ds` holds no params (pass `keep_params=True` to `train`) or
    their number differs from the model's trainable leaves (not the model that was trained).
    """
    names = sorted(
        (str(k) for k in ds.data_vars if str(k).startswith(PARAMS_PREFIX)),
        key=lambda k: int(k.removeprefix(PARAMS_PREFIX)),
    )
    require(bool(names), "the Dataset holds no final params: pass keep_params=True to train")
    leaves, treedef = jax.tree.flatten(_template(model))
    require(
        len(leaves) == len(names),
        f"the Dataset holds {len(names)} param leaves but the model has {len(leaves)} trainable "
        "leaves: pass the model (or factory) that was trained",
    )
    grid_dims = ds["diverged"].ndim
    stacked = [np.asarray(ds[k].values).reshape((-1, *ds[k].shape[grid_dims:])) for k in names]
    for leaf, value in zip(leaves, stacked, strict=True):
        require(
            tuple(leaf.shape) == value.shape[1:],
            f"a kept param of shape {value.shape[1:]} does not fit the model's leaf of shape "
            f"{tuple(leaf.shape)}: pass the model (or factory) that was trained",
        )
    return jax.tree.unflatten(treedef, stacked)
