"""The CNN of Nakkiran et al. 2019, "SGD on neural networks learns functions of increasing
complexity" (PAPERS.md §5)."""

from __future__ import annotations

import functools
import math
from typing import Any

import equinox as eqx
import jax
from jaxtyping import Array, Float, PRNGKeyArray

from ._cnn import Conv
from ._dense import Dense


def _pool(x: Array) -> Array:
    """2× average pooling over the spatial axes (channel-last); odd sizes drop the last row."""
    ndim = x.ndim - 2
    window = (1,) + (2,) * ndim + (1,)
    return jax.lax.reduce_window(x, 0.0, jax.lax.add, window, window, "VALID") / 2**ndim


class PaperCNN(eqx.Module):
    """The CNN of Nakkiran et al. 2019 (PAPERS.md §5): 4 'SAME' 3-wide convolutions of
    `channels` (ReLU), 2× average pooling after the 2nd and the 4th, two dense ReLU layers of
    `dense`, a linear readout. Standard parameterization with biases (zero-initialised), He
    initialisation (σ_w = √2) of the hidden layers. The paper uses `channels=32, dense=2000`.

    **Arguments:**

    - `in_shape`: one example's shape, `(L,)` or `(L, C)` (1-D) or `(H, W, C)` (2-D).
    - `channels`: channels of each convolution.
    - `dense`: width of each of the two dense layers.
    - `out_dim`: outputs (classes).
    - `key`: PRNG key (keyword-only).

    Applied to a batch: `(n, L)`, `(n, L, C)` or `(n, H, W, C)` → `(n, out_dim)`.
    """

    convs: tuple[Conv, ...]
    dense: tuple[Dense, ...]

    def __init__(
        self,
        in_shape: tuple[int, ...],
        channels: int,
        dense: int,
        out_dim: int,
        *,
        key: PRNGKeyArray,
    ):
        in_shape = in_shape + (1,) if len(in_shape) == 1 else in_shape
        ndim = len(in_shape) - 1
        keys = jax.random.split(key, 7)
        std: dict[str, Any] = dict(parameterization="standard", use_bias=True, sigma_b=0.0)
        conv = functools.partial(Conv, kernel=3, ndim=ndim, sigma_w=2**0.5, **std)
        hidden = functools.partial(Dense, sigma_w=2**0.5, **std)
        cins = (in_shape[-1], channels, channels, channels)
        self.convs = tuple(conv(ci, channels, key=k) for ci, k in zip(cins, keys[:4], strict=True))
        flat = channels * math.prod(s // 4 for s in in_shape[:-1])
        self.dense = (
            hidden(flat, dense, key=keys[4]),
            hidden(dense, dense, key=keys[5]),
            Dense(dense, out_dim, readout=True, key=keys[6], **std),
        )

    def __call__(self, x: Float[Array, "n ..."]) -> Float[Array, "n out"]:
        """**Arguments:**

        - `x`: a batch `(n, L)`, `(n, L, C)` or `(n, H, W, C)`.

        **Returns:** the logits `(n, out_dim)`.
        """
        h = x[..., None] if x.ndim == 2 else x
        for i, conv in enumerate(self.convs):
            h = jax.nn.relu(conv(h))
            if i in (1, 3):
                h = _pool(h)
        h = h.reshape(h.shape[0], -1)
        h = jax.nn.relu(self.dense[0](h))
        h = jax.nn.relu(self.dense[1](h))
        return self.dense[2](h)
