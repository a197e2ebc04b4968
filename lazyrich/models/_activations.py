"""Activation functions by name (static strings, so models stay hashable)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from ..errors import require

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "erf": jax.scipy.special.erf,
    "linear": lambda x: x,
}


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """The activation called `name` (relu, tanh, erf, linear).

    **Arguments:**

    - `name`: a key of `ACTIVATIONS`.

    **Returns:** the elementwise function `x ↦ φ(x)`.

    **Raises:** `ConfigError` for an unknown name.
    """
    require(
        name in ACTIVATIONS,
        f"unknown activation {name!r}: choose one of {', '.join(ACTIVATIONS)}",
    )
    return ACTIVATIONS[name]
