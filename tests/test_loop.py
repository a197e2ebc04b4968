"""`fit` against a plain Python loop of SGD steps on the same batches."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lazyrich import functional
from lazyrich.data import Dataset, batch_indices
from lazyrich.errors import ConfigError
from lazyrich.models import MLP
from lazyrich.train import cross_entropy, fit


def _data():
    x = jax.random.normal(jax.random.key(0), (50, 6))
    y = (x[:, 0] > 0).astype(jnp.int32) + (x[:, 1] > 0).astype(jnp.int32)
    return Dataset(x[:40], y[:40], x[40:], y[40:], name="toy", num_classes=3)


def test_fit_equals_plain_loop(x64):
    data = _data()
    params, apply = functional(MLP(6, 16, 2, 3, parameterization="standard", key=jax.random.key(1)))
    key = jax.random.key(2)
    out, hist = fit(apply, params, data, optax.sgd(0.3), batch=8, record_at=[0, 3, 12], key=key)
    p, losses = params, []
    for t in range(12):
        idx = batch_indices(key, 40, 8, t)
        xb, yb = data.x_train[idx], data.y_train[idx]
        value, g = jax.value_and_grad(lambda q, xb=xb, yb=yb: cross_entropy(apply(q, xb), yb))(p)
        losses.append(float(value))
        p = jax.tree.map(lambda a, b: a - 0.3 * b, p, g)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10), out, p)
    np.testing.assert_allclose(
        hist["train_loss"][1:], [np.mean(losses[:3]), np.mean(losses[3:])], rtol=1e-10
    )
    assert hist["epoch"].tolist() == [0, 0.6, 2.4]
    assert np.isnan(hist["train_loss"][0])


def test_fit_rejects_bad_schedule():
    data = _data()
    params, apply = functional(MLP(6, 4, 1, 3, key=jax.random.key(1)))
    with pytest.raises(ConfigError, match="increasing"):
        fit(apply, params, data, optax.sgd(0.1), batch=8, record_at=[5, 2], key=jax.random.key(0))
    with pytest.raises(ConfigError):
        fit(apply, params, data, optax.sgd(0.1), batch=0, record_at=[1], key=jax.random.key(0))
