"""Sharding the run axis over devices, and splitting a sweep over processes."""

import jax
import numpy as np
import pytest

from lazyrich.errors import ConfigError
from lazyrich.train import Grid
from lazyrich.train._distributed import default_devices
from tests.test_sweep import sweep


def test_sharded_over_four_devices_equals_one_device():
    """Same runs, same numbers. Not bit for bit on CPU: XLA's CPU kernels differ in the last
    float32 bit between a 4-device and a 1-device program (measured: at most 7e-9 absolute on
    losses of order 0.1); divergence flags, accuracies and steps are identical."""
    assert len(jax.devices()) == 4, "conftest forces 4 host devices"
    grid = Grid.of([0.3, 3.0, 30.0], [0.01, 0.1], [0, 1])
    one = sweep(grid, [3, 12], chunk_size=8, devices=jax.devices()[:1])
    four = sweep(grid, [3, 12], chunk_size=8, devices=jax.devices())
    assert (one.attrs["devices"], four.attrs["devices"]) == (1, 4)
    for k in ("diverged", "diverged_step", "test_accuracy", "step"):
        np.testing.assert_array_equal(one[k], four[k], err_msg=k)
    for k in ("train_loss", "test_loss"):
        np.testing.assert_allclose(one[k], four[k], rtol=1e-6, atol=0, err_msg=k)


def test_device_limit(tmp_path):
    assert len(default_devices()) == 1  # CPU: one device unless asked
    assert len(default_devices(3)) == 3
    with pytest.raises(ConfigError, match="--devices must be >= 1"):
        default_devices(0)
    # `--devices N` reaches the engine as train's argument (the CLI passes it to the study)
    import optax

    from lazyrich.data import load_dataset
    from lazyrich.models import MLP
    from lazyrich.results import StudyDir
    from lazyrich.train import train

    data = load_dataset("teacher", n_train=32, n_test=16, dim=4)
    model = MLP(4, 8, 2, 1, key=jax.random.key(1))
    grid = Grid.product(seed=[0, 1, 2, 3])

    def attrs(name, devices=None):
        store = StudyDir(tmp_path, name).prepare()
        ds = train(model, optax.sgd(0.1), data, batch=8, record_at=[2], grid=grid, store=store,
                   devices=default_devices(devices), progress=False)  # fmt: skip
        return ds.attrs["devices"]  # pyright: ignore[reportAttributeAccessIssue]

    assert (attrs("a", 2), attrs("b")) == (2, 1)
