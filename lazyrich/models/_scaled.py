"""The output scale 1/γ and centring: `f(x) = (net(x) − net₀(x)) / γ`."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..errors import require
from ._frozen import Frozen
from ._per_example import batch_call


class Scaled(eqx.Module):
    """A network with output multiplier 1/γ and, optionally, its initial function subtracted.

    `f(x) = (net(x) − net₀(x)) / γ` where `net₀` is a frozen copy of `net` at initialization
    (not trainable, gradients stopped), so a centred model outputs exactly 0 at init.
    γ is an array leaf inside `Frozen`: not trained, but it can vary across a `vmap`.
    Build it with `scaled`.

    **Fields:**

    - `net`: the trained network.
    - `init_net`: `Frozen(net₀)`, the network at initialization, or `None` (not centred).
    - `gamma`: `Frozen(γ)`, a scalar array in the network's dtype.
    """

    net: Any
    init_net: Frozen | None
    gamma: Frozen[Array]

    def __call__(self, x: Float[Array, "n ..."]) -> Float[Array, "n k"]:
        """**Arguments:**

        - `x`: a batch `(n, ...)` for `net`.

        **Returns:** `(net(x) − net₀(x)) / γ` (or `net(x) / γ` uncentred), shape `(n, k)`.
        """
        f = batch_call(self.net, x)
        if self.init_net is not None:
            f = f - jax.lax.stop_gradient(batch_call(self.init_net.value, x))
        return f / self.gamma.value

    @property
    def lr_multiplier(self) -> float:
        return getattr(self.net, "lr_multiplier", 1.0)


def scaled(net: Any, *, gamma: float | Array = 1.0, centre: bool = True) -> Scaled:
    """Wrap `net` with the output scale 1/γ and (by default) centring.

    **Arguments:**

    - `net`: an `eqx.Module`: lazyrich's own (`MLP`, `CNN`, ...) or any per-example
      Equinox module (`eqx.nn.MLP`, ...), recognised as `lazyrich.functional` describes.
    - `gamma`: γ > 0, a Python float or a JAX scalar (traced values are allowed, so a grid of
      γ can be built under `jax.vmap`).
    - `centre`: subtract a frozen copy of the initial network.

    **Returns:** a `Scaled` model.
    """
    if isinstance(gamma, (int, float)):
        require(
            gamma > 0 and gamma == gamma and gamma != float("inf"),
            f"gamma must be a finite number > 0, got {gamma}",
        )
    dtype = jax.tree.leaves(eqx.filter(net, eqx.is_inexact_array))[0].dtype
    g = jnp.asarray(gamma, dtype)
    init = Frozen(net) if centre else None
    return Scaled(net=net, init_net=init, gamma=Frozen(g))
