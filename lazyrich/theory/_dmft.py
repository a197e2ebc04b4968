r"""Feature learning at infinite width: the DMFT of kernel dynamics at any γ (`dmft`).

As the width N → ∞ at fixed γ, a μP network trained by full-batch gradient descent follows
deterministic dynamics (Bordelon & Pehlevan 2022, arXiv 2205.09653): every hidden unit of a
layer follows the same *single-site* stochastic process, driven by Gaussian sources whose
covariances are the layer's feature and gradient kernels over pairs of (time, point), and by
the output error, an average over the sites. γ → 0 is the lazy (fixed-NTK) limit.

**The network and lazyrich's convention** (`lazyrich.models.MLP(parameterization="mup")`,
no biases, σ_w = 1, one output, `scaled(net, gamma=γ, centre=True)`): with L weight layers
(`depth = L`, i.e. `MLP(depth=L − 1)`, whose `depth` counts hidden layers),

    h¹ = W⁰ x/√D,   h^{l+1} = W^l φ(h^l)/√N,   f = (w · φ(h^{L−1})/N − net₀)/γ,

all weights N(0, 1) at initialisation, loss `half_mse`: `L = 1/(2P) Σ_μ (f_μ − y_μ)²` (as in
`lazy_vs_network`), and full-batch GD `θ ← θ − η ∇L` with `η = η0 · N` (the μP learning rate,
`model.lr_multiplier`). Write `Δ_μ = (y_μ − f_μ)/P` (0 on test points) and define per unit
`g^{L−1} = φ'(h^{L−1}) w`, `g^l = φ'(h^l) z^l` with `z^l = W^lᵀ g^{l+1}/√N` (so
`∂net/∂h^l = g^l/N`). One GD step then moves every weight by O(1/√N) per entry and every
field by O(1):

    W⁰ ← W⁰ + c Σ_μ Δ_μ g¹_μ x_μᵀ/√D,   W^l ← W^l + (c/√N) Σ_μ Δ_μ g^{l+1}_μ φ(h^l_μ)ᵀ,
    w  ← w + c Σ_μ Δ_μ φ(h^{L−1}_μ),      with   **c = η0/γ**.

Hence the mapping to the DMFT: **the DMFT's γ0 is the project's γ** (features move at c = η0/γ
per step while the function moves at `η0/γ²` times an O(1) kernel, a ratio γ), and **its
learning rate is η0/γ²** in units of one GD step: `f(t + 1) − f(t) = (η0/γ²) K(t) Δ(t) + O(c²)`
with the O(1) NTK `K = Σ_l G^{l+1} ⊙ Φ^l`, the same `effective_rate(η0, gamma=γ,
lr_multiplier=N) · Θ_net = (η0/γ²) Θ_ntk` of the lazy theory. Time is discrete and the
equations below are exact for discrete GD, not its flow approximation.

**The equations** (Φ⁰ ≡ K^x = x xᵀ/D, G^L ≡ 1 1ᵀ): for each hidden layer l and step t,

    h^l(t) = χ^l(t) + Σ_{s<t} [A^{l−1}(t,s) g^l(s) + c Φ^{l−1}(t,s) (Δ(s) ⊙ g^l(s))]
    z^l(t) = ξ^l(t) + Σ_{s≤t} [B^l(t,s) φ(h^l(s))] + c Σ_{s<t} G^{l+1}(t,s) (Δ(s) ⊙ φ(h^l(s)))

with `χ¹ ~ N(0, K^x)` fixed in time, `ξ^{L−1} = w₀ ~ N(0, 1)` (the readout at init), the
hidden-to-hidden sources `χ^l ~ N(0, Φ^{l−1})`, `ξ^l ~ N(0, G^{l+1})` (independent Gaussian
paths), the kernels `Φ^l(t,s) = ⟨φ(h^l(t)) φ(h^l(s))ᵀ⟩`, `G^l(t,s) = ⟨g^l(t) g^l(s)ᵀ⟩`, the
responses `A^l(t,s) = ⟨∂φ(h^l(t))/∂ξ^l(s)⟩`, `B^l(t,s) = ⟨∂g^{l+1}(t)/∂χ^{l+1}(s)⟩` (from the
cavity of the random `W^l(0)`), and the output `γ f(t) = ⟨w(t) φ(h^{L−1}(t)) − w₀ φ(h^{L−1}(0))⟩`.
The terms in c are the weight updates (their kernels are the ones at the two times), the A
and B terms the feedback through the initial random matrices. As γ → 0 (c → 0 at fixed η0/γ²)
the fields freeze and the dynamics are kernel GD with the infinite-width NTK.

**Solvers.** Linear φ: every field is linear in its sources and the kernels are exact quadratic
forms (`_dmft_linear`, any L ≥ 2). Nonlinear φ (or linear, as a check), L = 2: S sampled
sites (`_dmft_sampling`), with a control variate that makes the γ → 0 limit exact; L = 3: S
sites per hidden layer carrying the tangents that give the responses A and B
(`_dmft_deep_sampling`, no control variate). Both are repeated over independent batches whose
spread gives the Monte-Carlo error. All sweep once in time order: in discrete time every
quantity at step t depends only on earlier steps (and earlier layers within the step), so the
self-consistency holds exactly after one sweep (no fixed-point tolerance; float64 round-off).
All run in float64 (the centred output cancels O(1) terms to O(γ)).

**Cost** (measured by `benchmarks/dmft.py`; 2-core CPU, two γ): linear L = 2 is a one-step
recursion, O(T p³) time and O(p²) memory (P·T = 10⁵ in about 0.5 s); linear L ≥ 3 holds
O(N²) numbers per layer and takes O(N³) time, N = T·(P + Q) (N = 2500: about 40 s, 1.5 GB);
sampling, L = 2: O(S B T p²) time, O(S p) memory per γ; sampling, L = 3: O(S B T² p² N) time
and O(S T p N) memory per γ (small T·p only). **Not implemented:** nonlinear L ≥ 4, several
outputs, biases.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax.typing import ArrayLike

from ..errors import require
from ..kernels import infinite_kernels
from ..models import ACTIVATIONS, MLP
from ._dmft_deep_sampling import three_layer_sample
from ._dmft_linear import deep_linear_solve, two_layer_linear
from ._dmft_sampling import two_layer_sample

SOLVERS = ("auto", "exact", "sampling")


def infinite_ntk(x: ArrayLike, *, depth: int, activation: str, tanh_degree: int = 64) -> np.ndarray:
    """The O(1) infinite-width NTK `K = N Θ_net` of a μP MLP with `depth` weight layers.

    Through neural-tangents (`lazyrich.kernels.infinite_kernels` of the ntk-parameterized
    twin, equal to N times the μP kernel). The lazy dynamics under the μP learning rate
    `η0 · N` are kernel GD with this K and rate `η0/γ²`.

    **Arguments:**

    - `x`: inputs `(n, D)`.
    - `depth`: L, the number of weight layers (`MLP(depth=L − 1)`).
    - `activation`: a name from `lazyrich.models.ACTIVATIONS`.
    - `tanh_degree`: Gauss–Hermite degree of neural-tangents' tanh quadrature.

    **Returns:** `K`, `(n, n)` float64.
    """
    with jax.enable_x64(True):
        xa = jnp.asarray(x, jnp.float64)
        net = MLP(
            xa.shape[1],
            1,
            depth - 1,
            1,
            activation=activation,
            parameterization="ntk",
            dtype=jnp.float64,
            key=jax.random.key(0),
        )
        return np.asarray(infinite_kernels(net, xa, tanh_degree=tanh_degree).ntk)


def _as_inputs(x: ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(x, np.float64)
    require(a.ndim >= 2 and a.shape[0] >= 1, f"{name} must be a batch (n, ...), got {a.shape}")
    a = a.reshape(a.shape[0], -1)
    require(bool(np.all(np.isfinite(a))), f"{name} has non-finite values: clean the data")
    return a


def _as_targets(y: ArrayLike, n: int, name: str) -> np.ndarray:
    a = np.asarray(y, np.float64)
    require(
        a.shape in ((n,), (n, 1)),
        f"{name} has shape {a.shape}: the DMFT solvers take one output, pass ({n},) or ({n}, 1)",
    )
    require(bool(np.all(np.isfinite(a))), f"{name} has non-finite values: clean the data")
    return a.reshape(n)


def _check(depth, activation, gamma, eta0, steps, solver):
    require(
        bool(isinstance(depth, (int, np.integer)) and not isinstance(depth, bool) and depth >= 2),
        f"depth (weight layers) must be an integer >= 2, got {depth!r}: pass depth=2 or more",
    )
    require(
        activation in ACTIVATIONS,
        f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}",
    )
    require(solver in SOLVERS, f"unknown solver {solver!r}: choose one of {', '.join(SOLVERS)}")
    if solver == "auto":
        solver = "exact" if activation == "linear" else "sampling"
    require(
        solver != "exact" or activation == "linear",
        f"the exact solver needs activation='linear', got {activation!r}: use solver='sampling'",
    )
    require(
        solver != "sampling" or depth in (2, 3),
        f"the sampling solver is implemented for depth 2 and 3, got depth={depth}:"
        " use depth=2 or 3, or activation='linear' (exact, any depth)",
    )
    gammas = np.atleast_1d(np.asarray(gamma, np.float64))
    require(
        gammas.ndim == 1 and bool(np.all(np.isfinite(gammas) & (gammas > 0))),
        f"gamma must be finite and > 0, got {gamma}",
    )
    eta0s = np.asarray(eta0, np.float64)
    require(
        eta0s.ndim == 0 or eta0s.shape == gammas.shape,
        f"eta0 must be one number or one per gamma ({gammas.size}), got shape {eta0s.shape}",
    )
    eta0s = np.broadcast_to(eta0s, gammas.shape).copy()
    require(bool(np.all(np.isfinite(eta0s) & (eta0s > 0))), f"eta0 must be > 0, got {eta0}")
    record = np.atleast_1d(np.asarray(steps))
    require(
        record.ndim == 1
        and np.issubdtype(record.dtype, np.integer)
        and bool(np.all(record >= 0))
        and bool(np.all(np.diff(record) > 0)),
        f"steps must be increasing integers >= 0, got {steps}",
    )
    return solver, gammas, eta0s, record.astype(np.int64)


@functools.partial(jax.jit, static_argnames=("depth", "steps"))
def _exact(kx, y, weights, gammas, eta0s, *, depth, steps):
    if depth == 2:
        solve = functools.partial(two_layer_linear, steps=steps)
    else:
        solve = functools.partial(deep_linear_solve, depth=depth, steps=steps)
    return jax.vmap(solve, in_axes=(None, None, None, 0, 0))(kx, y, weights, gammas, eta0s)


@functools.partial(jax.jit, static_argnames=("activation", "steps", "samples"))
def _sampled(x, y, weights, k0, gammas, eta0s, keys, *, activation, steps, samples):
    solve = functools.partial(two_layer_sample, activation=activation, steps=steps, samples=samples)

    def one_batch(key):
        per_gamma = lambda g, e: solve(x, y, weights, k0, g, e, key=key)  # noqa: E731
        return jax.vmap(per_gamma)(gammas, eta0s)

    return jax.lax.map(one_batch, keys)  # (batches, gamma, T, p): batches one at a time


@functools.partial(jax.jit, static_argnames=("activation", "steps", "samples"))
def _sampled3(x, y, weights, gammas, eta0s, keys, *, activation, steps, samples):
    solve = functools.partial(
        three_layer_sample, activation=activation, steps=steps, samples=samples
    )

    def one_batch(key):  # γ one at a time: each carries O(S T p · T p) tangents
        per_gamma = lambda ge: solve(x, y, weights, ge[0], ge[1], key=key)  # noqa: E731
        return jax.lax.map(per_gamma, (gammas, eta0s))

    return jax.lax.map(one_batch, keys)


def dmft(
    x_train: ArrayLike,
    y_train: ArrayLike,
    x_test: ArrayLike,
    *,
    y_test: ArrayLike | None = None,
    depth: int,
    activation: str,
    gamma: float | Sequence[float] | np.ndarray,
    eta0: float | Sequence[float] | np.ndarray,
    steps: Sequence[int] | np.ndarray,
    solver: str = "auto",
    samples: int = 4096,
    batches: int = 8,
    key: jax.Array | None = None,
    tanh_degree: int = 64,
) -> xr.Dataset:
    """The infinite-width network's losses and outputs at every γ: the DMFT of kernel dynamics.

    The centred μP MLP with `depth` = L weight layers (no biases, one output), trained from
    zero output by full-batch GD on `half_mse` at the learning rate `η0 · N` (see the module
    docstring for the equations and the mapping of γ and η0 onto the DMFT's γ0 and time).

    **Arguments:**

    - `x_train`, `y_train`: the P training points `(P, ...)` and targets `(P,)` or `(P, 1)`.
    - `x_test`: test inputs `(Q, ...)`; `y_test` (keyword): their targets, for `test_loss`.
    - `depth`: L ≥ 2, the number of weight layers (`lazyrich.models.MLP(depth=L − 1)`).
    - `activation`: `"linear"` (exact solver, any L), or `"tanh"`, `"relu"`, `"erf"`
      (sampling solver, L = 2 or 3).
    - `gamma`: γ values (one compiled program, vmapped over γ; the L = 3 sampler maps over γ
      one at a time to bound memory); `eta0`: the base rate η0, one or one per γ.
    - `steps`: increasing GD step counts ≥ 0 to report.
    - `solver`: `"auto"` (exact for linear, else sampling), `"exact"` or `"sampling"` (the
      latter also for linear, e.g. to check it against the exact one).
    - `samples`, `batches`: S sites per batch, and independent batches (the Monte-Carlo
      error is their spread; at least 2).
    - `key`: PRNG key of the sites (default `jax.random.key(0)`).
    - `tanh_degree`: quadrature degree of the infinite-width tanh NTK (control variate).

    **Returns:** an `xarray.Dataset` over `(gamma, step)`: `train_loss`, `test_loss` (with
    `y_test`), `train_output` `(gamma, step, train_point)`, `test_output`, `eta0` per γ; the
    sampling solver adds `*_mc_error` (standard error over batches) for each. Losses are
    `1/(2n) Σ (f − y)²`, of the outputs averaged over batches.
    """
    solver, gammas, eta0s, record = _check(depth, activation, gamma, eta0, steps, solver)
    xtr, xte = _as_inputs(x_train, "x_train"), _as_inputs(x_test, "x_test")
    require(
        xtr.shape[1] == xte.shape[1],
        f"x_train and x_test have {xtr.shape[1]} and {xte.shape[1]} features: pass the same",
    )
    p, q = xtr.shape[0], xte.shape[0]
    ytr = _as_targets(y_train, p, "y_train")
    yte = None if y_test is None else _as_targets(y_test, q, "y_test")
    t_len = int(record[-1]) + 1
    x_all = np.concatenate([xtr, xte])
    y_all = np.concatenate([ytr, np.zeros(q)])
    weights = np.concatenate([np.full(p, 1.0 / p), np.zeros(q)])
    attrs = {
        "loss": "1/(2 n) sum (f - y)^2",
        "learning_rate": "eta0 * N (muP); DMFT gamma0 = gamma, DMFT rate eta0 / gamma^2",
        "depth": int(depth),
        "activation": activation,
        "solver": solver,
    }
    with jax.enable_x64(True):
        args = [jnp.asarray(a) for a in (x_all, y_all, weights, gammas, eta0s)]
        if solver == "exact":
            kx = args[0] @ args[0].T / x_all.shape[1]
            f = np.asarray(_exact(kx, *args[1:], depth=int(depth), steps=t_len))[None]
        else:
            require(
                isinstance(samples, int)
                and samples >= 2
                and isinstance(batches, int)
                and batches >= 2,
                f"samples and batches must be integers >= 2, got {samples}, {batches}",
            )
            keys = jax.random.split(jax.random.key(0) if key is None else key, batches)
            if depth == 2:
                k0 = jnp.asarray(
                    infinite_ntk(x_all, depth=2, activation=activation, tanh_degree=tanh_degree)
                )
                f = _sampled(
                    *args[:3],
                    k0,
                    *args[3:],
                    keys,
                    activation=activation,
                    steps=t_len,
                    samples=samples,
                )
            else:
                f = _sampled3(*args, keys, activation=activation, steps=t_len, samples=samples)
            f = np.asarray(f)
            attrs.update(samples=samples, batches=batches)
    f = f[:, :, record]  # (batches, gamma, step, p)
    out = xr.Dataset(
        coords={
            "gamma": gammas,
            "step": record,
            "train_point": np.arange(p),
            "test_point": np.arange(q),
        },
        attrs=attrs,
    )
    out["eta0"] = (("gamma",), eta0s)
    parts = [("train", f[..., :p], ytr, "train_point"), ("test", f[..., p:], yte, "test_point")]
    for name, fb, target, dim in parts:
        out[f"{name}_output"] = (("gamma", "step", dim), fb.mean(0))
        if solver == "sampling":
            err = fb.std(0, ddof=1) / np.sqrt(fb.shape[0])
            out[f"{name}_output_mc_error"] = (("gamma", "step", dim), err)
        if target is None:
            continue
        loss = 0.5 * np.mean((fb - target) ** 2, axis=-1)  # (batches, gamma, step)
        out[f"{name}_loss"] = (("gamma", "step"), 0.5 * np.mean((fb.mean(0) - target) ** 2, -1))
        if solver == "sampling":
            err = loss.std(0, ddof=1) / np.sqrt(loss.shape[0])
            out[f"{name}_loss_mc_error"] = (("gamma", "step"), err)
    return out
