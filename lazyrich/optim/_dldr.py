"""DLDR: training in a low-dimensional subspace of the SGD trajectory (PAPERS.md §3).

Li et al. (TPAMI 2022) sample `t` parameter vectors during ordinary SGD, centre them, take the
top `d` principal directions `P ∈ R^(d×D)` and restart from `w₀` with `w = w₀ + Pᵀα`, training
only the `d` coordinates `α`:

- `TrajectorySampler` records flattened parameters to host memory (float32), or spills them to
  `.npy` chunks in a directory for big models.
- `dldr_subspace(samples, d)`: PCA through the `t×t` Gram matrix (never a `D×D` matrix).
- `p_sgd`: SGD with momentum on the projected gradient `PᵀP g` (an optax transformation).
- P-BFGS (quasi-Newton in α with Armijo backtracking) lives in `_pbfgs.py`: `p_bfgs(P)`, an
  optax `GradientTransformationExtraArgs`, and the flat-vector reference `p_bfgs_step`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float

from ..errors import require
from ._lapack_threads import eigh

# --------------------------------------------------------------------------- sampling


class TrajectorySampler:
    """Records flattened parameter vectors during training, as float32 on the host.

    Use `sampler.record(params)` from a training loop (at initialization and every k steps or
    every epoch). The device→host copy is started asynchronously and collected at the next
    `record` or at `samples()`, so recording does not stall the loop on the transfer.
    With `directory`, rows are spilled to `chunk_00000.npy`, … every `chunk_rows` records, so
    host memory holds at most `chunk_rows` vectors.

    **Arguments:**

    - `directory`: where to spill chunks (created if missing); `None` keeps everything in memory.
    - `chunk_rows`: records per chunk file (only with `directory`).
    """

    def __init__(self, directory: str | os.PathLike | None = None, *, chunk_rows: int = 16):
        require(chunk_rows >= 1, f"chunk_rows must be >= 1, got {chunk_rows}")
        self.directory = None if directory is None else Path(directory)
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        self.chunk_rows = chunk_rows
        self._rows: list[np.ndarray] = []
        self._pending: list[jax.Array] = []
        self._chunks: list[Path] = []
        self._count = 0
        self.unravel: Callable[[Array], Any] | None = None
        self.dim: int | None = None

    def record(self, params: Any) -> None:
        """Append `ravel_pytree(params)` as one float32 row."""
        flat, unravel = ravel_pytree(params)
        if self.unravel is None:
            self.unravel, self.dim = unravel, int(flat.size)
        require(
            flat.size == self.dim,
            f"parameter vector has {flat.size} entries, earlier records had {self.dim}: "
            "record the same model",
        )
        flat = flat.astype(jnp.float32)
        self._collect()
        flat.copy_to_host_async()
        self._pending.append(flat)
        self._count += 1

    def _collect(self) -> None:
        for flat in self._pending:
            self._rows.append(np.asarray(flat))
        self._pending.clear()
        if self.directory is not None and len(self._rows) >= self.chunk_rows:
            self._spill()

    def _spill(self) -> None:
        assert self.directory is not None
        if not self._rows:
            return
        path = self.directory / f"chunk_{len(self._chunks):05d}.npy"
        np.save(path, np.stack(self._rows))
        self._chunks.append(path)
        self._rows.clear()

    def __len__(self) -> int:
        return self._count

    def samples(self) -> np.ndarray:
        """All records so far as a float32 array of shape `(t, D)`."""
        self._collect()
        parts = [np.load(p) for p in self._chunks]
        if self._rows:
            parts.append(np.stack(self._rows))
        require(parts != [], "no parameters recorded: call sampler.record(params) first")
        return np.concatenate(parts, axis=0)


# --------------------------------------------------------------------------- subspace


def dldr_subspace(
    samples: Float[Array, "t D"] | np.ndarray, d: int
) -> tuple[Float[Array, "d D"], Float[Array, " t-1"]]:
    """Top-`d` principal directions of sampled parameters, from the `t×t` Gram matrix.

    With `X` the samples centred by their mean, `X Xᵀ = U Λ Uᵀ` (eigenvalues descending);
    the principal directions are `P_i = Xᵀ u_i / sqrt(λ_i)`, i.e. the right singular vectors
    of `X`. Cost `O(t² D)`; no `D×D` matrix is ever formed. The PCA runs in float64 (x64
    enabled only inside this call), so it holds a float64 copy of the samples, `8·t·D` bytes;
    `P` is returned in the samples' dtype.

    **Arguments:**

    - `samples`: `(t, D)` parameter vectors (e.g. `TrajectorySampler.samples()`).
    - `d`: number of directions, `1 <= d <= t − 1` (centring removes one).

    **Returns:**

    `(P, explained_variance_ratio)`: `P` of shape `(d, D)` with orthonormal rows (dtype of the
    samples), and the ratio `λ_i / Σλ` of all `t − 1` components, descending (its first `d`
    entries belong to `P`; `cumsum` gives explained variance versus d).
    """
    require(
        getattr(samples, "ndim", 0) == 2, f"samples must have shape (t, D), got {samples.shape}"
    )
    t = samples.shape[0]
    require(d >= 1, f"d must be >= 1, got {d}")
    require(
        d <= t - 1,
        f"d={d} exceeds samples−1={t - 1}; sample more often or lower d",
    )
    out_dtype = jnp.asarray(samples[:1]).dtype
    # float64 throughout (scoped): the Gram matrix squares the condition number, so in float32
    # directions with σ_i/σ_0 below ~3e-4 (common on smooth SGD trajectories) would be lost.
    with jax.enable_x64(True):
        p, lam = _gram_pca(jnp.asarray(samples, jnp.float64), d)
        lam = np.asarray(lam)
        p = p.astype(out_dtype)
    total = float(lam.sum())
    require(total > 0, "all samples are identical: record parameters while training, not before")
    rank = int(np.sum(lam > t * np.finfo(np.float64).eps * lam[0]))
    require(
        d <= rank,
        f"d={d} exceeds the {rank} independent directions in the samples; lower d",
    )
    return p, jnp.asarray(lam / total, out_dtype)


@jax.jit(static_argnums=1)
def _gram_pca(samples, d):
    t = samples.shape[0]
    x = samples - jnp.mean(samples, axis=0, keepdims=True)
    lam, u = eigh(x @ x.T)
    lam, u = lam[::-1], u[:, ::-1]
    lam = jnp.clip(lam[: t - 1], 0.0)
    p = u[:, :d].T @ x
    p = p / jnp.linalg.norm(p, axis=1, keepdims=True)
    return p, lam


# --------------------------------------------------------------------------- P-SGD


def project(p: Float[Array, "d D"]) -> optax.GradientTransformation:
    """Optax transformation `g ↦ PᵀP g` on the raveled update pytree (stateless).

    **Arguments:**

    - `p`: `(d, D)` orthonormal rows (from `dldr_subspace`); the update's `ravel_pytree` must
      have `D` entries. The product runs in `p`'s dtype and is cast back to the update's.

    **Returns:** an `optax.GradientTransformation` with an `optax.EmptyState`.
    """

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        flat, unravel = ravel_pytree(updates)
        proj = p.T @ (p @ flat.astype(p.dtype))
        return unravel(proj.astype(flat.dtype)), state

    return optax.GradientTransformation(init_fn, update_fn)


def p_sgd(
    learning_rate: float | optax.Schedule,
    p: Float[Array, "d D"],
    momentum: float = 0.9,
    *,
    nesterov: bool = False,
) -> optax.GradientTransformation:
    """P-SGD: SGD with momentum on the projected gradient `PᵀP g`.

    Works on any parameter pytree whose `ravel_pytree` has `D` entries. Starting from `w₀`,
    the iterates stay in `w₀ + span(Pᵀ)`.

    **Arguments:**

    - `learning_rate`: step size or optax schedule.
    - `p`: `(d, D)` orthonormal rows from `dldr_subspace`.
    - `momentum`: heavy-ball momentum (0.9 in the paper), in [0, 1); 0 is plain SGD.
    - `nesterov`: Nesterov momentum instead of heavy ball (default False).

    **Returns:** an `optax.GradientTransformation`.

    **Raises:** `ConfigError` for a momentum outside [0, 1).
    """
    require(0.0 <= momentum < 1.0, f"momentum must be in [0, 1), got {momentum}")
    return optax.chain(
        project(p), optax.sgd(learning_rate, momentum=momentum or None, nesterov=nesterov)
    )
