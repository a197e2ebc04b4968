"""A permutation test of conditional independence, X ⊥ Y | Z, for discrete labels.

Statistic: the Miller–Madow-corrected I(X; Y | Z) (`conditional_mutual_information_mm`).
Null: X shuffled within each stratum of Z, which keeps the joint law of (X, Z) and of (Y, Z)
and breaks any dependence of X on Y beyond Z. With B shuffles the p-value is
(1 + #{null ≥ observed}) / (1 + B) (valid at every B, resolution 1 / (1 + B)).

Nakkiran et al.'s "F_t is explained by L" is I(F_t; Y | L) ≈ 0: the test of X = F_t, Y = Y,
Z = L; "L is retained by F" is the test of X = L, Y = Y, Z = F.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jaxtyping import Array, Int, PRNGKeyArray

from ..errors import require
from ._information import _counts, conditional_mutual_information_mm


def _shuffle_within(x: Array, z: Array, key: PRNGKeyArray) -> Array:
    """`x` permuted uniformly within each stratum of `z`."""
    positions = jnp.lexsort((jnp.arange(z.size), z))  # stratum by stratum, stable
    random = jnp.lexsort((jax.random.uniform(key, z.shape), z))  # same strata, random order
    return jnp.zeros_like(x).at[positions].set(x[random])


@functools.partial(jax.jit, static_argnames=("sizes", "num_permutations"))
def _test(x, y, z, key, *, sizes, num_permutations):
    def stat(xx):
        return conditional_mutual_information_mm(_counts((xx, y, z), sizes))

    observed = stat(x)
    keys = jax.random.split(key, num_permutations)
    null = jax.lax.map(lambda k: stat(_shuffle_within(x, z, k)), keys)
    p = (1.0 + jnp.sum(null >= observed - 1e-9)) / (1.0 + num_permutations)
    return observed, p, jnp.mean(null)


def cmi_permutation_test(
    x: Int[Array, "*batch n"],
    y: Int[Array, " n"],
    z: Int[Array, " n"],
    *,
    num_values: int,
    num_permutations: int,
    key: PRNGKeyArray,
) -> dict[str, Array]:
    """Test X ⊥ Y | Z by shuffling X within the strata of Z.

    **Arguments:**

    - `x`: labels in `[0, num_values)`, shape `(n,)` or `(r, n)` (r tests of one `y`, `z`, e.g.
      the network's predictions at r records); `y`, `z`: labels, shape `(n,)`.
    - `num_values`: number of values of every variable (static).
    - `num_permutations`: shuffles B >= 1 (static); p-values are multiples of 1 / (1 + B).
    - `key`: the shuffles (the same key for every row of `x`).

    **Returns:** `statistic` (Miller–Madow I(X;Y|Z), bits), `p_value`, `null_mean` (the mean
    corrected statistic under the null), each of shape `x.shape[:-1]`.
    """
    require(
        isinstance(num_permutations, int) and num_permutations >= 1,
        f"num_permutations must be an int >= 1, got {num_permutations}: pass e.g. 999",
    )
    require(num_values >= 1, f"num_values must be >= 1, got {num_values}")
    x, y, z = (jnp.asarray(a).astype(jnp.int32) for a in (x, y, z))
    require(
        x.shape[-1] == y.shape[0] == z.shape[0],
        f"x, y, z need the same number of samples, got {x.shape[-1]}, {y.shape[0]}, {z.shape[0]}",
    )
    sizes = (num_values,) * 3
    fn = functools.partial(_test, sizes=sizes, num_permutations=num_permutations)
    if x.ndim == 1:
        obs, p, null = fn(x, y, z, key)
    else:
        obs, p, null = jax.lax.map(lambda row: fn(row, y, z, key), x)
    return {"statistic": obs, "p_value": p, "null_mean": null}
