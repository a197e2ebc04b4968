r"""The deep-linear γ toy model: a scalar depth-L product with a 1/γ output scale.

**Model.** Parameters a = (a_1, …, a_L), output and loss

    f(a) = (Π_l a_l − c) / γ,        ℓ(a) = ½ (y − f)²,

balanced initialisation a_l(0) = a0 > 0 and target y > 0. `centre=True` (the default, as in
the γ paper's centred networks) takes c = a0^L so that f(0) = 0; `centre=False` takes c = 0,
so f(0) = f0 = a0^L / γ. Gradient descent from a balanced point stays exactly balanced
(all a_l equal), so the dynamics are one-dimensional. Write P = Π a_l = a^L, the target
product P* = γ y + c, r = y − f, and α = 2 − 2/L.

**Hessian at a balanced point** (a_l = a). With g = ∂f/∂a_i = a^(L−1)/γ and
h = ∂²f/∂a_i∂a_j = a^(L−2)/γ (i ≠ j; 0 on the diagonal),

    H = g² 11ᵀ − r h (11ᵀ − I),

whose eigenvalues are λ_∥ = L g² − (L−1) r h (along 1) and λ_⊥ = r h (on 1⊥, L−1 times).
The sharpness is max(λ_∥, λ_⊥) (just λ_∥ = 1/γ² for L = 1). Hence:

- at the solution (r = 0): λ = L P*^α / γ², which is L y^(2−2/L) γ^(−2/L) exactly when c = 0,
  and up to a relative (1 + c/(γy))^α when centred (→ exact as γ → ∞);
- at initialisation: λ_∥ = L a0^(2L−2)/γ² − (L−1)(y − f0) a0^(L−2)/γ. The Gauss–Newton term
  L a0^(2L−2)/γ² dominates only when γ |y − f0| ≪ a0^L (the lazy regime); in the rich regime
  the residual term λ_⊥ = (y − f0) a0^(L−2)/γ is the larger one. Either way, for γ → ∞ both are
  below the sharpness at the solution, so the largest sharpness met along training is the
  initial one for γ ≪ 1 and the final one for γ ≫ 1.

**Learning rate.** GD is linearly stable at a point when η < 2/λ. The prediction for the
largest stable learning rate is η_max = 2 / max(λ_init, λ_solution), giving
η_max ∝ γ² (slope 2) for γ ≪ 1 and ∝ γ^(2/L) (slope 2/L) for γ ≫ 1; η* (the best rate) is a
fixed fraction of it in both limits (1/λ for the lazy, linear dynamics).

**Gradient flow.** With a time unit of one GD step (t = number of steps at rate η),
dP/dt = (η L / γ²) P^α (P* − P), i.e. for c = 0

    df/dt = η L γ^(−2/L) f^(2−2/L) (y − f),

which depends on η, γ and t only through τ = η γ^(−2/L) t (the time collapse; exact for c = 0
at fixed f0 — even for discrete GD, whose iterates in b = a γ^(−1/L) depend only on
η γ^(−2/L)). The flow is solved exactly: with u = P/P* and z = log(u/|1 − u|),
dz/dt = k u^(α−1), k = η L P*^α / γ², so the time to reach z is (1/k) ∫ u(s)^(1−α) ds
(Gauss–Legendre quadrature; closed form z = z0 + k t for L = 2), inverted by bisection.

**Plateau.** Centred with a0 fixed, the flow starts at the effective output a0^L/γ → 0, so in
τ the plateau lengthens with γ: τ_plateau ≈ ln(γ y / a0²)/(2y) for L = 2 and
≈ (γ / a0^L)^(1 − 2/L) / ((L − 2) y) for L ≥ 3 (leading order in γ → ∞). `plateau_length`
computes the exact gradient-flow value (no asymptotics).

**Staircase.** With whitened inputs and a multi-output target Y = U diag(s) Vᵀ, a deep linear
network initialised aligned with U, V decouples into modes, each the scalar model with
y = s_α; modes with larger s escape their plateau first, so the loss falls in steps.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..errors import ConfigError

_GL_NODES, _GL_WEIGHTS = (jnp.asarray(v) for v in np.polynomial.legendre.leggauss(96))


def _depth(L, *, minimum: int = 1, why: str = "") -> int:
    if isinstance(L, bool) or not isinstance(L, (int, np.integer)):
        raise ConfigError(f"depth L must be an integer, got {L!r}: pass e.g. L=3")
    if L < minimum:
        extra = f" ({why})" if why else ""
        raise ConfigError(
            f"the toy theory needs depth L >= {minimum}, got {L}{extra}: pass L={minimum} or more"
        )
    return int(L)


def _positive(**values: float) -> None:
    for name, v in values.items():
        if not (np.all(np.isfinite(np.asarray(v))) and np.all(np.asarray(v) > 0)):
            raise ConfigError(f"{name} must be finite and > 0, got {v}: pass a positive {name}")


def _offset(L: int, a0, centre: bool):
    return a0**L if centre else 0.0 * a0


def theory_slopes(L: int) -> tuple[float, float]:
    """Predicted log-log slopes of η* (and η_max) in γ: (2 for γ ≪ 1, 2/L for γ ≫ 1).

    **Arguments:**

    - `L`: the depth, an integer ≥ 1.

    **Returns:** `(2.0, 2.0 / L)`, the small-γ and large-γ slopes.

    **Raises:** `ConfigError` for a depth that is not an integer ≥ 1.
    """
    L = _depth(L)
    return 2.0, 2.0 / L


def rescaled_time(t, L: int, gamma, eta):
    """τ = η γ^(−2/L) t: the time in which rich-regime trajectories collapse.

    **Arguments:**

    - `t`: times in GD steps (number or array).
    - `L`: the depth, an integer ≥ 1.
    - `gamma`, `eta`: output scale γ and learning rate η (numbers or arrays, broadcast with
      `t`).

    **Returns:** τ, broadcast shape of the inputs.
    """
    L = _depth(L)
    return eta * gamma ** (-2.0 / L) * t


def balanced_hessian_eigenvalues(
    L: int, a, gamma, y, *, offset: float | Array = 0.0
) -> tuple[Array, Array]:
    """Exact Hessian eigenvalues (λ_∥, λ_⊥) of ℓ at the balanced point a_l = a.

    f = (a^L − offset)/γ. λ_∥ (along 1) = L g² − (L−1) r h; λ_⊥ (on 1⊥) = r h, −inf for L = 1.

    **Arguments:**

    - `L`: the depth, an integer ≥ 1.
    - `a`: the common weight a (number or array).
    - `gamma`: the output scale γ.
    - `y`: the target.
    - `offset`: c, subtracted from the product (`a0**L` for the centred model, else 0).

    **Returns:** `(λ_∥, λ_⊥)`, arrays of the broadcast shape of `a`, `gamma`, `y`.
    """
    L = _depth(L)
    a, gamma, y = jnp.asarray(a), jnp.asarray(gamma), jnp.asarray(y)
    r = y - (a**L - offset) / gamma
    g = a ** (L - 1) / gamma
    if L == 1:
        return g**2, jnp.full_like(g, -jnp.inf)
    h = a ** (L - 2) / gamma
    return L * g**2 - (L - 1) * r * h, r * h


def sharpness_at_init(L: int, a0, gamma, y=None, *, centre: bool = True) -> Array:
    """Top Hessian eigenvalue at the balanced initialisation.

    With `y=None`: the Gauss–Newton term L a0^(2L−2)/γ² (the lazy-regime approximation, exact
    as γ → 0 when centred). With `y`: the exact value max(λ_∥, λ_⊥) (module docstring).

    **Arguments:**

    - `L`: the depth, an integer ≥ 1.
    - `a0`: the initial weight.
    - `gamma`: the output scale γ.
    - `y`: the target, or `None` for the Gauss–Newton term only.
    - `centre`: the centred model (c = a0^L, f(0) = 0; default) or c = 0.

    **Returns:** the sharpness, an array of the broadcast shape of the inputs.
    """
    L = _depth(L)
    a0, gamma = jnp.asarray(a0), jnp.asarray(gamma)
    if y is None:
        return L * a0 ** (2 * L - 2) / gamma**2
    lam_par, lam_perp = balanced_hessian_eigenvalues(L, a0, gamma, y, offset=_offset(L, a0, centre))
    return jnp.maximum(lam_par, lam_perp)


def sharpness_at_solution(L: int, y, gamma, *, a0=1.0, centre: bool = False) -> Array:
    """Exact sharpness at the balanced solution: L P*^(2−2/L)/γ² with P* = γy + c.

    With `centre=False` (c = 0) this is L y^(2−2/L) γ^(−2/L).

    **Arguments:**

    - `L`: the depth, an integer ≥ 1.
    - `y`: the target.
    - `gamma`: the output scale γ.
    - `a0`: the initial weight (enters only through c = a0^L when centred).
    - `centre`: the centred model (c = a0^L) or c = 0 (default).

    **Returns:** the sharpness, an array of the broadcast shape of the inputs.
    """
    L = _depth(L)
    y, gamma, a0 = jnp.asarray(y), jnp.asarray(gamma), jnp.asarray(a0)
    p_star = gamma * y + _offset(L, a0, centre)
    return L * p_star ** (2.0 - 2.0 / L) / gamma**2


def eta_star_prediction(L: int, gamma, *, y=1.0, a0=1.0, centre: bool = True) -> Array:
    """Predicted largest stable learning rate 2 / max(λ_init, λ_solution) (exact sharpnesses).

    Its log-log slope in γ is 2 for γ ≪ 1 and 2/L for γ ≫ 1 (`theory_slopes`).

    **Arguments:**

    - `L`: the depth, an integer ≥ 1.
    - `gamma`: the output scale γ (number or array: a whole γ grid in one call).
    - `y`: the target (default 1).
    - `a0`: the initial weight (default 1).
    - `centre`: the centred model (default) or c = 0.

    **Returns:** `2 / max(sharpness_at_init(L, a0, γ, y), sharpness_at_solution(L, y, γ))`,
    an array of the broadcast shape of the inputs.
    """
    L = _depth(L)
    lam0 = sharpness_at_init(L, a0, gamma, y, centre=centre)
    lam1 = sharpness_at_solution(L, y, gamma, a0=a0, centre=centre)
    return 2.0 / jnp.maximum(lam0, lam1)


# ------------------------------------------------------------------ exact gradient flow


class _Flow(NamedTuple):
    k: float  # rate: dz/dt = k u^beta
    beta: float  # α − 1 = 1 − 2/L
    z0: float
    above: bool  # started above the target (u0 > 1)
    p_star: float
    gamma: float
    y: float


def _flow(L: int, y: float, gamma: float, eta: float, p0: float, c: float) -> _Flow:
    p_star = gamma * y + c
    if not p_star > 0:
        raise ConfigError(
            f"the target product γy + a0^L − γf0 = {p_star:.3g} is not positive: "
            "use y > 0 and f0 < y + a0^L/γ"
        )
    alpha = 2.0 - 2.0 / L
    u0 = p0 / p_star
    if u0 == 1.0:
        z0 = math.inf
    else:
        z0 = math.log(u0) - math.log(abs(1.0 - u0))
    k = eta * L * p_star**alpha / gamma**2
    return _Flow(k, alpha - 1.0, z0, u0 > 1.0, p_star, gamma, y)


def _log_u(z, above: bool):
    # u = sigmoid(z) below the target, u = 1/(1 − e^(−z)) above it
    return jax.nn.log_sigmoid(z) if not above else -jnp.log(-jnp.expm1(-z))


@functools.partial(jax.jit, static_argnums=3)
def _time_core(z, z0, beta, above: bool):
    """k · (time from z0 to z) = ∫_{z0}^{z} u(s)^(−β) ds.

    Written as (z − z0) + ∫ (u^(−β) − 1) ds; the correction decays like e^(−s), so it is
    integrated (Gauss–Legendre) only up to max(z0, 0) + 40.
    """
    zc = jnp.minimum(z, jnp.maximum(z0, 0.0) + 40.0)
    mid, half = 0.5 * (zc + z0), 0.5 * (zc - z0)
    s = mid[..., None] + half[..., None] * _GL_NODES
    vals = jnp.expm1(-beta * _log_u(s, above))
    return (z - z0) + half * jnp.sum(_GL_WEIGHTS * vals, -1)


def _scaled_time(fl: _Flow, z):
    return _time_core(jnp.asarray(z, jnp.result_type(float)), fl.z0, fl.beta, fl.above)


@functools.partial(jax.jit, static_argnums=3)
def _invert_core(scaled_t, z0, beta, above: bool):
    # the rate u^β is monotone between u0^β and 1: bracket, then bisect
    r0 = jnp.exp(beta * _log_u(z0, above))
    lo = z0 + scaled_t * jnp.minimum(r0, 1.0)
    hi = z0 + scaled_t * jnp.maximum(r0, 1.0)

    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        right = _time_core(mid, z0, beta, above) < scaled_t
        return jnp.where(right, mid, lo), jnp.where(right, hi, mid)

    lo, hi = jax.lax.fori_loop(0, 200, body, (lo, hi))
    return 0.5 * (lo + hi)


def _z_at(fl: _Flow, scaled_t):
    """Invert `_scaled_time` (closed form z0 + k t for L = 2)."""
    scaled_t = jnp.asarray(scaled_t, dtype=jnp.result_type(float))
    if fl.beta == 0.0:
        return fl.z0 + scaled_t
    return _invert_core(scaled_t, fl.z0, fl.beta, fl.above)


def _f_of_z(fl: _Flow, z):
    if fl.above:
        return fl.y + fl.p_star / (fl.gamma * jnp.expm1(z))
    return fl.y - fl.p_star * jax.nn.sigmoid(-z) / fl.gamma


def gradient_flow(
    L: int, y: float, gamma: float, eta: float, t: Float[Array, " T"], f0: float = 0.0, *, a0=1.0
) -> Array:
    """Exact gradient-flow output f(t) of the balanced toy model (t in GD steps of size η).

    **Arguments:**

    - `L`, `y`, `gamma`, `eta`: depth, target, output scale, learning rate.
    - `t`: times (any shape, ≥ 0).
    - `f0`, `a0`: initial output and weight. The model is f = (a^L − c)/γ with
      c = a0^L − γ f0: `f0=0` is the centred model, `f0 = a0**L / gamma` the uncentred one
      (whose flow is df/dt = η L γ^(−2/L) f^(2−2/L)(y − f), depending on τ = η γ^(−2/L) t only).

    **Returns:**

    f at each time, same shape as `t`.
    """
    L = _depth(L)
    _positive(y=y, gamma=gamma, eta=eta, a0=a0)
    c = a0**L - gamma * f0
    fl = _flow(L, float(y), float(gamma), float(eta), float(a0**L), float(c))
    t = jnp.asarray(t, dtype=jnp.result_type(float))
    if math.isinf(fl.z0):
        return jnp.full_like(t, y)
    return _f_of_z(fl, _z_at(fl, fl.k * t))


def plateau_length(
    L: int,
    y: float,
    gamma: float,
    eta: float,
    a0: float = 1.0,
    threshold: float = 0.5,
    *,
    centre: bool = True,
) -> float:
    """Predicted escape time: GD steps (gradient flow) until f first reaches `threshold` · y.

    Exact for gradient flow; GD at step η differs by O(η λ). In τ = η γ^(−2/L) t it grows
    like ln(γ y/a0²)/(2y) (L = 2) or (γ/a0^L)^(1−2/L)/((L−2) y) (L ≥ 3) for centred γ → ∞.

    **Arguments:**

    - `L`: the depth, an integer ≥ 2.
    - `y`, `gamma`, `eta`, `a0`: target, output scale, learning rate and initial weight
      (Python numbers, each > 0).
    - `threshold`: the fraction of y that ends the plateau, in (0, 1) (default 0.5).
    - `centre`: the centred model (default) or c = 0.

    **Returns:** the number of GD steps, a Python float.

    **Raises:** `ConfigError` for L < 2, a non-positive parameter, a threshold outside (0, 1)
    or an initial output already above `threshold · y`.
    """
    L = _depth(L, minimum=2, why="a depth-1 model has no plateau: its loss decays at once")
    _positive(y=y, gamma=gamma, eta=eta, a0=a0)
    if not 0 < threshold < 1:
        raise ConfigError(f"threshold must be in (0, 1), got {threshold}: try 0.5")
    c = float(_offset(L, a0, centre))
    f0 = (a0**L - c) / gamma
    if f0 >= threshold * y:
        raise ConfigError(
            f"the initial output {f0:.3g} is already above threshold·y: "
            "use centre=True or a smaller a0"
        )
    fl = _flow(L, float(y), float(gamma), float(eta), float(a0**L), c)
    u_th = (gamma * threshold * y + c) / fl.p_star
    z_th = math.log(u_th) - math.log1p(-u_th)
    return float(_scaled_time(fl, jnp.asarray(z_th)) / fl.k)


# ------------------------------------------------------------------ simulation


class ToyRun(NamedTuple):
    """GD trajectory of the toy model: `f` and `loss` with `steps + 1` entries, final `a`.

    **Fields:**

    - `f`: the output at steps 0 … steps, shape `batch + (steps + 1,)`.
    - `loss`: ½ (y − f)² at the same steps.
    - `a`: the final weights, shape `batch + (L,)`.
    """

    f: Array
    loss: Array
    a: Array


@functools.partial(jax.jit, static_argnums=(0, 1))
def _simulate(L: int, steps: int, gamma, eta, a0, y, c):
    def loss_fn(a, gamma, y, c):
        return 0.5 * (y - (jnp.prod(a) - c) / gamma) ** 2

    def one(gamma, eta, a0, y, c):
        grad = jax.grad(loss_fn)

        def step(a, _):
            f = (jnp.prod(a) - c) / gamma
            return a - eta * grad(a, gamma, y, c), f

        a, fs = jax.lax.scan(step, jnp.full((L,), a0), None, length=steps)
        f_last = (jnp.prod(a) - c) / gamma
        fs = jnp.append(fs, f_last)
        return fs, 0.5 * (y - fs) ** 2, a

    return jax.vmap(one)(gamma, eta, a0, y, c)


def simulate(L: int, gamma, eta, steps: int, a0=1.0, y=1.0, *, centre: bool = True) -> ToyRun:
    """Plain gradient descent on (a_1, …, a_L) for the toy loss (jitted, vmapped).

    **Arguments:**

    - `L`, `steps`: depth and number of GD steps (static).
    - `gamma`, `eta`, `a0`, `y`: scalars or arrays, broadcast together (a grid in one call).
    - `centre`: subtract the initial product (f(0) = 0).

    **Returns:**

    `ToyRun(f, loss, a)` with shapes `batch + (steps + 1,)`, the same, and `batch + (L,)`.
    Divergent runs give inf/nan.
    """
    L = _depth(L)
    if int(steps) < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    arrays = jnp.broadcast_arrays(
        *(jnp.asarray(v, jnp.result_type(float)) for v in (gamma, eta, a0, y))
    )
    shape = arrays[0].shape
    g, e, a, t = (v.reshape(-1) for v in arrays)
    c = a**L if centre else jnp.zeros_like(a)
    fs, loss, a_final = _simulate(L, int(steps), g, e, a, t, c)
    return ToyRun(
        fs.reshape(shape + (steps + 1,)),
        loss.reshape(shape + (steps + 1,)),
        a_final.reshape(shape + (L,)),
    )


def staircase(
    L: int,
    modes: Float[Array, " M"],
    gamma: float,
    eta: float,
    t: Float[Array, " T"],
    *,
    a0: float = 1.0,
    centre: bool = True,
) -> tuple[Array, Array]:
    """Multi-mode gradient flow: each mode s_α follows the scalar law with y = s_α.

    **Arguments:**

    - `L`: the depth, an integer ≥ 1.
    - `modes`: the target's singular values s_α, `(M,)` (each > 0).
    - `gamma`, `eta`: output scale and learning rate.
    - `t`: times in GD steps, `(T,)`.
    - `a0`: the initial weight of every mode.
    - `centre`: the centred model (default: every mode starts at f = 0) or
      f(0) = a0^L/γ.

    **Raises:** `ConfigError` for no modes (and as `gradient_flow`).

    **Returns:**

    `(f, loss)`: f of shape `(T, M)` (mode outputs) and the total loss ½ Σ_α (s_α − f_α)²
    of shape `(T,)` — a staircase when the modes' plateaus end at different times.
    """
    L = _depth(L)
    modes_np = np.asarray(modes, dtype=np.float64).ravel()
    if modes_np.size == 0:
        raise ConfigError("no modes given: pass the target's singular values s_α")
    f0 = 0.0 if centre else a0**L / gamma
    f = jnp.stack([gradient_flow(L, float(s), gamma, eta, t, f0, a0=a0) for s in modes_np], -1)
    loss = 0.5 * jnp.sum((jnp.asarray(modes_np) - f) ** 2, -1)
    return f, loss
