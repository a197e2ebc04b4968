"""Empirical neural tangent kernel, our own: Jacobian contraction or NTK-vector products, chunked.

For a batched function `apply(params, x) -> (n, *o)` the empirical NTK is

`Θ(x, x')[c, d] = Σ_p ∂f_c(x)/∂θ_p · ∂f_d(x')/∂θ_p = J(x) J(x')ᵀ`.

Conventions match `neural_tangents.empirical_ntk_fn` exactly:

- `trace_axes` names output axes (of the full output `(n, *o)`, so `-1` is the logit axis; the
  batch axis 0 cannot be traced). A traced pair of axes is replaced by its **mean** over the
  diagonal (neural-tangents divides the trace by the size of the traced axes).
- With `trace_axes=()` the kernel has shape `(n1, n2, *o, *o)` with the output axes zipped as
  neural-tangents does: for `(n, k)` outputs this is `(n1, n2, k, k)`.

Three implementations, all from `jax.vjp` / `jax.linearize` under `vmap`:

- `"structured"` (models built from lazyrich's `Dense` layers: `MLP`, and `scaled(MLP)` with
  1/γ and centring; and per-example Equinox modules whose trainable arrays all sit in
  `eqx.nn.Linear` layers, such as `eqx.nn.MLP`): a dense layer `y = m·x Wᵀ + b_m·b` contributes
  `(m² x·x' + b_m²) (g_c·g'_d)` to `Θ[c, d]`, where `g_c = ∂f_c/∂y`. So the kernel is a sum over
  layers of (input Gram) ⊙ (output-gradient Gram): per-example Jacobians, `(n, k, P)`, are
  never formed. The `g_c` come from `k` VJPs of the batch through zero perturbations added to
  each layer's output (the model is rebuilt from `apply.model(params)` with its trainable
  `Dense` layers wrapped, so `apply` must be the `Apply` of `lazyrich.functional`). Memory is
  `O(n·k·width)` per layer instead of `O(n·k·P)`, and the contraction costs
  `n²(fan_in + k·fan_out)` per layer instead of `n²·k·fan_in·fan_out`.
- `"jacobian"`: per-example Jacobians `J (n, k, P)` by `vmap(vjp)` over the output basis, then
  one contraction per parameter leaf (a matrix product over `(k, P)` when tracing the logits).
- `"ntvp"`: NTK-vector products: the columns `J(x')ᵀ e_d` come from VJPs on `x2`, and are
  pushed through a single linearization of `apply` at `x1` (JVPs), giving `J(x1) J(x2)ᵀ e_d`.

`chunk_size` bounds memory: the kernel is assembled block by block over chunks of `x1` and
`x2` (each block one compiled call, the last chunk padded so nothing recompiles); with
`x2=None` only blocks on and above the diagonal are computed and the rest mirrored.

Blocks are compiled with `eqx.filter_jit` and keyed on structure: an `Apply` is a pytree, so a
fresh model of the same shapes (another seed, another γ) reuses the compiled program.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..errors import require
from . import _structured

ApplyFn = Callable[[Any, jax.Array], jax.Array]
METHODS = ("auto", "structured", "jacobian", "ntvp")


def _canonical_trace_axes(trace_axes: Sequence[int], out_ndim: int) -> tuple[int, ...]:
    """Output axes (1..out_ndim-1 of the full `(n, *o)` output) to trace, validated."""
    require(
        isinstance(trace_axes, (tuple, list)) and all(isinstance(a, int) for a in trace_axes),
        f"trace_axes must be a tuple of ints such as (-1,) or (), got {trace_axes!r}",
    )
    axes = tuple(trace_axes)
    canon = []
    for a in axes:
        require(
            -out_ndim <= a < out_ndim,
            f"trace axis {a} does not exist: the output has {out_ndim} axes "
            f"(batch + {out_ndim - 1}); pass trace_axes within -{out_ndim - 1}..{out_ndim - 1} "
            "or () for the full kernel",
        )
        c = a % out_ndim
        require(
            c != 0,
            f"trace axis {a} is the batch axis: trace only output axes, e.g. trace_axes=(-1,)",
        )
        canon.append(c)
    require(len(set(canon)) == len(canon), f"trace_axes {axes} repeats an axis: list each once")
    return tuple(sorted(canon))


def _check_inputs(x1: jax.Array, x2: jax.Array | None, chunk_size: int | None) -> None:
    require(getattr(x1, "ndim", 0) >= 1, "x1 must be a batch of inputs with a leading batch axis")
    if x2 is not None:
        require(
            getattr(x2, "ndim", 0) >= 1, "x2 must be a batch of inputs with a leading batch axis"
        )
        require(
            tuple(x1.shape[1:]) == tuple(x2.shape[1:]),
            f"x1 and x2 have mismatched input shapes {tuple(x1.shape[1:])} and "
            f"{tuple(x2.shape[1:])}: pass inputs of the same shape (batch axis first)",
        )
    if chunk_size is not None:
        require(
            isinstance(chunk_size, int) and not isinstance(chunk_size, bool) and chunk_size >= 1,
            f"chunk_size must be an integer >= 1 (or None for no chunking), got {chunk_size!r}",
        )


def _single_output(apply: ApplyFn, x: jax.Array) -> Callable[[Any], jax.Array]:
    """`params -> f(x)` flattened to `(k,)` for one example `x`."""
    return lambda p: apply(p, x[None])[0].reshape(-1)


def _jacobians(apply: ApplyFn, params: Any, x: jax.Array, k: int) -> Any:
    """Per-example Jacobians: a pytree like `params` with leaves `(n, k, P_leaf)`."""

    def one(xi):
        out, vjp = jax.vjp(_single_output(apply, xi), params)
        (jac,) = jax.vmap(vjp)(jnp.eye(k, dtype=out.dtype))
        return jax.tree.map(lambda leaf: leaf.reshape(k, -1), jac)

    return jax.vmap(one)(x)


def _contract(ja: Any, jb: Any, traced_all: bool, k: int) -> jax.Array:
    """Sum over parameter leaves of `J_a J_bᵀ`: `(na, nb)` (traced, mean) or `(na, nb, k, k)`."""
    leaves = zip(jax.tree.leaves(ja), jax.tree.leaves(jb), strict=True)
    if traced_all:
        terms = [a.reshape(a.shape[0], -1) @ b.reshape(b.shape[0], -1).T for a, b in leaves]
        return functools.reduce(jnp.add, terms) / k
    return functools.reduce(jnp.add, [jnp.einsum("icp,jdp->ijcd", a, b) for a, b in leaves])


def _block_jacobian(apply, params, xa, xb, k, traced_all, same):
    ja = _jacobians(apply, params, xa, k)
    jb = ja if same else _jacobians(apply, params, xb, k)
    return _contract(ja, jb, traced_all, k)


def _block_ntvp(apply, params, xa, xb, k, traced_all, same):
    del same
    na = xa.shape[0]

    def cols(xj):
        out, vjp = jax.vjp(_single_output(apply, xj), params)
        (t,) = jax.vmap(vjp)(jnp.eye(k, dtype=out.dtype))
        return t  # leaves (k, *leaf)

    tangents = jax.vmap(cols)(xb)  # leaves (nb, k, *leaf)
    _, jvp = jax.linearize(lambda p: apply(p, xa).reshape(na, k), params)
    out = jax.vmap(jax.vmap(jvp))(tangents)  # (nb, k_d, na, k_c)
    full = jnp.transpose(out, (2, 0, 3, 1))  # (na, nb, c, d)
    if traced_all:
        return jnp.trace(full, axis1=2, axis2=3) / k
    return full


_BLOCKS = {"structured": _structured.block, "jacobian": _block_jacobian, "ntvp": _block_ntvp}


@eqx.filter_jit
def _block(apply, params, xa, xb, k, traced_all, method, layers):
    """One block of the kernel (`xb=None`: the diagonal block of `xa` with itself).

    Jitted with `eqx.filter_jit`: `apply` (an `Apply` is a pytree of the model's frozen arrays)
    and `params` are traced, so another model of the same structure reuses the program; `k`,
    `traced_all`, `method` and `layers` are static.
    """
    same = xb is None
    block_fn = _BLOCKS[method]
    if method == "structured":
        block_fn = functools.partial(block_fn, layers=layers)
    return block_fn(apply, params, xa, xa if same else xb, k, traced_all, same)


def _pad(x: jax.Array, size: int) -> jax.Array:
    if x.shape[0] == size:
        return x
    fill = jnp.broadcast_to(x[:1], (size - x.shape[0], *x.shape[1:]))
    return jnp.concatenate([x, fill], axis=0)


def empirical_ntk(
    apply: ApplyFn,
    params: Any,
    x1: Float[Array, "n1 ..."],
    x2: Float[Array, "n2 ..."] | None = None,
    *,
    trace_axes: Sequence[int] = (-1,),
    method: str = "auto",
    chunk_size: int | None = None,
) -> Float[Array, "n1 n2 ..."]:
    """The empirical NTK `J(x1) J(x2)ᵀ` of `apply` at `params`.

    **Arguments:**

    - `apply`: `apply(params, x) -> (n, *o)`: the `Apply` from `lazyrich.functional(model)`
      (compiled once per model structure; `model` batched or per-example, e.g. `eqx.nn.MLP`
      or an `eqx.nn.Conv2d` stack, as `lazyrich.functional` describes), or any batched
      function (compiled once per function).
    - `params`: the trainable parameters (any pytree).
    - `x1`, `x2`: input batches with the same per-example shape; `x2=None` means `x2 = x1`
      (and only half the blocks are computed).
    - `trace_axes`: output axes to trace over (mean over the diagonal, as neural-tangents).
      `(-1,)` gives `(n1, n2)`; `()` gives the full `(n1, n2, k, k)`.
    - `method`: `"structured"` (per-layer Gram products; only for models whose trainable
      parameters all sit in lazyrich `Dense` layers, such as `MLP` and `scaled(MLP)`, or, for
      a per-example Equinox module, in `eqx.nn.Linear` layers, such as `eqx.nn.MLP`; and
      `apply` from `lazyrich.functional`, which takes any model as it is),
      `"jacobian"` (Jacobian contraction), `"ntvp"` (NTK-vector products) or `"auto"`
      (`"structured"` where it applies, else `"jacobian"`, the faster of the other two here).
    - `chunk_size`: examples per block (None: one block). Peak memory is that of one block:
      two chunks of per-example Jacobians (`"structured"`: of layer inputs and output
      gradients) plus the block of the kernel.

    **Returns:** the kernel, `(n1, n2)` when every output axis is traced, else
    `(n1, n2, *o_untraced, *o_untraced)` zipped as in neural-tangents.
    """
    require(method in METHODS, f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    _check_inputs(x1, x2, chunk_size)
    layers = None
    if method in ("auto", "structured"):
        layers, out = _structured.layout(apply, params, x1)
        if isinstance(layers, str):
            require(
                method == "auto",
                f"method='structured' cannot be used for this model: {layers}; "
                "use method='jacobian' (or 'auto', which falls back to it)",
            )
            method, layers = "jacobian", None
        else:
            method = "structured"
    else:
        out = jax.eval_shape(apply, params, x1[:1])
    same = x2 is None
    x2_ = x1 if same else x2
    out_shape = out.shape
    traced = _canonical_trace_axes(trace_axes, len(out_shape))
    o_shape = tuple(out_shape[1:])
    k = 1
    for s in o_shape:
        k *= s
    traced_all = len(traced) == len(o_shape)
    block = functools.partial(
        _block, apply, k=k, traced_all=traced_all, method=method, layers=layers
    )
    n1, n2 = x1.shape[0], x2_.shape[0]
    c = chunk_size or max(n1, n2)
    if same and c >= n1:
        kern = block(params, x1, None)
    elif c >= n1 and c >= n2:
        kern = block(params, x1, x2_)
    else:
        starts1 = list(range(0, n1, c))
        starts2 = list(range(0, n2, c))
        rows = []
        cache: dict[tuple[int, int], jax.Array] = {}
        for i, s1 in enumerate(starts1):
            xa = _pad(x1[s1 : s1 + c], c)
            row = []
            for j, s2 in enumerate(starts2):
                if same and j < i:
                    b = jnp.swapaxes(cache[(j, i)], 0, 1)
                    if not traced_all:
                        b = jnp.swapaxes(b, 2, 3)
                elif same and j == i:
                    b = block(params, xa, None)
                else:
                    b = block(params, xa, _pad(x2_[s2 : s2 + c], c))
                if same:
                    cache[(i, j)] = b
                row.append(b[: min(c, n1 - s1), : min(c, n2 - s2)])
            rows.append(jnp.concatenate(row, axis=1))
        kern = jnp.concatenate(rows, axis=0)
    if traced_all:
        return kern
    return _finish(kern, o_shape, traced)


def _finish(kern: jax.Array, o_shape: tuple[int, ...], traced: tuple[int, ...]) -> jax.Array:
    """`(n1, n2, k, k)` → trace (mean) the traced output axes, zip the rest like neural-tangents."""
    n1, n2 = kern.shape[:2]
    m = len(o_shape)
    kern = kern.reshape(n1, n2, *o_shape, *o_shape)
    size = 1
    # output axis a (1-based over the full output) is axis 1 + a of the first copy.
    for i, a in enumerate(reversed(traced)):
        ax1 = 1 + a
        ax2 = 2 + m + a - 1 - i
        size *= o_shape[a - 1]
        kern = jnp.trace(kern, axis1=ax1, axis2=ax2)
    rest = m - len(traced)
    # zip (n1, n2, a, b, ..., a', b', ...) -> (n1, n2, a, a', b, b', ...)
    order = [0, 1] + [ax for r in range(rest) for ax in (2 + r, 2 + rest + r)]
    return jnp.transpose(kern, order) / size


def ntk_vector_product(
    apply: ApplyFn,
    params: Any,
    x: Float[Array, "n ..."],
    v: Float[Array, "n k"],
) -> Float[Array, "n k"]:
    """`Θ v` for the full (untraced) NTK on `x`, without forming `Θ`: `J (Jᵀ v)`.

    One VJP (`Jᵀ v`, a parameter-shaped vector) and one JVP. Cost ≈ three forward passes.

    **Arguments:**

    - `apply`, `params`: as for `empirical_ntk`.
    - `x`: a batch of inputs `(n, ...)`.
    - `v`: a vector with the shape of `apply(params, x)`, e.g. `(n, k)`.

    **Returns:** `(Θ v)[i, c] = Σ_{j, d} Θ(x_i, x_j)[c, d] v[j, d]`, shaped like `v`.
    """
    require(getattr(x, "ndim", 0) >= 1, "x must be a batch of inputs with a leading batch axis")
    out_shape = jax.eval_shape(apply, params, x).shape
    require(
        tuple(v.shape) == tuple(out_shape),
        f"v has shape {tuple(v.shape)} but the outputs have shape {tuple(out_shape)}: "
        "pass v shaped like apply(params, x)",
    )
    return _ntvp(apply, params, x, v)


@eqx.filter_jit
def _ntvp(apply, params, x, v):
    f = lambda p: apply(p, x)  # noqa: E731
    _, vjp = jax.vjp(f, params)
    (t,) = vjp(v.astype(jax.eval_shape(f, params).dtype))
    _, out = jax.jvp(f, (params,), (t,))
    return out
