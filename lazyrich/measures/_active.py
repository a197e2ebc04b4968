"""Active parameters: how much each parameter moved in training, selection, reports, resets.

Li & Banerjee (2021, PAPERS.md §4) call the few parameters that change a lot *active*.
All functions are pure over parameter pytrees (e.g. `lazyrich.functional(model)[0]`).

**Layers.** A *layer* is one group of leaves that share a parent node in the pytree: for
`MLP` each `Dense` in `.layers` (weight and bias together), for `CNN` `conv1`, `conv2`, `fc`,
`readout`; in `Scaled` the same modules under `.net`. Leaves sitting directly at the root (a
bare array, or a flat dict of arrays) are one layer each. Layers are listed in pytree
flattening order, which is input-to-output order for `MLP` and `CNN`. `layer_groups` gives the
grouping, `layer_tree` each leaf's layer index; `lazyrich.optim` uses the same definition.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, PRNGKeyArray

from ..errors import require

KINDS = ("relative", "absolute", "layer")


# --------------------------------------------------------------------------- layers


def _name(path) -> str:
    return jax.tree_util.keystr(tuple(path)) or "<root>"


def layer_groups(params: Any) -> list[tuple[str, list[int]]]:
    """`[(layer_name, [leaf indices]) ...]` in flattening order (see the module docstring).

    Leaf indices refer to `jax.tree.leaves(params)`; `None` leaves (absent biases) are skipped.
    """
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    groups: dict[str, list[int]] = {}
    for i, (path, _) in enumerate(leaves):
        parent = path[:-1] if len(path) > 1 else path
        groups.setdefault(_name(parent), []).append(i)
    return list(groups.items())


def layer_tree(params: Any) -> Any:
    """A pytree like `params` holding each leaf's layer index (an `int`).

    Layers are numbered in input-to-output order as in the module docstring (0 the bottom);
    `lazyrich.optim`'s layer selection (`layer_mask`, `PLWS`) uses this numbering.

    **Arguments:**

    - `params`: a parameter pytree (e.g. `lazyrich.functional(model)[0]`).

    **Returns:** a pytree with the structure of `params`, an `int` at every array leaf.
    """
    leaves, treedef = jax.tree.flatten(params)
    index = [0] * len(leaves)
    for layer, (_, ids) in enumerate(layer_groups(params)):
        for i in ids:
            index[i] = layer
    return jax.tree.unflatten(treedef, index)


# --------------------------------------------------------------------------- scores


def layer_scale(params0: Any) -> Any:
    """Each leaf's layer init scale σ_ℓ: the root-mean-square of the layer's initial entries.

    The layer is the one of `layer_groups` (weight and bias together), so a zero-initialised
    bias shares its weight's scale. For a He-initialised dense layer σ_ℓ ≈ √(2 / fan_in).

    **Arguments:**

    - `params0`: the initial parameters (a pytree of arrays).

    **Returns:** a pytree like `params0` of scalars (one per leaf, equal within a layer).
    """
    leaves, treedef = jax.tree.flatten(params0)
    scale: list[Any] = [None] * len(leaves)
    for _, ids in layer_groups(params0):
        sq = sum(jnp.sum(jnp.square(leaves[i])) for i in ids)
        size = sum(leaves[i].size for i in ids)
        rms = jnp.sqrt(sq / max(size, 1))
        for i in ids:
            scale[i] = rms
    return jax.tree.unflatten(treedef, scale)


def activity(params0: Any, params1: Any, *, kind: str = "relative", eps: float = 1e-8) -> Any:
    """Per-parameter change between two parameter pytrees.

    **Arguments:**

    - `params0`, `params1`: parameters at initialization and after training (same structure).
    - `kind`: `"relative"`, `|w₁ − w₀| / (|w₀| + eps)`; `"absolute"`, `|w₁ − w₀|`; or
      `"layer"`, `|w₁ − w₀| / (σ_ℓ + eps)` with σ_ℓ the layer's init scale (`layer_scale`).
      The relative score's top-k is dominated by weights that start near zero, so its
      per-layer counts follow fan-in (a He layer's |w₀| scales as 1/√fan_in); the absolute
      score favours layers with large steps; the layer score removes the init scale per
      layer but not per weight.
    - `eps`: guards the divisions against zeros.

    **Returns:** a pytree of non-negative scores shaped like the parameters.
    """
    require(
        kind in KINDS,
        f"unknown activity score (kind) {kind!r}: choose one of {', '.join(KINDS)}",
    )
    require(eps >= 0, f"eps must be >= 0, got {eps}")
    if kind == "absolute":
        return jax.tree.map(lambda a, b: jnp.abs(b - a), params0, params1)
    if kind == "layer":
        return jax.tree.map(
            lambda a, b, s: jnp.abs(b - a) / (s + eps), params0, params1, layer_scale(params0)
        )
    return jax.tree.map(lambda a, b: jnp.abs(b - a) / (jnp.abs(a) + eps), params0, params1)


def unit_activity(params0: Any, params1: Any, *, eps: float = 1e-8) -> Any:
    """Per-unit relative change: `‖w₁[u] − w₀[u]‖ / (‖w₀[u]‖ + eps)` per output unit `u`.

    A unit is an output row of a weight matrix (`Dense.weight` has shape `(out, in)`, so axis
    0), or an output channel of a convolution kernel (last axis, `(*k, cin, cout)`); a vector
    leaf (a bias) is scored per entry. Norms are Frobenius over the unit's entries.

    **Arguments:**

    - `params0`, `params1`: parameters at initialization and after training (same structure).
    - `eps`: guards the score against `‖w₀[u]‖ = 0` (`>= 0`, default 1e-8).

    **Returns:** a pytree with one vector of scores per leaf, of length the number of units.
    """
    require(eps >= 0, f"eps must be >= 0, got {eps}")

    def score(a, b):
        if a.ndim <= 1:
            return jnp.abs(b - a) / (jnp.abs(a) + eps)
        axis = 0 if a.ndim == 2 else a.ndim - 1
        da = jnp.moveaxis(b - a, axis, 0).reshape(a.shape[axis], -1)
        a0 = jnp.moveaxis(a, axis, 0).reshape(a.shape[axis], -1)
        return jnp.linalg.norm(da, axis=1) / (jnp.linalg.norm(a0, axis=1) + eps)

    return jax.tree.map(score, params0, params1)


# --------------------------------------------------------------------------- selection


def _check_percent(percent: float, name: str = "top_percent") -> None:
    require(
        0 < percent <= 100,
        f"{name}={percent} must be in (0, 100]: pass a percentage such as 1 or 10",
    )


def _count(total: int, percent: float) -> int:
    return max(1, min(total, round(total * percent / 100.0)))


def _mask_from_flat(tree: Any, flat_mask: Array) -> Any:
    leaves, treedef = jax.tree.flatten(tree)
    out, start = [], 0
    for leaf in leaves:
        out.append(flat_mask[start : start + leaf.size].reshape(leaf.shape))
        start += leaf.size
    return jax.tree.unflatten(treedef, out)


def _top_k_mask(scores: Any, k: int) -> Any:
    flat = jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(scores)])
    _, idx = jax.lax.top_k(flat, k)
    mask = jnp.zeros(flat.shape, bool).at[idx].set(True)
    return _mask_from_flat(scores, mask)


def select_active(
    scores: Any, *, top_percent: float | None = None, threshold: float | None = None
) -> Any:
    """Boolean mask of active parameters: global top-k% over all leaves, or `score > threshold`.

    Exactly one of `top_percent` (k in (0, 100]; the count is `round(k% · total)`, at least 1;
    ties broken by position) and `threshold` must be given.

    **Arguments:**

    - `scores`: a pytree of scores (from `activity` or `unit_activity`).
    - `top_percent`: k, the percentage of all entries to mark, ranked over every leaf at once.
    - `threshold`: mark the entries with `score > threshold` instead.

    **Returns:** a boolean pytree shaped like `scores`.

    **Raises:** `ConfigError` unless exactly one of the two is given, or if `top_percent` is
    outside (0, 100].
    """
    require(
        (top_percent is None) != (threshold is None),
        "give exactly one of top_percent and threshold",
    )
    if threshold is not None:
        return jax.tree.map(lambda s: s > threshold, scores)
    assert top_percent is not None
    _check_percent(top_percent)
    total = sum(x.size for x in jax.tree.leaves(scores))
    return _top_k_mask(scores, _count(total, top_percent))


def select_least(scores: Any, percent: float) -> Any:
    """Mask of the `percent`% least-changed parameters (same count rule as `select_active`).

    **Arguments:**

    - `scores`: a pytree of scores (from `activity` or `unit_activity`).
    - `percent`: the percentage in (0, 100] of all entries to mark, lowest scores first.

    **Returns:** a boolean pytree shaped like `scores`.
    """
    _check_percent(percent, "percent")
    total = sum(x.size for x in jax.tree.leaves(scores))
    return _top_k_mask(jax.tree.map(lambda s: -s, scores), _count(total, percent))


def select_random(params: Any, percent: float, *, key: PRNGKeyArray) -> Any:
    """Mask of a uniformly random `percent`% of all parameters (same count as `select_active`).

    **Arguments:**

    - `params`: a pytree of arrays (only the shapes are used).
    - `percent`: the percentage in (0, 100] of all entries to mark, drawn without replacement.
    - `key`: PRNG key of the draw.

    **Returns:** a boolean pytree shaped like `params`.
    """
    _check_percent(percent, "percent")
    total = sum(x.size for x in jax.tree.leaves(params))
    idx = jax.random.choice(key, total, (_count(total, percent),), replace=False)
    return _mask_from_flat(params, jnp.zeros((total,), bool).at[idx].set(True))


# --------------------------------------------------------------------------- reports, resets


def layer_report(mask: Any) -> list[dict[str, Any]]:
    """Per layer (see the module docstring): how many parameters are active.

    **Arguments:**

    - `mask`: a boolean pytree shaped like the parameters (from `select_active` & co).

    **Returns:** a list in layer order of dicts with `layer` (name), `size`, `active`,
    `fraction` (active / size) and `share` (active / all active; shares sum to 1, or are all
    0 when nothing is active).
    """
    leaves = jax.tree.leaves(mask)
    counts = [int(jnp.sum(x)) for x in leaves]
    total_active = sum(counts)
    report = []
    for name, ids in layer_groups(mask):
        size = sum(int(leaves[i].size) for i in ids)
        active = sum(counts[i] for i in ids)
        report.append(
            dict(
                layer=name,
                size=size,
                active=active,
                fraction=active / size if size else 0.0,
                share=active / total_active if total_active else 0.0,
            )
        )
    return report


def reset(params_now: Any, params0: Any, mask: Bool[Array, "..."] | Any) -> Any:
    """`params_now` with the entries where `mask` is True set back to `params0`.

    **Arguments:**

    - `params_now`: the current parameters.
    - `params0`: the parameters to reset to (same structure), e.g. those at initialization.
    - `mask`: a boolean pytree of the same structure (or leaves that broadcast against them).

    **Returns:** `where(mask, params0, params_now)` leaf by leaf.
    """
    return jax.tree.map(lambda w, w0, m: jnp.where(m, w0, w), params_now, params0, mask)
