"""The engine's test and full-train evaluation of many runs at once, each run checked against the
same run's kept params evaluated alone. With more than 64 runs in one evaluation XLA:CPU once
computed the cross-entropy of runs 64 onwards from the logits of runs 0, 1, … (targets shared by
every run); the engine now gives each run its own copy of the targets."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lazyrich.data import Dataset
from lazyrich.models import MLP, partition
from lazyrich.train import Grid, final_params, get_loss, train


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_more_than_64_runs_evaluate_each_run_on_its_own_params(loss):
    k, n = 10, 512
    x = jax.random.normal(jax.random.key(0), (n, 12))
    y = jax.random.randint(jax.random.key(1), (n,), 0, k)
    data = Dataset(x[:64], y[:64], x, y, name="toy", num_classes=k)
    model = MLP(12, 16, 1, k, key=jax.random.key(2))
    etas = np.geomspace(0.1, 30.0, 70)  # 70 runs: some move far, some barely
    ds = train(
        model,
        lambda hp: optax.sgd(hp["eta"]),
        data,
        grid=Grid.product(eta=etas),
        record_at=[20],
        batch=16,
        loss=loss,
        keep_params=True,
        progress=False,
    )
    params = final_params(ds, model)
    _, rest = partition(model)
    loss_fn = get_loss(loss)
    alone = []
    for i in range(etas.size):
        m = eqx.combine(jax.tree.map(lambda a, i=i: jnp.asarray(a[i]), params), rest)
        alone.append([float(loss_fn(m(x), y)), float(loss_fn(m(x[:64]), y[:64]))])
    alone = np.array(alone)
    engine = np.stack([ds.test_loss.values[:, -1], ds.train_loss_full.values[:, -1]], 1)
    kept = ~ds.diverged.values  # a diverged run's evaluations are NaN by design
    assert kept[64:].sum() >= 3 and np.all(np.isfinite(engine[kept]))
    assert np.ptp(alone[kept, 0]) > 0.01  # the runs differ, so a mixed-up run would show
    np.testing.assert_allclose(engine[kept], alone[kept], rtol=2e-5, atol=1e-6)
