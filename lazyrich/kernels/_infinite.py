"""Infinite-width twins of lazyrich's MLP and CNN through neural-tangents' `stax`.

`stax_twin(model)` describes the same network in `stax` (layer by layer, with the same weight
distribution and the same forward multipliers, so the same parameters give the same function
and the same empirical NTK), and `infinite_kernels(model, x1, x2)` evaluates its infinite-width
NNGP and NTK, including the output scale 1/γ and centring of a `lazyrich.models.Scaled` model.

**Parameterizations.** Every lazyrich layer is `y = w_mult · x Wᵀ + b_mult · b`:

- `ntk`: stax `parameterization="ntk"` with `W_std = w_mult · sqrt(fan_in)` (= σ_w) and
  `b_std = b_mult` (= σ_b). Convolutions: `fan_in = C_in · kᵈ`.
- `mup`: the same, layer by layer. Hidden layers are exactly the ntk ones; the convolutions
  have `w_mult = σ_w/sqrt(C_in)`, i.e. `W_std = σ_w · sqrt(kᵈ)`; the readout has
  `w_mult = σ_w/N`, i.e. `W_std = σ_w/sqrt(N)` (N its fan-in). The twin is therefore the ntk
  network with the readout multiplied by `1/sqrt(N)`, and (no readout bias)
  **`NNGP_mup = NNGP_ntk / N` and `NTK_mup = NTK_ntk / N`** — exact, for the given finite N;
  both vanish as N → ∞, which is why the mean-field/μP model trains with the learning rate
  `η = η0 · N` (`model.lr_multiplier`): then `η · NTK_mup = η0 · NTK_ntk`, a width-independent
  limit. With a readout bias, `K_mup = (K_ntk − σ_b²)/N + σ_b²` for both kernels.
- `standard`: stax `parameterization="standard"` with `W_std = σ_w`, `b_std = σ_b` and the real
  hidden widths, so its NTK is the finite-width expectation `Σ_l fan_in_l · (…)`, which grows
  with N (the standard-parameterization NTK has no finite limit). A standard model does not
  store σ_w, σ_b (they only set the initial variance): pass them as `sigma_w=`, `sigma_b=`.

**1/γ and centring** (`scaled(net, gamma=γ, centre=c)`, `f = (net − net₀)/γ`):

- the NTK of `f` is `NTK_net / γ²` (the Jacobian is `J_net/γ`; the frozen `net₀` has none);
- the NNGP of `f` (its covariance at initialization) is `NNGP_net / γ²` without centring and
  exactly **0** with centring (a centred model outputs 0 at init).

Activations: relu (`stax.Relu`), erf (`stax.Erf`, exact), linear (`stax.Identity`); tanh has no
closed form and uses `stax.ElementwiseNumerical` (Gauss–Hermite quadrature of degree
`tanh_degree`), accurate to quadrature error, not exactly.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, Float

from ..errors import require
from ..models import CNN, MLP, Scaled
from ..models._cnn import Conv
from ..models._dense import Dense
from ._nt_compat import stax


class InfiniteKernels(NamedTuple):
    """Infinite-width kernels per output (shape `(n1, n2)`; outputs are i.i.d. in the limit).

    **Fields:**

    - `nngp`: the NNGP kernel (the covariance of the outputs at initialisation).
    - `ntk`: the neural tangent kernel.
    """

    nngp: Float[Array, "n1 n2"]
    ntk: Float[Array, "n1 n2"]


class StaxTwin(NamedTuple):
    """neural-tangents' triple for a lazyrich network, plus its parameters in stax layout."""

    init_fn: Any
    apply_fn: Any
    kernel_fn: Any
    params: Any


def _activation(name: str, tanh_degree: int):
    if name == "relu":
        return stax.Relu()
    if name == "erf":
        return stax.Erf()
    if name == "linear":
        return stax.Identity()
    if name == "tanh":
        with warnings.catch_warnings():  # nt warns that quadrature is numerical: documented here
            warnings.simplefilter("ignore", UserWarning)
            return stax.ElementwiseNumerical(jnp.tanh, deg=tanh_degree)
    require(False, f"activation {name!r} has no infinite-width twin: use relu, erf, tanh or linear")


def _weight_std(layer: Dense | Conv, parameterization: str, sigma_w: float | None) -> float:
    if parameterization == "standard":
        return float(sigma_w)  # type: ignore[arg-type]
    fan_in = (
        math.prod(layer.weight.shape[:-1]) if isinstance(layer, Conv) else layer.weight.shape[1]
    )
    return float(layer.w_mult) * math.sqrt(fan_in)


def _bias_std(layer: Dense | Conv, parameterization: str, sigma_b: float | None) -> float | None:
    if layer.bias is None:
        return None
    if parameterization == "standard":
        return None if sigma_b is None else float(sigma_b)
    return float(layer.b_mult)


def _dense(layer: Dense, p: str, sw, sb):
    out = layer.weight.shape[0]
    layer_fn = stax.Dense(
        out,
        W_std=_weight_std(layer, p, sw),
        b_std=_bias_std(layer, p, sb),
        parameterization="standard" if p == "standard" else "ntk",
    )
    params = (layer.weight.T, layer.bias)
    return layer_fn, params


def _conv(layer: Conv, p: str, sw, sb):
    *filt, _, out = layer.weight.shape
    ndim = len(filt)
    spec = "NHWC"[:1] + "HW"[:ndim] + "C" if ndim <= 2 else None
    layer_fn = stax.Conv(
        out,
        tuple(filt),
        padding="SAME",
        W_std=_weight_std(layer, p, sw),
        b_std=_bias_std(layer, p, sb),
        dimension_numbers=(spec, "HW"[:ndim] + "IO", spec),
        parameterization="standard" if p == "standard" else "ntk",
    )
    bias = None if layer.bias is None else layer.bias.reshape((1,) * (ndim + 1) + (out,))
    return layer_fn, (layer.weight, bias)


def _unwrap(model: Any) -> tuple[Any, Any, bool]:
    if isinstance(model, Scaled):
        return model.net, model.gamma.value, model.init_net is not None
    return model, None, False


def stax_twin(
    model: MLP | CNN | Scaled,
    *,
    sigma_w: float | None = None,
    sigma_b: float | None = None,
    tanh_degree: int = 32,
) -> StaxTwin:
    """neural-tangents' `(init_fn, apply_fn, kernel_fn)` for `model`'s network, and its params.

    The twin describes `model` (or, for a `Scaled` model, its inner network, without 1/γ and
    centring) layer by layer with identical multipliers, so `apply_fn(twin.params, x)` equals
    the model's output and the empirical NTKs agree; `kernel_fn` gives the infinite-width
    kernels of that parameterization (see the module docstring for mup and standard).

    **Arguments:**

    - `model`: an `MLP`, `CNN`, or a `Scaled` wrapping one.
    - `sigma_w`, `sigma_b`: required for `standard` models (they are not stored); for ntk/mup
      they are read from the layer multipliers, and if given must agree.
    - `tanh_degree`: quadrature degree for tanh.

    **Returns:** a `StaxTwin(init_fn, apply_fn, kernel_fn, params)`.
    """
    net, _, _ = _unwrap(model)
    require(
        isinstance(net, (MLP, CNN)),
        f"no infinite-width twin for {type(net).__name__}: pass an MLP or CNN (optionally scaled)",
    )
    p = net.parameterization
    if p == "standard":
        require(
            sigma_w is not None and sigma_b is not None,
            "a standard-parameterized model does not store its init scales: "
            "pass sigma_w= and sigma_b= (the values used to build it)",
        )
    elif sigma_w is not None:
        first = net.layers[0] if isinstance(net, MLP) else net.conv1
        got = _weight_std(first, p, None)
        if isinstance(net, CNN) and p == "mup":
            got = got / math.sqrt(math.prod(first.weight.shape[:-2]))
        require(
            abs(got - sigma_w) <= 1e-6 * max(1.0, abs(sigma_w)),
            f"sigma_w={sigma_w} disagrees with the model's multipliers (sigma_w={got:g}): "
            "omit sigma_w for ntk/mup models",
        )
    act = _activation(net.activation, tanh_degree)
    layers, params = [], []

    def add(fn_params, activation=True):
        layers.append(fn_params[0])
        params.append(fn_params[1])
        if activation:
            layers.append(act)
            params.append(())

    if isinstance(net, MLP):
        layers.append(stax.Flatten())
        params.append(())
        for i, layer in enumerate(net.layers):
            add(_dense(layer, p, sigma_w, sigma_b), activation=i < len(net.layers) - 1)
    else:
        ndim = net.conv1.weight.ndim - 2
        for conv in (net.conv1, net.conv2):
            add(_conv(conv, p, sigma_w, sigma_b))
            layers.append(stax.AvgPool((2,) * ndim, strides=(2,) * ndim, padding="VALID"))
            params.append(())
        layers.append(stax.Flatten())
        params.append(())
        add(_dense(net.fc, p, sigma_w, sigma_b))
        add(_dense(net.readout, p, sigma_w, sigma_b), activation=False)
    init_fn, apply_fn, kernel_fn = stax.serial(*layers)
    return StaxTwin(init_fn, apply_fn, kernel_fn, tuple(params))


def _prepare(net: Any, x: Array) -> Array:
    if isinstance(net, CNN) and x.ndim == 2:
        return x[..., None]
    return x


def infinite_kernels(
    model: MLP | CNN | Scaled,
    x1: Float[Array, "n1 ..."],
    x2: Float[Array, "n2 ..."] | None = None,
    *,
    sigma_w: float | None = None,
    sigma_b: float | None = None,
    tanh_degree: int = 32,
) -> InfiniteKernels:
    """The infinite-width NNGP and NTK of `model` (1/γ and centring included).

    For `Scaled(net, γ, centre)`: `NTK = NTK_net/γ²`; `NNGP = 0` if centred else
    `NNGP_net/γ²`. For `mup` (no readout bias) the kernels are the infinite-width
    ntk-parameterization kernels divided by the readout fan-in N (the readout multiplier σ_w/N
    is kept exactly, see the module docstring); multiply by `model.lr_multiplier` (= N) to get
    the kernel that sets the dynamics under the μP learning rate `η0 · N`.

    **Arguments:**

    - `model`: an `MLP`, `CNN` or `Scaled` wrapping one.
    - `x1`, `x2`: input batches of the same per-example shape (`x2=None`: `x2 = x1`).
    - `sigma_w`, `sigma_b`, `tanh_degree`: as for `stax_twin`.

    **Returns:** `InfiniteKernels(nngp, ntk)`, each `(n1, n2)`.
    """
    if x2 is not None:
        require(
            tuple(x1.shape[1:]) == tuple(x2.shape[1:]),
            f"x1 and x2 have mismatched input shapes {tuple(x1.shape[1:])} and "
            f"{tuple(x2.shape[1:])}: pass inputs of the same shape (batch axis first)",
        )
    net, gamma, centred = _unwrap(model)
    twin = stax_twin(model, sigma_w=sigma_w, sigma_b=sigma_b, tanh_degree=tanh_degree)
    x1 = _prepare(net, x1)
    x2 = None if x2 is None else _prepare(net, x2)
    nngp, ntk = twin.kernel_fn(x1, x2, ("nngp", "ntk"))
    if gamma is not None:
        g2 = jnp.asarray(gamma, ntk.dtype) ** 2
        ntk = ntk / g2
        nngp = jnp.zeros_like(nngp) if centred else nngp / g2
    return InfiniteKernels(nngp=nngp, ntk=ntk)
