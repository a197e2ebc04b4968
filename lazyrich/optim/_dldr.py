"""DLDR: training in a low-dimensional subspace of the SGD trajectory (PAPERS.md §3).

Li et al. (TPAMI 2022) sample `t` parameter vectors during ordinary SGD, centre them, take the
top `d` principal directions `P ∈ R^(d×D)` and restart from `w₀` with `w = w₀ + Pᵀα`, training
only the `d` coordinates `α`:

- `TrajectorySampler` records flattened parameters to host memory (float32), or spills them to
  `.npy` chunks in a directory for big models.
- `dldr_subspace(samples, d)`: PCA through the `t×t` Gram matrix (never a `D×D` matrix).
- `p_sgd`: SGD with momentum on the projected gradient `PᵀP g` (an optax transformation).
- `p_bfgs_step` / `init_p_bfgs`: dense `d×d` inverse-Hessian BFGS in α-space with the curvature
  guard `yᵀs > 1e-20` and Armijo backtracking (factor 0.4, 20 tries) on the same mini-batch.

**P-BFGS, per mini-batch** (the authors' method): `g = P∇L(w)`; `y = g − g_prev`;
`s = s_prev` (the previous accepted step in α-space); if `yᵀs > 1e-20`, with `ρ = 1/(yᵀs)`,
`H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ` (`H₀ = I`); `p = −H g`; try `0.4^m p` for
`m = 0..19` and accept the first with `L(w + Pᵀ 0.4^m p) < L(w) + 0.4 · 0.4^m gᵀp`.
If no trial is accepted, `fallback="zero"` (default) takes no step (so `s = 0` and the next
update is skipped by the curvature guard); `fallback="smallest"` takes the last, smallest
trial `0.4^19 p`. The authors' code does not settle this case; `"zero"` never increases the
batch loss.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, Int

from ..errors import require

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
    lam, u = jnp.linalg.eigh(x @ x.T)
    lam, u = lam[::-1], u[:, ::-1]
    lam = jnp.clip(lam[: t - 1], 0.0)
    p = u[:, :d].T @ x
    p = p / jnp.linalg.norm(p, axis=1, keepdims=True)
    return p, lam


# --------------------------------------------------------------------------- P-SGD


def project(p: Float[Array, "d D"]) -> optax.GradientTransformation:
    """Optax transformation `g ↦ PᵀP g` on the raveled update pytree (stateless)."""

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
    - `momentum`: heavy-ball momentum (0.9 in the paper).

    **Returns:** an `optax.GradientTransformation`.
    """
    require(0.0 <= momentum < 1.0, f"momentum must be in [0, 1), got {momentum}")
    return optax.chain(
        project(p), optax.sgd(learning_rate, momentum=momentum or None, nesterov=nesterov)
    )


# --------------------------------------------------------------------------- P-BFGS

CURVATURE_EPS = 1e-20
ARMIJO_FACTOR = 0.4
ARMIJO_C = 0.4
ARMIJO_TRIES = 20


class PBFGSState(NamedTuple):
    """State of P-BFGS: `w = w0 + Pᵀ alpha`."""

    w0: Float[Array, " D"]
    p: Float[Array, "d D"]
    alpha: Float[Array, " d"]
    h: Float[Array, "d d"]
    g_prev: Float[Array, " d"]
    s_prev: Float[Array, " d"]
    step: Int[Array, ""]
    loss: Float[Array, ""]
    tries: Int[Array, ""]


def init_p_bfgs(w0: Float[Array, " D"], p: Float[Array, "d D"]) -> PBFGSState:
    """Initial P-BFGS state: `alpha = 0`, `H = I`."""
    w0 = jnp.asarray(w0)
    p = jnp.asarray(p)
    require(w0.ndim == 1, f"w0 must be a flat vector (use ravel_pytree), got shape {w0.shape}")
    require(
        p.ndim == 2 and p.shape[1] == w0.shape[0],
        f"P has shape {p.shape} but w0 has {w0.shape[0]} entries: build P from this model",
    )
    d = p.shape[0]
    z = jnp.zeros((d,), p.dtype)
    return PBFGSState(
        w0=w0,
        p=p,
        alpha=z,
        h=jnp.eye(d, dtype=p.dtype),
        g_prev=z,
        s_prev=z,
        step=jnp.zeros((), jnp.int32),
        loss=jnp.zeros((), p.dtype),
        tries=jnp.zeros((), jnp.int32),
    )


def bfgs_update(
    h: Float[Array, "d d"], s: Float[Array, " d"], y: Float[Array, " d"]
) -> Float[Array, "d d"]:
    """Inverse-Hessian BFGS update with the curvature guard.

    `H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ` with `ρ = 1/(yᵀs)` if `yᵀs > 1e-20`, else `H`.
    """
    ys = jnp.dot(y, s)
    ok = ys > CURVATURE_EPS
    rho = jnp.where(ok, 1.0 / jnp.where(ok, ys, 1.0), 0.0)
    eye = jnp.eye(h.shape[0], dtype=h.dtype)
    left = eye - rho * jnp.outer(s, y)
    new = left @ h @ left.T + rho * jnp.outer(s, s)
    return jnp.where(ok, new, h)


def subspace_value_and_grad(
    loss_fn: Callable[[Array, Any], Array],
    w0: Float[Array, " D"],
    p: Float[Array, "d D"],
    alpha: Float[Array, " d"],
    batch: Any,
) -> tuple[Float[Array, ""], Float[Array, " d"]]:
    """`L(w)` and the α-space gradient `g = P ∇L(w)` at `w = w0 + Pᵀα`."""
    w = w0 + p.T @ alpha
    value, grad_w = jax.value_and_grad(loss_fn)(w, batch)
    return value, p @ grad_w


def _armijo(f, value, slope, direction, fallback):
    """First `t = 0.4^m` (m < 20) with `f(t·direction) < value + 0.4·t·slope`."""

    def cond(c):
        m, accepted, _ = c
        return (m < ARMIJO_TRIES) & ~accepted

    def body(c):
        m, _, _ = c
        t = jnp.asarray(ARMIJO_FACTOR, value.dtype) ** m
        accepted = f(t * direction) < value + ARMIJO_C * t * slope
        return m + 1, accepted, t

    m, accepted, t = jax.lax.while_loop(
        cond, body, (jnp.zeros((), jnp.int32), jnp.zeros((), bool), jnp.ones((), value.dtype))
    )
    if fallback == "zero":
        t = jnp.where(accepted, t, 0.0)
    return t, m


def p_bfgs_step(
    loss_fn: Callable[[Array, Any], Array],
    state: PBFGSState,
    batch: Any,
    *,
    linesearch: str = "armijo",
    fallback: str = "zero",
) -> PBFGSState:
    """One P-BFGS step on one mini-batch (jittable; `loss_fn`, `linesearch`, `fallback` static).

    **Arguments:**

    - `loss_fn`: `loss_fn(w_flat, batch) -> scalar`, with `w_flat` the raveled parameters
      (`unravel` from `jax.flatten_util.ravel_pytree` rebuilds the pytree).
    - `state`: from `init_p_bfgs` or a previous step.
    - `batch`: anything `loss_fn` takes; the line search reuses it.
    - `linesearch`: `"armijo"` (ours, exactly the paper's: `<`, factor 0.4, c = 0.4, 20 tries)
      or `"optax"` (`optax.scale_by_backtracking_linesearch` with the same constants, which
      accepts on `≤` and, if no trial passes, keeps the last one).
    - `fallback`: `"zero"` or `"smallest"`, what our line search does when no trial passes
      (see the module docstring).

    **Returns:** the new state; `state.loss` is the batch loss at the start of the step and
    `state.tries` the number of line-search trials used.
    """
    require(
        linesearch in ("armijo", "optax"),
        f"linesearch must be 'armijo' or 'optax', got {linesearch!r}",
    )
    require(
        fallback in ("zero", "smallest"), f"fallback must be 'zero' or 'smallest', got {fallback!r}"
    )
    value, g = subspace_value_and_grad(loss_fn, state.w0, state.p, state.alpha, batch)
    y = g - state.g_prev
    h = jnp.where(state.step > 0, bfgs_update(state.h, state.s_prev, y), state.h)
    direction = -h @ g
    slope = jnp.dot(g, direction)

    def f(delta):
        return loss_fn(state.w0 + state.p.T @ (state.alpha + delta), batch)

    if linesearch == "armijo":
        t, tries = _armijo(f, value, slope, direction, fallback)
        s = t * direction
    else:
        ls = optax.scale_by_backtracking_linesearch(
            max_backtracking_steps=ARMIJO_TRIES - 1,
            slope_rtol=ARMIJO_C,
            decrease_factor=ARMIJO_FACTOR,
            increase_factor=1.0,
            max_learning_rate=1.0,
        )
        s, ls_state = ls.update(
            direction,
            ls.init(state.alpha),
            jnp.zeros_like(state.alpha),
            value=value,
            grad=g,
            value_fn=f,
        )
        tries = ls_state.info.num_linesearch_steps
    return state._replace(
        alpha=state.alpha + s,
        h=h,
        g_prev=g,
        s_prev=s,
        step=state.step + 1,
        loss=value,
        tries=jnp.asarray(tries, jnp.int32),
    )


def p_bfgs_params(state: PBFGSState) -> Float[Array, " D"]:
    """The current flat parameters `w0 + Pᵀα`."""
    return state.w0 + state.p.T @ state.alpha


class PBFGS(NamedTuple):
    """`p_bfgs(...)`: `init(w0_flat)` and `step(state, batch)` bound to one loss and P."""

    init: Callable[[Array], PBFGSState]
    step: Callable[[PBFGSState, Any], PBFGSState]


def p_bfgs(
    loss_fn: Callable[[Array, Any], Array],
    p: Float[Array, "d D"],
    *,
    linesearch: str = "armijo",
    fallback: str = "zero",
) -> PBFGS:
    """P-BFGS (PAPERS.md §3) bound to `loss_fn(w_flat, batch)` and `P`, with a jitted step.

    ```python
    opt = p_bfgs(loss_fn, P)
    state = opt.init(w0_flat)
    for batch in batches:
        state = opt.step(state, batch)
    w = p_bfgs_params(state)
    ```
    """
    require(
        linesearch in ("armijo", "optax"),
        f"linesearch must be 'armijo' or 'optax', got {linesearch!r}",
    )
    require(
        fallback in ("zero", "smallest"), f"fallback must be 'zero' or 'smallest', got {fallback!r}"
    )

    def init(w0):
        return init_p_bfgs(w0, p)

    @jax.jit
    def step(state, batch):
        return p_bfgs_step(loss_fn, state, batch, linesearch=linesearch, fallback=fallback)

    return PBFGS(init, step)
