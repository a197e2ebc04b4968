"""Oracle tests: the engine's vmapped LWS / PLWS runs equal plain loops of single runs."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lazyrich.data import Dataset, batch_indices
from lazyrich.models import MLP, functional
from lazyrich.optim import PLWS, layer_mask, lws_value_and_grad, masked, plws_coin
from lazyrich.optim._lws import init_plws, plws_step
from lazyrich.train import Grid, final_params, get_loss, step_key, train

N, BATCH, STEPS, SEEDS = 24, 6, 9, (0, 1)


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


def _problem():
    model = MLP(4, 5, 2, 3, activation="tanh", use_bias=True, key=jax.random.key(7))
    model = jax.tree.map(lambda a: a.astype(jnp.float64) if eqx_float(a) else a, model)
    x = jax.random.normal(jax.random.key(1), (N + 8, 4), jnp.float64)
    y = jax.random.randint(jax.random.key(2), (N + 8,), 0, 3)
    data = Dataset(x[:N], y[:N], x[N:], y[N:], name="toy", num_classes=3)
    return model, data


def eqx_float(a):
    return isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jnp.floating)


def _batch(data, seed, t):
    idx = batch_indices(jax.random.fold_in(jax.random.key(seed), 1), N, BATCH, t)
    return data.x_train[idx], data.y_train[idx]


def _stack(trees):
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def test_engine_plws_equals_a_loop_of_single_runs():
    model, data = _problem()
    params0, apply = functional(model)
    loss = get_loss("ce")
    opt = optax.sgd(0.3, momentum=0.5)
    ps = (0.3, 0.7)
    grid = Grid.product(seed=list(SEEDS), p=list(ps))
    ds = train(model, PLWS(opt, p="p"), data, grid=grid, batch=BATCH, loss="ce",
               record_at=[STEPS], keep_params=True, progress=False)  # fmt: skip
    got = final_params(ds, model)

    mask = layer_mask(params0, "top")
    loss_fn = lambda q, xb, yb: loss(apply(q, xb), yb)  # noqa: E731
    want, coins = [], []
    for seed in SEEDS:
        for p in ps:
            params, state = params0, init_plws(opt, params0, mask)
            for t in range(STEPS):
                key = step_key(seed, t)
                params, state, _, full = plws_step(
                    loss_fn, opt, mask, p, params, state, *_batch(data, seed, t), key=key
                )
                assert bool(full) == bool(plws_coin(key, p))
                coins.append(bool(full))
            want.append(params)
    assert any(coins) and not all(coins)  # both branches were taken
    chex.assert_trees_all_close(got, _stack(want), rtol=1e-9, atol=1e-12)


def test_engine_single_plws_run_equals_loop():
    """One run per call (the timed setting: not vmapped, `lax.cond` stays a conditional)."""
    model, data = _problem()
    params0, apply = functional(model)
    loss = get_loss("ce")
    opt = optax.sgd(0.3)
    ds = train(model, PLWS(opt, p=0.5), data, grid=Grid.product(seed=[3]), batch=BATCH,
               loss="ce", record_at=[STEPS], keep_params=True, progress=False)  # fmt: skip
    got = final_params(ds, model)
    mask = layer_mask(params0, "top")
    params, state = params0, init_plws(opt, params0, mask)
    for t in range(STEPS):
        params, state, _, _ = plws_step(lambda q, xb, yb: loss(apply(q, xb), yb), opt, mask,
                                        0.5, params, state, *_batch(data, 3, t),
                                        key=step_key(3, t))  # fmt: skip
    chex.assert_trees_all_close(got, _stack([params]), rtol=1e-9, atol=1e-12)


def test_engine_top_only_lws_equals_a_loop_of_single_runs():
    model, data = _problem()
    params0, apply = functional(model)
    loss = get_loss("ce")
    mask = layer_mask(params0, "top")
    lrs = (0.1, 0.5)
    grid = Grid.product(seed=list(SEEDS), lr=list(lrs))
    ds = train(model, lambda hp: masked(optax.sgd(hp["lr"]), mask), data, grid=grid,
               batch=BATCH, loss="ce", record_at=[STEPS], keep_params=True,
               progress=False)  # fmt: skip
    got = final_params(ds, model)
    value_and_grad = lws_value_and_grad(lambda q, xb, yb: loss(apply(q, xb), yb), mask)
    want = []
    for seed in SEEDS:
        for lr in lrs:
            params = params0
            for t in range(STEPS):
                _, g = value_and_grad(params, *_batch(data, seed, t))
                params = jax.tree.map(lambda a, b, lr=lr: a - lr * b, params, g)
            want.append(params)
    chex.assert_trees_all_close(got, _stack(want), rtol=1e-9, atol=1e-12)
    # frozen layers never moved; the top one did
    for i in range(len(params0.layers) - 1):
        np.testing.assert_array_equal(got.layers[i].weight[0], params0.layers[i].weight)
    assert float(jnp.abs(got.layers[-1].weight[0] - params0.layers[-1].weight).max()) > 1e-3
    assert ds.attrs["step_seconds"] > 0


def test_plws_needs_its_grid_axis():
    model, data = _problem()
    with pytest.raises(Exception, match="grid axis 'p'"):
        train(model, PLWS(optax.sgd(0.1)), data, batch=BATCH, loss="ce", record_at=[1],
              progress=False)  # fmt: skip
