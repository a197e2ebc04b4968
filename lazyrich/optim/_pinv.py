"""How `pinv_solve` applies the (filtered) inverse of a Gram matrix: pluggable strategies.

`pinv_solve(a, t)` reduces `A⁺ t` to the smaller Gram matrix `G` (`A Aᵀ` when n ≤ p, else
`AᵀA`) and a right-hand side `b` (`t`, resp. `Aᵀt`), and needs `f(G) b`, where `f` is the
spectral filter: `1/e` on the retained eigenvalues `e = s²` of `G` (singular values
`s > max(τ·s_max, atol)`, `τ = max(rtol, 10·sqrt(machine eps))`), 0 on the others; or `1/(e + λ)`
with Tikhonov damping λ. A solver is an `eqx.Module` called as `solver(gram, b, rtol=..,
atol=.., damping=..)`, in the manner of Optimistix's `linear_solver=` argument:

- `EighSolver()`: `G = Q diag(e) Qᵀ`, then `Q (f(e) ⊙ Qᵀb)`. Exact for any spectrum (this is the
  truncated-SVD pseudo-inverse), but a symmetric eigendecomposition costs ~9n³ flops, mostly in
  memory-bound tridiagonalization.
- `CholeskySolver()`: `G = L Lᵀ` (n³/3 flops, cache-blocked), then two triangular solves. It
  computes `G⁻¹ b` (or `(G + λI)⁻¹ b`), which equals `f(G) b` only when the filter drops
  nothing: `λ_min(G) > max(τ² λ_max(G), atol²)`, i.e. `cond(G) < 1/τ²` (1e4 at the paper's
  rtol = 1e-2) and A of full rank. With damping it is always exact.
- `AutoSolver()` (the default): with damping, Cholesky. Otherwise, in two stages chosen inside
  the compiled program by `lax.cond`. (1) k Lanczos steps on `G` (O(k n²)) give Ritz values
  `θ_min ≥ λ_min` and `θ_max ≤ λ_max`; if `θ_min ≤ max(τ² θ_max, atol²)` an eigenvalue is
  certainly dropped and the eigh path runs (a proof, no factorization: the rank-deficient
  first block of a RevMLP, or batches close to the width, stop here). (2) Else it factorizes
  `G = L Lᵀ`, estimates `λ_min(G) = 1/λ_max(G⁻¹)` by Lanczos on `G⁻¹` (each product two
  triangular solves with L) and takes the Cholesky solution when
  `λ̂_min (1−ε) > max(τ² θ_max / (1−ε), atol²)`, else the eigh path. A failed factorization
  (NaN in L) fails the test. A Ritz value never exceeds the largest eigenvalue, so both
  estimates of stage 2 err on the optimistic side; by Kuczyński & Woźniakowski (SIAM J. Matrix
  Anal. Appl. 13, 1992, Thm 4.2) k steps from a random start underestimate it by a factor (1−ε)
  or more with probability at most `1.648·sqrt(n)·exp(−sqrt(ε)(2k−1))`: with the defaults (k =
  32, ε = 0.1) under 1.3e-7 per estimate at n = 1000. The margin `1/(1−ε)²` = 1.23 is what the
  test gives away: a well-conditioned G with `cond(G)` within 23% of `1/τ²` goes the eigh way,
  which is exact, only slower.

Measured (2-core CPU under load 7–8, `benchmarks/RESULTS.md`): a RevMLP d = 784, h = 1024,
batch 1000 truncates all four Grams (rank ≤ d/2 + 1 in the linear first block; 786 of 1000
kept in the second), so stage 1 sends every solve to eigh, which is 65% of the step; the
matmuls alone are a third of it. Where nothing is truncated (batch 256), Cholesky saves 15%
of the step and stage 2's triangular solves give most of it back.

Under `jax.vmap` with a batched matrix, `lax.cond` becomes a select and *both* branches run
(factorization + estimates + eigh): there, pass `"eigh"`, or `"cholesky"` when the systems are
known to be well conditioned.
"""

from __future__ import annotations

import abc
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.linalg import eigh_tridiagonal
from jaxtyping import Array, Float

from ..errors import require
from ._lapack_threads import cho_solve, cholesky, eigh

SolverName = Literal["auto", "eigh", "cholesky"]


def spectral_filter(e: Array, *, rtol: float, atol: float, damping: float | Array | None) -> Array:
    """`1/s²` on the retained spectrum (or `1/(s² + λ)`) from Gram eigenvalues `e = s²`."""
    e = jnp.maximum(e, 0.0)
    if damping is not None:
        return 1.0 / (e + damping)
    s = jnp.sqrt(e)
    keep = s > jnp.maximum(relative_cutoff(rtol, e.dtype) * jnp.max(s), atol)
    return jnp.where(keep, 1.0 / jnp.where(keep, e, 1.0), 0.0)


def relative_cutoff(rtol: float, dtype) -> Array:
    """τ = max(rtol, 10·sqrt(eps)): the Gram matrix squares the spectrum, so singular values
    below ~sqrt(machine eps)·s_max are round-off there and never count as retained."""
    return jnp.maximum(rtol, 10.0 * jnp.sqrt(jnp.finfo(dtype).eps))


def lanczos_extremes(matvec, v0: Float[Array, " n"], steps: int) -> tuple[Array, Array]:
    """Smallest and largest Ritz values of a symmetric PSD operator after `steps` Lanczos steps
    from `v0` (full re-orthogonalization, twice; a breakdown continues with zero vectors, which
    only adds zero Ritz values). They lie inside `[λ_min, λ_max]` (up to round-off)."""
    n = v0.shape[0]
    k = min(steps, n)
    dt = v0.dtype
    eps = jnp.finfo(dt).eps

    def body(i, carry):
        q_all, alpha, beta, q = carry
        q_all = q_all.at[i].set(q)
        w = matvec(q)
        a = jnp.vdot(q, w)
        w = w - q_all.T @ (q_all @ w)
        w = w - q_all.T @ (q_all @ w)
        b = jnp.linalg.norm(w)
        ok = b > jnp.sqrt(eps) * jnp.maximum(jnp.abs(a), jnp.finfo(dt).tiny)
        q_next = jnp.where(ok, w / jnp.where(ok, b, 1.0), 0.0)
        return q_all, alpha.at[i].set(a), beta.at[i].set(jnp.where(ok, b, 0.0)), q_next

    init = (jnp.zeros((k, n), dt), jnp.zeros(k, dt), jnp.zeros(k, dt), v0 / jnp.linalg.norm(v0))
    _, alpha, beta, _ = jax.lax.fori_loop(0, k, body, init)
    ritz = eigh_tridiagonal(alpha, beta[:-1], eigvals_only=True)
    return jnp.min(ritz), jnp.max(ritz)


class AbstractGramSolver(eqx.Module):
    """Computes `f(G) b` for a symmetric PSD Gram matrix `G` (module docstring)."""

    @abc.abstractmethod
    def __call__(
        self,
        gram: Float[Array, "n n"],
        rhs: Float[Array, "n m"],
        *,
        rtol: float,
        atol: float,
        damping: float | Array | None,
    ) -> Float[Array, "n m"]:
        """`f(G) rhs`: the truncated (or damped) inverse of the Gram matrix applied to `rhs`.

        **Arguments:**

        - `gram`: G, symmetric positive semi-definite `(n, n)`.
        - `rhs`: `(n, m)` right-hand sides.
        - `rtol`, `atol`: eigenvalues `s² ≤ max(τ s²_max, atol²)` are dropped
          (`τ = max(rtol, 10·sqrt(eps))²`).
        - `damping`: λ for `(G + λI)⁻¹` instead of truncation, or `None`.

        **Returns:** `(n, m)`.
        """
        raise NotImplementedError


class EighSolver(AbstractGramSolver):
    """Truncated (or damped) inverse through `eigh`: exact for any spectrum."""

    def __call__(self, gram, rhs, *, rtol, atol, damping):
        """`f(G) rhs`: the truncated (or damped) inverse of the Gram matrix applied to `rhs`.

        **Arguments:**

        - `gram`: G, symmetric positive semi-definite `(n, n)`.
        - `rhs`: `(n, m)` right-hand sides.
        - `rtol`, `atol`: eigenvalues `s² ≤ max(τ s²_max, atol²)` are dropped
          (`τ = max(rtol, 10·sqrt(eps))²`).
        - `damping`: λ for `(G + λI)⁻¹` instead of truncation, or `None`.

        **Returns:** `(n, m)`.
        """
        e, q = eigh(gram)
        f = spectral_filter(e, rtol=rtol, atol=atol, damping=damping)
        return q @ (f[:, None] * (q.T @ rhs))


class CholeskySolver(AbstractGramSolver):
    """`(G + λI)⁻¹ b` by Cholesky: equals the truncated inverse only if nothing is truncated."""

    def __call__(self, gram, rhs, *, rtol, atol, damping):
        """`f(G) rhs`: the truncated (or damped) inverse of the Gram matrix applied to `rhs`.

        **Arguments:**

        - `gram`: G, symmetric positive semi-definite `(n, n)`.
        - `rhs`: `(n, m)` right-hand sides.
        - `rtol`, `atol`: eigenvalues `s² ≤ max(τ s²_max, atol²)` are dropped
          (`τ = max(rtol, 10·sqrt(eps))²`).
        - `damping`: λ for `(G + λI)⁻¹` instead of truncation, or `None`.

        **Returns:** `(n, m)`.
        """
        del rtol, atol
        if damping is not None:
            gram = gram + damping * jnp.eye(gram.shape[0], dtype=gram.dtype)
        return cho_solve(cholesky(gram), rhs)


class AutoSolver(AbstractGramSolver):
    """Cholesky where the Lanczos condition estimate says nothing would be truncated, else eigh.

    **Fields:**

    - `lanczos_steps`: k, steps of each Lanczos estimate (cost O(k n²)).
    - `slack`: ε, the relative error allowed to each estimate (module docstring).
    """

    lanczos_steps: int = eqx.field(static=True, default=32)
    slack: float = eqx.field(static=True, default=0.1)

    def surely_truncated(self, gram, *, rtol: float, atol: float) -> tuple[Array, Array]:
        """Stage 1, no factorization: Lanczos on `G` gives Ritz values `θ_min ≥ λ_min` and
        `θ_max ≤ λ_max`; `θ_min ≤ max(τ² θ_max, atol²)` proves that the filter drops an
        eigenvalue. Returns (that proof, θ_max)."""
        v0 = jax.random.normal(jax.random.key(0), (gram.shape[0],), gram.dtype)
        lo, hi = lanczos_extremes(lambda v: gram @ v, v0, self.lanczos_steps)
        tau = relative_cutoff(rtol, gram.dtype)
        return lo <= jnp.maximum(tau**2 * hi, atol**2), hi

    def well_conditioned(self, gram, chol, lam_max, *, rtol: float, atol: float) -> Array:
        """Stage 2: whether (w.h.p.) the filter keeps every eigenvalue of `gram` (Cholesky
        factor `chol`, Lanczos estimate `lam_max`), by Lanczos on `G⁻¹`; a boolean scalar."""
        v0 = jax.random.normal(jax.random.key(1), (gram.shape[0],), gram.dtype)
        _, inv_min = lanczos_extremes(lambda v: cho_solve(chol, v), v0, self.lanczos_steps)
        c = 1.0 - self.slack
        tau = relative_cutoff(rtol, gram.dtype)
        well = (c / inv_min) > jnp.maximum(tau**2 * lam_max / c, atol**2)
        return well & jnp.all(jnp.isfinite(chol)) & (inv_min > 0)

    def __call__(self, gram, rhs, *, rtol, atol, damping):
        """`f(G) rhs`: the truncated (or damped) inverse of the Gram matrix applied to `rhs`.

        **Arguments:**

        - `gram`: G, symmetric positive semi-definite `(n, n)`.
        - `rhs`: `(n, m)` right-hand sides.
        - `rtol`, `atol`: eigenvalues `s² ≤ max(τ s²_max, atol²)` are dropped
          (`τ = max(rtol, 10·sqrt(eps))²`).
        - `damping`: λ for `(G + λI)⁻¹` instead of truncation, or `None`.

        **Returns:** `(n, m)`.
        """
        if damping is not None:
            return CholeskySolver()(gram, rhs, rtol=rtol, atol=atol, damping=damping)
        by_eigh = lambda: EighSolver()(gram, rhs, rtol=rtol, atol=atol, damping=None)
        truncated, lam_max = self.surely_truncated(gram, rtol=rtol, atol=atol)

        def try_cholesky():
            chol = cholesky(gram)
            well = self.well_conditioned(gram, chol, lam_max, rtol=rtol, atol=atol)
            return jax.lax.cond(well, lambda: cho_solve(chol, rhs), by_eigh)

        return jax.lax.cond(truncated, by_eigh, try_cholesky)


_SOLVERS: dict[str, type[AbstractGramSolver]] = {
    "auto": AutoSolver,
    "eigh": EighSolver,
    "cholesky": CholeskySolver,
}


def as_solver(solver: AbstractGramSolver | str) -> AbstractGramSolver:
    """A solver instance from an instance or one of the names `auto`, `eigh`, `cholesky`."""
    if isinstance(solver, AbstractGramSolver):
        return solver
    require(
        solver in _SOLVERS,
        f"unknown solver {solver!r}: choose one of {', '.join(_SOLVERS)} "
        "or pass an AbstractGramSolver",
    )
    return _SOLVERS[solver]()
