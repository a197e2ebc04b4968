"""Fully connected network with a choice of parameterization."""

from __future__ import annotations

import equinox as eqx
import jax
from jaxtyping import Array, Float, PRNGKeyArray

from ..errors import require
from ._activations import activation as get_activation
from ._dense import Dense, check_parameterization


class MLP(eqx.Module):
    """Batched MLP: `D → N → … → N → out`, with `depth` hidden layers of width `width`.

    `depth` counts *hidden* layers, so the network has `depth + 1` weight layers. The γ paper
    (PAPERS.md §1) counts weight layers: its depth L is `depth = L − 1` here (its default
    L = 3 is `depth=2`; one hidden layer is its L = 2). Inputs of any shape `(n, ...)` are
    flattened.

    **Arguments:**

    - `in_dim`, `width`, `depth`, `out_dim`: D, N, L and the output dimension.
    - `activation`: `relu`, `tanh`, `erf` or `linear`.
    - `parameterization`: `standard`, `ntk` or `mup` (see `lazyrich.models._dense`).
    - `use_bias`: biases on every layer (the γ paper's code has them, zero-initialised and
      trained: `use_bias=True, bias_style="paper"`).
    - `bias_style`: `normal` (N(0, 1)·σ_b, see `lazyrich.models._dense`) or `paper` (zeros,
      inside the layer's scaling: `w_mult · (x Wᵀ + b)`).
    - `sigma_w`, `sigma_b`: weight and bias scales.
    - `dtype`: dtype of the arrays (default: the default float dtype).
    - `key`: PRNG key (keyword-only).
    """

    layers: tuple[Dense, ...]
    activation: str = eqx.field(static=True)
    parameterization: str = eqx.field(static=True)
    width: int = eqx.field(static=True)

    def __init__(
        self,
        in_dim: int,
        width: int,
        depth: int,
        out_dim: int = 1,
        *,
        activation: str = "relu",
        parameterization: str = "mup",
        use_bias: bool = False,
        bias_style: str = "normal",
        sigma_w: float = 1.0,
        sigma_b: float = 1.0,
        dtype=None,
        key: PRNGKeyArray,
    ):
        require(in_dim >= 1, f"input dimension must be >= 1, got {in_dim}")
        require(width >= 1, f"width must be >= 1, got {width}: pass --width 1 or more")
        require(depth >= 1, f"depth must be >= 1, got {depth}: pass --depth 1 or more")
        require(out_dim >= 1, f"output dimension must be >= 1, got {out_dim}")
        check_parameterization(parameterization)
        get_activation(activation)  # validate the name
        dims = [in_dim] + [width] * depth + [out_dim]
        keys = jax.random.split(key, depth + 1)
        self.layers = tuple(
            Dense(
                dims[i],
                dims[i + 1],
                parameterization=parameterization,
                readout=(i == depth),
                use_bias=use_bias,
                bias_style=bias_style,
                sigma_w=sigma_w,
                sigma_b=sigma_b,
                dtype=dtype,
                key=keys[i],
            )
            for i in range(depth + 1)
        )
        self.activation = activation
        self.parameterization = parameterization
        self.width = width

    def preactivations(self, x: Float[Array, "n ..."]) -> list[Float[Array, "n N"]]:
        """Hidden pre-activations `h_1 … h_L` (for coordinate checks and CKA)."""
        phi = get_activation(self.activation)
        h = self.layers[0](x.reshape(x.shape[0], -1))
        out = [h]
        for layer in self.layers[1:-1]:
            h = layer(phi(h))
            out.append(h)
        return out

    def __call__(self, x: Float[Array, "n ..."]) -> Float[Array, "n out"]:
        """**Arguments:**

        - `x`: a batch `(n, ...)`, flattened to `(n, in_dim)`.

        **Returns:** the readout `(n, out_dim)` (no activation on the last layer).
        """
        phi = get_activation(self.activation)
        return self.layers[-1](phi(self.preactivations(x)[-1]))

    @property
    def lr_multiplier(self) -> float:
        """The width factor in the learning rate: `N` for `mup` (η = η0·N), else 1."""
        return float(self.width) if self.parameterization == "mup" else 1.0
