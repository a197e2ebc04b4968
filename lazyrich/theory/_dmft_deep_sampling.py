r"""The DMFT of a three-layer μP network (two hidden layers) by sampling (any activation).

Conventions and equations are those of `lazyrich.theory._dmft` with L = 3: S sites of hidden
layer 1 (sources χ¹ = u·x/√D and ξ¹) and S sites of hidden layer 2 (sources χ² and the readout
w₀), coupled through the kernels Φ¹, G² and the responses

    A(t, s) = ⟨∂φ(h¹(t))/∂ξ¹(s)⟩,    B(t, s) = ⟨∂g²(t)/∂χ²(s)⟩.

**Sampling the hidden sources.** Given the layer-1 sites, `χ²_i(t) = Σ_j R_ij φ(h¹_j(t))/√S`
with a fixed Gaussian matrix R is exactly Gaussian with the sites' covariance Φ¹ over every
(time, point) pair, and it is causal (χ²(t) needs layer 1 at t only); likewise
`ξ¹_j(t) = Σ_i R'_ji g²_i(t)/√S` with an independent R' has covariance G². (A network of
width S would use R' = Rᵀ, and its back-reaction would appear as correlations between the two;
here R and R' are independent and the back-reaction enters through A and B, as in the DMFT.)

**Responses.** Every site carries the tangent of its path with respect to its own source path
(n = T·p directions): `∂h¹(t)/∂ξ¹(·)` and `∂h²(t)/∂χ²(·)`, propagated with the same
recursions (forward-mode). A and B at step t are the site averages of these tangents. The
tangents' history costs `2 S T p n` numbers (n = T p): this solver is for small T·p.

One sweep in time order solves the sampled equations exactly (every quantity at step t depends
on earlier steps, or on earlier stages of step t: layer 1 forward, layer 2, layer 1 backward).
No control variate: the relative Monte-Carlo error of f is ~ 1/√S at every γ.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..models import activation as get_activation


def three_layer_sample(
    x: Float[Array, "p d"],
    y: Float[Array, " p"],
    weights: Float[Array, " p"],
    gamma: Float[Array, ""],
    eta0: Float[Array, ""],
    *,
    key: PRNGKeyArray,
    activation: str,
    steps: int,
    samples: int,
) -> Float[Array, "T p"]:
    """The sampled infinite-width outputs `f(t)`, t < `steps`, of a centred L = 3 μP net.

    **Arguments:** as for `two_layer_sample`, without `k0`.

    **Returns:** `f`, `(T, p)`.
    """
    phi = get_activation(activation)

    def d1(h):
        return jax.jvp(phi, (h,), (jnp.ones_like(h),))[1]

    def d2(h):
        return jax.jvp(d1, (h,), (jnp.ones_like(h),))[1]

    dtype = x.dtype
    p, d = x.shape
    T, S = steps, samples
    n = T * p
    c = eta0 / gamma
    kx = x @ x.T / d
    ku, kw, kr, kr2 = jax.random.split(key, 4)
    h1_0 = jax.random.normal(ku, (S, d), dtype) @ x.T / jnp.sqrt(jnp.asarray(d, dtype))
    w0 = jax.random.normal(kw, (S,), dtype)
    r_chi = jax.random.normal(kr, (S, S), dtype) / jnp.sqrt(jnp.asarray(S, dtype))
    r_xi = jax.random.normal(kr2, (S, S), dtype) / jnp.sqrt(jnp.asarray(S, dtype))
    z = lambda *s: jnp.zeros(s, dtype)  # noqa: E731
    state = {
        "h1": h1_0, "th1": z(S, p, n), "w": w0, "tw": z(S, n),
        "phi1": z(S, T, p), "tphi1": z(S, T, p, n), "g2": z(S, T, p), "tg2": z(S, T, p, n),
        "Phi1": z(T, p, T, p), "G2": z(T, p, T, p), "A": z(T, p, T, p), "B": z(T, p, T, p),
        "delta": z(T, p), "base": z(p), "f": z(T, p),
    }  # fmt: skip

    def unit(t):  # (p, n): the tangent of a source at step t along its own directions
        return jnp.zeros((p, T, p), dtype).at[:, t, :].set(jnp.eye(p, dtype=dtype)).reshape(p, n)

    def kernel_row(now, hist):  # (p, T, p): ⟨a(t) a(s)ᵀ⟩ over sites
        return jnp.einsum("jv,jsm->vsm", now, hist) / S

    def set_sym(k, t, row):
        return k.at[t].set(row).at[:, :, t].set(row.transpose(1, 2, 0))

    def step(t, st):
        delta = st["delta"]  # Δ(s) = 0 for s >= t
        # layer 1, forward
        h1, th1 = st["h1"], st["th1"]
        phi1, dphi1, ddphi1 = phi(h1), d1(h1), d2(h1)
        tphi1 = dphi1[:, :, None] * th1
        st["phi1"] = st["phi1"].at[:, t].set(phi1)
        st["tphi1"] = st["tphi1"].at[:, t].set(tphi1)
        st["A"] = st["A"].at[t].set(jnp.mean(tphi1, axis=0).reshape(p, T, p))
        st["Phi1"] = set_sym(st["Phi1"], t, kernel_row(phi1, st["phi1"]))
        # layer 2
        m2 = st["A"][t] + c * st["Phi1"][t] * delta[None]
        h2 = r_chi @ phi1 + jnp.einsum("vsm,ism->iv", m2, st["g2"])
        th2 = unit(t)[None] + jnp.einsum("vsm,ismk->ivk", m2, st["tg2"])
        w, tw = st["w"], st["tw"]
        phi2, dphi2, ddphi2 = phi(h2), d1(h2), d2(h2)
        g2 = dphi2 * w[:, None]
        tg2 = (ddphi2 * w[:, None])[:, :, None] * th2 + dphi2[:, :, None] * tw[:, None, :]
        st["g2"] = st["g2"].at[:, t].set(g2)
        st["tg2"] = st["tg2"].at[:, t].set(tg2)
        st["B"] = st["B"].at[t].set(jnp.mean(tg2, axis=0).reshape(p, T, p))
        st["G2"] = set_sym(st["G2"], t, kernel_row(g2, st["g2"]))
        # layer 1, backward
        m1 = st["B"][t] + c * st["G2"][t] * delta[None]
        z1 = r_xi @ g2 + jnp.einsum("vsm,jsm->jv", m1, st["phi1"])
        tz1 = unit(t)[None] + jnp.einsum("vsm,jsmk->jvk", m1, st["tphi1"])
        g1 = dphi1 * z1
        tg1 = (ddphi1 * z1)[:, :, None] * th1 + dphi1[:, :, None] * tz1
        # output and error
        out = jnp.mean(w[:, None] * phi2, axis=0)
        base = jnp.where(t == 0, out, st["base"])
        f = (out - base) / gamma
        dt = weights * (y - f)
        st["base"], st["f"], st["delta"] = base, st["f"].at[t].set(f), delta.at[t].set(dt)
        # the GD step of every site
        st["h1"] = h1 + c * (g1 * dt) @ kx
        st["th1"] = th1 + c * jnp.einsum("jmk,m,mv->jvk", tg1, dt, kx)
        st["w"] = w + c * phi2 @ dt
        st["tw"] = tw + c * jnp.einsum("m,imk->ik", dt, dphi2[:, :, None] * th2)
        return st

    return jax.lax.fori_loop(0, T, step, state)["f"]
