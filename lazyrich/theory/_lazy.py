"""Closed-form lazy (kernel) dynamics: MSE regression with a fixed kernel, any list of times.

**Loss and normalisation** (the convention of `neural_tangents.predict`): with P training
points and k outputs, `L = 1/(2 P k) Σ_{i,c} (f_c(x_i) − y_ic)²` (half the mean over examples and
outputs). Gradient descent on the parameters of the linearized network, step η, moves the train
outputs by `Δf = −(η/(Pk)) Θ (f − y)` with `Θ` the NTK (full `(Pk × Pk)`, or `Θ ⊗ I_k` for a
per-output kernel `(P, P)`). Hence, with `r = f_train − y_train` and `Θ = V diag(λ) Vᵀ`:

- gradient flow (time t in units of η, `method="flow"`): `r(t) = V exp(−η λ t/(Pk)) Vᵀ r(0)`;
- gradient descent (t integer steps, `method="gd"`): `r(t) = V (1 − η λ/(Pk))ᵗ Vᵀ r(0)`, exactly
  (not its flow approximation);
- test points: `f_test(t) = f_test(0) + Θ_xX V diag((g(λ, t) − 1)/λ) Vᵀ r(0)` where g is the
  factor above (the λ → 0 limit `−η t/(Pk)` is used for null directions).

Mapping to `nt.predict.gradient_descent_mse(Θ, y, learning_rate=η)`: identical, its `t` is our
`t` (it also uses `exp(−η t Θ/y.size)`), for flow; it has no discrete GD.

**Centring, 1/γ and μP.** For a centred model `f = (net − net₀)/γ`, `f(0) = 0` on every input
(pass `f0_train = f0_test = None`), and its NTK is `Θ_net/γ²`. Under μP the learning rate is
`η = η0 · N` and `Θ_net = Θ_ntk/N` (see `lazyrich.kernels._infinite`), so the dynamics depend on
`η Θ_f = η0 · N · Θ_net/γ² = η0 · Θ_ntk/γ²`: `effective_rate(eta0, gamma=γ, lr_multiplier=N)`
returns the factor `η0 · N/γ²` to use as `eta` with the kernel `Θ_net` (or pass `Θ_f` and
`eta = η0 · N`; both are the same product).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..errors import require

METHODS = ("flow", "gd")


class LazyPrediction(NamedTuple):
    """Predicted outputs and losses at each requested time.

    **Fields:**

    - `train`: predicted outputs on the training inputs, `(t, p, k)` (t times, p points).
    - `test`: predicted outputs on the test inputs, `(t, q, k)`, or `None` without them.
    - `train_loss`, `test_loss`: the losses at each time, `(t,)` (`test_loss` `None` without
      test inputs).
    """

    train: Float[Array, "t p k"]
    test: Float[Array, "t q k"] | None
    train_loss: Float[Array, " t"]
    test_loss: Float[Array, " t"] | None


def effective_rate(
    eta0: float | Array, *, gamma: float | Array = 1.0, lr_multiplier: float = 1.0
) -> Array:
    """The learning rate to use with the kernel of the unscaled network: `η0 · m/γ²`.

    For `f = (net − net₀)/γ` trained with `η = η0 · m` (`m = model.lr_multiplier`, N for μP),
    `η Θ_f = (η0 · m/γ²) Θ_net`.

    **Arguments:**

    - `eta0`: the base learning rate η0 (number or array).
    - `gamma`: the output scale γ (number or array, broadcast with `eta0`).
    - `lr_multiplier`: m, the model's learning-rate multiplier (`model.lr_multiplier`).

    **Returns:** the array `η0 · m / γ²`.
    """
    return jnp.asarray(eta0) * lr_multiplier / jnp.asarray(gamma) ** 2


def _as_matrix(k: Array, p: int, q: int, nout: int) -> tuple[Array, bool]:
    """`(p*nout, q*nout)` matrix from `(p, q)` (per output) or `(p, q, k, k)` (full)."""
    if k.ndim == 2:
        require(k.shape == (p, q), f"kernel has shape {k.shape}, expected ({p}, {q})")
        return k, False
    require(
        k.shape == (p, q, nout, nout),
        f"kernel has shape {k.shape}: pass ({p}, {q}) or the full ({p}, {q}, {nout}, {nout})",
    )
    return jnp.transpose(k, (0, 2, 1, 3)).reshape(p * nout, q * nout), True


def kernel_gd_predictions(
    k_train: Float[Array, "p p ..."],
    k_test_train: Float[Array, "q p ..."] | None,
    y_train: Float[Array, "p k"],
    times: Float[Array, " t"],
    *,
    eta: float | Array = 1.0,
    method: str = "flow",
    f0_train: Float[Array, "p k"] | None = None,
    f0_test: Float[Array, "q k"] | None = None,
    y_test: Float[Array, "q k"] | None = None,
) -> LazyPrediction:
    """Train and test predictions of kernel regression trained by GD/GF on MSE, at `times`.

    One eigendecomposition of the train kernel serves all times.

    **Arguments:**

    - `k_train`: Θ(X, X), `(P, P)` per output or full `(P, P, k, k)`.
    - `k_test_train`: Θ(x, X), `(Q, P)` or `(Q, P, k, k)`; None for no test predictions.
    - `y_train`: targets `(P, k)` (or `(P,)`, treated as k = 1).
    - `times`: times (flow, in units of η) or integer steps (gd).
    - `eta`: learning rate η (see the module docstring for γ and μP: `effective_rate`).
    - `method`: `"flow"` (gradient flow) or `"gd"` (discrete steps, exact).
    - `f0_train`, `f0_test`: outputs at initialization (None: 0, the centred model).
    - `y_test`: test targets, for the test loss.

    **Returns:** `LazyPrediction(train (T, P, k), test (T, Q, k) or None, train_loss (T,),
    test_loss (T,) or None)` with loss `1/(2·size) Σ (f − y)²`.
    """
    require(method in METHODS, f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    squeeze = y_train.ndim == 1
    y = y_train[:, None] if squeeze else y_train
    p, nout = y.shape
    kxx, _ = _as_matrix(k_train, p, p, nout)
    times = jnp.atleast_1d(jnp.asarray(times))
    if method == "gd":
        require(
            bool(jnp.all(times == jnp.round(times))) and bool(jnp.all(times >= 0)),
            "method='gd' needs integer steps >= 0 in times: round them or use method='flow'",
        )
    f0 = jnp.zeros_like(y) if f0_train is None else f0_train.reshape(y.shape)
    kx = ft0 = yt = None
    if k_test_train is not None:
        q = k_test_train.shape[0]
        kx, _ = _as_matrix(k_test_train, q, p, nout)
        ft0 = jnp.zeros((q, nout), y.dtype) if f0_test is None else f0_test.reshape(q, nout)
        yt = None if y_test is None else y_test.reshape(q, nout)
    train, test, train_loss, test_loss = _solve(
        kxx, kx, y, f0, ft0, yt, times, jnp.asarray(eta), method, k_train.ndim == 2
    )
    if squeeze:
        train = train[..., 0]
        test = None if test is None else test[..., 0]
    return LazyPrediction(train=train, test=test, train_loss=train_loss, test_loss=test_loss)


@functools.partial(jax.jit, static_argnames=("method", "per_output"))
def _solve(kxx, kx, y, f0, ft0, yt, times, eta, method, per_output):
    """One eigendecomposition of the train kernel, then every time at once (one program)."""
    p, nout = y.shape
    size = p * nout
    r0 = f0 - y  # (P, k)
    evals, evecs = jnp.linalg.eigh(kxx)
    evals = jnp.maximum(evals, 0.0)
    rate = eta.astype(kxx.dtype) / size
    # coordinates of r0 in the eigenbasis: (P, k) per output, (Pk,) full
    coeff = evecs.T @ (r0 if per_output else r0.reshape(-1))
    t = times.astype(kxx.dtype)[:, None]
    if method == "flow":
        g = jnp.exp(-rate * evals[None, :] * t)
    else:
        base = 1.0 - rate * evals
        mag = jnp.abs(base)[None, :] ** t
        odd = jnp.mod(t, 2.0) == 1.0
        g = mag * jnp.where(odd & (base[None, :] < 0), -1.0, 1.0)
    small = evals <= 1e-12 * jnp.maximum(evals.max(), 1e-300)
    safe = jnp.where(small, 1.0, evals)
    h = jnp.where(small[None, :], -rate * t, (g - 1.0) / safe[None, :])  # (T, P[k])

    def project(factor):  # (T, Pk) -> residual-shaped contributions, in the original basis
        if per_output:
            return jnp.einsum("ij,tjc->tic", evecs, factor[:, :, None] * coeff[None])
        return (factor * coeff[None]) @ evecs.T

    train = y[None] + project(g).reshape(-1, p, nout)
    train_loss = 0.5 * jnp.mean((train - y[None]) ** 2, axis=(1, 2))
    test = test_loss = None
    if kx is not None:
        q = kx.shape[0] // (1 if per_output else nout)
        delta = project(h)  # (T, P, k) or (T, Pk)
        if per_output:
            test = ft0[None] + jnp.einsum("qp,tpc->tqc", kx, delta)
        else:
            test = ft0[None] + jnp.einsum("qp,tp->tq", kx, delta).reshape(-1, q, nout)
        if yt is not None:
            test_loss = 0.5 * jnp.mean((test - yt[None]) ** 2, axis=(1, 2))
    return train, test, train_loss, test_loss
