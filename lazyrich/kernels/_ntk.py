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
  1/γ and centring): a dense layer `y = m·x Wᵀ + b_m·b` contributes
  `(m² x·x' + b_m²) (g_c·g'_d)` to `Θ[c, d]`, where `g_c = ∂f_c/∂y`. So the kernel is a sum over
  layers of (input Gram) ⊙ (output-gradient Gram): per-example Jacobians, `(n, k, P)`, are
  never formed. The `g_c` come from `k` VJPs of the batch through zero perturbations added to
  each layer's output (a tap on `Dense`, active only while tracing this function). Memory is
  `O(n·k·width)` per layer instead of `O(n·k·P)`, and the contraction costs
  `n²(fan_in + k·fan_out)` per layer instead of `n²·k·fan_in·fan_out`.
- `"jacobian"`: per-example Jacobians `J (n, k, P)` by `vmap(vjp)` over the output basis, then
  one contraction per parameter leaf (a matrix product over `(k, P)` when tracing the logits).
- `"ntvp"`: NTK-vector products: the columns `J(x')ᵀ e_d` come from VJPs on `x2`, and are
  pushed through a single linearization of `apply` at `x1` (JVPs), giving `J(x1) J(x2)ᵀ e_d`.

`chunk_size` bounds memory: the kernel is assembled block by block over chunks of `x1` and
`x2` (each block one compiled call, the last chunk padded so nothing recompiles); with
`x2=None` only blocks on and above the diagonal are computed and the rest mirrored.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..errors import require
from ..models import _dense

Apply = Callable[[Any, jax.Array], jax.Array]
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


def _single_output(apply: Apply, x: jax.Array) -> Callable[[Any], jax.Array]:
    """`params -> f(x)` flattened to `(k,)` for one example `x`."""
    return lambda p: apply(p, x[None])[0].reshape(-1)


def _jacobians(apply: Apply, params: Any, x: jax.Array, k: int) -> Any:
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
        total = sum(a.reshape(a.shape[0], -1) @ b.reshape(b.shape[0], -1).T for a, b in leaves)
        return total / k
    return sum(jnp.einsum("icp,jdp->ijcd", a, b) for a, b in leaves)


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


class _Layer(NamedTuple):
    """A trainable `Dense` call, as the structured kernel needs it (static)."""

    w_mult: float
    b_mult: float | None  # None: no trainable bias
    fan_out: int
    dtype: str


@contextlib.contextmanager
def _tapping(tap: Callable) -> Iterator[None]:
    _dense.TAPS.append(tap)
    try:
        yield
    finally:
        _dense.TAPS.pop()


def _dense_layout(apply: Apply, params: Any, x: jax.Array) -> tuple[_Layer, ...] | str:
    """The trainable `Dense` calls of `apply`, in call order; or why `"structured"` cannot be
    used (a parameter outside a Dense layer, a layer called twice, non-matrix inputs)."""
    layers: list[_Layer] = []
    problems: list[str] = []

    def probe(p, xx):
        ids = {id(leaf) for leaf in jax.tree.leaves(p)}
        seen: set[int] = set()

        def tap(layer, xin, y):
            if id(layer.weight) not in ids:
                return y  # a frozen layer (e.g. the centring copy of the initial network)
            if id(layer.weight) in seen:
                problems.append("a Dense layer is called more than once (shared weights)")
            if xin.ndim != 2:
                problems.append(f"a Dense layer gets {xin.ndim}-d inputs, not (batch, features)")
            seen.add(id(layer.weight))
            bias = layer.bias is not None and id(layer.bias) in ids
            if bias:
                seen.add(id(layer.bias))
            layers.append(
                _Layer(
                    float(layer.w_mult),
                    float(layer.b_mult) if bias else None,
                    int(y.shape[-1]),
                    jnp.dtype(y.dtype).name,
                )
            )
            return y

        with _tapping(tap):
            out = apply(p, xx)
        if ids - seen:
            problems.append(
                f"{len(ids - seen)} trainable array(s) are not weights or biases of lazyrich "
                "Dense layers"
            )
        return out

    jax.eval_shape(probe, params, x)
    if problems:
        return "; ".join(dict.fromkeys(problems))
    if not layers:
        return "the model has no trainable Dense layers"
    return tuple(layers)


def _dense_features(apply, params, x, k, layout):
    """Per trainable Dense layer: its inputs `(n, fan_in)` and the output gradients
    `g[c, i] = ∂f_c(x_i)/∂y_i`, `(k, n, fan_out)`, from k VJPs of the batch."""
    n = x.shape[0]

    def perturbed(deltas):
        ids = {id(leaf) for leaf in jax.tree.leaves(params)}
        inputs = []

        def tap(layer, xin, y):
            if id(layer.weight) not in ids:
                return y
            inputs.append(xin)
            return y + deltas[len(inputs) - 1]

        with _tapping(tap):
            out = apply(params, x)
        return out.reshape(n, k), inputs

    zeros = [jnp.zeros((n, lay.fan_out), lay.dtype) for lay in layout]
    out, vjp, inputs = jax.vjp(perturbed, zeros, has_aux=True)
    # examples are independent, so the cotangent e_c on every example gives each example's own
    # gradient of its c-th output
    basis = jnp.broadcast_to(jnp.eye(k, dtype=out.dtype)[:, None, :], (k, n, k))
    (grads,) = jax.vmap(vjp)(basis)
    return inputs, grads


def _block_structured(apply, params, xa, xb, k, traced_all, same, layout):
    xs_a, gs_a = _dense_features(apply, params, xa, k, layout)
    xs_b, gs_b = (xs_a, gs_a) if same else _dense_features(apply, params, xb, k, layout)
    total = 0.0
    for lay, x_a, x_b, g_a, g_b in zip(layout, xs_a, xs_b, gs_a, gs_b, strict=True):
        inputs = lay.w_mult**2 * (x_a @ x_b.T)
        if lay.b_mult is not None:
            inputs = inputs + lay.b_mult**2
        if traced_all:
            total = total + inputs * jnp.einsum("cif,cjf->ij", g_a, g_b)
        else:
            total = total + inputs[:, :, None, None] * jnp.einsum("cif,djf->ijcd", g_a, g_b)
    return total / k if traced_all else total


@functools.lru_cache(maxsize=16)
def _compiled(apply: Apply, k: int, traced_all: bool, method: str, layout=None):
    """Jitted block functions, cached per `apply` so repeated calls do not recompile."""
    if method == "structured":
        block_fn = functools.partial(_block_structured, layout=layout)
    else:
        block_fn = _block_ntvp if method == "ntvp" else _block_jacobian

    @jax.jit
    def block(params, xa, xb):
        return block_fn(apply, params, xa, xb, k, traced_all, False)

    @jax.jit
    def diag_block(params, xa):
        return block_fn(apply, params, xa, xa, k, traced_all, True)

    return block, diag_block


def _structured_layout(apply: Apply, params: Any, x: jax.Array) -> tuple[_Layer, ...] | str:
    """`_dense_layout`, cached per `apply` and parameter/input structure (it traces `apply`)."""
    leaves, treedef = jax.tree.flatten(params)
    shapes = tuple((tuple(leaf.shape), jnp.dtype(leaf.dtype).name) for leaf in leaves)
    return _layout_cached(apply, treedef, shapes, tuple(x.shape[1:]), jnp.dtype(x.dtype).name)


@functools.lru_cache(maxsize=64)
def _layout_cached(apply, treedef, shapes, x_shape, x_dtype):
    params = jax.tree.unflatten(treedef, [jax.ShapeDtypeStruct(s, d) for s, d in shapes])
    return _dense_layout(apply, params, jax.ShapeDtypeStruct((1, *x_shape), x_dtype))


def _pad(x: jax.Array, size: int) -> jax.Array:
    if x.shape[0] == size:
        return x
    fill = jnp.broadcast_to(x[:1], (size - x.shape[0], *x.shape[1:]))
    return jnp.concatenate([x, fill], axis=0)


def empirical_ntk(
    apply: Apply,
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

    - `apply`: `apply(params, x) -> (n, *o)`, e.g. from `lazyrich.functional(model)`.
    - `params`: the trainable parameters (any pytree).
    - `x1`, `x2`: input batches with the same per-example shape; `x2=None` means `x2 = x1`
      (and only half the blocks are computed).
    - `trace_axes`: output axes to trace over (mean over the diagonal, as neural-tangents).
      `(-1,)` gives `(n1, n2)`; `()` gives the full `(n1, n2, k, k)`.
    - `method`: `"structured"` (per-layer Gram products; only for models whose trainable
      parameters all sit in lazyrich `Dense` layers, such as `MLP` and `scaled(MLP)`),
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
    layout = None
    if method in ("auto", "structured"):
        layout = _structured_layout(apply, params, x1)
        if isinstance(layout, str):
            require(
                method == "auto",
                f"method='structured' cannot be used for this model: {layout}; "
                "use method='jacobian' (or 'auto', which falls back to it)",
            )
            method, layout = "jacobian", None
        else:
            method = "structured"
    same = x2 is None
    x2_ = x1 if same else x2
    out_shape = jax.eval_shape(apply, params, x1[:1]).shape
    traced = _canonical_trace_axes(trace_axes, len(out_shape))
    o_shape = tuple(out_shape[1:])
    k = 1
    for s in o_shape:
        k *= s
    traced_all = len(traced) == len(o_shape)
    block, diag_block = _compiled(apply, k, traced_all, method, layout)
    n1, n2 = x1.shape[0], x2_.shape[0]
    c = chunk_size or max(n1, n2)
    if same and c >= n1:
        kern = diag_block(params, x1)
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
                    b = diag_block(params, xa)
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
    apply: Apply,
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


@functools.partial(jax.jit, static_argnums=0)
def _ntvp(apply, params, x, v):
    f = lambda p: apply(p, x)  # noqa: E731
    _, vjp = jax.vjp(f, params)
    (t,) = vjp(v.astype(jax.eval_shape(f, params).dtype))
    _, out = jax.jvp(f, (params,), (t,))
    return out
