"""The engine (`lazyrich.train.train`) against plain Python loops of single runs (float64):
epochs over a finite dataset, full batch, optax SGD and Adam with a swept learning rate,
diverging cells, chunking, measures, returned params, resume from a store, one-line errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lazyrich.data import Dataset, batch_indices
from lazyrich.errors import ConfigError
from lazyrich.models import MLP, functional
from lazyrich.results import StudyDir
from lazyrich.train import Grid, Stream, cross_entropy, final_params, train

D, N, K = 6, 12, 3


def _data() -> Dataset:
    x = jax.random.normal(jax.random.key(0), (48, D))
    y = jnp.argmax(x[:, :K], -1)
    return Dataset(x[:40], y[:40], x[40:], y[40:], name="toy", num_classes=K)


def _make(key, hp):
    del hp
    return MLP(D, N, 2, K, parameterization="standard", key=key)


def _optimizer(kind):
    if kind == "sgd":
        return lambda hp: optax.sgd(hp["eta"])
    return lambda hp: optax.adam(hp["eta"])


def _reference(kind, eta, seed, steps, batch, data):
    """One run written plainly, on the batches the engine documents."""
    key = jax.random.key(seed)
    params, apply = functional(_make(jax.random.fold_in(key, 0), None))
    opt = _optimizer(kind)({"eta": jnp.asarray(eta)})
    state = opt.init(params)
    loss = lambda p, x, y: cross_entropy(apply(p, x), y)
    losses = []
    for t in range(steps):
        if batch is None:
            x, y = data.x_train, data.y_train
        else:
            idx = batch_indices(jax.random.fold_in(key, 1), data.n_train, batch, t)
            x, y = data.x_train[idx], data.y_train[idx]
        value, grads = jax.value_and_grad(loss)(params, x, y)
        if not np.isfinite(value) or value > 1e3:
            return np.array(losses), None, t
        updates, state = opt.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        losses.append(float(value))
    test = float(loss(params, data.x_test, data.y_test))
    return np.array(losses), test, -1


@pytest.mark.parametrize("kind,batch", [("sgd", 8), ("adam", 8), ("sgd", None)])
def test_vmapped_runs_equal_plain_loops(x64, kind, batch):
    data = _data()
    steps = 7
    etas = [0.05, 0.3, 1e4] if kind == "sgd" else [1e-3, 3e-2, 1e4]
    grid = Grid.product(eta=etas, seed=[0, 3])
    ds = train(
        _make, _optimizer(kind), data, grid=grid, record_at=[0, 3, steps], batch=batch,
        loss="ce", threshold=1e3, progress=False,
    )  # fmt: skip
    assert ds.test_loss.dims == ("eta", "seed", "step")
    assert np.isnan(ds.train_loss.values[..., 0]).all()  # no steps yet at step 0
    some_diverged = False
    for i, eta in enumerate(etas):
        for j, seed in enumerate([0, 3]):
            losses, test, dstep = _reference(kind, eta, seed, steps, batch, data)
            run = ds.isel(eta=i, seed=j)
            assert int(run.diverged_step) == dstep
            if dstep >= 0:
                some_diverged = True
                assert np.isnan(run.test_loss.values[run.step.values > dstep]).all()
                continue
            np.testing.assert_allclose(run.test_loss.values[-1], test, rtol=1e-9)
            np.testing.assert_allclose(run.train_loss.values[1], losses[:3].mean(), rtol=1e-9)
            np.testing.assert_allclose(run.train_loss.values[2], losses[3:].mean(), rtol=1e-9)
    assert some_diverged, "the grid should contain a diverging cell"


def test_chunked_equals_unchunked_and_resume_loads_chunks(tmp_path):
    data = _data()
    grid = Grid.product(eta=[0.05, 0.1, 0.2], seed=[0, 1])
    kw = dict(grid=grid, record_at=[2, 5], batch=8, loss="ce", progress=False)
    whole = train(_make, _optimizer("sgd"), data, **kw)
    store = StudyDir(tmp_path, "s").prepare()
    chunked = train(_make, _optimizer("sgd"), data, chunk_size=2, store=store, tag="t", **kw)
    # equal to float32 rounding: the first layer is one product over a seed's runs, tiled by
    # how many runs of a seed share the chunk (3 here, 1 per chunk of 2)
    for name in ("train_loss", "test_loss", "train_loss_full", "test_accuracy"):
        np.testing.assert_allclose(whole[name].values, chunked[name].values, rtol=1e-6)
    saved = sorted(p.name for p in store.chunks.glob("t-*.npz"))
    assert len(saved) == 3
    # a resumed call loads the chunks instead of recomputing: poison one and see it come back
    poisoned = store.load_chunk(0, tag=saved[0].rsplit("_", 1)[0])
    assert poisoned is not None
    poisoned["test_loss"] = poisoned["test_loss"] + 1.0
    store.save_chunk(0, poisoned, tag=saved[0].rsplit("_", 1)[0])
    again = train(_make, _optimizer("sgd"), data, chunk_size=2, store=store, tag="t", **kw)
    np.testing.assert_array_equal(
        again.test_loss.values.reshape(6, -1)[:2], chunked.test_loss.values.reshape(6, -1)[:2] + 1
    )


def test_measures_params0_and_returned_params(x64):
    data = _data()
    model = _make(jax.random.key(5), None)
    params0, apply = functional(model)

    def moved(snap):
        sq = jax.tree.map(lambda a, b: jnp.sum((a - b) ** 2), snap.params, snap.params0)
        return {"dist": jnp.sqrt(sum(jax.tree.leaves(sq))), "step": snap.step * 1.0}

    grid = Grid.product(eta=[0.0, 0.1])
    ds = train(
        model, _optimizer("sgd"), data, grid=grid, record_at=[0, 4], batch=None, loss="ce",
        measures={"w": moved}, keep_initial=True, keep_params=True, progress=False,
    )  # fmt: skip
    params = final_params(ds, model)
    np.testing.assert_array_equal(  # a selection of runs selects their params too
        jax.tree.leaves(final_params(ds.isel(eta=[1]), model))[0][0], jax.tree.leaves(params)[0][1]
    )
    from_factory = final_params(ds, _make)  # the factory gives the same structure
    assert jax.tree.structure(from_factory) == jax.tree.structure(params)
    kept = [k for k in ds.data_vars if str(k).startswith("params.")]
    with pytest.raises(ConfigError, match="pass keep_params=True to train"):
        final_params(ds.drop_vars(kept), model)
    wider = MLP(D, N + 1, 2, K, parameterization="standard", key=jax.random.key(0))
    with pytest.raises(ConfigError, match="pass the model .or factory. that was trained"):
        final_params(ds, wider)
    np.testing.assert_array_equal(ds.w_step.values, [[0, 4], [0, 4]])
    assert ds.w_dist.values[0].tolist() == [0.0, 0.0]  # η = 0 never moves
    leaves = jax.tree.leaves(params)
    final = jax.tree.map(lambda a: a[1], params)
    sq = jax.tree.map(lambda a, b: jnp.sum((a - b) ** 2), final, params0)
    np.testing.assert_allclose(ds.w_dist.values[1, -1], np.sqrt(sum(jax.tree.leaves(sq))))
    assert all(leaf.shape[0] == 2 for leaf in leaves)
    np.testing.assert_allclose(
        ds.test_loss.values[1, -1], cross_entropy(apply(final, data.x_test), data.y_test)
    )


def test_online_stream_runs_share_each_seeds_batches():
    w = jnp.linspace(-1, 1, D)

    def sample(key, n):
        x = jax.random.normal(key, (n, D))
        return x, (x @ w)[:, None]

    tx, ty = sample(jax.random.key(9), 32)
    seen = {}

    def record_batch(snap):
        return snap.hp["seed"] * 1.0

    make = lambda key, hp: MLP(D, N, 1, 1, parameterization="standard", key=key)
    ds = train(
        make, lambda hp: optax.sgd(hp["eta"]), Stream(sample, tx, ty),
        grid=Grid.product(seed=[2, 7], eta=[0.0, 0.01]), record_at=[1, 3], batch=4,
        measures={"s": record_batch}, progress=False,
    )  # fmt: skip
    seen["s"] = ds.s.values[..., 0]
    np.testing.assert_array_equal(seen["s"], [[2, 2], [7, 7]])
    # η = 0: the first-step batch loss equals the loss of the documented first batch
    key = jax.random.key(7)
    params, apply = functional(make(jax.random.fold_in(key, 0), None))
    x, y = sample(jax.random.fold_in(jax.random.fold_in(key, 1), 0), 4)
    expected = jnp.mean((apply(params, x) - y) ** 2)
    np.testing.assert_allclose(ds.train_loss.values[1, 0, 0], expected, rtol=1e-6)


def test_bad_input_is_one_line():
    data = _data()
    with pytest.raises(ConfigError, match="record_at must be increasing"):
        train(_make, _optimizer("sgd"), data, record_at=[3, 2], batch=4, progress=False)
    with pytest.raises(ConfigError, match="batch size 100 exceeds the 40 training examples"):
        train(_make, _optimizer("sgd"), data, record_at=[1], batch=100, progress=False)
    with pytest.raises(ConfigError, match="needs a batch size"):
        train(_make, _optimizer("sgd"), Stream(lambda k, n: (0, 0), data.x_test, data.y_test),
              record_at=[1], progress=False)  # fmt: skip
    with pytest.raises(ConfigError, match="seeds must be integers"):
        Grid.product(seed=[0.5])


def test_evaluate_at_skips_the_set_metrics_elsewhere():
    data = _data()
    grid = Grid.product(eta=[0.05, 0.2])
    kw = dict(grid=grid, record_at=[1, 2, 3, 5], batch=8, loss="ce", progress=False)
    every = train(_make, _optimizer("sgd"), data, **kw)
    some = train(_make, _optimizer("sgd"), data, evaluate_at=[2, 5], **kw)
    np.testing.assert_array_equal(some.train_loss.values, every.train_loss.values)
    for name in ("test_loss", "train_accuracy"):
        np.testing.assert_array_equal(some[name].values[:, [1, 3]], every[name].values[:, [1, 3]])
        assert np.isnan(some[name].values[:, [0, 2]]).all()
    with pytest.raises(ConfigError, match="evaluate_at must be a subset of record_at"):
        train(_make, _optimizer("sgd"), data, evaluate_at=[4], **kw)
