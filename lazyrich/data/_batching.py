"""Deterministic-by-seed minibatch indices for finite datasets, usable inside `lax.scan`.

Training on a finite set of `n` examples with batch size `b` runs epoch-shuffled passes: epoch
`e` visits `epoch_permutation(key, n, e)` in consecutive slices of `b`, dropping the last
`n mod b` indices of that permutation (different ones each epoch). Global step `t` is slice
`t mod (n // b)` of epoch `t // (n // b)`. Everything is a pure function of `(key, t)`, so the
same seed gives the same batches, any step can be recomputed on resume, and `t` may be traced.

Each call of `batch_indices` recomputes the epoch's permutation (a sort of `n` keys). For large
`n`, scan over an epoch with `epoch_batches` instead, which computes it once per epoch.

Online streams (a fresh batch every step) are in `lazyrich.data._synthetic.online_batch`.
"""

from __future__ import annotations

import jax
from jaxtyping import Array, Int, PRNGKeyArray

from ..errors import require


def num_batches(n: int, batch: int) -> int:
    """Batches per epoch, `n // batch` (the remainder is dropped).

    **Arguments:**

    - `n`: dataset size, a Python int `>= 1`.
    - `batch`: batch size, a Python int.

    **Returns:** the Python int `n // batch`.

    **Raises:** `ConfigError` unless `1 <= batch <= n`.
    """
    require(isinstance(n, int) and n >= 1, f"dataset size must be an int >= 1, got {n}")
    require(
        isinstance(batch, int) and batch >= 1,
        f"batch size must be an int >= 1, got {batch}: pass --batch 1 or more",
    )
    require(
        batch <= n, f"batch size {batch} exceeds the {n} training examples: pass --batch <= {n}"
    )
    return n // batch


def epoch_permutation(key: PRNGKeyArray, n: int, epoch: Int[Array, ""] | int) -> Int[Array, " n"]:
    """The order of the `n` examples in epoch `epoch`: `permutation(fold_in(key, epoch), n)`.

    **Arguments:**

    - `key`: PRNG key of the data order (the seed of the run).
    - `n`: dataset size (Python int).
    - `epoch`: epoch number, counting from 0 (traced or Python int).

    **Returns:** int array `(n,)`, a permutation of `0 … n-1`.
    """
    return jax.random.permutation(jax.random.fold_in(key, epoch), n)


def epoch_batches(
    key: PRNGKeyArray, n: int, batch: int, epoch: Int[Array, ""] | int
) -> Int[Array, "num_batches batch"]:
    """All batches of epoch `epoch`, shape `(n // batch, batch)`; row `i` is the batch of
    global step `epoch · (n // batch) + i` (the same indices `batch_indices` gives).

    **Arguments:**

    - `key`: PRNG key of the data order (the seed of the run).
    - `n`, `batch`: dataset size and batch size (Python ints, `1 <= batch <= n`).
    - `epoch`: epoch number, counting from 0 (traced or Python int).

    **Returns:** int array `(n // batch, batch)`; the last `n mod batch` indices of the
    epoch's permutation are dropped.

    **Raises:** `ConfigError` unless `1 <= batch <= n`.
    """
    nb = num_batches(n, batch)
    return epoch_permutation(key, n, epoch)[: nb * batch].reshape(nb, batch)


def batch_indices(
    key: PRNGKeyArray, n: int, batch: int, step: Int[Array, ""] | int
) -> Int[Array, " batch"]:
    """Indices of the batch for global step `step` (traced or Python int).

    **Arguments:**

    - `key`: PRNG key of the data order (the seed of the run).
    - `n`, `batch`: dataset size and batch size (Python ints, `1 <= batch <= n`).
    - `step`: global step, counting from 0 across epochs.

    **Returns:** int array of shape `(batch,)` with distinct indices in `0 … n-1`.
    """
    nb = num_batches(n, batch)
    epoch, i = step // nb, step % nb
    perm = epoch_permutation(key, n, epoch)
    return jax.lax.dynamic_slice_in_dim(perm, i * batch, batch)
