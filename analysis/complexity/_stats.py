"""T0 by a practical margin, its permutation test, T_L, and the per-run bootstrap of the
complexity study.

None of these is a verdict: the claims' intervals run over runs (`claims`).

- The records T0 looks at: I(F_t;Y) ≥ t0_floor / (n ln 2) bits, where the ratio
  I(F_t;Y|L) / I(F_t;Y) is resolved (1/(n ln 2) is the plug-in noise scale of I(F_t;Y|L) for
  binary variables at n test points). The paper (PAPERS.md §5) defines T0 as where the curves
  part and gives no floor; the old floor I(F_t;Y) ≥ 0.5·I(L;Y) was not from it, and T0 sat on
  it in every run of the old evidence.
- T0 (`t0_by_margin`): the first such record where the Miller–Madow I(F_t;Y|L) exceeds
  margin · I(F_t;Y), i.e. L explains less than 1 − margin of F_t's information.
- T0_significance (reported, not used): at the same records, the Miller–Madow I(F_t;Y|L)
  against F_t shuffled within each L-stratum (`lazyrich.measures.cmi_permutation_test`);
  family-wise level alpha by Bonferroni over the m records (reject when p ≤ alpha/m; the
  shuffles are raised to ceil(m/alpha) so that this is reachable); the first rejecting record.
- T_L: the first record where F_t's test accuracy ≥ L's.
- Bootstrap: the test points resampled with replacement (the same resample for every record
  of a run), giving per replicate the pre-T0 ratio Σμ / ΣI(F_t;Y) over the records before
  T0 with I(F_t;Y) > 0 (tested or below the test's information floor) and the retention
  μ_final / I(L;Y): a per-run 5–95% range, reported beside the claims.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from lazyrich.measures import (
    cmi_permutation_test,
    conditional_mutual_information,
    joint_counts,
    mutual_information,
)


def info_floor(n: int, floor: float) -> float:
    """`floor / (n ln 2)` bits: `floor` times the plug-in noise scale of a binary I(F;Y|L)."""
    return floor / (n * math.log(2))


def tested_records(i_fy: np.ndarray, n: int, floor: float) -> np.ndarray:
    """Indices of the records T0 looks at: I(F;Y) ≥ info_floor(n, floor) and > 0."""
    return np.nonzero((i_fy >= info_floor(n, floor)) & (i_fy > 0))[0]


def t0_by_margin(cmi_mm: np.ndarray, i_fy: np.ndarray, tested: np.ndarray,
                 margin: float) -> int | None:  # fmt: skip
    """T0: the first `tested` record with I(F;Y|L) (Miller–Madow) > margin · I(F;Y), or None."""
    hits = [int(i) for i in tested if cmi_mm[i] > margin * i_fy[i]]
    return hits[0] if hits else None


def records_before(i_fy: np.ndarray, t0: int | None) -> np.ndarray:
    """Indices of the records before T0 (every record when T0 never comes) where F_t has
    information (I(F;Y) > 0), tested by the T0 test or not: where claim 1 is measured."""
    end = len(i_fy) if t0 is None else t0
    return np.nonzero(i_fy[:end] > 0)[0]


def t0_test(preds: np.ndarray, l_test: Array, y: Array, tested: np.ndarray, *, alpha: float,
            permutations: int, key) -> dict:  # fmt: skip
    """The permutation test of I(F_t;Y|L) = 0 at the `tested` records; T0's record index."""
    m = max(len(tested), 1)
    b = max(permutations, math.ceil(m / alpha))
    p = np.full(len(preds), np.nan)
    stat = np.full(len(preds), np.nan)
    if len(tested):
        out = cmi_permutation_test(jnp.asarray(preds[tested]), y, l_test, num_values=2,
                                   num_permutations=b, key=key)  # fmt: skip
        p[tested] = np.asarray(out["p_value"])
        stat[tested] = np.asarray(out["statistic"])
    level = alpha / m
    hits = np.nonzero(p <= level)[0]
    return {"p": p, "cmi_mm": stat, "level": level, "permutations": b,
            "t0": int(hits[0]) if hits.size else None}  # fmt: skip


def first_reaching(acc: np.ndarray, target: float) -> int | None:
    """Index of the first record with accuracy ≥ target, or None."""
    hits = np.nonzero(acc >= target)[0]
    return int(hits[0]) if hits.size else None


@jax.jit
def _info_rows(f: Array, l: Array, y: Array) -> tuple[Array, Array]:  # noqa: E741
    """Per row of f (records): (I(F;Y), μ) and I(L;Y), plug-in, for one resample."""

    def one(fr):
        c = joint_counts(fr, y, l, num_values=2)
        i_fy = mutual_information(c.sum(2))
        return jnp.stack([i_fy, i_fy - conditional_mutual_information(c)])

    return jax.vmap(one)(f), mutual_information(joint_counts(l, y, num_values=2))


def bootstrap(preds: np.ndarray, l_test: Array, y: Array, before_t0: np.ndarray, *,
              resamples: int, key) -> dict[str, np.ndarray]:  # fmt: skip
    """Per resample: `ratio` Σμ/ΣI(F;Y) over the records `before_t0` (NaN if none) and
    `retention` μ_final / I(L;Y)."""
    n = y.shape[0]
    keep = np.unique(np.concatenate([before_t0, [len(preds) - 1]])).astype(int)
    f = jnp.asarray(preds[keep])
    ratio, retention = np.full(resamples, np.nan), np.full(resamples, np.nan)
    pos = np.searchsorted(keep, before_t0)
    for b in range(resamples):
        idx = jax.random.randint(jax.random.fold_in(key, b), (n,), 0, n)
        rows, i_ly = _info_rows(f[:, idx], l_test[idx], y[idx])
        rows = np.asarray(rows)
        if len(before_t0):
            ratio[b] = rows[pos, 1].sum() / max(rows[pos, 0].sum(), 1e-12)
        retention[b] = rows[-1, 1] / max(float(i_ly), 1e-12)
    return {"ratio": ratio, "retention": retention}
