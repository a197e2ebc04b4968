"""The CNN of the γ paper: conv(N) → avgpool → conv(2N) → avgpool → fc(8N) → readout."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..errors import require
from ._activations import activation as get_activation
from ._dense import Dense, bias_init, check_parameterization


class Conv(eqx.Module):
    """Channel-last 'SAME' convolution `y = w_mult · conv(x, W) + b_mult · b`.

    Multipliers follow `lazyrich.models._dense`, with `fan_in = C_in` for `mup` (the γ paper
    scales conv layers by 1/sqrt(C_in)) and `fan_in = C_in · kᵈ` for `standard` and `ntk`.
    """

    weight: Float[Array, "*k cin cout"]
    bias: Float[Array, " cout"] | None
    w_mult: float = eqx.field(static=True)
    b_mult: float = eqx.field(static=True)

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        ndim: int,
        *,
        parameterization: str,
        use_bias: bool,
        bias_style: str = "normal",
        sigma_w: float,
        sigma_b: float,
        dtype=None,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `c_in`, `c_out`: input and output channels.
        - `kernel`: the kernel size k along every spatial axis.
        - `ndim`: number of spatial axes d (1 or 2); `weight` has shape `(k,)·d + (c_in, c_out)`.
        - `parameterization`: `"standard"` (W ~ N(0, σ_w²/fan_in), multipliers 1), `"ntk"` or
          `"mup"` (W ~ N(0, 1), `w_mult = σ_w/sqrt(fan_in)`, `b_mult = σ_b`).
        - `use_bias`: add a bias (b ~ N(0, σ_b²) for `standard`, N(0, 1) otherwise).
        - `bias_style`: `"normal"` (as above) or `"paper"` (zeros inside the weight's
          multiplier, the γ paper's bias); see `lazyrich.models.Dense`.
        - `sigma_w`, `sigma_b`: the weight and bias scales.
        - `dtype`: dtype of the arrays (default: the default float dtype).
        - `key`: PRNG key of the initialization (keyword-only).
        """
        fan_in = c_in if parameterization == "mup" else c_in * kernel**ndim
        if parameterization == "standard":
            w_std, self.w_mult, b_std, b_mult = sigma_w / fan_in**0.5, 1.0, sigma_b, 1.0
        else:
            w_std, self.w_mult, b_std, b_mult = 1.0, sigma_w / fan_in**0.5, 1.0, sigma_b
        wkey, bkey = jax.random.split(key)
        dtype = dtype or jnp.result_type(float)
        shape = (kernel,) * ndim + (c_in, c_out)
        self.weight = w_std * jax.random.normal(wkey, shape, dtype)
        self.bias, self.b_mult = None, b_mult
        if use_bias:
            self.bias, self.b_mult = bias_init(
                bias_style, b_std, b_mult, self.w_mult, bkey, (c_out,), dtype
            )

    def __call__(self, x: Float[Array, "n *s cin"]) -> Float[Array, "n *s cout"]:
        """**Arguments:**

        - `x`: a channel-last batch `(n, L, c_in)` or `(n, H, W, c_in)`.

        **Returns:** the 'SAME'-padded, stride-1 convolution, shape `(n, *s, c_out)`, in the
        promoted dtype of `x` and the weight.

        **Raises:** `ConfigError` unless `x` has 1 or 2 spatial axes.
        """
        ndim = x.ndim - 2
        spatial = "HW"[:ndim] if ndim <= 2 else None
        require(spatial is not None, "CNN inputs must have 1 or 2 spatial dimensions")
        dn = (f"N{spatial}C", f"{spatial}IO", f"N{spatial}C")
        # promote like a matmul would (lax.conv needs equal dtypes): float32 data, float64 net
        dtype = jnp.result_type(x, self.weight)
        y = self.w_mult * jax.lax.conv_general_dilated(
            x.astype(dtype), self.weight.astype(dtype), (1,) * ndim, "SAME", dimension_numbers=dn
        )
        if self.bias is not None:
            y = y + self.b_mult * self.bias
        return y


def avg_pool(x: Float[Array, "n *s c"], size: int = 2) -> Float[Array, "n *t c"]:
    """Non-overlapping average pooling over the spatial axes (channel-last)."""
    ndim = x.ndim - 2
    window = (1,) + (size,) * ndim + (1,)
    summed = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, window, "VALID")
    return summed / size**ndim


class CNN(eqx.Module):
    """conv(N) → avgpool → conv(2N) → avgpool → fc(8N) → readout, channel-last.

    Inputs are `(n, L, C)` (1-D, e.g. mnist1d with C = 1) or `(n, H, W, C)` (images).
    An input of shape `(n, L)` is treated as one channel.

    **Arguments:**

    - `in_shape`: spatial shape plus channels of one example, e.g. `(40, 1)` or `(32, 32, 3)`.
    - `width`: N, the channels of the first convolution.
    - `out_dim`, `activation`, `parameterization`, `use_bias`, `bias_style`, `sigma_w`,
      `sigma_b`, `key`: as for `MLP`. `kernel`: convolution size (default 3).
    - `dtype`: dtype of the arrays (default: the default float dtype).

    **Raises:** `ConfigError` for `width < 1`, an input shape that is not `(L, C)` or
    `(H, W, C)` with spatial sizes ≥ 4, or an unknown parameterization or activation.
    """

    conv1: Conv
    conv2: Conv
    fc: Dense
    readout: Dense
    activation: str = eqx.field(static=True)
    parameterization: str = eqx.field(static=True)
    width: int = eqx.field(static=True)

    def __init__(
        self,
        in_shape: tuple[int, ...],
        width: int,
        out_dim: int = 10,
        *,
        kernel: int = 3,
        activation: str = "relu",
        parameterization: str = "mup",
        use_bias: bool = False,
        bias_style: str = "normal",
        sigma_w: float = 1.0,
        sigma_b: float = 1.0,
        dtype=None,
        key: PRNGKeyArray,
    ):
        require(width >= 1, f"width must be >= 1, got {width}: pass --width 1 or more")
        require(
            len(in_shape) in (2, 3), f"CNN input shape must be (L, C) or (H, W, C), got {in_shape}"
        )
        require(all(s >= 4 for s in in_shape[:-1]), f"CNN needs spatial sizes >= 4, got {in_shape}")
        check_parameterization(parameterization)
        get_activation(activation)
        ndim = len(in_shape) - 1
        k1, k2, k3, k4 = jax.random.split(key, 4)
        common: dict[str, Any] = dict(
            parameterization=parameterization,
            use_bias=use_bias,
            bias_style=bias_style,
            sigma_w=sigma_w,
            sigma_b=sigma_b,
            dtype=dtype,
        )
        self.conv1 = Conv(in_shape[-1], width, kernel, ndim, key=k1, **common)
        self.conv2 = Conv(width, 2 * width, kernel, ndim, key=k2, **common)
        pooled = 1
        for s in in_shape[:-1]:
            pooled *= (s // 2) // 2
        self.fc = Dense(pooled * 2 * width, 8 * width, key=k3, **common)
        self.readout = Dense(8 * width, out_dim, readout=True, key=k4, **common)
        self.activation = activation
        self.parameterization = parameterization
        self.width = width

    def __call__(self, x: Float[Array, "n ..."]) -> Float[Array, "n out"]:
        """**Arguments:**

        - `x`: a batch `(n, *in_shape)`, or `(n, L)` for one channel.

        **Returns:** the readout, `(n, out_dim)`.
        """
        phi = get_activation(self.activation)
        if x.ndim == 2:
            x = x[..., None]
        h = avg_pool(phi(self.conv1(x)))
        h = avg_pool(phi(self.conv2(h)))
        h = phi(self.fc(h.reshape(h.shape[0], -1)))
        return self.readout(h)

    @property
    def lr_multiplier(self) -> float:
        """The width factor in the learning rate: `N` for `mup` (η = η0·N), else 1."""
        return float(self.width) if self.parameterization == "mup" else 1.0
