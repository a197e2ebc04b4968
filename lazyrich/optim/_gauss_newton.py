"""Gauss-Newton steps: exact and backprop-free for RevMLP, and in function space for any model.

## Exact GN in a reversible network (Buffelli et al. 2024, PAPERS.md §2)

Let `z = x_L U` be a `RevMLP` output on a batch and `ε` the output error: `2(z − y)` for the
squared error `Σ‖z − y‖²`, `softmax(z) − y` for cross-entropy with the loss Hessian replaced by
the identity. The GN step looks for `Δθ` with `J Δθ = ε` (J the Jacobian of the batch outputs
w.r.t. the parameters), and updates `θ ← θ − lr·Δθ`.

The network is reversible and every half-layer is linear in its own parameters, so no
backpropagation is needed. With `t = ε Uᵀ` (the smallest change of `x_L` that moves `z` by ε),
for blocks `l = L … 1`:

1. take the block's input `x = (x1, x2)` and output `y = (y1, y2)` from the forward pass (the
   exact inverse could recover `x` from `y`, as the paper does to save memory, at the cost of
   a second pass through the block; `x` is only n × d per block);
2. `A_f = [σ(C_f x2), 1]`, `ΔW_f = A_f⁺ t1` (so that `Δy1 = A_f ΔW_f ≈ t1`);
3. `m = ∂G/∂y1 · (A_f ΔW_f)` by a JVP (the move of `y2` caused by `y1` moving);
4. `A_g = [σ(C_g y1), 1]`, `ΔW_g = A_g⁺ (t2 − m)`;
5. pass the target to the previous block, `t ← (∂y/∂x)⁻¹ t`, the JVP of the exact inverse
   `x2 = y2 − G(y1)`, `x1 = y1 − F(x2)`: `dx2 = t2 − G'(y1) t1`, `dx1 = t1 − F'(x2) dx2`.

The JVPs are of row-wise batched functions, i.e. a vmapped per-sample linearization. `A⁺` is a
pseudo-inverse by truncated spectrum (singular values `s ≤ max(rtol·s_max, atol)` dropped), or
with `damping` λ the Tikhonov inverse `(AᵀA + λI)⁻¹Aᵀ`. It is computed from the eigenvalues of
the smaller Gram matrix (`A Aᵀ`, n×n, when n ≤ h + 1; else `AᵀA`), which is much cheaper than
an SVD of the n×(h+1) matrix. Squaring the spectrum means singular values below
`10·sqrt(machine eps)·s_max` (1.5e-7 in float64, 3.5e-3 in float32) are not resolved, so
`rtol` is raised to that floor (the paper's 1e-2 is above it).

**CPU.** Those eigendecompositions are LAPACK calls into the OpenBLAS that SciPy bundles, which
by default starts a thread per core inside XLA's own threads; with small Gram matrices that
oversubscription dominated the whole step (0.2–3.8 s instead of ~40 ms for d = 64, h = 512,
batch 256). `pinv_solve` and the dense `ntk_gauss_newton` therefore set that OpenBLAS to one
thread when first traced on the CPU backend (`_lapack_threads.single_threaded_lapack`; a
process-wide setting of SciPy's BLAS, NumPy's own is left alone).

**The constant.** Each block is asked to produce the *whole* target on its own: its
parameter change alone would move the output by `ε` (to first order) if its half-layers solve
their systems exactly. Summing over blocks, the raw step satisfies

    J Δθ_raw = Σ_l J_l Δθ_l = L ε     (exactly, when every A_f, A_g has full row rank n)

because `J_l Δθ_l = (∂x_L/∂y_l)(∂y_l/∂θ_l)Δθ_l = (∂x_L/∂y_l) t_l = t_L`, then `· U = ε`.
Full row rank needs `h + 1 ≥ n` for ReLU blocks; the *linear* first block has
`rank A ≤ d/2 + 1`, so for batches larger than `d/2 + 1` it only contributes the least-squares
part of its target, `J_1 Δθ_1 = (∂x_L/∂y_1)(P_f t1, m + P_g(t2 − m))` with `P = A A⁺` the
orthogonal projection onto A's columns. In general each half-layer solves the least-squares
problem `min ‖A ΔW − target‖` (minimum-norm solution, within the retained spectrum).

`normalize` sets how the raw step is scaled so that the learning rate means what users expect:

- `"blocks"` (default): `Δθ = Δθ_raw / L`, so `J Δθ = ε` exactly when all blocks have full row
  rank; lr 1 then moves the linearized outputs by exactly `−ε` (with MSE, lr 0.5 is the
  function-space Newton step `z → y`).
- `"fit"`: `Δθ = c·Δθ_raw` with `c = ⟨JΔθ_raw, ε⟩ / ‖JΔθ_raw‖²` (one extra JVP), the best
  multiple in the linearized model; equals `1/L` in the full-rank case.
- `"none"`: the raw step, `J Δθ_raw = L ε` (to compare with learning rates of code that uses it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PyTree

from ..errors import require
from ..kernels import empirical_ntk
from ..models import RevMLP, partition
from ._lapack_threads import eigh, qr, single_threaded_lapack
from ._pinv import AbstractGramSolver, SolverName, as_solver

Loss = Literal["mse", "ce"]
Normalize = Literal["blocks", "fit", "none"]
LOSSES = ("mse", "ce")
NORMALIZE = ("blocks", "fit", "none")


# --------------------------------------------------------------------------- helpers


def output_error(z: Float[Array, "n k"], y: Array, loss: str) -> Float[Array, "n k"]:
    """The output error ε: `2(z − y)` (`mse`) or `softmax(z) − y` (`ce`).

    `y` is either `(n, k)` targets (one-hot / probabilities for `ce`) or `(n,)` integer labels.

    **Arguments:**

    - `z`: the network outputs `(n, k)`.
    - `y`: targets `(n, k)`, or integer labels `(n,)` (one-hot encoded here).
    - `loss`: `"mse"` (ε = ∂/∂z of Σ‖z − y‖²) or `"ce"` (ε = ∂/∂z of the cross-entropy);
      anything else is treated as `"ce"` (the public solvers check it first).

    **Returns:** ε, shape `(n, k)`.
    """
    if y.ndim == 1 and jnp.issubdtype(y.dtype, jnp.integer):
        y = jax.nn.one_hot(y, z.shape[-1], dtype=z.dtype)
    if loss == "mse":
        return 2.0 * (z - y)
    return jax.nn.softmax(z, axis=-1) - y


def pinv_solve(
    a: Float[Array, "n p"],
    t: Float[Array, "n m"],
    *,
    rtol: float = 1e-2,
    atol: float = 1e-5,
    damping: float | Array | None = None,
    solver: AbstractGramSolver | SolverName = "eigh",
) -> Float[Array, "p m"]:
    """`A⁺ t` by truncated spectrum (or Tikhonov with `damping`), via the smaller Gram matrix.

    With `G = A Aᵀ` (n ≤ p) this is `Aᵀ f(G) t`, else `f(G) Aᵀt` with `G = AᵀA`, where `f`
    inverts the eigenvalues `s² > max(τ s_max, atol)²` (`τ = max(rtol, 10·sqrt(eps))`) and
    zeroes the rest, or is `1/(s² + λ)` with damping: the truncated-SVD pseudo-inverse.

    **Arguments:**

    - `a`, `t`: the `(n, p)` matrix and the `(n, m)` right-hand sides.
    - `rtol`, `atol`: truncation (singular values, relative to the largest / absolute).
    - `damping`: λ for the Tikhonov inverse `(AᵀA + λI)⁻¹Aᵀ` instead of truncation.
    - `solver`: how `f(G)` is applied: `"eigh"` (default) always decomposes (exact for any
      spectrum); `"auto"` takes a Cholesky solve where a Lanczos condition estimate shows
      nothing would be truncated and the eigendecomposition otherwise (decided in the
      compiled program; under `jax.vmap` both branches run; measured: no faster than
      `"eigh"` on the GN benchmarks, see benchmarks/RESULTS.md); `"cholesky"` never truncates
      (valid only for well-conditioned, full-rank A); or any `AbstractGramSolver`.

    **Returns:**

    `A⁺ t`, shape `(p, m)`.
    """
    single_threaded_lapack()
    solve = as_solver(solver)
    n, p = a.shape
    if n <= p:
        return a.T @ solve(a @ a.T, t, rtol=rtol, atol=atol, damping=damping)
    return solve(a.T @ a, a.T @ t, rtol=rtol, atol=atol, damping=damping)


def _with_bias(feats: Float[Array, "n h"]) -> Float[Array, "n h1"]:
    return jnp.concatenate([feats, jnp.ones((feats.shape[0], 1), feats.dtype)], axis=1)


def _half_layer_solve(
    v: Float[Array, "n half"],
    c: Float[Array, "h half"],
    relu: bool,
    t: Array,
    pinv: Callable,
    features: Callable[[Array], Array],
) -> tuple[Array, Array]:
    """`(ΔW, A ΔW)` with `ΔW = A⁺ t` for the half-layer features `A = [σ(V Cᵀ), 1]`.

    `features` is the block's own feature map (`RevBlock.features_f` or `features_g`), `σ(V Cᵀ)`.

    For a linear half-layer (σ = identity) `A = B M` with `B = [V, 1]` (n × k, k = d/2 + 1)
    and `M = diag(Cᵀ, 1)`, so `rank A ≤ k`. When n > k, the thin QR `B = Q R` gives
    `A = Q K` with `K = R M` (k × (h+1)) and orthonormal columns in Q, hence A and K share
    their singular values and `A⁺ t = K⁺ (Qᵀ t)` exactly, for the truncated and for the
    Tikhonov inverse alike: a k × k Gram decomposition instead of an n × n one.
    """
    n, k = v.shape[0], v.shape[1] + 1
    if relu or n <= k:
        a = _with_bias(features(v))
        dw = pinv(a, t)
        return dw, a @ dw
    q, r = qr(_with_bias(v))
    kmat = jnp.concatenate([r[:, :-1] @ c.T, r[:, -1:]], axis=1)
    dw = pinv(kmat, q.T @ t)
    return dw, q @ (kmat @ dw)


def _check_common(loss: str, rtol: float, atol: float, damping: Any) -> None:
    require(loss in LOSSES, f"unknown loss {loss!r}: choose one of {', '.join(LOSSES)}")
    require(rtol >= 0 and atol >= 0, f"rtol and atol must be >= 0, got {rtol}, {atol}")
    if damping is not None and isinstance(damping, (int, float)):
        require(damping > 0, f"damping must be > 0 (or None for truncation), got {damping}")


# --------------------------------------------------------------------------- exact GN (RevMLP)


def exact_gn_direction(
    model: RevMLP,
    x: Float[Array, "n ..."],
    y: Array,
    *,
    loss: Loss = "mse",
    rtol: float = 1e-2,
    atol: float = 1e-5,
    damping: float | Array | None = None,
    normalize: Normalize = "blocks",
    solver: AbstractGramSolver | SolverName = "eigh",
) -> PyTree:
    """The exact Gauss-Newton direction of a `RevMLP` on one batch, without backpropagation.

    See the module docstring for the construction and the constant in `J Δθ = ε`.
    Jittable (wrap with `eqx.filter_jit`; `loss` and `normalize` are Python strings).

    **Arguments:**

    - `model`: a `RevMLP`.
    - `x`: inputs `(n, ...)`; `y`: targets `(n, k)` or integer labels `(n,)`.
    - `loss`: `"mse"` (ε = 2(z − y)) or `"ce"` (ε = softmax(z) − y, identity loss Hessian).
    - `rtol`, `atol`: truncation of each half-layer pseudo-inverse (paper: 1e-2, 1e-5).
    - `damping`: if given, use `(AᵀA + λI)⁻¹Aᵀ` instead of truncation.
    - `normalize`: `"blocks"` (÷L, default), `"fit"` or `"none"` (module docstring).
    - `solver`: how each half-layer's Gram system is solved: `"eigh"` (default; exact for
      any spectrum), `"auto"` (Cholesky where a Lanczos estimate shows nothing would be
      truncated, else `eigh`), `"cholesky"` (never truncates: full-rank, well-conditioned
      systems only) or an `AbstractGramSolver`.

    **Returns:**

    `Δθ`, a pytree shaped like `partition(model)[0]` (the params), with the update
    `θ ← θ − lr·Δθ`.
    """
    require(
        isinstance(model, RevMLP),
        "exact_gauss_newton needs a RevMLP; use ntk_gauss_newton for other models",
    )
    _check_common(loss, rtol, atol, damping)
    require(
        normalize in NORMALIZE,
        f"unknown normalize {normalize!r}: choose one of {', '.join(NORMALIZE)}",
    )
    xf = x.reshape(x.shape[0], -1)
    require(
        xf.shape[1] == model.in_dim,
        f"input has {xf.shape[1]} features per sample but the RevMLP expects {model.in_dim}",
    )
    u = model.readout.value
    outs = model.blocks_forward(xf)
    ins = [xf, *outs[:-1]]  # each block's input, kept from the forward pass
    eps = output_error(outs[-1] @ u, y, loss)
    t = eps @ u.T
    half = model.in_dim // 2
    pinv = lambda a, b: pinv_solve(a, b, rtol=rtol, atol=atol, damping=damping, solver=solver)

    deltas: list[tuple[Array, Array, Array, Array]] = []
    for i in reversed(range(len(model.blocks))):
        block = model.blocks[i]
        x2, y1 = ins[i][:, half:], outs[i][:, :half]
        t1, t2 = t[:, :half], t[:, half:]
        dw_f, dy1 = _half_layer_solve(x2, block.c_f.value, block.relu, t1, pinv, block.features_f)
        _, m = jax.jvp(block.g, (y1,), (dy1,))
        dw_g, _ = _half_layer_solve(y1, block.c_g.value, block.relu, t2 - m, pinv, block.features_g)
        deltas.append((dw_f[:-1].T, dw_f[-1], dw_g[:-1].T, dw_g[-1]))
        if i > 0:  # the target for the previous block: t ← (∂y/∂x)⁻¹ t, the inverse's JVP
            _, g_t1 = jax.jvp(block.g, (y1,), (t1,))
            dx2 = t2 - g_t1
            _, f_dx2 = jax.jvp(block.f, (x2,), (dx2,))
            t = jnp.concatenate([t1 - f_dx2, dx2], axis=1)
    deltas.reverse()

    params, _ = partition(model)
    leaves = lambda p: [leaf for b in p.blocks for leaf in (b.w_f, b.b_f, b.w_g, b.b_g)]
    direction = eqx.tree_at(leaves, params, [d for quad in deltas for d in quad])

    if normalize == "blocks":
        scale = 1.0 / len(model.blocks)
    elif normalize == "fit":
        _, rest = partition(model)
        apply = lambda p: eqx.combine(p, rest)(xf)
        _, jd = jax.jvp(apply, (params,), (direction,))
        scale = jnp.vdot(jd, eps) / jnp.maximum(jnp.vdot(jd, jd), jnp.finfo(jd.dtype).tiny)
    else:
        scale = 1.0
    return jax.tree.map(lambda d: scale * d, direction)


class ExactGNState(NamedTuple):
    """Step count (for learning-rate schedules).

    **Fields:**

    - `count`: int32 scalar, the number of steps taken.
    """

    count: Array


def exact_gauss_newton(
    model: RevMLP | None,
    learning_rate: float | Array | Callable[[Array], Array],
    *,
    loss: Loss = "mse",
    rtol: float = 1e-2,
    atol: float = 1e-5,
    damping: float | Array | None = None,
    normalize: Normalize = "blocks",
    solver: AbstractGramSolver | SolverName = "eigh",
) -> optax.GradientTransformationExtraArgs:
    """Exact Gauss-Newton for a `RevMLP` as an optax transformation.

    The GN step needs the batch, not a gradient, so `update` takes it as extra arguments
    (`x`, `y`) and ignores its `updates` argument (pass `None`):

        opt = exact_gauss_newton(model, 0.5)
        params, rest = lazyrich.models.partition(model)
        state = opt.init(params)
        updates, state = opt.update(None, state, params, x=x, y=y)
        params = optax.apply_updates(params, updates)   # θ − lr·Δθ

    With `model=None` the run's model comes from the `apply` extra argument (an object with
    a `.model(params)` method, such as the engine's `lazyrich.train.Apply`), so each run of a
    grid uses its own frozen C and U:

        lazyrich.train.train(make_revmlp, lambda hp: exact_gauss_newton(None, hp["eta"]), ...)

    Under `jax.jit` the gradient the engine computes and passes in is unused, so XLA removes
    the backward pass. Chains with other `GradientTransformationExtraArgs`
    (e.g. `optax.chain(exact_gauss_newton(...), optax.clip(1.0))`).

    **Arguments:**

    - `model`: the `RevMLP` whose frozen parts (C, U) are used (its params only fix the
      structure), or `None` to read the model from `apply.model(params)` at every update.
    - `learning_rate`: a scalar (a traced array allowed, for vmapped sweeps) or a schedule
      `count → lr`.
    - `loss`, `rtol`, `atol`, `damping`, `normalize`, `solver`: as in `exact_gn_direction`.

    **Returns:**

    An `optax.GradientTransformationExtraArgs` whose updates are `−lr·Δθ`.
    """
    require(
        model is None or isinstance(model, RevMLP),
        "exact_gauss_newton needs a RevMLP; use ntk_gauss_newton for other models",
    )
    _check_common(loss, rtol, atol, damping)
    as_solver(solver)  # an unknown name fails here, not at the first update
    rest = None if model is None else partition(model)[1]

    def init_fn(params: PyTree) -> ExactGNState:
        del params
        return ExactGNState(count=jnp.zeros((), jnp.int32))

    def update_fn(updates, state, params=None, *, x, y, apply=None, **extra_args):
        del updates, extra_args
        require(params is not None, "exact_gauss_newton.update needs params (pass params=...)")
        if rest is not None:
            m = eqx.combine(params, rest)
        else:
            require(
                hasattr(apply, "model"),
                "exact_gauss_newton(None, ...) reads the model from the `apply` extra argument: "
                "pass apply=lazyrich.train.Apply(rest) (the engine does), or pass the model",
            )
            m = apply.model(params)  # pyright: ignore[reportOptionalMemberAccess]
        direction = exact_gn_direction(
            m,
            x,
            y,
            loss=loss,
            rtol=rtol,
            atol=atol,
            damping=damping,
            normalize=normalize,
            solver=solver,
        )
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        new = jax.tree.map(lambda d: -lr * d, direction)
        return new, ExactGNState(count=jnp.asarray(optax.safe_increment(state.count)))

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)  # pyright: ignore[reportArgumentType]


# --------------------------------------------------------------------------- GN in function space


def _ntk_matrix(apply: Callable, params: PyTree, x: Array, z: Array, chunk: int) -> Array:
    """`J Jᵀ` as an `(n·k, n·k)` matrix (rows: example, then output), from `empirical_ntk`."""
    n, m = z.shape[0], z.ndim - 1
    full = empirical_ntk(apply, params, x, trace_axes=(), chunk_size=min(chunk, n))
    # empirical_ntk zips the output axes, (n, n', a, a', b, b', ...): un-zip to (n, a, b, n', ...)
    order = [0, *(2 + 2 * r for r in range(m)), 1, *(3 + 2 * r for r in range(m))]
    return jnp.transpose(full, order).reshape(z.size, z.size).astype(z.dtype)


def ntk_gauss_newton(
    apply: Callable[[PyTree, Array], Array],
    params: PyTree,
    x: Array,
    eps: Float[Array, "n k"],
    *,
    damping: float | Array = 1e-6,
    method: Literal["dense", "cg"] = "dense",
    chunk: int = 64,
    tol: float = 1e-6,
    maxiter: int | None = None,
) -> PyTree:
    """The damped Gauss-Newton step in function space, `Δθ = Jᵀ (J Jᵀ + λI)⁻¹ ε`, any model.

    `J Jᵀ` is the empirical NTK on the batch (all output pairs). As λ → 0 and with `J` of full
    row rank this is the minimum-norm solution `J⁺ε` of `J Δθ = ε`. Update with `θ − lr·Δθ`.

    **Arguments:**

    - `apply`, `params`: the functional model (`lazyrich.functional`).
    - `x`: a batch `(n, ...)`; `eps`: the output error `(n, k)` (e.g. `output_error`).
    - `damping`: λ > 0.
    - `method`: `"dense"` builds the `(nk × nk)` NTK with `lazyrich.kernels.empirical_ntk`
      (blocks of `chunk` examples) and solves by eigendecomposition; `"cg"` never forms it
      and solves by conjugate gradients with NTK-vector products (`tol`, `maxiter`), for
      large batches.

    **Returns:**

    `Δθ`, shaped like `params`.
    """
    require(method in ("dense", "cg"), f"unknown method {method!r}: choose dense or cg")
    if isinstance(damping, (int, float)):
        require(damping >= 0, f"damping must be >= 0, got {damping}")
    f = lambda p: apply(p, x)
    z, vjp = jax.vjp(f, params)
    require(
        eps.shape == z.shape,
        f"eps has shape {eps.shape} but the model outputs {z.shape}; pass one error per output",
    )
    eps = eps.astype(z.dtype)
    if method == "dense":
        e, q = eigh(_ntk_matrix(apply, params, x, z, chunk))
        alpha = q @ ((q.T @ eps.reshape(-1)) / (jnp.maximum(e, 0.0) + damping))
        alpha = alpha.reshape(z.shape)
    else:

        def matvec(v):
            (g,) = vjp(v)
            return jax.jvp(f, (params,), (g,))[1] + damping * v

        alpha, _ = jax.scipy.sparse.linalg.cg(matvec, eps, tol=tol, maxiter=maxiter)
    (delta,) = vjp(alpha)
    return delta
