"""The structured empirical NTK: a sum over `Dense` layers of (input Gram) ⊙ (output-gradient Gram).

A dense layer `y = m·x Wᵀ + b_m·b` contributes `(m² x·x' + b_m²) (g_c·g'_d)` to `Θ[c, d]`, where
`g_c = ∂f_c/∂y`. Per-example Jacobians `(n, k, P)` are never formed: the `g_c` are the
cotangents of zero perturbations `δ` added to each layer's output, from `k` VJPs of the batch.

The layers are reached without any global state: the model is rebuilt from an `Apply`
(`apply.model(params)`) and each trainable `Dense` is swapped, with `eqx.tree_at`, for a
`TappedDense` that holds the layer, its output perturbation `δ` and a callback recording its
input. Which `Dense` layers are trainable is read off `apply.rest` (there the trainable weight
is `None`); the frozen copies (`Frozen`, e.g. the centring copy of the initial network) are
never tapped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..models import Apply, Dense, Frozen

Record = Callable[[jax.Array, jax.Array], None]


class TappedDense(eqx.Module):
    """A `Dense` layer with a tap: returns `layer(x) + delta` and calls `record(x, y)`.

    **Arguments:**

    - `layer`: the wrapped `Dense`.
    - `delta`: added to the output (`None`: nothing added); the structured NTK differentiates
      with respect to it to get `∂f/∂y`.
    - `record`: called with the layer's input and output on every call (`None`: not called).
    """

    layer: Dense
    delta: Float[Array, "n out"] | None = None
    record: Record | None = eqx.field(static=True, default=None)

    def __call__(self, x: Float[Array, "n fan_in"]) -> Float[Array, "n out"]:
        y = self.layer(x)
        if self.record is not None:
            self.record(x, y)
        return y if self.delta is None else y + self.delta


class Layer(NamedTuple):
    """A trainable `Dense` layer, as the structured kernel needs it (static)."""

    w_mult: float
    b_mult: float | None  # None: no trainable bias
    fan_out: int
    dtype: str


def _is_node(x: Any) -> bool:
    return isinstance(x, (Dense, Frozen))


def _dense_pairs(tree: Any, rest: Any) -> list[tuple[Dense, Dense]]:
    """`(layer, its rest)` for the trainable `Dense` nodes of `tree` (shaped like
    `apply.model(params)`), in tree order: those whose weight is `None` in `rest`. Nothing
    inside a `Frozen` is visited."""
    treedef = jax.tree.structure(tree, is_leaf=_is_node)
    pairs = zip(treedef.flatten_up_to(tree), treedef.flatten_up_to(rest), strict=True)
    return [
        (n, r)
        for n, r in pairs
        if isinstance(n, Dense) and isinstance(r, Dense) and r.weight is None
    ]


def _trainable_dense(tree: Any, rest: Any) -> tuple[Dense, ...]:
    return tuple(n for n, _ in _dense_pairs(tree, rest))


def tapped(apply: Apply, params: Any, make: Callable[[int, Dense], Any]) -> Any:
    """`apply.model(params)` with its `i`-th trainable `Dense` (tree order) replaced by
    `make(i, layer)`."""
    model = apply.model(params)
    layers = _trainable_dense(model, apply.rest)
    if not layers:
        return model
    return eqx.tree_at(
        lambda m: _trainable_dense(m, apply.rest),
        model,
        replace=tuple(make(i, layer) for i, layer in enumerate(layers)),
    )


def layout(apply: Any, params: Any, x: jax.Array) -> tuple[tuple[Layer, ...] | str, Any]:
    """`(layers, out)`: the trainable `Dense` layers of `apply` in tree order (or, as a string,
    why the structured kernel cannot be used: not an `Apply`, a parameter outside a Dense
    layer, a layer called twice or never, non-matrix inputs), and the output's shape/dtype."""
    if not isinstance(apply, Apply):
        why = "apply is a plain function: pass the apply returned by lazyrich.functional(model)"
        return why, jax.eval_shape(apply, params, x)
    pairs = _dense_pairs(apply.model(params), apply.rest)
    bias = [n.bias is not None and r.bias is None for n, r in pairs]
    calls: dict[int, list[tuple[int, str]]] = {}

    def probe(p, xx):
        def make(i, layer):
            calls[i] = []
            return TappedDense(layer, None, lambda a, y: calls[i].append((a.ndim, y.dtype.name)))

        return tapped(apply, p, make)(xx)

    out = jax.eval_shape(probe, params, x)
    problems = []
    layers = []
    for i, (n, _) in enumerate(pairs):
        seen = calls.get(i, [])
        if len(seen) > 1:
            problems.append("a Dense layer is called more than once (shared weights)")
        if not seen:
            problems.append("a trainable Dense layer is never called")
        if any(nd != 2 for nd, _ in seen):
            problems.append("a Dense layer gets inputs that are not (batch, features)")
        dtype = seen[0][1] if seen else "float32"
        layers.append(
            Layer(float(n.w_mult), float(n.b_mult) if bias[i] else None, n.weight.shape[0], dtype)
        )
    covered = len(layers) + sum(bias)
    outside = len(jax.tree.leaves(params)) - covered
    if outside > 0:
        problems.append(
            f"{outside} trainable array(s) are not weights or biases of lazyrich Dense layers"
        )
    if problems:
        return "; ".join(dict.fromkeys(problems)), out
    if not layers:
        return "the model has no trainable Dense layers", out
    return tuple(layers), out


def _features(apply: Apply, params: Any, x: jax.Array, k: int, layers: tuple[Layer, ...]):
    """Per trainable Dense layer: its inputs `(n, fan_in)` and the output gradients
    `g[i, c] = ∂f_c(x_i)/∂y_i`, `(n, k, fan_out)`, from k VJPs of the batch."""
    n = x.shape[0]

    def perturbed(deltas):
        inputs: dict[int, jax.Array] = {}

        def make(i, layer):
            return TappedDense(layer, deltas[i], lambda a, y: inputs.__setitem__(i, a))

        out = tapped(apply, params, make)(x)
        return out.reshape(n, k), [inputs[i] for i in range(len(deltas))]

    zeros = [jnp.zeros((n, lay.fan_out), lay.dtype) for lay in layers]
    out, vjp, inputs = jax.vjp(perturbed, zeros, has_aux=True)
    # examples are independent, so the cotangent e_c on every example gives each example's own
    # gradient of its c-th output. The k VJPs are batched along axis 1, so that each layer's
    # gradients come out as (n, k, fan_out): one (n, k·fan_out) matrix whose Gram is a single
    # matmul. (Batched along axis 0, XLA copied each into two transposed layouts for the Gram.)
    basis = jnp.broadcast_to(jnp.eye(k, dtype=out.dtype)[None], (n, k, k))
    (grads,) = jax.vmap(vjp, in_axes=1, out_axes=1)(basis)
    return inputs, grads


def block(apply, params, xa, xb, k, traced_all, same, layers):
    """One block of the kernel, `(na, nb)` (traced, mean) or `(na, nb, k, k)`."""
    xs_a, gs_a = _features(apply, params, xa, k, layers)
    xs_b, gs_b = (xs_a, gs_a) if same else _features(apply, params, xb, k, layers)
    total = 0.0
    for lay, x_a, x_b, g_a, g_b in zip(layers, xs_a, xs_b, gs_a, gs_b, strict=True):
        inputs = lay.w_mult**2 * (x_a @ x_b.T)
        if lay.b_mult is not None:
            inputs = inputs + lay.b_mult**2
        if traced_all:
            # Σ_c g_a[i, c]·g_b[j, c]: one (na, k·fan_out) @ (k·fan_out, nb) product
            flat_a = g_a.reshape(g_a.shape[0], -1)
            flat_b = flat_a if same else g_b.reshape(g_b.shape[0], -1)
            total = total + inputs * (flat_a @ flat_b.T)
        else:
            total = total + inputs[:, :, None, None] * jnp.einsum("icf,jdf->ijcd", g_a, g_b)
    return total / k if traced_all else total
