"""Layer-wise sparse SGD: masks, truncated gradients, frozen layers, probabilistic steps."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lazyrich.errors import ConfigError
from lazyrich.models import CNN, MLP, functional
from lazyrich.optim._lws import (
    PLWS,
    check_probability,
    full_step,
    init_plws,
    layer_indices,
    layer_mask,
    lws_value_and_grad,
    masked,
    plws_step,
    top_step,
)


def _mlp_problem(depth=3, key=0):
    model = MLP(5, 8, depth, 2, activation="tanh", use_bias=True, key=jax.random.key(key))
    params, apply = functional(model)
    x = jax.random.normal(jax.random.key(10), (16, 5))
    y = jax.random.normal(jax.random.key(11), (16, 2))

    def loss(params, x, y):
        return 0.5 * jnp.mean((apply(params, x) - y) ** 2)

    return params, loss, x, y


def test_layer_mask_presets_and_indices():
    params, *_ = _mlp_problem(depth=3)  # 4 layers
    assert layer_indices(params, "top") == [3]
    assert layer_indices(params, "bottom") == [0]
    assert layer_indices(params, "top+bottom") == [0, 3]
    assert layer_indices(params, "all") == [0, 1, 2, 3]
    assert layer_indices(params, {-1, 1}) == [1, 3]
    mask = layer_mask(params, "top+bottom")
    assert [(lay.weight, lay.bias) for lay in mask.layers] == [
        (True, True),
        (False, False),
        (False, False),
        (True, True),
    ]
    with pytest.raises(ConfigError, match="layer set is empty"):
        layer_mask(params, set())
    with pytest.raises(ConfigError, match="out of range"):
        layer_mask(params, {4})
    with pytest.raises(ConfigError, match="unknown layer set"):
        layer_mask(params, "middle")


def test_probability_validation():
    for p in (-0.1, 1.5, float("nan")):
        with pytest.raises(ConfigError, match=r"must be in \[0, 1\]"):
            check_probability(p)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        PLWS(optax.sgd(0.1), p=2.0)
    check_probability(0.0)
    check_probability(lambda t: 0.5)


@pytest.mark.parametrize("layers", ["top", "bottom", "top+bottom", {1, 2}])
def test_masked_gradients_equal_full_gradients_restricted(x64, layers):
    params, loss, x, y = _mlp_problem()
    params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
    mask = layer_mask(params, layers)
    value, g = jax.jit(lws_value_and_grad(loss, mask))(params, x, y)
    full_value, full = jax.value_and_grad(loss)(params, x, y)
    np.testing.assert_allclose(value, full_value, rtol=1e-14)
    expect = jax.tree.map(lambda gi, m: gi if m else jnp.zeros_like(gi), full, mask)
    chex.assert_trees_all_close(g, expect, rtol=1e-12, atol=1e-15)
    assert any(float(jnp.abs(a).max()) > 0 for a in jax.tree.leaves(g))


def _count_dots(fn, *args):
    jaxpr = jax.make_jaxpr(fn)(*args)
    count = 0

    def walk(j):
        nonlocal count
        for eqn in j.eqns:
            if eqn.primitive.name == "dot_general":
                count += 1
            for v in eqn.params.values():
                for sub in v if isinstance(v, (tuple, list)) else (v,):
                    if hasattr(sub, "eqns"):
                        walk(sub)
                    elif hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
                        walk(sub.jaxpr)

    walk(jaxpr.jaxpr)
    return count


def test_top_only_backward_pass_is_truncated():
    depth = 5  # 6 weight matrices
    params, loss, x, y = _mlp_problem(depth=depth)
    forward = _count_dots(loss, params, x, y)
    assert forward == depth + 1
    full = _count_dots(jax.value_and_grad(loss), params, x, y)
    top = _count_dots(lws_value_and_grad(loss, layer_mask(params, "top")), params, x, y)
    bottom = _count_dots(lws_value_and_grad(loss, layer_mask(params, "bottom")), params, x, y)
    # full: forward + one weight gradient per layer + one input gradient per layer above 0
    assert full == forward + (depth + 1) + depth
    assert top == forward + 1  # only the readout's weight gradient
    assert bottom == forward + 1 + depth  # activation grads down to layer 0, one weight grad


def test_frozen_layers_do_not_move_under_masked_optimizer():
    params, loss, x, y = _mlp_problem()
    mask = layer_mask(params, "top+bottom")
    opt = masked(optax.adam(1e-2), mask)
    state = opt.init(params)
    grad_fn = jax.jit(lws_value_and_grad(loss, mask))
    p = params
    for _ in range(5):
        value, g = grad_fn(p, x, y)
        u, state = opt.update(g, state, p)
        p = optax.apply_updates(p, u)
    for lay, lay0, m in zip(p.layers, params.layers, mask.layers, strict=True):
        if m.weight:
            assert float(jnp.abs(lay.weight - lay0.weight).max()) > 1e-4
        else:
            np.testing.assert_array_equal(lay.weight, lay0.weight)
            np.testing.assert_array_equal(lay.bias, lay0.bias)
    assert value < loss(params, x, y)
    # full gradients (not masked) still give zero updates on frozen leaves
    _, g_full = jax.value_and_grad(loss)(p, x, y)
    u, _ = opt.update(g_full, state, p)
    assert float(jnp.abs(u.layers[1].weight).max()) == 0.0


def _step_fn(apply, p, top="top"):
    """A jitted PLWS step as the engine runs it: `(params, state, x, y, key) -> ...`."""
    step = PLWS(optax.sgd(0.1, momentum=0.9), p=p, top=top)
    mse = lambda pred, y: 0.5 * jnp.mean((pred - y) ** 2)  # noqa: E731

    @jax.jit
    def run(params, state, x, y, key):
        return step.update(params, state, (x, y), apply=apply, hp={}, key=key, loss=mse)

    return step, run


def test_plws_p0_trains_top_only_and_p1_equals_full_sgd():
    params, loss, x, y = _mlp_problem()
    apply = functional(MLP(5, 8, 3, 2, activation="tanh", use_bias=True, key=jax.random.key(0)))[1]
    opt = optax.sgd(0.1, momentum=0.9)
    key = jax.random.key(3)

    only_top, step = _step_fn(apply, 0.0)
    s0 = only_top.init(params, apply=apply, hp={}, key=key)
    p, s = params, s0
    for i in range(4):
        p, s, _ = step(p, s, x, y, jax.random.fold_in(key, i))
    chex.assert_trees_all_equal(p.layers[:-1], params.layers[:-1])
    assert float(jnp.abs(p.layers[-1].weight - params.layers[-1].weight).max()) > 1e-4
    # the rest's momentum was never touched
    chex.assert_trees_all_equal(s.rest, s0.rest)

    always, step = _step_fn(apply, 1.0)
    p, s = params, always.init(params, apply=apply, hp={}, key=key)
    ref, ref_state = params, opt.init(params)
    for i in range(4):
        p, s, _ = step(p, s, x, y, jax.random.fold_in(key, i))
        g = jax.grad(loss)(ref, x, y)
        u, ref_state = opt.update(g, ref_state, ref)
        ref = optax.apply_updates(ref, u)
    chex.assert_trees_all_close(p, ref, rtol=1e-5, atol=1e-6)


def test_plws_mixture_and_schedule():
    params, loss, x, y = _mlp_problem()
    opt = optax.sgd(0.05, momentum=0.9)
    mask = layer_mask(params, "top")
    # schedule: full update only on even steps ≥ 2 (p=1), top-only otherwise (p=0)
    sched = lambda t: jnp.where((t % 2 == 0) & (t >= 2), 1.0, 0.0)  # noqa: E731
    run = jax.jit(lambda p, s, k: plws_step(loss, opt, mask, sched, p, s, x, y, key=k))
    p, s = params, init_plws(opt, params, mask)
    fulls = []
    for i in range(6):
        p, s, _, full = run(p, s, jax.random.key(i))
        fulls.append(bool(full))
    assert fulls == [False, False, True, False, True, False]
    # manual replay with top_step / full_step-equivalent: the rest moved exactly twice
    q, st = params, init_plws(opt, params, mask)
    for i in range(6):
        if fulls[i]:
            q, st, _ = full_step(loss, opt, mask, q, st, x, y)
        else:
            q, st, _ = top_step(loss, opt, mask, q, st, x, y)
    chex.assert_trees_all_close(p, q, rtol=1e-5, atol=1e-6)

    # a traced p (a grid axis): coins ~ Bernoulli(p)
    run = jax.jit(lambda s, k, p: plws_step(loss, opt, mask, p, params, s, x, y, key=k))
    s = init_plws(opt, params, mask)
    n_full = 0
    for i in range(60):
        _, s, _, full = run(s, jax.random.key(100 + i), jnp.float32(0.3))
        n_full += int(full)
    assert 6 <= n_full <= 32  # Binomial(60, 0.3): mean 18, sd 3.5


def test_cnn_top_only_gradients():
    cnn = CNN((8, 1), 2, 3, key=jax.random.key(0))
    params, apply = functional(cnn)
    x = jax.random.normal(jax.random.key(1), (4, 8, 1))

    def loss(params, x):
        return jnp.mean(apply(params, x) ** 2)

    mask = layer_mask(params, "top")
    _, g = lws_value_and_grad(loss, mask)(params, x)
    full = jax.grad(loss)(params, x)
    chex.assert_trees_all_close(g.readout, full.readout, rtol=1e-6)
    assert float(jnp.abs(g.conv1.weight).max()) == 0.0
    assert float(jnp.abs(full.conv1.weight).max()) > 0.0
