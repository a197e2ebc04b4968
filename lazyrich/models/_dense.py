"""A dense layer whose parameterization is a pair of multipliers.

`y = w_mult · x Wᵀ + b_mult · b`. The three parameterizations differ only in where the
1/sqrt(fan_in) sits (in the initial variance or in the forward multiplier):

| parameterization | W init                | w_mult              | b init      | b_mult |
|------------------|-----------------------|---------------------|-------------|--------|
| `standard`       | N(0, σ_w²/fan_in)     | 1                   | N(0, σ_b²)  | 1      |
| `ntk`            | N(0, 1)               | σ_w/sqrt(fan_in)    | N(0, 1)     | σ_b    |
| `mup` hidden     | N(0, 1)               | σ_w/sqrt(fan_in)    | N(0, 1)     | σ_b    |
| `mup` readout    | N(0, 1)               | σ_w/fan_in          | N(0, 1)     | σ_b    |

`bias_style="paper"` is the γ paper's bias (its `StdLinear`/`FinalLinear`): initialised at 0 and
inside the layer's scaling, `y = w_mult · (x Wᵀ + b)` (b_mult = w_mult, σ_b unused), so a μP
hidden bias moves by O(1) per step at learning rate η0·N and the readout bias by O(1/N)·N.

`mup` is the mean-field scaling of the γ paper (PAPERS.md §1): `h1 = W0 x/sqrt(D)`,
`h_{l+1} = W_l φ(h_l)/sqrt(N)`, `f = w_L·φ(h_L)/N`.
"""

from __future__ import annotations

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..errors import require

Parameterization = Literal["standard", "ntk", "mup"]
PARAMETERIZATIONS = ("standard", "ntk", "mup")
BIAS_STYLES = ("normal", "paper")


def bias_init(
    style: str, b_std: float, b_mult: float, w_mult: float, key, shape, dtype
) -> tuple[jax.Array, float]:
    """`(bias, b_mult)`: N(0, b_std²) with multiplier `b_mult` (`normal`), or zeros inside the
    weight's multiplier (`paper`)."""
    require(style in BIAS_STYLES, f"unknown bias_style {style!r}: choose normal or paper")
    if style == "paper":
        return jnp.zeros(shape, dtype), w_mult
    return b_std * jax.random.normal(key, shape, dtype), b_mult


def check_parameterization(name: str) -> None:
    require(
        name in PARAMETERIZATIONS,
        f"unknown parameterization {name!r}: choose one of {', '.join(PARAMETERIZATIONS)}",
    )


def multipliers(
    parameterization: str, fan_in: int, *, readout: bool, sigma_w: float, sigma_b: float
) -> tuple[float, float, float, float]:
    """`(w_std, w_mult, b_std, b_mult)` for one layer."""
    check_parameterization(parameterization)
    if parameterization == "standard":
        return sigma_w / fan_in**0.5, 1.0, sigma_b, 1.0
    scale = fan_in ** (1.0 if (readout and parameterization == "mup") else 0.5)
    return 1.0, sigma_w / scale, 1.0, sigma_b


class Dense(eqx.Module):
    """Batched affine layer `y = w_mult · x Wᵀ + b_mult · b` (x of shape `(n, fan_in)`)."""

    weight: Float[Array, "out fan_in"]
    bias: Float[Array, " out"] | None
    w_mult: float = eqx.field(static=True)
    b_mult: float = eqx.field(static=True)

    def __init__(
        self,
        fan_in: int,
        fan_out: int,
        *,
        parameterization: str = "mup",
        readout: bool = False,
        use_bias: bool = False,
        bias_style: str = "normal",
        sigma_w: float = 1.0,
        sigma_b: float = 1.0,
        dtype=None,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `fan_in`, `fan_out`: input and output widths; `weight` has shape `(fan_out, fan_in)`.
        - `parameterization`: `"standard"`, `"ntk"` or `"mup"` (default); the table in the
          module docstring gives the initial standard deviations and the multipliers.
        - `readout`: the last layer (under `mup` its multiplier is `σ_w/fan_in`, not
          `σ_w/sqrt(fan_in)`).
        - `use_bias`: add a bias (default no bias).
        - `bias_style`: how the bias is initialised and scaled (see `bias_init`).
        - `sigma_w`, `sigma_b`: the weight and bias scales σ_w, σ_b (default 1).
        - `dtype`: dtype of the arrays (default: the default float dtype).
        - `key`: PRNG key of the initialization (keyword-only).

        **Raises:** `ConfigError` for an unknown parameterization.
        """
        w_std, self.w_mult, b_std, b_mult = multipliers(
            parameterization, fan_in, readout=readout, sigma_w=sigma_w, sigma_b=sigma_b
        )
        wkey, bkey = jax.random.split(key)
        dtype = dtype or jnp.result_type(float)
        self.weight = w_std * jax.random.normal(wkey, (fan_out, fan_in), dtype)
        self.bias, self.b_mult = None, b_mult
        if use_bias:
            self.bias, self.b_mult = bias_init(
                bias_style, b_std, b_mult, self.w_mult, bkey, (fan_out,), dtype
            )

    def __call__(self, x: Float[Array, "n fan_in"]) -> Float[Array, "n out"]:
        """**Arguments:**

        - `x`: a batch `(n, fan_in)`.

        **Returns:** `w_mult · x Wᵀ + b_mult · b`, shape `(n, fan_out)`.
        """
        # W xᵀ, not x Wᵀ: under vmap over runs whose weights differ and whose input x is
        # shared (the engine's runs of one seed), this is one product [W_1; …; W_R] xᵀ that
        # XLA:CPU runs on the stored weights; x Wᵀ made it transpose every weight each step
        y = self.w_mult * (self.weight @ x.T).T
        if self.bias is not None:
            y = y + self.b_mult * self.bias
        return y
