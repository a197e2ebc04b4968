"""γ × η × seed sweeps of online SGD through the engine (`train` on a `Stream`) against plain
single runs; divergence masking; per-γ precision; results store."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lazyrich.errors import ConfigError
from lazyrich.models import MLP, functional, scaled
from lazyrich.results import StudyDir, read_dataset, write_dataset
from lazyrich.train import Grid, Stream, half_mse, log_steps, mse, train

D, N = 5, 16
W_TEACHER = jnp.linspace(-1.0, 1.0, D)


def sample(key, n):
    x = jax.random.normal(key, (n, D))
    return x, jnp.tanh(x @ W_TEACHER)[:, None]


METRICS = ("train_loss", "test_loss", "test_accuracy")


def stream():
    """The online stream; its test set drawn in the current precision (as the reference's)."""
    return Stream(sample, *sample(jax.random.key(99), 64))


def model(key, hp):
    """The run's μP MLP at its γ (a factory: each seed its own init)."""
    return scaled(MLP(D, N, 2, 1, key=key), gamma=hp["gamma"])


def step(hp):
    """SGD at learning rate η·N: θ ← θ − η·N·∇L (the μP multiplier, the run's η)."""
    return optax.chain(optax.identity(), optax.scale(-hp["eta"] * N))


def sweep(grid, record_at, **kw):
    """The engine on the online stream: every run of `grid`, batches of 8."""
    return train(model, step, stream(), grid=grid, record_at=record_at, batch=8, progress=False,
                 **kw)  # fmt: skip


def reference_run(gamma, eta, seed, steps):
    """One run written plainly: a Python loop of SGD steps on the same stream."""
    key = jax.random.key(seed)
    model = scaled(MLP(D, N, 2, 1, key=jax.random.fold_in(key, 0)), gamma=gamma)
    params, apply = functional(model)
    data_key = jax.random.fold_in(key, 1)
    grad = jax.jit(jax.value_and_grad(lambda p, x, y: mse(apply(p, x), y)))
    losses = []
    for t in range(steps):
        x, y = sample(jax.random.fold_in(data_key, t), 8)
        loss, g = grad(params, x, y)
        losses.append(float(loss))
        params = jax.tree.map(lambda p, d: p - eta * N * d, params, g)
    tx, ty = sample(jax.random.key(99), 64)
    return np.array(losses), float(mse(apply(params, tx), ty))


def test_vmapped_sweep_equals_single_runs(x64):
    grid = Grid.of([0.3, 3.0], [0.05, 0.2], [0, 1])
    steps = [3, 10]
    res = sweep(grid, steps, chunk_size=3)
    assert res["test_loss"].shape == (2, 2, 2, 2)
    for gi, g in enumerate(grid.gammas):
        for ei, e in enumerate(grid.etas):
            for si, s in enumerate(grid.seeds):
                losses, test = reference_run(g, e, int(s), 10)
                np.testing.assert_allclose(res["test_loss"][gi, ei, si, -1], test, rtol=1e-9)
                # window means of the train loss between recordings
                np.testing.assert_allclose(
                    res["train_loss"][gi, ei, si], [losses[:3].mean(), losses[3:].mean()], rtol=1e-9
                )


def test_chunking_does_not_change_results():
    grid = Grid.of([0.5, 2.0], [0.01, 0.1, 1.0], [3])
    a = sweep(grid, [5, 20], chunk_size=2)
    b = sweep(grid, [5, 20], chunk_size=6)
    np.testing.assert_allclose(a["test_loss"], b["test_loss"], rtol=1e-5)


def test_divergent_runs_are_frozen_and_marked_others_unaffected():
    grid = Grid.of([1.0], [1e-3, 1e-2, 1e3, 1e6], [0])
    ds = sweep(grid, log_steps(40, 6), threshold=1e3)
    res = {k: ds[k].values for k in ("diverged", "diverged_step", "step", *METRICS)}
    div = res["diverged"][0, :, 0]
    assert div.tolist() == [False, False, True, True]
    assert np.all(res["diverged_step"][0, 2:, 0] >= 0) and np.all(
        res["diverged_step"][0, :2, 0] == -1
    )
    # every cell recorded; stable runs have finite, decreasing-ish losses
    assert np.all(np.isfinite(res["test_loss"][0, :2, 0]))
    alone = sweep(Grid.of([1.0], [1e-3, 1e-2], [0]), log_steps(40, 6), threshold=1e3)
    np.testing.assert_allclose(res["test_loss"][0, :2], alone["test_loss"][0], rtol=1e-5)
    # one convention: every record after a run's divergence is NaN, records before it are not
    for j in (2, 3):
        after = res["step"] > res["diverged_step"][0, j, 0]
        assert after.any()
        for name in METRICS:
            assert np.all(np.isnan(res[name][0, j, 0][after]))
            assert np.all(np.isfinite(res[name][0, j, 0][~after]))


def test_float64_per_gamma():
    # η ∝ γ² in the lazy regime: a per-γ η table keeps γ = 1e-3 stable
    grid = Grid.of([1e-3, 1.0], np.array([[1e-10], [1e-4]]), [0])
    res = sweep(grid, [4], x64=lambda hp: hp["gamma"] < 1e-2)
    assert not res["diverged"].any()
    assert np.all(np.isfinite(res["test_loss"]))


def test_grid_validation():
    with pytest.raises(ConfigError, match="gamma grid is empty"):
        Grid.of([], [0.1], [0])
    with pytest.raises(ConfigError, match="eta values must be > 0"):
        Grid.of([1.0], [0.0], [0])
    with pytest.raises(ConfigError, match="batch must be an int >= 1"):
        train(model, step, stream(), record_at=[1], batch=0, progress=False)


def test_results_roundtrip_and_atomic_chunks(tmp_path):
    import xarray as xr

    ds = xr.Dataset(
        {
            "loss": (("gamma", "step"), np.arange(6.0).reshape(2, 3)),
            "div": ("gamma", np.array([True, False])),
        },
        coords={"gamma": [0.1, 1.0], "step": [1, 2, 3]},
    )
    write_dataset(tmp_path / "r.nc", ds)
    back = read_dataset(tmp_path / "r.nc")
    np.testing.assert_array_equal(back.loss.values, ds.loss.values)
    assert back.div.values.tolist() == [1, 0]
    store = StudyDir(tmp_path, "s").prepare()
    store.save_chunk(0, {"a": np.ones(3)})
    saved = store.load_chunk(0)
    assert saved is not None and saved["a"].tolist() == [1, 1, 1]
    assert store.load_chunk(1) is None
    store.chunk_path(2).write_bytes(b"truncated")  # a corrupt chunk is recomputed, not trusted
    assert store.load_chunk(2) is None
    assert not list(store.chunks.glob("*.tmp"))


def test_stream_records_step_zero_and_half_mse_is_half_of_mse():
    """An online run recorded at step 0 (the initial model; no batch loss yet), and the loss
    "half_mse" = ½ "mse" both in the recorded losses and in the training dynamics (the same
    run at half the loss and twice the step size follows the same trajectory)."""
    data = stream()
    fixed = lambda key, hp: scaled(MLP(D, N, 2, 1, key=key), gamma=0.5)
    runs = {
        loss: train(
            fixed, optax.sgd(lr), data, record_at=[0, 5], batch=8, loss=loss, progress=False
        )
        for loss, lr in (("mse", 0.05), ("half_mse", 0.1))
    }
    mse_run, half = runs["mse"], runs["half_mse"]
    assert np.isnan(mse_run.train_loss.values[0, 0])
    # a centred model outputs 0 at init: the step-0 test loss is the mean square target
    np.testing.assert_allclose(
        mse_run.test_loss.values[0, 0], float(jnp.mean(data.y_test**2)), rtol=1e-6
    )
    np.testing.assert_allclose(half.test_loss.values, 0.5 * mse_run.test_loss.values, rtol=1e-5)
    np.testing.assert_allclose(
        half.train_loss.values[:, 1:], 0.5 * mse_run.train_loss.values[:, 1:], rtol=1e-5
    )
    assert half_mse(jnp.ones((3, 2)), jnp.zeros((3, 2))) == 0.5
