"""Named grids of hyperparameters: the vmapped axes of one engine call."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import require


def _axis(name: str, values, first: int | None) -> np.ndarray:
    v = np.asarray(values)
    require(v.size >= 1, f"the {name} grid is empty: give at least one value")
    if name == "seed":
        require(v.ndim == 1, "seed values must be a 1-D list of integers")
        require(
            bool(np.all(np.equal(np.mod(v, 1), 0))), f"seeds must be integers, got {v.tolist()}"
        )
        return v.astype(np.int64)
    require(np.issubdtype(v.dtype, np.number), f"{name} values must be numbers, got {v.tolist()}")
    require(bool(np.all(np.isfinite(v))), f"{name} values must be finite, got {v.tolist()}")
    require(
        v.ndim == 1 or (v.ndim == 2 and first is not None and v.shape[0] == first),
        f"{name} must be a list or a (n_first_axis, n) table, got shape {v.shape}",
    )
    return v.astype(np.float64)


@dataclass(frozen=True)
class Grid:
    """A product of named hyperparameter axes; every cell is one run.

    Runs are flattened in C order (the first axis slowest). An axis is a 1-D list, or a 2-D
    table of shape `(n_first, n)` whose row `i` gives the axis' values for the `i`-th value
    of the first axis (e.g. a window of learning rates below each γ's divergence boundary).
    The axis named `seed` holds integer seeds: a run's initialisation, data order and step
    noise all derive from `jax.random.key(seed)`. Without a seed axis every run uses seed 0.

    ```python
    Grid.product(gamma=[0.1, 1, 10], eta=[1e-2, 1e-1], seed=[0, 1])   # 12 runs
    ```

    **Fields:**

    - `names`: the axis names, first (slowest) axis first.
    - `values`: one NumPy array per axis, float64 (int64 for `seed`), 1-D or a 2-D
      `(n_first, n)` table. Build grids with `Grid.product`, which validates them.
    """

    names: tuple[str, ...]
    values: tuple[np.ndarray, ...]

    @staticmethod
    def product(**axes: Sequence[float] | np.ndarray) -> Grid:
        """A grid from keyword axes, in the order given (the first is the slowest).

        **Arguments:**

        - `**axes`: `name=values`; values 1-D, or 2-D `(n_first, n)` for an axis that depends
          on the first one; `seed` must be integers.

        **Returns:** the `Grid`.
        """
        require(len(axes) >= 1, "a grid needs at least one axis (e.g. seed=[0])")
        names = tuple(axes)
        first = None
        values = []
        for i, (name, v) in enumerate(axes.items()):
            arr = _axis(name, v, first)
            require(i > 0 or arr.ndim == 1, f"the first axis {name!r} must be 1-D")
            if i == 0:
                first = arr.size
            values.append(arr)
        return Grid(names, tuple(values))

    @staticmethod
    def of(
        gammas: Sequence[float] | np.ndarray,
        etas: Sequence[float] | np.ndarray,
        seeds: Sequence[int] | np.ndarray,
    ) -> Grid:
        """The γ × η × seed grid of a γ sweep (γ, η > 0; η may be a per-γ table)."""
        for name, v in (("gamma", gammas), ("eta", etas)):
            arr = np.asarray(v, dtype=float)
            require(arr.size == 0 or bool(np.all(arr > 0)), f"{name} values must be > 0, got {v}")
        return Grid.product(gamma=gammas, eta=etas, seed=seeds)

    def axis(self, name: str) -> np.ndarray:
        require(name in self.names, f"the grid has no axis {name!r} (axes: {self.names})")
        return self.values[self.names.index(name)]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(v.shape[-1] for v in self.values)

    @property
    def num_runs(self) -> int:
        return math.prod(self.shape)

    # the γ-sweep view (gamma, eta, seed axes)
    gammas = property(lambda self: self.axis("gamma"))
    etas = property(lambda self: self.axis("eta"))
    seeds = property(lambda self: self.axis("seed"))

    def eta_table(self) -> np.ndarray:
        """η per (γ, η-index), shape `(n_gamma, n_eta)`."""
        e = self.axis("eta")
        return np.broadcast_to(e, (self.shape[0], e.shape[-1]))

    def runs(self) -> dict[str, np.ndarray]:
        """Per-run values of every axis, flattened in C order (`seed` as int64)."""
        idx = np.meshgrid(*(np.arange(n) for n in self.shape), indexing="ij")
        first = idx[0].ravel()
        out = {}
        for name, v, i in zip(self.names, self.values, idx, strict=True):
            out[name] = v[first, i.ravel()] if v.ndim == 2 else v[i.ravel()]
        return out

    def run_seeds(self) -> np.ndarray:
        """Per-run seed (0 when the grid has no seed axis)."""
        runs = self.runs()
        return runs["seed"] if "seed" in runs else np.zeros(self.num_runs, np.int64)
