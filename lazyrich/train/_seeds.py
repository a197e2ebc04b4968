"""Work that depends only on the seed: runs grouped by seed, and a model's seed-only leaves.

Every run of one seed sees the same batch at every step (the batch is drawn from the seed's
key), and, for a model built by a factory `make_model(key, hp)`, the same value of every leaf
that does not depend on the run's other hyperparameters (γ, η, ...): the frozen initial copy of
a centred network (`lazyrich.models.Frozen` inside `lazyrich.models.Scaled`), fixed random
matrices. The engine therefore lays the runs of a chunk out as `groups × runs per group`, each
group one seed, and runs a step as `vmap` over groups of `vmap` over the group's runs, with the
group's batch and seed-only leaves closed over by the inner function. JAX batches a value only
along the axes its inputs vary on, so:

- the batch and everything computed from it and the seed-only leaves alone (the frozen copy's
  outputs on the batch) are computed once per group, not once per run;
- a product of the shared batch with per-run weights (the first layer) becomes one matrix
  product over the group's runs, `x @ [W_1 … W_K]`, forward and backward.

Which leaves are seed-only is read from the factory itself, not assumed of a model: the
factory is traced once to a jaxpr and a leaf is seed-only when no equation on its path reads a
hyperparameter other than `seed` (`seed_only`). A shared model (one `eqx.Module` for every
run) is seed-only as a whole and needs no analysis.

The layout (`seed_layout`) is chosen on the host from the runs' seeds: one number of runs per
group `K` for every chunk (so every chunk has the same shapes and compiles once); a seed with
more runs in a chunk than `K` fills several groups; the last group of a seed and the last
groups of a chunk are padded by repeating runs of the same seed (their results are discarded).
`K` minimises `slots + groups` (a run's work plus one unit of shared work per group), with the
number of groups a multiple of the device count so that the group axis shards evenly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax
import jax.extend.core as jex
import numpy as np
from jaxtyping import Array, PRNGKeyArray


@dataclass(frozen=True)
class SeedLayout:
    """Where each run of each chunk sits in its chunk's `groups × per_group` slots.

    **Fields:**

    - `per_group`: runs per group, `K` (the same for every chunk).
    - `groups`: per chunk, `(G,)` the seed index (into the grid's sorted seeds) of each group.
    - `slots`: per chunk, `(G·K,)` the (global) run index in each slot, group-major.
    - `first`: per chunk, `(hi − lo,)` the slot that holds each of the chunk's runs.
    """

    per_group: int
    groups: tuple[np.ndarray, ...]
    slots: tuple[np.ndarray, ...]
    first: tuple[np.ndarray, ...]


def seed_layout(
    seed_index: np.ndarray, bounds: list[tuple[int, int]], devices: int = 1
) -> SeedLayout:
    """Group each chunk's runs by seed (see the module docstring).

    **Arguments:**

    - `seed_index`: `(n_runs,)` each run's seed, as an index into the sorted seeds.
    - `bounds`: the chunks, `(lo, hi)` run ranges.
    - `devices`: the number of groups is a multiple of this.

    **Returns:** a `SeedLayout`.
    """
    runs_of = []  # per chunk: {seed: [run, ...]} in run order
    for lo, hi in bounds:
        by_seed: dict[int, list[int]] = {}
        for r in range(lo, hi):
            by_seed.setdefault(int(seed_index[r]), []).append(r)
        runs_of.append(by_seed)
    counts = [np.array([len(v) for v in c.values()]) for c in runs_of]
    best = None
    for k in range(1, int(max(c.max() for c in counts)) + 1):
        g = max(int(np.sum(-(-c // k))) for c in counts)
        g = -(-g // devices) * devices
        cost = g * k + g
        if best is None or cost <= best[0]:  # ties: the larger K
            best = (cost, k, g)
    assert best is not None
    _, k, g = best
    groups, slots, first = [], [], []
    for (lo, hi), by_seed in zip(bounds, runs_of, strict=True):
        seeds, members = [], []
        for s, rs in by_seed.items():
            for j in range(0, len(rs), k):
                part = rs[j : j + k]
                seeds.append(s)
                members.append([part[i % len(part)] for i in range(k)])
        n = len(seeds)
        seeds = [seeds[i % n] for i in range(g)]
        members = [members[i % n] for i in range(g)]
        flat = np.asarray(members, np.int64).reshape(-1)
        groups.append(np.asarray(seeds, np.int64))
        slots.append(flat)
        held, where = np.unique(flat, return_index=True)  # the first slot of each run
        assert held.tolist() == list(range(lo, hi))
        first.append(where.astype(np.int64))
    return SeedLayout(k, tuple(groups), tuple(slots), tuple(first))


def seed_only(
    make_model: Callable[[PRNGKeyArray, dict[str, Array]], Any],
    key: PRNGKeyArray,
    hp: dict[str, Array],
) -> Any:
    """Which leaves of `make_model(key, hp)` depend on the seed alone.

    `make_model` is traced to a jaxpr (shapes only, nothing is computed) and its equations are
    walked in order: an equation that reads a hyperparameter other than `seed`, or a value
    computed from one, makes all its outputs depend on it (conservative for equations with
    sub-jaxprs). An output that depends on none of them is a function of the key (the seed),
    `hp["seed"]` and constants only.

    **Arguments:**

    - `make_model`: the factory, `(key, hp) -> model`.
    - `key`: a PRNG key of the kind the engine passes (its value is not used).
    - `hp`: the run's hyperparameters (their values are not used).

    **Returns:** a pytree of bools with the model's structure: `True` at an array leaf that
    depends on the seed alone, `False` at the other leaves.
    """
    structure: list[Any] = []

    def arrays(key, hp):
        leaves, treedef = jax.tree.flatten(make_model(key, hp))
        structure[:] = [treedef, [eqx.is_array(leaf) for leaf in leaves]]
        return [leaf for leaf in leaves if eqx.is_array(leaf)]

    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), (key, hp))
    jaxpr = jax.make_jaxpr(arrays)(*abstract).jaxpr
    marks = jax.tree.leaves((False, {name: name != "seed" for name in hp}))
    depends = {v for v, m in zip(jaxpr.invars, marks, strict=True) if m}
    for eqn in jaxpr.eqns:
        if any(not isinstance(v, jex.Literal) and v in depends for v in eqn.invars):
            depends.update(eqn.outvars)
    outs = iter(not isinstance(v, jex.Literal) and v in depends for v in jaxpr.outvars)
    treedef, is_array = structure
    return jax.tree.unflatten(treedef, [a and not next(outs) for a in is_array])
