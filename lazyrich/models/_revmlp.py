"""Reversible MLP with additive coupling blocks (Buffelli et al. 2024, PAPERS.md §2).

A sample `x ∈ R^d` (d even) is split into halves `x = (x1, x2)`; each block maps

    y1 = x1 + F(x2),   F(x2) = W_f σ(C_f x2) + b_f
    y2 = x2 + G(y1),   G(y1) = W_g σ(C_g y1) + b_g

and is inverted exactly by `x2 = y2 − G(y1)`, `x1 = y1 − F(x2)`. `C_f, C_g ∈ R^(h×d/2)` are
fixed N(0, 1/h) "inverted bottleneck" matrices (width h, not trained), `W ∈ R^(d/2×h)` and
`b ∈ R^(d/2)` are trained, W starts N(0, σ²) and b at zero. σ is ReLU, except in the first
block, which is linear by default. The readout `z = x_L U` uses a fixed `U ∈ R^(d×k)` with
orthonormal columns, so a change `t` of `x_L` moves the output by `t U` and `ε Uᵀ` is the
smallest change of `x_L` that moves the output by `ε`.

Everything is batched and row-wise: `x` of shape `(n, ...)` is flattened to `(n, d)`.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..errors import require
from ._frozen import Frozen


def _features(c: Float[Array, "h half"], v: Float[Array, "n half"], relu: bool) -> Array:
    pre = v @ c.T
    return jax.nn.relu(pre) if relu else pre


class RevBlock(eqx.Module):
    """One additive coupling block `(x1, x2) ↦ (x1 + F(x2), x2 + G(x1 + F(x2)))`.

    Weights are stored in the column convention of the paper: `w_f` has shape `(d/2, h)`,
    so on a batch of rows `F(x2) = σ(x2 C_fᵀ) W_fᵀ + b_f`.
    """

    w_f: Float[Array, "half h"]
    b_f: Float[Array, " half"]
    w_g: Float[Array, "half h"]
    b_g: Float[Array, " half"]
    c_f: Frozen[Float[Array, "h half"]]
    c_g: Frozen[Float[Array, "h half"]]
    relu: bool = eqx.field(static=True)

    def __init__(self, half: int, hidden: int, *, sigma: float, relu: bool, dtype, key):
        """**Arguments:**

        - `half`: d/2, the size of each half of the input.
        - `hidden`: h, the width of the fixed `C_f`, `C_g` (drawn N(0, 1/h), not trained).
        - `sigma`: standard deviation of the initial `W_f`, `W_g` (the biases start at 0).
        - `relu`: σ = ReLU if True, else the identity.
        - `dtype`: dtype of the arrays.
        - `key`: PRNG key of the initialization.
        """
        kcf, kcg, kwf, kwg = jax.random.split(key, 4)
        std_c = 1.0 / math.sqrt(hidden)
        self.c_f = Frozen(std_c * jax.random.normal(kcf, (hidden, half), dtype))
        self.c_g = Frozen(std_c * jax.random.normal(kcg, (hidden, half), dtype))
        self.w_f = sigma * jax.random.normal(kwf, (half, hidden), dtype)
        self.w_g = sigma * jax.random.normal(kwg, (half, hidden), dtype)
        self.b_f = jnp.zeros((half,), dtype)
        self.b_g = jnp.zeros((half,), dtype)
        self.relu = relu

    def features_f(self, x2: Float[Array, "n half"]) -> Float[Array, "n h"]:
        """`σ(C_f x2)` for a batch of rows."""
        return _features(self.c_f.value, x2, self.relu)

    def features_g(self, y1: Float[Array, "n half"]) -> Float[Array, "n h"]:
        """`σ(C_g y1)` for a batch of rows."""
        return _features(self.c_g.value, y1, self.relu)

    def f(self, x2: Float[Array, "n half"]) -> Float[Array, "n half"]:
        return self.features_f(x2) @ self.w_f.T + self.b_f

    def g(self, y1: Float[Array, "n half"]) -> Float[Array, "n half"]:
        return self.features_g(y1) @ self.w_g.T + self.b_g

    def __call__(self, x: Float[Array, "n d"]) -> Float[Array, "n d"]:
        """**Arguments:**

        - `x`: a batch `(n, d)`, split into halves `(x1, x2)` along the last axis.

        **Returns:** `(y1, y2) = (x1 + F(x2), x2 + G(y1))`, concatenated, shape `(n, d)`.
        """
        x1, x2 = jnp.split(x, 2, axis=-1)
        y1 = x1 + self.f(x2)
        y2 = x2 + self.g(y1)
        return jnp.concatenate([y1, y2], axis=-1)

    def inverse(self, y: Float[Array, "n d"]) -> Float[Array, "n d"]:
        y1, y2 = jnp.split(y, 2, axis=-1)
        x2 = y2 - self.g(y1)
        x1 = y1 - self.f(x2)
        return jnp.concatenate([x1, x2], axis=-1)


class RevMLP(eqx.Module):
    """Batched reversible MLP: `num_blocks` coupling blocks and a fixed orthonormal readout.

    **Arguments:**

    - `in_dim`: d, the flattened input size; must be even.
    - `num_blocks`: L, the number of coupling blocks (paper: 2 for MNIST, 6 for CIFAR-10).
    - `hidden`: h, the width of the fixed inverted bottleneck `C` (paper: 8000).
    - `out_dim`: k, the number of outputs.
    - `sigma`: standard deviation of the initial `W` (paper: 1e-3, i.e. variance 1e-6).
    - `linear_first`: the first block uses σ = identity (the paper's choice); others ReLU.
    - `dtype`: dtype of the arrays (default: the default float dtype).
    - `key`: PRNG key (keyword-only).

    **Raises:** `ConfigError` for an odd `in_dim`, `num_blocks < 1`, `hidden < 1`,
    `out_dim` outside `[1, in_dim]` or `sigma < 0`.

    `C` (per block) and `U` live inside `Frozen`, so `functional`/`partition` expose only the
    `W`s and `b`s as parameters.
    """

    blocks: tuple[RevBlock, ...]
    readout: Frozen[Float[Array, "d k"]]
    in_dim: int = eqx.field(static=True)
    hidden: int = eqx.field(static=True)

    def __init__(
        self,
        in_dim: int,
        *,
        num_blocks: int,
        hidden: int = 8000,
        out_dim: int = 10,
        sigma: float = 1e-3,
        linear_first: bool = True,
        dtype=None,
        key: PRNGKeyArray,
    ):
        check_even(in_dim)
        require(num_blocks >= 1, f"RevMLP needs num_blocks >= 1, got {num_blocks}")
        require(hidden >= 1, f"RevMLP needs hidden >= 1, got {hidden}")
        require(
            1 <= out_dim <= in_dim,
            f"RevMLP needs 1 <= out_dim <= in_dim ({in_dim}) for an orthonormal readout, "
            f"got {out_dim}",
        )
        require(sigma >= 0, f"RevMLP needs sigma >= 0, got {sigma}")
        dtype = jnp.zeros(()).dtype if dtype is None else dtype
        kblocks, ku = jax.random.split(key)
        keys = jax.random.split(kblocks, num_blocks)
        self.blocks = tuple(
            RevBlock(
                in_dim // 2,
                hidden,
                sigma=sigma,
                relu=not (linear_first and i == 0),
                dtype=dtype,
                key=keys[i],
            )
            for i in range(num_blocks)
        )
        q, r = jnp.linalg.qr(jax.random.normal(ku, (in_dim, out_dim), dtype))
        # Fix the sign ambiguity of QR so U is Haar-distributed.
        self.readout = Frozen(q * jnp.sign(jnp.diagonal(r)))
        self.in_dim = in_dim
        self.hidden = hidden

    def _flatten(self, x: Float[Array, "n ..."]) -> Float[Array, "n d"]:
        return x.reshape(x.shape[0], -1)

    def features(self, x: Float[Array, "n ..."]) -> Float[Array, "n d"]:
        """`x_L`, the output of the last block (before the readout)."""
        h = self._flatten(x)
        for block in self.blocks:
            h = block(h)
        return h

    def blocks_forward(self, x: Float[Array, "n ..."]) -> list[Float[Array, "n d"]]:
        """Each block's output `[x_1, …, x_L]` (for CKA between representations)."""
        h = self._flatten(x)
        out = []
        for block in self.blocks:
            h = block(h)
            out.append(h)
        return out

    def inverse(self, y: Float[Array, "n d"]) -> Float[Array, "n d"]:
        """Exact inverse of the block stack: recovers the flattened input from `x_L`."""
        x = y
        for block in reversed(self.blocks):
            x = block.inverse(x)
        return x

    def __call__(self, x: Float[Array, "n ..."]) -> Float[Array, "n k"]:
        """**Arguments:**

        - `x`: a batch `(n, ...)`, flattened to `(n, in_dim)`.

        **Returns:** `z = x_L U`, shape `(n, out_dim)`.
        """
        return self.features(x) @ self.readout.value


def check_even(in_dim: int) -> None:
    """Raise `ConfigError` unless the flattened input size is even."""
    require(
        in_dim >= 2 and in_dim % 2 == 0,
        f"RevMLP needs an even input dimension, got {in_dim}; pad or crop the input",
    )
