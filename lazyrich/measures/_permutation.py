"""A permutation test of conditional independence, X ⊥ Y | Z, for discrete labels.

Statistic: the Miller–Madow-corrected I(X; Y | Z) (`conditional_mutual_information_mm`).
Null: X shuffled within each stratum of Z, which keeps the joint law of (X, Z) and of (Y, Z)
and breaks any dependence of X on Y beyond Z. With B shuffles the p-value is
(1 + #{null ≥ observed}) / (1 + B) (valid at every B, resolution 1 / (1 + B)).

The statistic depends on the samples only through the count table of (X, Y, Z). Shuffling X
within a stratum of Z keeps that stratum's X-counts and Y-counts, and the table it gives is
drawn from the multivariate hypergeometric law with those margins. So the default `method="tables"`
draws the null tables directly (one conditional hypergeometric draw per cell and stratum, on the
host with NumPy). That is the same null distribution as the shuffles, at a cost that does not
grow with n. `method="shuffle"` draws explicit permutations (O(n log n) per shuffle) and is kept
as the reference the tables are tested against.

Nakkiran et al.'s "F_t is explained by L" is I(F_t; Y | L) ≈ 0: the test of X = F_t, Y = Y,
Z = L; "L is retained by F" is the test of X = L, Y = Y, Z = F.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
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


def null_tables(counts: np.ndarray, num_tables: int, rng: np.random.Generator) -> np.ndarray:
    """`num_tables` count tables (x, y, z) drawn as X shuffled within each stratum of Z would
    give them: per stratum the X- and Y-margins of `counts` are kept and the cells are drawn
    from the multivariate hypergeometric law, row by row and cell by cell (each a hypergeometric
    draw from what is left of the stratum's Y-counts).

    **Arguments:** `counts` of shape `(kx, ky, kz)` (integers); `num_tables`; `rng`.

    **Returns:** integer tables of shape `(num_tables, kx, ky, kz)`.
    """
    c = np.asarray(counts, dtype=np.int64)
    kx, ky, kz = c.shape
    rows = c.sum(1)  # (kx, kz): X-margins per stratum
    left = np.broadcast_to(c.sum(0).T, (num_tables, kz, ky)).copy()  # Y-counts not yet drawn
    out = np.zeros((num_tables, kx, ky, kz), dtype=np.int64)
    for i in range(kx - 1):
        need = np.broadcast_to(rows[i], (num_tables, kz)).copy()
        for j in range(ky - 1):
            rest = left[..., j + 1 :].sum(-1)
            nij = rng.hypergeometric(left[..., j], rest, need)
            out[:, i, j, :] = nij
            need -= nij
            left[..., j] -= nij
        out[:, i, ky - 1, :] = need
        left[..., ky - 1] -= need
    out[:, kx - 1, :, :] = np.transpose(left, (0, 2, 1))
    return out


_stat_tables = jax.jit(jax.vmap(conditional_mutual_information_mm))


def _test_tables(x, y, z, key, *, sizes, num_permutations):
    seed = np.asarray(jax.random.key_data(key)).ravel().astype(np.uint64)
    rng = np.random.default_rng([int(v) for v in seed])
    rows = x.reshape(-1, x.shape[-1])
    obs, ps, nulls = [], [], []
    for row in rows:
        counts = np.asarray(_counts((row, y, z), sizes))
        observed = float(conditional_mutual_information_mm(jnp.asarray(counts)))
        null = np.asarray(_stat_tables(jnp.asarray(null_tables(counts, num_permutations, rng))))
        obs.append(observed)
        ps.append((1.0 + np.sum(null >= observed - 1e-9)) / (1.0 + num_permutations))
        nulls.append(float(np.mean(null)))
    shape = x.shape[:-1]
    return tuple(jnp.asarray(np.reshape(v, shape), jnp.float32) for v in (obs, ps, nulls))


def cmi_permutation_test(
    x: Int[Array, "*batch n"],
    y: Int[Array, " n"],
    z: Int[Array, " n"],
    *,
    num_values: int,
    num_permutations: int,
    key: PRNGKeyArray,
    method: str = "tables",
) -> dict[str, Array]:
    """Test X ⊥ Y | Z by shuffling X within the strata of Z.

    **Arguments:**

    - `x`: labels in `[0, num_values)`, shape `(n,)` or `(r, n)` (r tests of one `y`, `z`, e.g.
      the network's predictions at r records); `y`, `z`: labels, shape `(n,)`.
    - `num_values`: number of values of every variable (static).
    - `num_permutations`: shuffles B >= 1 (static); p-values are multiples of 1 / (1 + B).
    - `key`: seeds the null draws (with `"shuffle"`, the same shuffles for every row of `x`;
      with `"tables"`, one stream of draws over the rows).
    - `method`: `"tables"` (default: null count tables drawn with the shuffles' margins, exact
      in law and independent of n; needs concrete arrays, not traced ones) or `"shuffle"`
      (explicit permutations, jittable, O(B·n log n)).

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
    require(
        method in ("tables", "shuffle"),
        f"method must be 'tables' or 'shuffle', got {method!r}",
    )
    sizes = (num_values,) * 3
    if method == "tables":
        obs, p, null = _test_tables(x, y, z, key, sizes=sizes, num_permutations=num_permutations)
        return {"statistic": obs, "p_value": p, "null_mean": null}
    fn = functools.partial(_test, sizes=sizes, num_permutations=num_permutations)
    if x.ndim == 1:
        obs, p, null = fn(x, y, z, key)
    else:
        obs, p, null = jax.lax.map(lambda row: fn(row, y, z, key), x)
    return {"statistic": obs, "p_value": p, "null_mean": null}
