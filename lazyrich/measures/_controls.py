"""Matched random controls for re-initialisation tests of active parameters.

Resetting the active k% and comparing with a uniformly random k% confounds *which* parameters
moved with *where* they sit: the active set of the relative score concentrates in layers of
large fan-in (small |w₀|), and small-|w₀| weights are cheap to reset whatever their activity.
A matched control draws a random subset with the same count as a reference mask (the active
set) in every *stratum*:

- `layer_strata(params)`: one stratum per layer (`layer_groups`), so the control has the active
  set's per-layer counts;
- `magnitude_strata(params0, bins)`: per layer, `bins` equal-count bins of |w₀| (quantiles
  within the layer), so the control also matches the active set's distribution of initial
  magnitudes.

`select_matched` draws, per stratum, that many entries uniformly among the stratum's
candidates (optionally excluding the reference itself, so the control is disjoint from it).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

from ..errors import require
from ._active import layer_groups


def _flat(tree: Any) -> Array:
    return jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(tree)])


def _unflat(like: Any, flat: Array) -> Any:
    leaves, treedef = jax.tree.flatten(like)
    out, start = [], 0
    for leaf in leaves:
        out.append(flat[start : start + leaf.size].reshape(leaf.shape))
        start += leaf.size
    return jax.tree.unflatten(treedef, out)


def layer_strata(params: Any) -> Any:
    """Every entry's layer index: one stratum per layer (`layer_groups`' order).

    **Arguments:**

    - `params`: a parameter pytree.

    **Returns:** an int32 pytree like `params`.
    """
    leaves, treedef = jax.tree.flatten(params)
    out: list[Any] = [None] * len(leaves)
    for layer, (_, ids) in enumerate(layer_groups(params)):
        for i in ids:
            out[i] = jnp.full(leaves[i].shape, layer, jnp.int32)
    return jax.tree.unflatten(treedef, out)


def magnitude_strata(params0: Any, *, bins: int = 10) -> Any:
    """An int pytree like `params0`: stratum `layer · bins + b`, with `b` the entry's |w₀|
    quantile bin within its layer (`bins` bins of equal count; ties by position).

    **Arguments:**

    - `params0`: the initial parameters.
    - `bins`: quantile bins per layer (an int >= 1; `ConfigError` otherwise).

    **Returns:** an int32 pytree like `params0`.
    """
    require(isinstance(bins, int) and bins >= 1, f"bins must be an int >= 1, got {bins}")
    leaves, treedef = jax.tree.flatten(params0)
    out: list[Any] = [None] * len(leaves)
    for layer, (_, ids) in enumerate(layer_groups(params0)):
        mags = jnp.concatenate([jnp.ravel(jnp.abs(leaves[i])) for i in ids])
        rank = (
            jnp.zeros(mags.size, jnp.int32)
            .at[jnp.argsort(mags, stable=True)]
            .set(jnp.arange(mags.size, dtype=jnp.int32))
        )
        b = (rank * bins) // max(mags.size, 1)  # int32: fine below 2³¹ / bins entries
        stratum = layer * bins + b
        start = 0
        for i in ids:
            out[i] = stratum[start : start + leaves[i].size].reshape(leaves[i].shape)
            start += leaves[i].size
    return jax.tree.unflatten(treedef, out)


def matched_order(strata: Any, *, key: PRNGKeyArray) -> Array:
    """A random order of all entries, stratum by stratum (uniform within each stratum).

    One sort serves every `select_matched` call with these strata and this key (pass it as
    `order=`), so many reference masks (several k, several scores) cost one sort.

    **Arguments:**

    - `strata`: an int pytree (`layer_strata`, `magnitude_strata`).
    - `key`: PRNG key of the order within strata (keyword-only).

    **Returns:** int `(P,)`, a permutation of the P flattened entries, sorted by stratum.
    """
    s = _flat(strata).astype(jnp.int32)
    return _order(s, key)


@jax.jit
def _order(s: Array, key: PRNGKeyArray) -> Array:
    return jnp.lexsort((jax.random.uniform(key, s.shape), s))


def select_matched(
    reference: Any,
    strata: Any,
    *,
    key: PRNGKeyArray,
    exclude_reference: bool = True,
    order: Array | None = None,
) -> Any:
    """A random mask with the same number of True entries as `reference` in every stratum.

    **Arguments:**

    - `reference`: a boolean pytree (e.g. the active set from `select_active`).
    - `strata`: an int pytree of the same structure (`layer_strata`, `magnitude_strata`).
    - `key`: the draw (ignored when `order` is given).
    - `exclude_reference`: draw only among entries outside `reference` (a control disjoint
      from it); else among all entries of the stratum.
    - `order`: `matched_order(strata, key=key)`, precomputed to reuse one sort.

    **Returns:** a boolean pytree like `reference`: per stratum, the first candidates of a
    uniformly random order of the stratum.

    **Raises:** `ConfigError` when a stratum has fewer candidates than the reference holds
    there (e.g. more than half of a layer active with `exclude_reference`).
    """
    ref = _flat(reference).astype(bool)
    s = _flat(strata).astype(jnp.int32)
    require(bool(jnp.all(s >= 0)), "strata must be non-negative integers")
    n_strata = int(jnp.max(s)) + 1
    cand = ~ref if exclude_reference else jnp.ones_like(ref)
    need, have = (np.asarray(a) for a in _needs(s, ref, cand, n_strata))
    short = np.nonzero(need > have)[0]
    if short.size:
        i = int(short[0])
        require(
            False,
            f"a matched control cannot be matched: stratum {i} needs {int(need[i])} entries but "
            f"has {int(have[i])} candidates: use a smaller k% (at most half of a layer when the "
            "control excludes the active set)",
        )
    o = _order(s, key) if order is None else order
    return _unflat(reference, _draw(s, cand, jnp.asarray(need, jnp.int32), o))


@functools.partial(jax.jit, static_argnums=3)
def _needs(s: Array, ref: Array, cand: Array, n: int) -> tuple[Array, Array]:
    return (jnp.bincount(s, weights=ref.astype(jnp.int32), length=n),
            jnp.bincount(s, weights=cand.astype(jnp.int32), length=n))  # fmt: skip


@jax.jit
def _draw(s: Array, cand: Array, need: Array, order: Array) -> Array:
    """Per stratum, the first `need` candidates in `order` (sorted by stratum): a cumulative
    count of candidates within each stratum, no sort."""
    cs, ss = cand[order], s[order]
    before = jnp.cumsum(cs) - cs  # candidates before each position (all strata)
    sizes = jnp.bincount(s, weights=cand.astype(jnp.int32), length=need.size)
    start = jnp.cumsum(sizes) - sizes  # candidates in the strata before this one
    pick = cs & (before - start[ss] < need[ss])
    return jnp.zeros_like(cand).at[order].set(pick)
