"""Layer-wise sparse SGD (PAPERS.md §4): train only some layers, statically or at random.

**Layers** are defined as in `lazyrich.measures.layer_tree`: each module holding array leaves
(for `MLP` each `Dense` in `.layers`, weight and bias together; for `CNN` `conv1`, `conv2`,
`fc`, `readout`), in input-to-output order. Index 0 is the bottom layer, −1 the top (readout).

**Static LWS-SGD.** `layer_mask(params, layers)` marks the trained leaves; `masked(opt, mask)`
applies `opt` to them and zero updates to the rest (no optimizer state is kept for frozen
leaves); `lws_value_and_grad(loss_fn, mask)` differentiates with respect to the trained leaves
only, with the frozen ones under `stop_gradient`. JAX's autodiff then never forms cotangents
for the frozen layers below the lowest trained one (their tangents are symbolic zeros), so the
backward pass stops at the lowest trained layer; between trained layers it still propagates
activation gradients but skips the frozen weights' gradients. Frozen gradients are returned as
zeros so the result composes with any optax transformation.

**Probabilistic LWS-SGD.** `plws_step` updates the top layers every step and, with probability
`p` (a number or traced array in [0, 1], or a schedule `step ↦ p`), the whole network. The two
steps are two branches of one `lax.cond` inside one compiled program: XLA executes only the
taken branch, so a top-only step costs a truncated backward pass (measured in
`benchmarks/lws.py`). `PLWS` is the engine's step (`lazyrich.train.Step`): p a grid axis, the
coin drawn from the engine's step key. Under `jax.vmap` over the coin `lax.cond` turns into
`select` and runs both branches: time PLWS one run per engine call (see `PLWS`), or time
the two branches apart with a host-side coin flip (as `benchmarks/lws.py` does). On XLA:CPU
convolutions inside a `cond` branch are much slower than jitted alone (a CNN's full step
~25×); MLPs are unaffected.
**Optimizer state of layers not updated:** the optimizer keeps two states, one for the top
group and one for the rest. A top-only step advances only the top state; the rest's state
(momentum, Adam moments and step count) is left untouched, not decayed, until the next full
step, which continues it as if the top-only steps had not happened for those layers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, PRNGKeyArray

from ..errors import require
from ..measures import layer_tree
from ..train import Step

LAYER_SETS = ("top", "bottom", "top+bottom", "all")


def layer_indices(params: Any, layers: str | int | Iterable[int]) -> list[int]:
    """The sorted layer indices named by `layers` (an index, a set of indices or a preset).

    **Arguments:**

    - `params`: model parameters; their layers are counted as in the module docstring.
    - `layers`: an index, an iterable of indices (negative counts from the top), or one of
      `LAYER_SETS`: `"top"` (the readout), `"bottom"`, `"top+bottom"`, `"all"`.

    **Returns:** a sorted list of distinct indices in `0 … n−1` (n the number of layers).

    **Raises:** `ConfigError` for parameters without array leaves, an unknown preset, an
    empty set or an index out of range.
    """
    n = 1 + max(jax.tree.leaves(layer_tree(params)), default=-1)
    require(n >= 1, "the parameter pytree has no array leaves: pass model parameters")
    if isinstance(layers, str):
        require(
            layers in LAYER_SETS,
            f"unknown layer set {layers!r}: use indices or one of {LAYER_SETS}",
        )
        chosen = {"top": {n - 1}, "bottom": {0}, "top+bottom": {0, n - 1}, "all": set(range(n))}
        return sorted(chosen[layers])
    if isinstance(layers, int):
        layers = [layers]
    layers = list(layers)
    require(len(layers) > 0, "the layer set is empty: name at least one layer, e.g. 'top'")
    for i in layers:
        require(
            isinstance(i, int) and -n <= i < n,
            f"layer index {i!r} out of range for {n} layers: use 0..{n - 1} or negatives",
        )
    return sorted({i % n for i in layers})


def layer_mask(params: Any, layers: str | int | Iterable[int]) -> Any:
    """Boolean pytree like `params`: True on the leaves of the chosen layers.

    **Arguments:**

    - `params`: model parameters (e.g. `lazyrich.functional(model)[0]`).
    - `layers`: a layer index, a set of indices (negative counts from the top), or
      `"top"`, `"bottom"`, `"top+bottom"`, `"all"`.

    **Returns:** a pytree of Python bools with the structure of `params`.

    **Raises:** `ConfigError` as `layer_indices`.
    """
    chosen = set(layer_indices(params, layers))
    return jax.tree.map(lambda i: i in chosen, layer_tree(params))


def masked(optimizer: optax.GradientTransformation, mask: Any) -> optax.GradientTransformation:
    """`optimizer` on the leaves where `mask` is True, zero updates elsewhere.

    Unlike `optax.masked`, which passes the raw gradient through on unmasked leaves, frozen
    leaves get exactly zero updates. Optimizer state exists only for the trained leaves.

    **Arguments:**

    - `optimizer`: any optax transformation.
    - `mask`: a boolean pytree with the structure of the parameters (e.g. `layer_mask`).

    **Returns:** an `optax.GradientTransformation` (an `optax.multi_transform`).
    """
    labels = jax.tree.map(lambda m: "train" if m else "frozen", mask)
    # a callable: a labels tree that is itself an eqx.Module (callable) would be called by optax
    return optax.multi_transform(
        {"train": optimizer, "frozen": optax.set_to_zero()}, lambda _: labels
    )


def lws_value_and_grad(
    loss_fn: Callable[..., Array], mask: Any
) -> Callable[..., tuple[Array, Any]]:
    """`value_and_grad` of `loss_fn(params, *args)` with respect to the masked leaves only.

    **Arguments:**

    - `loss_fn`: `loss_fn(params, *args) -> scalar`.
    - `mask`: a boolean pytree with the structure of the parameters, True on trained leaves.

    **Returns:** `f(params, *args) -> (loss, grads)`, `grads` shaped like `params` with zeros on
    frozen leaves; the backward pass is truncated below the lowest trained layer.
    """

    def f(params, *args):
        trained, frozen = eqx.partition(params, mask)
        frozen = jax.lax.stop_gradient(frozen)

        def inner(t):
            return loss_fn(eqx.combine(t, frozen), *args)

        value, g = jax.value_and_grad(inner)(trained)
        grads = eqx.combine(g, jax.tree.map(jnp.zeros_like, frozen))
        return value, grads

    return f


# --------------------------------------------------------------------------- probabilistic


class PLWSState(NamedTuple):
    """Optimizer states of the top group and of the rest, and the step count.

    **Fields:**

    - `top`: the optimizer's state for the top layers.
    - `rest`: its state for the other layers (advanced by full steps only).
    - `step`: int32 scalar, steps taken (top-only and full).
    """

    top: Any
    rest: Any
    step: Array


def _split(params, top_mask):
    return eqx.partition(params, top_mask)


def init_plws(optimizer: optax.GradientTransformation, params: Any, top_mask: Any) -> PLWSState:
    """Separate optimizer states for the top layers (`top_mask`) and the rest.

    **Arguments:**

    - `optimizer`: any optax transformation.
    - `params`: the initial parameters.
    - `top_mask`: boolean pytree like `params`, True on the top layers (`layer_mask`).

    **Returns:** a `PLWSState` with step 0.
    """
    top, rest = _split(params, top_mask)
    return PLWSState(optimizer.init(top), optimizer.init(rest), jnp.zeros((), jnp.int32))


def top_step(loss_fn, optimizer, top_mask, params, state: PLWSState, *args):
    """Update only the top layers (truncated backward pass); the rest's state is untouched.

    **Arguments:**

    - `loss_fn`: `loss_fn(params, *args) -> scalar`.
    - `optimizer`: the optax transformation of `init_plws`.
    - `top_mask`: boolean pytree like `params`, True on the top layers.
    - `params`, `state`: current parameters and `PLWSState`; `*args`: the batch.

    **Returns:** `(params, state, loss)`, the loss at the parameters before the step.
    """
    top, rest = _split(params, top_mask)
    rest = jax.lax.stop_gradient(rest)
    value, g = jax.value_and_grad(lambda t: loss_fn(eqx.combine(t, rest), *args))(top)
    updates, top_state = optimizer.update(g, state.top, top)
    params = eqx.combine(optax.apply_updates(top, updates), rest)
    return params, PLWSState(top_state, state.rest, state.step + 1), value


def full_step(loss_fn, optimizer, top_mask, params, state: PLWSState, *args):
    """Update every layer (full backward pass); both optimizer states advance.

    **Arguments:**

    - `loss_fn`: `loss_fn(params, *args) -> scalar`.
    - `optimizer`: the optax transformation of `init_plws`.
    - `top_mask`: boolean pytree like `params`, True on the top layers.
    - `params`, `state`: current parameters and `PLWSState`; `*args`: the batch.

    **Returns:** `(params, state, loss)`, the loss at the parameters before the step.
    """
    value, g = jax.value_and_grad(loss_fn)(params, *args)
    top, rest = _split(params, top_mask)
    g_top, g_rest = _split(g, top_mask)
    u_top, top_state = optimizer.update(g_top, state.top, top)
    u_rest, rest_state = optimizer.update(g_rest, state.rest, rest)
    params = eqx.combine(optax.apply_updates(top, u_top), optax.apply_updates(rest, u_rest))
    return params, PLWSState(top_state, rest_state, state.step + 1), value


def check_probability(p: float | str | Callable) -> None:
    """ConfigError unless `p` is a schedule, a grid-axis name or a number in [0, 1].

    **Arguments:**

    - `p`: the full-update probability as given to `PLWS` or `plws_step`.

    **Raises:** `ConfigError` for a number outside [0, 1] or a value of another type.
    """
    if callable(p) or isinstance(p, str):
        return
    require(
        isinstance(p, (int, float)) and 0.0 <= p <= 1.0,
        f"full-update probability p={p} must be in [0, 1]: e.g. p=0.1",
    )


def plws_coin(key: PRNGKeyArray, p: float | Array) -> Array:
    """The coin of one PLWS step: True (a full update) with probability `clip(p, 0, 1)`.

    **Arguments:**

    - `key`: PRNG key of the step (the engine's `step_key`).
    - `p`: the probability, a number or a (traced) scalar array, cast to float32.

    **Returns:** a boolean scalar, `bernoulli(key, clip(p, 0, 1))`.
    """
    return jax.random.bernoulli(key, jnp.clip(jnp.asarray(p, jnp.float32), 0.0, 1.0))


def plws_step(
    loss_fn: Callable[..., Array],
    optimizer: optax.GradientTransformation,
    top_mask: Any,
    p: float | Array | Callable[[Array], Array],
    params: Any,
    state: PLWSState,
    *args: Any,
    key: PRNGKeyArray,
) -> tuple[Any, PLWSState, Array, Array]:
    """One probabilistic LWS-SGD step (jittable; `p` may be a traced array).

    **Arguments:**

    - `loss_fn`: `loss_fn(params, *args) -> scalar`.
    - `optimizer`: any optax transformation (applied separately to top and rest).
    - `top_mask`: the top layers, e.g. `layer_mask(params, "top")`.
    - `p`: probability of a full update, a number or array in [0, 1] or a schedule
      `step ↦ p` (values are clipped to [0, 1]).
    - `params`, `state`: current parameters and `init_plws(...)` state; `*args`: the batch.
    - `key`: PRNG key for the coin (keyword-only), `plws_coin(key, p)`.

    **Returns:** `(params, state, loss, full)` with `full` True where the whole net was updated.
    """
    if isinstance(p, (int, float)):
        check_probability(p)
    prob = p(state.step) if callable(p) else p
    full = plws_coin(key, prob)

    def do_full(ops):
        return full_step(loss_fn, optimizer, top_mask, *ops)

    def do_top(ops):
        return top_step(loss_fn, optimizer, top_mask, *ops)

    params, state, value = jax.lax.cond(full, do_full, do_top, (params, state, *args))
    return params, state, value, full


class PLWS(Step):
    """Probabilistic LWS-SGD as a step of the engine (`lazyrich.train.train`).

    Every step updates the `top` layers; with probability p (a coin drawn from the engine's
    per-run, per-step key, `plws_coin(key, p)`) it updates the whole network instead. The
    two updates are the branches of one `lax.cond`: the top-only branch runs a
    backward pass truncated below the top layers.

    **Fields:**

    - `optimizer`: an optax transformation, or a function `hp -> transformation` (a swept
      learning rate); separate states for the top layers and the rest (see the module).
    - `p`: the name of a grid axis holding p (default `"p"`: p is a traced, vmappable
      hyperparameter), a number in [0, 1], or a schedule `step ↦ p`.
    - `top`: the layers updated every step (`"top"`, `"bottom"`, `"top+bottom"`, `"all"`,
      an index or a tuple of indices; see `layer_mask`).

    **Timing.** Under `jax.vmap` over runs the coin is batched and `lax.cond` becomes a
    `select` that runs both branches: a vmapped grid of PLWS runs is as slow as SGD. The
    engine does not vmap a chunk of a single run, so to measure PLWS's cheaper backward
    pass run one p (one run) per engine call, or `chunk_size=1`, never a vmapped p axis.
    On XLA:CPU, convolution gradients inside a `cond` branch lose the fast path (a CNN's
    full step ran ~25× slower than jitted on its own, jax 0.10); MLPs are unaffected.
    """

    branches: ClassVar[bool] = True  # one-run chunks unvmapped: the cond runs one branch

    optimizer: Any
    p: float | str | Callable[[Array], Array] = "p"
    top: str | int | tuple[int, ...] = "top"

    def __check_init__(self):
        check_probability(self.p)

    def _transform(self, hp) -> optax.GradientTransformation:
        opt = self.optimizer
        return opt if isinstance(opt, optax.GradientTransformation) else opt(hp)

    def probability(self, hp) -> Any:
        """p of a run: `hp[self.p]` for an axis name, else the number or schedule."""
        if isinstance(self.p, str):
            require(self.p in hp, f"PLWS reads p from the grid axis {self.p!r}: add it to the grid")
            return hp[self.p]
        return self.p

    def init(self, params, *, apply, hp, key):
        del apply, key
        return init_plws(self._transform(hp), params, layer_mask(params, self.top))

    def update(self, params, state, batch, *, apply, hp, key, loss):
        x, y = batch
        mask = layer_mask(params, self.top)

        def loss_fn(q, xb, yb):
            return loss(apply(q, xb), yb)

        opt = self._transform(hp)
        params, state, value, _ = plws_step(
            loss_fn, opt, mask, self.probability(hp), params, state, x, y, key=key
        )
        return params, state, value
