r"""The DMFT of a two-layer μP network by sampling its single-site process (any activation).

Conventions are those of `lazyrich.theory._dmft`. For L = 2 there is one hidden layer and no
hidden-to-hidden weight, so the single-site process of a hidden unit is closed given the
output error alone: with `χ = u·x/√D` (u ~ N(0, I_D), the unit's input weights) and the unit's
readout `w₀ ~ N(0, 1)`,

    h(t + 1) = h(t) + c K^x (Δ(t) ⊙ g(t)),   g = φ'(h) w,
    w(t + 1) = w(t) + c Σ_μ Δ_μ(t) φ(h_μ(t)),
    f(t)     = (1/γ) ⟨w(t) φ(h(t)) − w₀ φ(h(0))⟩,   Δ(t) = weights ⊙ (y − f(t)),

with `c = η0/γ` and ⟨·⟩ the average over the single-site law. The sampling solver draws S
independent sites and replaces ⟨·⟩ by their mean. The only order parameter the sites share is
f(t) (equivalently the kernels Φ = ⟨φ φ⟩ and G = ⟨g g⟩ that drive it), and f(t) depends on the
sites at step t only, so one sweep in time order is the self-consistent solution of the
sampled equations (the alternating iteration of Bordelon & Pehlevan converges to it in at most
T sweeps; in discrete time nothing is left to iterate).

**Control variate.** The plain mean has a relative Monte-Carlo error ~ 1/√S in f at every γ,
also as γ → 0 where the answer is known exactly: the lazy dynamics with the infinite-width NTK
K₀. So the solver also runs that lazy recursion (exact K₀, from neural-tangents), with
`S_lazy(t) = Σ_{s<t} Δ_lazy(s)`, and uses

    f(t) = f̂(t) + (η0/γ²) (K₀ − K̂₀) S_lazy(t),

where `K̂₀ = ⟨φ(h₀) φ(h₀)ᵀ⟩ + K^x ⊙ ⟨w₀² φ'(h₀) φ'(h₀)ᵀ⟩` is the same sites' initial NTK.
Replacing the sites' NTK by the exact one in the lazy part leaves the estimator's limit
unchanged (K̂₀ → K₀ as S → ∞) and makes it exact as γ → 0 (there f̂ = (η0/γ²) K̂₀ ΣΔ and the
recursion's fixed point is the lazy solution); at finite γ the remaining error is the
product of the sampling noise and the departure from lazy training. The Monte-Carlo error is
measured from independent batches of sites (`lazyrich.theory._dmft`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..models import activation as get_activation


def two_layer_sample(
    x: Float[Array, "p d"],
    y: Float[Array, " p"],
    weights: Float[Array, " p"],
    k0: Float[Array, "p p"],
    gamma: Float[Array, ""],
    eta0: Float[Array, ""],
    *,
    key: PRNGKeyArray,
    activation: str,
    steps: int,
    samples: int,
) -> Float[Array, "T p"]:
    """The sampled infinite-width outputs `f(t)`, t < `steps`, of a centred two-layer μP net.

    **Arguments:**

    - `x`: all inputs `(p, D)` (training then test points).
    - `y`: targets (anything on test points: their weight is 0).
    - `weights`: `1/P` on the P training points, 0 on test points.
    - `k0`: the exact infinite-width NTK on all points (the control variate's anchor).
    - `gamma`, `eta0`: γ and η0 (scalars; vmap over them).
    - `key`: the PRNG key of the S sites (keyword-only).
    - `activation`: a name from `lazyrich.models.ACTIVATIONS`.
    - `steps`: T; `samples`: S.

    **Returns:** `f`, `(T, p)`.
    """
    phi = get_activation(activation)
    dtype = x.dtype
    ku, kw = jax.random.split(key)
    d = x.shape[1]
    kx = x @ x.T / d
    h0 = jax.random.normal(ku, (samples, d), dtype) @ x.T / jnp.sqrt(jnp.asarray(d, dtype))
    w0 = jax.random.normal(kw, (samples,), dtype)

    def dphi(h):
        return jax.jvp(phi, (h,), (jnp.ones_like(h),))[1]

    phi0, g0 = phi(h0), dphi(h0) * w0[:, None]
    k0_hat = (phi0.T @ phi0 + kx * (g0.T @ g0)) / samples
    rate = eta0 / gamma**2
    c = eta0 / gamma

    def step(carry, _):
        h, w, s_lazy = carry
        ph = phi(h)
        f_hat = jnp.mean(w[:, None] * ph - w0[:, None] * phi0, axis=0) / gamma
        f = f_hat + rate * (k0 - k0_hat) @ s_lazy
        delta = weights * (y - f)
        delta_lazy = weights * (y - rate * k0 @ s_lazy)
        g = dphi(h) * w[:, None]
        h = h + c * (g * delta) @ kx
        w = w + c * ph @ delta
        return (h, w, s_lazy + delta_lazy), f

    init = (h0, w0, jnp.zeros_like(y))
    return jax.lax.scan(step, init, None, length=steps)[1]
