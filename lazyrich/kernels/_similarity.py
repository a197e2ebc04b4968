"""Kernel and representation similarity measures (PAPERS.md §1–2).

All are scale-free: multiplying a kernel (or a feature matrix) by a positive constant leaves
them unchanged. Kernels may be `(n, n)` or full `(n, n, k, k)`; the Frobenius inner product is
taken over all entries.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from ..errors import require


def _frob_cos(a: Array, b: Array) -> Array:
    a = a.reshape(-1)
    b = b.reshape(-1)
    return jnp.vdot(a, b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b))


def kernel_distance(k0: Float[Array, "..."], kt: Float[Array, "..."]) -> Float[Array, ""]:
    """`1 − ⟨K0, Kt⟩_F / (‖K0‖_F ‖Kt‖_F)`: 0 for kernels equal up to a positive scale.

    **Arguments:** `k0`, `kt`: kernels of the same shape.

    **Returns:** a scalar in [0, 2].
    """
    require(
        k0.shape == kt.shape,
        f"kernels have mismatched shapes {k0.shape} and {kt.shape}: "
        "compare kernels on the same inputs",
    )
    return 1.0 - _frob_cos(k0, kt)


def kernel_alignment(k: Float[Array, "n n"], y: Float[Array, "n ..."]) -> Float[Array, ""]:
    """Kernel-target alignment `⟨K, yyᵀ⟩_F / (‖K‖_F ‖yyᵀ‖_F)` (Cristianini et al.).

    **Arguments:** `k`: an `(n, n)` kernel; `y`: targets `(n,)` or `(n, k)` (then `yyᵀ` sums
    over the outputs).

    **Returns:** a scalar in [−1, 1].
    """
    require(
        k.ndim == 2 and k.shape[0] == k.shape[1] == y.shape[0],
        f"kernel {k.shape} and targets {y.shape} do not match: pass an (n, n) kernel and n targets",
    )
    y2 = y.reshape(y.shape[0], -1)
    return _frob_cos(k, y2 @ y2.T)


def _centre(g: Array) -> Array:
    return g - g.mean(0, keepdims=True) - g.mean(1, keepdims=True) + g.mean()


def _check_features(x: Array, y: Array) -> None:
    require(
        x.ndim == 2 and y.ndim == 2 and x.shape[0] == y.shape[0],
        f"features {x.shape} and {y.shape} must be (n, p) and (n, q) on the same n examples",
    )


def linear_cka(x: Float[Array, "n p"], y: Float[Array, "n q"]) -> Float[Array, ""]:
    """Linear CKA (Kornblith et al. 2019): `HSIC(XXᵀ, YYᵀ)/sqrt(HSIC(X,X) HSIC(Y,Y))`.

    Computed from centred features: `‖YcᵀXc‖_F² / (‖XcᵀXc‖_F ‖YcᵀYc‖_F)`. Invariant to
    orthogonal transforms and isotropic scaling of either feature set.

    **Arguments:**

    - `x`: features `(n, p)` of n examples (e.g. a layer's activations).
    - `y`: features `(n, q)` of the same n examples.

    **Returns:** a scalar in [0, 1]; 1 when the feature sets agree up to an orthogonal map and
    a scale.

    **Raises:** `ConfigError` unless x and y are 2-D with the same number of rows.
    """
    _check_features(x, y)
    xc = x - x.mean(0)
    yc = y - y.mean(0)
    cross = jnp.sum((yc.T @ xc) ** 2)
    return cross / (jnp.linalg.norm(xc.T @ xc) * jnp.linalg.norm(yc.T @ yc))


def _hsic_unbiased(k: Array, l: Array) -> Array:  # noqa: E741
    """Unbiased HSIC estimator (Song et al. 2012) on Gram matrices."""
    n = k.shape[0]
    k = k - jnp.diag(jnp.diag(k))
    l = l - jnp.diag(jnp.diag(l))  # noqa: E741
    term1 = jnp.sum(k * l)
    term2 = k.sum() * l.sum() / ((n - 1) * (n - 2))
    term3 = 2.0 * jnp.sum(k.sum(0) * l.sum(0)) / (n - 2)
    return (term1 + term2 - term3) / (n * (n - 3))


def linear_cka_debiased(x: Float[Array, "n p"], y: Float[Array, "n q"]) -> Float[Array, ""]:
    """Debiased linear CKA: the unbiased HSIC estimator in place of the biased one.

    `HSIC_u(K, L)/sqrt(HSIC_u(K, K) HSIC_u(L, L))` with `K = XXᵀ`, `L = YYᵀ` (needs n ≥ 4).
    With K̃, L̃ the Gram matrices with zeroed diagonals (Song et al. 2012),
    `HSIC_u = [tr(K̃L̃) + 1ᵀK̃1·1ᵀL̃1/((n−1)(n−2)) − 2·1ᵀK̃L̃1/(n−2)] / (n(n−3))`.
    The features are not centred first (the estimator does not need it).

    **Arguments:**

    - `x`: features `(n, p)` of n examples.
    - `y`: features `(n, q)` of the same n examples.

    **Returns:** a scalar, close to `linear_cka` for large n; it can be slightly negative for
    unrelated features.

    **Raises:** `ConfigError` unless x and y are 2-D with the same n ≥ 4 rows.
    """
    _check_features(x, y)
    require(x.shape[0] >= 4, f"debiased CKA needs at least 4 examples, got {x.shape[0]}")
    k = x @ x.T
    l = y @ y.T  # noqa: E741
    return _hsic_unbiased(k, l) / jnp.sqrt(_hsic_unbiased(k, k) * _hsic_unbiased(l, l))


def ntk_probe_similarity(kv0: Float[Array, "..."], kvt: Float[Array, "..."]) -> Float[Array, ""]:
    """NTK similarity from probes (PAPERS.md §2): the cosine of `K0 v` and `Kt v`.

    **Arguments:** `kv0`, `kvt`: `ntk_vector_product` at init and at time t for the same probe
    `v` (or a stack of probes, compared as one flattened vector).

    **Returns:** a scalar in [−1, 1]; 1 when the kernel has not changed along `v`.
    """
    require(
        kv0.shape == kvt.shape,
        f"probe products have mismatched shapes {kv0.shape} and {kvt.shape}: use the same probe v",
    )
    return _frob_cos(kv0, kvt)
