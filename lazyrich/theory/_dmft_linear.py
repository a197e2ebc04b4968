r"""The infinite-width DMFT of a deep *linear* μP network, solved exactly in time order.

Notation and conventions are those of `lazyrich.theory._dmft` (read it first): p points
(training then test), weights `w_μ` (1/P on a training point, 0 on a test point), the feature
step `c = η0/γ`, the input kernel `K^x = x xᵀ/D`, hidden layers l = 1 … L − 1 and

    h^l(t) = χ^l(t) + Σ_{s<t} [A^{l−1}(t, s) + c Φ^{l−1}(t, s) diag Δ(s)] z^l(s)
    z^l(t) = ξ^l(t) + Σ_{s<t} [B^l(t, s)     + c G^{l+1}(t, s) diag Δ(s)] h^l(s)

(φ = identity, so g = z), with `Φ⁰ ≡ K^x`, `G^L ≡ 1 1ᵀ`, `A⁰ = B^{L−1} = 0`, the sources
`χ¹(t) = χ¹ ~ N(0, K^x)` (constant in time), `ξ^{L−1}(t) = w₀ 1` (the readout at
initialisation, `w₀ ~ N(0, 1)`), and for hidden-to-hidden layers Gaussian paths
`χ^l ~ N(0, Φ^{l−1})`, `ξ^l ~ N(0, G^{l+1})` over all (time, point) pairs.

**Exact solution.** Every field is a linear function of its layer's sources, so each is stored
as its coefficients on them: `h^l(t) = Hc^l(t) χ^l + Hx^l(t) ξ^l` and likewise `Zc`, `Zx`. The
kernels are then quadratic forms, `Φ^l(t, s) = Hc(t) Σ_χ Hc(s)ᵀ + Hx(t) Σ_ξ Hx(s)ᵀ`, and the
responses are coefficients: `A^l(t, s) = ∂h^l(t)/∂ξ^l(s) = Hx^l(t)[:, s]`,
`B^l(t, s) = ∂z^{l+1}(t)/∂χ^{l+1}(s) = Zc^{l+1}(t)[:, s]`. Everything is causal (a quantity at
step t needs only the past, within step t the forward pass goes up the layers and the
backward pass down), so one sweep in time order solves the self-consistency exactly: no
fixed-point iteration, no tolerance beyond float64 round-off. The alternating iteration of
Bordelon & Pehlevan would reach the same point after at most T sweeps.

**Cost** with T times and p points (N = T p): for L = 2 the sources are χ¹ (p numbers) and
w₀ (one) and the kernels `K^x`, `G² = 1 1ᵀ` do not change, so the coefficients follow the
one-step recursion `Hc ← Hc + c K^x diag(Δ) Zc`, `Zc ← Zc + c 1 Δᵀ Hc` (`two_layer_linear`):
memory O(p²), time O(T p³). For L ≥ 3 a layer whose two sources are both paths holds four
coefficient arrays of N² numbers plus Φ and G: memory ≈ 6 (L − 2) N² floats, time O(L N³)
per γ.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def _block(p: int, t, T: int, dim: int) -> Array:
    """The coefficient block of a field on its own source at time t: `(p, dim)`."""
    if dim == p:  # χ¹: the same source at every time
        return jnp.eye(p)
    if dim == 1:  # w₀: one scalar for every point
        return jnp.ones((p, 1))
    e = jnp.zeros((p, T, p)).at[:, t, :].set(jnp.eye(p))
    return e.reshape(p, T * p)


def two_layer_linear(
    kx: Float[Array, "p p"],
    y: Float[Array, " p"],
    weights: Float[Array, " p"],
    gamma: Float[Array, ""],
    eta0: Float[Array, ""],
    *,
    steps: int,
) -> Float[Array, "T p"]:
    """L = 2: the outputs `f(t)`, t < `steps`, by the one-step coefficient recursion.

    **Arguments:** as for `deep_linear_solve` (without `depth`).

    **Returns:** `f`, `(T, p)`.
    """
    p = kx.shape[0]
    c = eta0 / gamma

    def step(carry, _):
        hc, hx, zc, zx = carry  # h = hc χ + hx w₀, z = zc χ + zx w₀ (rows: points)
        f = (jnp.sum((zc @ kx) * hc, axis=1) + zx * hx) / gamma
        delta = weights * (y - f)
        hc, hx, zc, zx = (
            hc + c * kx @ (delta[:, None] * zc),
            hx + c * kx @ (delta * zx),
            zc + c * jnp.broadcast_to(delta @ hc, (p, p)),
            zx + c * jnp.broadcast_to(delta @ hx, (p,)),
        )
        return (hc, hx, zc, zx), f

    eye, zero = jnp.eye(p, dtype=kx.dtype), jnp.zeros((p,), kx.dtype)
    init = (eye, zero, jnp.zeros_like(eye), jnp.ones_like(zero))
    return jax.lax.scan(step, init, None, length=steps)[1]


def deep_linear_solve(
    kx: Float[Array, "p p"],
    y: Float[Array, " p"],
    weights: Float[Array, " p"],
    gamma: Float[Array, ""],
    eta0: Float[Array, ""],
    *,
    depth: int,
    steps: int,
) -> Float[Array, "T p"]:
    """The infinite-width outputs `f(t)` of a centred μP deep linear network, t < `steps`.

    **Arguments:**

    - `kx`: the input kernel `x xᵀ/D` over all points (training then test).
    - `y`: targets (anything on test points: their weight is 0).
    - `weights`: `1/P` on the P training points, 0 on test points.
    - `gamma`, `eta0`: γ and η0 (scalars; vmap this function over them).
    - `depth`: L, the number of weight layers (≥ 2).
    - `steps`: T, the number of times 0 … T − 1.

    **Returns:** `f`, `(T, p)`: the outputs at every time.
    """
    p, T, L = kx.shape[0], steps, depth
    dtype = kx.dtype
    c = eta0 / gamma
    n = T * p
    dchi = [p] + [n] * (L - 2)  # layer l = 1 … L−1 (index l−1)
    dxi = [n] * (L - 2) + [1]
    zeros = lambda *s: jnp.zeros(s, dtype)  # noqa: E731
    state = {
        "Hc": [zeros(T, p, d) for d in dchi],
        "Hx": [zeros(T, p, d) for d in dxi],
        "Zc": [zeros(T, p, d) for d in dchi],
        "Zx": [zeros(T, p, d) for d in dxi],
        "Phi": [zeros(T, p, T, p) for _ in range(L - 2)],  # Φ^l, l = 1 … L−2
        "G": [zeros(T, p, T, p) for _ in range(L - 2)],  # G^l, l = 2 … L−1
        "delta": zeros(T, p),
        "f": zeros(T, p),
    }

    def sig_chi(st, i):
        return kx if i == 0 else st["Phi"][i - 1].reshape(n, n)

    def sig_xi(st, i):
        return jnp.ones((1, 1), dtype) if i == L - 2 else st["G"][i].reshape(n, n)

    def kernel_row(cc, cx, call, xall, sc, sx):
        """`(p, T, p)`: the covariance of a field at t with the same field at every time."""
        row = (cc @ sc) @ call.reshape(n, -1).T + (cx @ sx) @ xall.reshape(n, -1).T
        return row.reshape(p, T, p)

    def step(t, st):
        delta = st["delta"]  # Δ(s) = 0 for s >= t: not computed yet
        # forward: h^l(t), l = 1 … L−1
        for i in range(L - 1):
            phi_prev = (
                jnp.broadcast_to(kx[:, None, :], (p, T, p)) if i == 0 else st["Phi"][i - 1][t]
            )
            m = c * phi_prev * delta[None]
            if i > 0:  # A^{l−1}(t, s) = ∂h^{l−1}(t)/∂ξ^{l−1}(s)
                m = m + st["Hx"][i - 1][t].reshape(p, T, p)
            m = m.reshape(p, n)
            hc = _block(p, t, T, dchi[i]) + m @ st["Zc"][i].reshape(n, -1)
            hx = m @ st["Zx"][i].reshape(n, -1)
            st["Hc"][i] = st["Hc"][i].at[t].set(hc)
            st["Hx"][i] = st["Hx"][i].at[t].set(hx)
            if i < L - 2:  # Φ^l(t, ·), the next layer's source covariance
                row = kernel_row(hc, hx, st["Hc"][i], st["Hx"][i], sig_chi(st, i), sig_xi(st, i))
                st["Phi"][i] = st["Phi"][i].at[t].set(row).at[:, :, t].set(row.transpose(1, 2, 0))
        # backward: z^l(t), l = L−1 … 1
        for i in reversed(range(L - 1)):
            if i == L - 2:
                m = c * jnp.broadcast_to(delta[None], (p, T, p))
            else:  # B^l(t, s) = ∂z^{l+1}(t)/∂χ^{l+1}(s), plus the G^{l+1} term
                m = c * st["G"][i][t] * delta[None] + st["Zc"][i + 1][t].reshape(p, T, p)
            m = m.reshape(p, n)
            zc = m @ st["Hc"][i].reshape(n, -1)
            zx = _block(p, t, T, dxi[i]) + m @ st["Hx"][i].reshape(n, -1)
            st["Zc"][i] = st["Zc"][i].at[t].set(zc)
            st["Zx"][i] = st["Zx"][i].at[t].set(zx)
            if i > 0:  # G^l(t, ·), the previous layer's source covariance
                row = kernel_row(zc, zx, st["Zc"][i], st["Zx"][i], sig_chi(st, i), sig_xi(st, i))
                st["G"][i - 1] = (
                    st["G"][i - 1].at[t].set(row).at[:, :, t].set(row.transpose(1, 2, 0))
                )
        # the output: γ f(t) = E[w(t) h^{L−1}(t)] (E[w₀ h^{L−1}(0)] = 0)
        i = L - 2
        hc, hx = st["Hc"][i][t], st["Hx"][i][t]
        zc, zx = st["Zc"][i][t], st["Zx"][i][t]
        f = (jnp.sum((zc @ sig_chi(st, i)) * hc, axis=1) + jnp.sum(zx * hx, axis=1)) / gamma
        st["f"] = st["f"].at[t].set(f)
        st["delta"] = delta.at[t].set(weights * (y - f))
        return st

    return jax.lax.fori_loop(0, T, step, state)["f"]
