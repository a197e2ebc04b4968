"""The structured empirical NTK: a sum over dense layers of (input Gram) ⊙ (output-gradient Gram).

A dense layer `y = m·x Wᵀ + b_m·b` contributes `(m² x·x' + b_m²) (g_c·g'_d)` to `Θ[c, d]`, where
`g_c = ∂f_c/∂y`. Per-example Jacobians `(n, k, P)` are never formed: the `g_c` are the
cotangents of zero perturbations `δ` added to each layer's output, from `k` VJPs of the batch.

Two kinds of model have known layers:

- **batched** models built from lazyrich's `Dense` (`MLP`, `scaled(MLP)` with 1/γ and centring):
  each trainable `Dense` sees the whole batch `(n, fan_in)`;
- **per-example** Equinox modules whose trainable arrays all sit in `eqx.nn.Linear` layers
  (`eqx.nn.MLP`, a user's stack of Linears with any activations): `y = W x + b` (m = b_m = 1),
  each layer called on one example. The model is run under our own `jax.vmap` over the batch,
  with the per-example perturbation `δ[i]` and the recorded input returned from inside the
  map, so nothing escapes a transformation.

The convention is `lazyrich.models.convention`'s (the rule `lazyrich.functional` documents).
The layers are reached without any global state: the model is rebuilt from an `Apply`
(`apply.model(params)`) and each trainable layer is swapped, with `eqx.tree_at`, for a tapped
layer that holds the layer, its output perturbation `δ` and a callback recording its input.
Which layers are trainable is read off `apply.rest` (there the trainable weight is `None`);
the frozen copies (`Frozen`, e.g. the centring copy of the initial network) are never tapped.
Any other trainable array (a convolution, an embedding) or a layer called twice means the
structure is not known, and `empirical_ntk` takes its exact generic path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..models import Apply, Dense, Frozen, PerExample, convention

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


class TappedLinear(eqx.Module):
    """An `eqx.nn.Linear` (one example) with a tap: `layer(x) + delta`, calling `record(x, y)`.

    **Arguments:**

    - `layer`: the wrapped `eqx.nn.Linear`.
    - `delta`: added to the output, shaped like it (`None`: nothing added).
    - `record`: called with the layer's input and output (`None`: not called).
    """

    layer: eqx.nn.Linear
    delta: Float[Array, "*out"] | None = None
    record: Record | None = eqx.field(static=True, default=None)

    def __call__(self, x: Float[Array, "*fan_in"], *, key: Any = None) -> Float[Array, "*out"]:
        y = self.layer(x, key=key)
        if self.record is not None:
            self.record(x, y)
        return y if self.delta is None else y + self.delta


class Layer(NamedTuple):
    """A trainable dense layer, as the structured kernel needs it (static)."""

    w_mult: float
    b_mult: float | None  # None: no trainable bias
    fan_out: int
    dtype: str
    scalar_out: bool = False  # an eqx.nn.Linear with out_features="scalar"


class Layout(NamedTuple):
    """The trainable layers in tree order, and whether the model is per-example (static)."""

    layers: tuple[Layer, ...]
    per_example: bool


def _node_type(per_example: bool) -> type:
    return eqx.nn.Linear if per_example else Dense


def _pairs(tree: Any, rest: Any, node: type) -> list[tuple[Any, Any]]:
    """`(layer, its rest)` for the trainable `node` layers of `tree` (shaped like
    `apply.model(params)`), in tree order: those whose weight is `None` in `rest`. Nothing
    inside a `Frozen` is visited."""
    is_node = lambda x: isinstance(x, (node, Frozen))  # noqa: E731
    treedef = jax.tree.structure(tree, is_leaf=is_node)
    pairs = zip(treedef.flatten_up_to(tree), treedef.flatten_up_to(rest), strict=True)
    return [
        (n, r) for n, r in pairs if isinstance(n, node) and isinstance(r, node) and r.weight is None
    ]


def tapped(apply: Apply, params: Any, make: Callable[[int, Any], Any], per_example: bool) -> Any:
    """`apply.model(params)` with its `i`-th trainable layer (tree order) replaced by
    `make(i, layer)`; a per-example model is returned as its per-example callable."""
    model = apply.model(params)
    node = _node_type(per_example)
    layers = tuple(n for n, _ in _pairs(model, apply.rest, node))
    if layers:
        model = eqx.tree_at(
            lambda m: tuple(n for n, _ in _pairs(m, apply.rest, node)),
            model,
            replace=tuple(make(i, layer) for i, layer in enumerate(layers)),
        )
    if per_example and isinstance(model, PerExample):
        return model.module
    return model


def layout(apply: Any, params: Any, x: jax.Array) -> tuple[Layout | str, Any]:
    """`(layout, out)`: the trainable dense layers of `apply` in tree order and the model's
    convention (or, as a string, why the structured kernel cannot be used: not an `Apply`, a
    parameter outside a known layer, a layer called twice or never, inputs of the wrong
    shape), and the shape/dtype of the output on one example `x[:1]`."""
    x1 = x[:1]
    out = jax.eval_shape(apply, params, x1)
    if not isinstance(apply, Apply):
        return (
            "apply is a plain function: pass the apply returned by lazyrich.functional(model)",
            out,
        )
    per_example = convention(apply.model(params), x) == "per_example"
    node = _node_type(per_example)
    pairs = _pairs(apply.model(params), apply.rest, node)
    bias = [n.bias is not None and r.bias is None for n, r in pairs]
    calls: dict[int, list[tuple[int, str]]] = {}

    def make(i, layer):
        calls[i] = []
        record = lambda a, y: calls[i].append((a.ndim, y.dtype.name))  # noqa: E731
        return (TappedLinear if per_example else TappedDense)(layer, None, record)

    def probe(p, xx):
        model = tapped(apply, p, make, per_example)
        return jax.vmap(model)(xx) if per_example else model(xx)

    try:
        jax.eval_shape(probe, params, x1)
    except Exception as e:  # noqa: BLE001 -- the generic path is exact for any model
        return f"tapping its layers fails ({type(e).__name__})", out
    problems = []
    layers = []
    kind = "eqx.nn.Linear" if per_example else "lazyrich Dense"
    for i, (n, _) in enumerate(pairs):
        seen = calls.get(i, [])
        if len(seen) > 1:
            problems.append(f"a {kind} layer is called more than once (shared weights)")
        if not seen:
            problems.append(f"a trainable {kind} layer is never called")
        if any(nd != (1 if per_example else 2) for nd, _ in seen) and not (
            per_example and n.in_features == "scalar"
        ):
            problems.append(f"a {kind} layer gets inputs that are not (batch, features)")
        dtype = seen[0][1] if seen else "float32"
        layers.append(
            Layer(
                float(getattr(n, "w_mult", 1.0)),
                float(getattr(n, "b_mult", 1.0)) if bias[i] else None,
                n.weight.shape[0],
                dtype,
                per_example and n.out_features == "scalar",
            )
        )
    covered = len(layers) + sum(bias)
    outside = len(jax.tree.leaves(params)) - covered
    if outside > 0:
        problems.append(f"{outside} trainable array(s) are not weights or biases of {kind} layers")
    if problems:
        return "; ".join(dict.fromkeys(problems)), out
    if not layers:
        return f"the model has no trainable {kind} layers", out
    found = Layout(tuple(layers), per_example)
    if per_example:  # the per-example features must trace (e.g. no Linear under an inner vmap)
        k = math.prod(out.shape[1:])
        try:
            jax.eval_shape(lambda p, xx: _features(apply, p, xx, k, found), params, x1)
        except Exception as e:  # noqa: BLE001
            return f"its Linear layers cannot be tapped per example ({type(e).__name__})", out
    return found, out


def _features(apply: Apply, params: Any, x: jax.Array, k: int, found: Layout):
    """Per trainable layer: its inputs `(n, fan_in)` and the output gradients
    `g[i, c] = ∂f_c(x_i)/∂y_i`, `(n, k, fan_out)`, from k VJPs of the batch."""
    n = x.shape[0]
    layers = found.layers

    def per_example(deltas):
        def one(ds, xi):
            inputs: dict[int, jax.Array] = {}

            def make(i, layer):
                record = lambda a, y: inputs.__setitem__(i, jnp.reshape(a, -1))  # noqa: E731
                return TappedLinear(layer, ds[i], record)

            f = tapped(apply, params, make, True)(xi)
            return jnp.reshape(f, (k,)), [inputs[i] for i in range(len(ds))]

        return jax.vmap(one)(deltas, x)

    def whole_batch(deltas):
        inputs: dict[int, jax.Array] = {}

        def make(i, layer):
            return TappedDense(layer, deltas[i], lambda a, y: inputs.__setitem__(i, a))

        out = tapped(apply, params, make, False)(x)
        return out.reshape(n, k), [inputs[i] for i in range(len(deltas))]

    perturbed = per_example if found.per_example else whole_batch
    zeros = [jnp.zeros((n,) if lay.scalar_out else (n, lay.fan_out), lay.dtype) for lay in layers]
    out, vjp, inputs = jax.vjp(perturbed, zeros, has_aux=True)
    # examples are independent, so the cotangent e_c on every example gives each example's own
    # gradient of its c-th output. The k VJPs are batched along axis 1, so that each layer's
    # gradients come out as (n, k, fan_out): one (n, k·fan_out) matrix whose Gram is a single
    # matmul. (Batched along axis 0, XLA copied each into two transposed layouts for the Gram.)
    basis = jnp.broadcast_to(jnp.eye(k, dtype=out.dtype)[None], (n, k, k))
    (grads,) = jax.vmap(vjp, in_axes=1, out_axes=1)(basis)
    grads = [g.reshape(n, k, lay.fan_out) for g, lay in zip(grads, layers, strict=True)]
    return inputs, grads


def block(apply, params, xa, xb, k, traced_all, same, layers: Layout):
    """One block of the kernel, `(na, nb)` (traced, mean) or `(na, nb, k, k)`."""
    xs_a, gs_a = _features(apply, params, xa, k, layers)
    xs_b, gs_b = (xs_a, gs_a) if same else _features(apply, params, xb, k, layers)
    total = 0.0
    for lay, x_a, x_b, g_a, g_b in zip(layers.layers, xs_a, xs_b, gs_a, gs_b, strict=True):
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
