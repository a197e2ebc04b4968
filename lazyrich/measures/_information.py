"""Plug-in information measures for discrete variables (log base 2, bits).

Everything is computed from a joint count table, so the usual identities hold exactly (up to
rounding) for the plug-in estimate: with μ_Y(F; L) = I(F; Y) − I(F; Y | L),

- μ = I(L; Y) − I(L; Y | F) = I(F; L) − I(F; L | Y) (the co-information is symmetric),
- μ = H(F) + H(L) + H(Y) − H(F, L) − H(F, Y) − H(L, Y) + H(F, L, Y),
- μ ≤ min(I(F; Y), I(L; Y)), and μ can be negative (F = Y xor L gives −1 bit).

The plug-in estimate of I(X; Y) for independent X, Y is biased upwards by about
(|X| − 1)(|Y| − 1) / (2 n ln 2) bits for n samples; the plug-in functions apply no correction.
`entropy_mm` and `conditional_mutual_information_mm` add Miller–Madow's first-order correction
(m − 1) / (2 n ln 2) to every entropy (m: the number of non-empty cells), which removes that
bias to first order: for independent binary X, Y given a binary Z the plug-in I(X;Y|Z) is
biased by ≈ |Z|(|X|−1)(|Y|−1)/(2 n ln 2) bits, the corrected one by O(1/n²).

The table functions (`joint_counts`, `entropy`, `mutual_information`,
`conditional_mutual_information`) are jit-able; `num_values` must then be static.
The convenience functions (`mi`, `cmi`, `mu`, `i_ly_given_f`) validate their inputs first.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax.scipy.special import xlogy
from jaxtyping import Array, Float, Int

from ..errors import ConfigError

_LN2 = math.log(2.0)


def joint_counts(*variables: Int[Array, " n"], num_values: int | Sequence[int]) -> Array:
    """Joint count table of integer variables.

    **Arguments:**

    - `*variables`: k integer arrays of the same length n with values in `[0, num_values)`.
    - `num_values`: number of values of each variable (one int for all, or one per variable).
      Static under jit.

    **Returns:**

    An integer array of shape `num_values` (one axis per variable) whose entry
    `[v1, ..., vk]` counts the samples with those values. Out-of-range values are dropped.
    """
    if len(variables) == 0:
        raise ConfigError("joint_counts needs at least one variable: pass one or more label arrays")
    sizes = (
        (int(num_values),) * len(variables)
        if isinstance(num_values, int)
        else tuple(int(k) for k in num_values)
    )
    if len(sizes) != len(variables):
        raise ConfigError(
            f"num_values has {len(sizes)} entries for {len(variables)} variables: "
            "give one per variable"
        )
    return _counts(tuple(jnp.asarray(v) for v in variables), sizes)


@functools.partial(jax.jit, static_argnums=1)
def _counts(variables: tuple[Array, ...], sizes: tuple[int, ...]) -> Array:
    index = jnp.zeros(jnp.shape(variables[0]), dtype=jnp.int32)
    valid = jnp.ones(jnp.shape(variables[0]), dtype=bool)
    for v, k in zip(variables, sizes, strict=True):
        v = v.astype(jnp.int32)
        valid = valid & (v >= 0) & (v < k)
        index = index * k + v
    total = math.prod(sizes)
    index = jnp.where(valid, index, total)  # out of range → an overflow bin that is dropped
    counts = jnp.bincount(index.ravel(), length=total + 1)[:total]
    return counts.reshape(sizes)


@jax.jit
def entropy(p: Float[Array, "..."]) -> Float[Array, ""]:
    """Joint entropy in bits of a distribution or count table (normalised here), 0 log 0 = 0.

    `H = −Σ p log₂ p` over all entries, with `p = counts / Σ counts`.

    **Arguments:**

    - `p`: a table of non-negative counts or probabilities, any shape (one axis per
      variable); integer tables are cast to the default float dtype.

    **Returns:** a float scalar, in [0, log₂(p.size)].
    """
    p = jnp.asarray(p)
    if not jnp.issubdtype(p.dtype, jnp.floating):
        p = p.astype(jnp.result_type(float))  # float64 under x64, else float32
    p = p / jnp.sum(p)
    return -jnp.sum(xlogy(p, p)) / _LN2


@jax.jit
def mutual_information(counts_xy: Float[Array, "kx ky"]) -> Float[Array, ""]:
    """I(X; Y) in bits from a 2-D joint count (or probability) table, axes (x, y).

    I(X; Y) = H(X) + H(Y) − H(X, Y), the plug-in estimate (no Miller–Madow correction; see the
    module docstring for its bias).

    **Arguments:**

    - `counts_xy`: a `(kx, ky)` table of counts or probabilities.

    **Returns:** a float scalar ≥ 0 (up to rounding).
    """
    c = jnp.asarray(counts_xy)
    return entropy(c.sum(1)) + entropy(c.sum(0)) - entropy(c)


@jax.jit
def conditional_mutual_information(counts_xyz: Float[Array, "kx ky kz"]) -> Float[Array, ""]:
    """I(X; Y | Z) in bits from a 3-D joint count (or probability) table, axes (x, y, z).

    I(X; Y | Z) = H(X, Z) + H(Y, Z) − H(X, Y, Z) − H(Z).

    **Arguments:**

    - `counts_xyz`: a `(kx, ky, kz)` table of counts or probabilities.

    **Returns:** a float scalar ≥ 0 (up to rounding).
    """
    c = jnp.asarray(counts_xyz)
    return entropy(c.sum(1)) + entropy(c.sum(0)) - entropy(c) - entropy(c.sum((0, 1)))


def entropy_mm(counts: Float[Array, "..."]) -> Float[Array, ""]:
    """Miller–Madow entropy in bits of a count table: plug-in + (m − 1) / (2 n ln 2), with m the
    non-empty cells and n the total count (the table must hold counts, not probabilities).

    **Arguments:**

    - `counts`: a count table of any shape.

    **Returns:** a scalar, the bias-corrected entropy in bits.
    """
    c = jnp.asarray(counts)
    n = jnp.sum(c)
    m = jnp.sum(c > 0)
    return entropy(c) + (m - 1) / (2.0 * n * _LN2)


@jax.jit
def conditional_mutual_information_mm(counts_xyz: Float[Array, "kx ky kz"]) -> Float[Array, ""]:
    """Miller–Madow-corrected I(X; Y | Z) in bits from a 3-D count table, axes (x, y, z):
    H_mm(X, Z) + H_mm(Y, Z) − H_mm(X, Y, Z) − H_mm(Z). Can be slightly negative.

    **Arguments:**

    - `counts_xyz`: counts `(kx, ky, kz)`.

    **Returns:** a scalar in bits.
    """
    c = jnp.asarray(counts_xyz)
    return entropy_mm(c.sum(1)) + entropy_mm(c.sum(0)) - entropy_mm(c) - entropy_mm(c.sum((0, 1)))


# ---------------------------------------------------------------- convenience (validated)


def _check(named: dict[str, Array], num_values: int | None) -> tuple[list[Array], int]:
    arrays = []
    lengths = set()
    for name, v in named.items():
        a = jnp.asarray(v)
        if a.ndim != 1:
            raise ConfigError(
                f"{name} must be a 1-D array of class labels, got shape {a.shape}: "
                "pass hard labels, e.g. logits.argmax(-1)"
            )
        if not (jnp.issubdtype(a.dtype, jnp.integer) or a.dtype == jnp.bool_):
            raise ConfigError(
                f"{name} has dtype {a.dtype}, but labels must be integers: "
                "pass hard class labels (e.g. .argmax(-1) or .astype(int))"
            )
        lengths.add(a.shape[0])
        arrays.append(a.astype(jnp.int32))
    if len(lengths) != 1:
        sizes = ", ".join(f"{n}={jnp.shape(v)[0]}" for n, v in named.items())
        raise ConfigError(
            f"predictions and labels have different lengths ({sizes}): "
            "evaluate them on the same samples"
        )
    if lengths == {0}:
        raise ConfigError("no samples: pass non-empty prediction and label arrays")
    if not any(isinstance(a, jax.core.Tracer) for a in arrays):  # pyright: ignore[reportAttributeAccessIssue]
        low = min(int(a.min()) for a in arrays)
        high = max(int(a.max()) for a in arrays)
        if low < 0:
            raise ConfigError(f"labels must be >= 0, got {low}: map classes to 0..K-1")
        if num_values is None:
            num_values = high + 1
        elif high >= num_values:
            raise ConfigError(
                f"label {high} is out of range for num_values={num_values}: "
                f"pass num_values >= {high + 1}"
            )
    elif num_values is None:
        raise ConfigError("under jit, pass num_values (the number of classes) explicitly")
    return arrays, int(num_values)


def mi(f: Int[Array, " n"], y: Int[Array, " n"], *, num_values: int | None = None) -> Array:
    """Plug-in I(F; Y) in bits from paired hard labels (num_values defaults to max + 1).

    Biased upwards by about (K − 1)² / (2 n ln 2) bits when F and Y are independent
    (Miller–Madow; not corrected).

    **Arguments:**

    - `f`, `y`: integer (or bool) labels `(n,)` in `[0, num_values)`, paired by sample.
    - `num_values`: number of classes K (default: the largest label + 1; required under jit).

    **Returns:** a float scalar, I(F; Y) ≥ 0.

    **Raises:** `ConfigError` for arrays that are not 1-D integer labels of one length, empty,
    negative, or out of range for `num_values`.
    """
    (f, y), k = _check({"f": f, "y": y}, num_values)
    return mutual_information(joint_counts(f, y, num_values=k))


def cmi(
    f: Int[Array, " n"],
    y: Int[Array, " n"],
    given: Int[Array, " n"],
    *,
    num_values: int | None = None,
) -> Array:
    """Plug-in I(F; Y | given) in bits from paired hard labels.

    I(F; Y | Z) = H(F, Z) + H(Y, Z) − H(F, Y, Z) − H(Z), with Z = `given`.

    **Arguments:**

    - `f`, `y`, `given`: integer (or bool) labels `(n,)` in `[0, num_values)`, paired by
      sample.
    - `num_values`: number of classes K of all three (default: the largest label + 1;
      required under jit).

    **Returns:** a float scalar ≥ 0.

    **Raises:** `ConfigError` as `mi`.
    """
    (f, y, z), k = _check({"f": f, "y": y, "given": given}, num_values)
    return conditional_mutual_information(joint_counts(f, y, z, num_values=k))


def mu(
    f: Int[Array, " n"],
    l: Int[Array, " n"],  # noqa: E741
    y: Int[Array, " n"],
    *,
    num_values: int | None = None,
) -> Array:
    """μ_Y(F; L) = I(F; Y) − I(F; Y | L) in bits: how much of F's information about Y L explains.

    **Arguments:**

    - `f`: the network's hard predictions, `l`: the linear classifier's, `y`: the true labels.
    - `num_values`: number of classes K (default: the largest label + 1).

    **Returns:**

    A scalar; equal to the co-information I(F; L; Y), symmetric in F and L.
    """
    (f_, l_, y_), k = _check({"f": f, "l": l, "y": y}, num_values)
    c = joint_counts(f_, y_, l_, num_values=k)  # axes (F, Y, L)
    return mutual_information(c.sum(2)) - conditional_mutual_information(c)


def i_ly_given_f(
    l: Int[Array, " n"],  # noqa: E741
    y: Int[Array, " n"],
    f: Int[Array, " n"],
    *,
    num_values: int | None = None,
) -> Array:
    """I(L; Y | F) in bits: ≈ 0 when the linear classifier's information is retained by F.

    **Arguments:**

    - `l`: the linear classifier's hard predictions `(n,)`.
    - `y`: the true labels `(n,)`.
    - `f`: the network's hard predictions `(n,)`.
    - `num_values`: number of classes K (default: the largest label + 1; required under jit).

    **Returns:** a float scalar ≥ 0; `mu(f, l, y) = I(L; Y) − i_ly_given_f(l, y, f)`.

    **Raises:** `ConfigError` as `mi`.
    """
    (l_, y_, f_), k = _check({"l": l, "y": y, "f": f}, num_values)
    return conditional_mutual_information(joint_counts(l_, y_, f_, num_values=k))
