"""Tests for lazyrich.data: Dataset, synthetic tasks, mnist1d, file loaders, batching."""

import gzip
import math
import pickle
import pickletools
import random
import struct

import chex
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import quad

from lazyrich.data import (
    LINKS,
    Dataset,
    SingleIndexTask,
    StaircaseTask,
    TeacherTask,
    batch_indices,
    epoch_batches,
    epoch_permutation,
    fixed_set,
    load_cifar5m,
    load_cifar10,
    load_dataset,
    load_mnist,
    make_task,
    mnist1d,
    num_batches,
    one_hot,
    online_batch,
    resolve_data_dir,
)
from lazyrich.errors import ConfigError, DataError

RNG = np.random.default_rng(0)

# Jitted wrappers: tests call these rather than the eager functions, so each check compiles
# once instead of dispatching (and compiling) dozens of small eager ops.
sample = eqx.filter_jit(lambda task, key, n: task.sample(key, n))
jit_online_batch = jax.jit(online_batch, static_argnums=3)
jit_batch_indices = jax.jit(batch_indices, static_argnums=(1, 2))
jit_epoch_permutation = jax.jit(epoch_permutation, static_argnums=1)
jit_epoch_batches = jax.jit(epoch_batches, static_argnums=(1, 2))


# ---------------------------------------------------------------- file writers (test fixtures)


def idx_bytes(arr: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def write_mnist(folder, n_train=12, n_test=5, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": RNG.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": RNG.integers(0, 10, (n_train,), dtype=np.uint8),
        "t10k-images-idx3-ubyte": RNG.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": RNG.integers(0, 10, (n_test,), dtype=np.uint8),
    }
    for name, arr in arrays.items():
        if gz:
            with gzip.open(folder / (name + ".gz"), "wb") as f:
                f.write(idx_bytes(arr))
        else:
            (folder / name).write_bytes(idx_bytes(arr))
    return arrays


def write_cifar10(folder, n_per_batch=4):
    folder.mkdir(parents=True, exist_ok=True)
    raw = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = RNG.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in RNG.integers(0, 10, n_per_batch)]
        with open(folder / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"data": data, b"labels": labels}, f)
        raw[name] = (data, labels)
    return raw


def write_cifar5m(folder, sizes=(6, 6, 6, 6, 6, 7)):
    folder.mkdir(parents=True, exist_ok=True)
    raw = []
    for p, n in enumerate(sizes):
        x = RNG.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        y = RNG.integers(0, 10, n).astype(np.int64)
        np.savez(folder / f"cifar5m_part{p}.npz", X=x, Y=y)
        raw.append((x, y))
    return raw


def f32_scaled(u8):
    return np.asarray(u8, np.float32) / np.float32(255.0)


def one_line_error(exc_info, *fragments):
    msg = str(exc_info.value)
    assert "\n" not in msg, msg
    for frag in fragments:
        assert frag in msg, (frag, msg)
    return msg


# ---------------------------------------------------------------- Dataset


def small_classification(n_train=200, n_test=30, classes=10):
    x = jnp.arange(n_train * 3, dtype=jnp.float32).reshape(n_train, 3)
    xt = -jnp.arange(n_test * 3, dtype=jnp.float32).reshape(n_test, 3)
    y = jnp.arange(n_train, dtype=jnp.int32) % classes
    yt = jnp.arange(n_test, dtype=jnp.int32) % classes
    return Dataset(x, y, xt, yt, name="toy", num_classes=classes)


def test_dataset_properties_and_one_hot():
    ds = small_classification()
    assert (ds.n_train, ds.n_test, ds.input_shape, ds.out_dim) == (200, 30, (3,), 10)
    t = ds.targets(ds.y_train[:4])
    np.testing.assert_array_equal(np.asarray(t), np.eye(10)[[0, 1, 2, 3]])
    np.testing.assert_array_equal(np.asarray(one_hot(jnp.array([2, 0]), 3)), [[0, 0, 1], [1, 0, 0]])
    reg = Dataset(
        jnp.zeros((5, 2)),
        jnp.ones((5, 4)),
        jnp.zeros((3, 2)),
        jnp.ones((3, 4)),
        name="r",
        num_classes=0,
    )
    assert reg.out_dim == 4 and reg.targets(reg.y_train) is reg.y_train
    with pytest.raises(ConfigError):
        Dataset(
            jnp.zeros((5, 2)),
            jnp.ones((4,)),
            jnp.zeros((3, 2)),
            jnp.ones((3,)),
            name="bad",
            num_classes=2,
        )
    # a Dataset is a pytree: it goes through jit
    assert float(jax.jit(lambda d: d.x_train.sum())(ds)) == float(ds.x_train.sum())


def test_subset_and_binary():
    ds = small_classification()
    sub = ds.subset(17, 4)
    assert (sub.n_train, sub.n_test) == (17, 4)
    np.testing.assert_array_equal(sub.x_train, ds.x_train[:17])
    with pytest.raises(ConfigError, match="pass 1 <= n_train <= 200"):
        ds.subset(201)
    b = ds.binary(4)
    assert b.num_classes == 2
    np.testing.assert_array_equal(b.y_train, (np.arange(200) % 10 > 4).astype(np.int32))
    np.testing.assert_array_equal(b.y_test, (np.arange(30) % 10 > 4).astype(np.int32))


def test_label_noise():
    ds = small_classification(n_train=1000)
    noisy = ds.with_label_noise(0.3, key=jax.random.PRNGKey(1))
    changed = np.asarray(noisy.y_train != ds.y_train)
    # 300 labels redrawn uniformly over 10 classes: ~270 change; all within 0..9; test set clean
    assert 220 <= changed.sum() <= 300
    assert noisy.y_train.min() >= 0 and noisy.y_train.max() <= 9
    np.testing.assert_array_equal(noisy.y_test, ds.y_test)
    np.testing.assert_array_equal(noisy.x_train, ds.x_train)
    again = ds.with_label_noise(0.3, key=jax.random.PRNGKey(1))
    np.testing.assert_array_equal(again.y_train, noisy.y_train)
    other = ds.with_label_noise(0.3, key=jax.random.PRNGKey(2))
    assert not np.array_equal(other.y_train, noisy.y_train)
    with pytest.raises(ConfigError):
        ds.with_label_noise(1.5, key=jax.random.PRNGKey(1))


# ---------------------------------------------------------------- synthetic tasks


def test_staircase_exact_formula():
    task = StaircaseTask(5, degree=3)
    x = jnp.array(
        [[1.0, 2.0, 3.0, 7.0, 7.0], [2.0, -1.0, 0.5, 0.0, 9.0], [0.0, 5.0, 5.0, 5.0, 5.0]]
    )
    # x1 + x1 x2 + x1 x2 x3
    expected = [[1 + 2 + 6], [2 - 2 - 1], [0.0]]
    np.testing.assert_allclose(np.asarray(task.target(x)), expected, rtol=1e-6)
    four = StaircaseTask(4, degree=4).target(jnp.array([[1.0, 2.0, 3.0, 4.0]]))
    np.testing.assert_allclose(np.asarray(four), [[1 + 2 + 6 + 24]], rtol=1e-6)
    x, y = sample(task, jax.random.PRNGKey(0), 50000)
    assert x.shape == (50000, 5) and y.shape == (50000, 1)
    assert abs(np.asarray(y, np.float64).var() - 3.0) < 0.15  # three orthogonal unit-variance terms
    with pytest.raises(ConfigError):
        StaircaseTask(2, degree=3)


def test_single_index_links():
    task = SingleIndexTask(8, link="he3", key=jax.random.PRNGKey(3))
    np.testing.assert_allclose(float(jnp.linalg.norm(task.w)), 1.0, rtol=1e-6)
    x = jnp.array([[0.5] * 8, [-1.0] * 8])
    z = np.asarray(x @ task.w)
    np.testing.assert_allclose(
        np.asarray(task.target(x))[:, 0], (z**3 - 3 * z) / math.sqrt(6), rtol=1e-5
    )
    # every named link has mean 0 and variance 1 under N(0, 1): Gauss-Hermite quadrature oracle
    nodes, weights = np.polynomial.hermite_e.hermegauss(120)
    weights = weights / weights.sum()
    all_links = jax.jit(lambda z: {k: f(z) for k, f in LINKS.items()})(
        jnp.asarray(nodes, jnp.float32)
    )
    for name in LINKS:
        if name == "relu":
            continue  # kink: checked by exact integrals below
        v = np.asarray(all_links[name], np.float64)
        assert abs(weights @ v) < 1e-4 and abs(weights @ v**2 - 1) < 1e-4, name
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    jrelu = jax.jit(LINKS["relu"])
    relu = lambda z: float(jrelu(jnp.float32(z)))  # noqa: E731
    mean = quad(lambda z: relu(z) * phi(z), -12, 0)[0] + quad(lambda z: relu(z) * phi(z), 0, 12)[0]
    second = (
        quad(lambda z: relu(z) ** 2 * phi(z), -12, 0)[0]
        + quad(lambda z: relu(z) ** 2 * phi(z), 0, 12)[0]
    )
    assert abs(mean) < 1e-5 and abs(second - 1) < 1e-5
    with pytest.raises(ConfigError, match="unknown link"):
        SingleIndexTask(4, link="cubic", key=jax.random.PRNGKey(0))


def test_teacher_unit_variance_and_noise():
    task = TeacherTask(16, out_dim=2, depth=2, width=64, key=jax.random.PRNGKey(0), n_estimate=8192)
    x, y = sample(task, jax.random.PRNGKey(11), 20000)
    assert x.shape == (20000, 16) and y.shape == (20000, 2)
    y = np.asarray(y, np.float64)
    np.testing.assert_allclose(y.var(axis=0), [1.0, 1.0], atol=0.08)
    np.testing.assert_allclose(y.mean(axis=0), [0.0, 0.0], atol=0.05)
    # the raw teacher output is far from mean 0 / variance 1, so the normalisation matters
    raw = np.asarray(eqx.filter_jit(lambda t, x: t.teacher(x))(task, x), np.float64)
    assert np.abs(raw.var(axis=0) - 1).max() > 0.2 or np.abs(raw.mean(axis=0)).max() > 0.2
    # oracle: y is the raw teacher standardised with the construction-time estimates
    ref = (raw - np.asarray(task.shift)) / np.asarray(task.scale)
    np.testing.assert_allclose(ref, y, rtol=1e-4, atol=1e-4)
    # same shapes and key: the build is a cache hit and the teacher is the same one
    noisy = TeacherTask(
        16, out_dim=2, width=64, noise=0.5, key=jax.random.PRNGKey(0), n_estimate=8192
    )
    xn, yn = sample(noisy, jax.random.PRNGKey(11), 20000)
    clean = eqx.filter_jit(lambda t, x: t.target(x))(noisy, xn)
    resid = np.asarray(yn - clean, np.float64)
    assert abs(resid.std() - 0.5) < 0.02 and abs(resid.mean()) < 0.02
    assert abs(np.asarray(yn, np.float64).var() - 1.25) < 0.1


def test_teacher_is_the_ntk_mlp_of_the_same_key():
    """The teacher's plain weight arrays give the function (and numbers) of the former
    construction, `MLP(..., parameterization="ntk")` from the first half of the key."""
    from lazyrich.models import MLP

    key = jax.random.PRNGKey(3)
    for act, depth in (("relu", 2), ("tanh", 1), ("erf", 3)):
        task = TeacherTask(5, out_dim=2, depth=depth, width=7, activation=act, key=key,
                           n_estimate=64)  # fmt: skip
        mlp = MLP(5, 7, depth, 2, activation=act, parameterization="ntk",
                  key=jax.random.split(key)[0])  # fmt: skip
        x = jax.random.normal(jax.random.PRNGKey(4), (9, 5))
        for lay, w in zip(mlp.layers, task.weights, strict=True):
            np.testing.assert_array_equal(lay.weight, w)
        chex.assert_trees_all_close(task.teacher(x), mlp(x), rtol=1e-6, atol=1e-7)
    with pytest.raises(ConfigError, match="unknown activation"):
        TeacherTask(5, activation="gelu", key=key)


def test_online_batches_deterministic_jittable_vmappable():
    task = make_task("single-index", 6, key=jax.random.PRNGKey(0), link="he2")
    key = jax.random.PRNGKey(5)
    a = jit_online_batch(task, key, 3, 8)
    assert a[0].shape == (8, 6) and a[1].shape == (8, 1)
    chex.assert_trees_all_equal(a, jit_online_batch(task, jax.random.PRNGKey(5), 3, 8))
    assert not np.allclose(a[0], jit_online_batch(task, key, 4, 8)[0])  # next step differs
    assert not np.allclose(a[0], jit_online_batch(task, jax.random.PRNGKey(6), 3, 8)[0])  # seed
    # under vmap over run keys, and inside lax.scan with a traced step: same batches as one call
    keys = jax.random.split(key, 3)

    @jax.jit
    def batched(keys):
        per_run = jax.vmap(lambda k: online_batch(task, k, 3, 8))(keys)
        scanned = jax.lax.scan(lambda c, t: (c, online_batch(task, key, t, 8)), None, jnp.arange(5))
        return per_run, scanned[1], task.sample(jax.random.fold_in(key, 3), 8)

    (xs, ys), (sx, sy), by_definition = batched(keys)
    chex.assert_trees_all_close(a, by_definition, atol=1e-6)
    chex.assert_trees_all_close((xs[1], ys[1]), jit_online_batch(task, keys[1], 3, 8), atol=1e-6)
    chex.assert_trees_all_close((sx[3], sy[3]), a, atol=1e-6)


def test_fixed_set_and_factory():
    task = make_task("staircase", 4, key=jax.random.PRNGKey(0), degree=2)
    ds = fixed_set(task, 10, 5, key=jax.random.PRNGKey(1))
    assert ds.num_classes == 0 and ds.out_dim == 1 and ds.name == "staircase"
    np.testing.assert_allclose(ds.y_train, task.target(ds.x_train), rtol=1e-6)
    ds2 = load_dataset("single-index", n_train=20, n_test=7, seed=3, dim=5)
    assert ds2.x_train.shape == (20, 5) and ds2.y_test.shape == (7, 1)
    ds3 = load_dataset("single-index", n_train=20, n_test=7, seed=3, dim=5)
    np.testing.assert_array_equal(ds2.y_train, ds3.y_train)
    with pytest.raises(ConfigError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")
    with pytest.raises(ConfigError, match="unknown synthetic task"):
        make_task("nope", 3, key=jax.random.PRNGKey(0))
    with pytest.raises(ConfigError, match="bad option"):
        make_task("staircase", 3, key=jax.random.PRNGKey(0), width=3)


# ---------------------------------------------------------------- batching


def test_epoch_batches_cover_each_index_once():
    # n divisible by b: 3 epochs of 4 steps under lax.scan with a traced step
    n, b, key = 20, 5, jax.random.PRNGKey(1)
    nb = num_batches(n, b)
    assert nb == 4
    run = jax.jit(
        lambda k: jax.lax.scan(lambda c, t: (c, batch_indices(k, n, b, t)), None, jnp.arange(12))[1]
    )
    a = np.asarray(run(key))
    assert a.shape == (12, 5)
    for epoch in range(3):
        rows = a[epoch * nb : (epoch + 1) * nb]
        np.testing.assert_array_equal(np.sort(rows.ravel()), np.arange(n))  # each index once
        np.testing.assert_array_equal(rows, jit_epoch_batches(key, n, b, epoch))
    assert not np.array_equal(a[:4], a[4:8])  # epochs are reshuffled
    for t in (0, 5, 11):
        np.testing.assert_array_equal(a[t], jit_batch_indices(key, n, b, t))  # Python step
    np.testing.assert_array_equal(a, run(jax.random.PRNGKey(1)))  # same seed, same batches
    assert not np.array_equal(a, run(jax.random.PRNGKey(2)))  # different seed, different
    # remainder: 23 = 4 · 5 + 3, the last 3 of each epoch's permutation are dropped
    for epoch in range(2):
        perm = np.asarray(jit_epoch_permutation(key, 23, epoch))
        np.testing.assert_array_equal(np.sort(perm), np.arange(23))
        np.testing.assert_array_equal(
            np.asarray(jit_epoch_batches(key, 23, 5, epoch)).ravel(), perm[:20]
        )


def test_batching_validation():
    with pytest.raises(ConfigError, match="batch size must be an int >= 1"):
        num_batches(10, 0)
    with pytest.raises(ConfigError, match="exceeds the 10 training examples"):
        batch_indices(jax.random.PRNGKey(0), 10, 11, 0)


# ---------------------------------------------------------------- file loaders


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("sub", ["mnist", "MNIST/raw", ""])
def test_mnist_idx_round_trip(tmp_path, gz, sub):
    raw = write_mnist(tmp_path / sub if sub else tmp_path, gz=gz)
    ds = load_mnist(tmp_path, standardize=False)
    assert ds.x_train.shape == (12, 28, 28, 1) and ds.x_test.shape == (5, 28, 28, 1)
    assert ds.x_train.dtype == jnp.float32 and ds.y_train.dtype == jnp.int32
    np.testing.assert_array_equal(
        np.asarray(ds.x_train[..., 0]), f32_scaled(raw["train-images-idx3-ubyte"])
    )
    np.testing.assert_array_equal(
        np.asarray(ds.x_test[..., 0]), f32_scaled(raw["t10k-images-idx3-ubyte"])
    )
    np.testing.assert_array_equal(ds.y_train, raw["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(ds.y_test, raw["t10k-labels-idx1-ubyte"])
    std = load_mnist(tmp_path)
    s = f32_scaled(raw["train-images-idx3-ubyte"]).astype(np.float64)
    ref = (f32_scaled(raw["t10k-images-idx3-ubyte"]) - s.mean()) / s.std()
    np.testing.assert_allclose(np.asarray(std.x_test[..., 0]), ref, rtol=1e-4, atol=1e-5)
    assert abs(float(std.x_train.mean())) < 1e-5 and abs(float(std.x_train.std()) - 1) < 1e-4


def test_fashion_mnist_and_env_var(tmp_path, monkeypatch):
    raw = write_mnist(tmp_path / "fashion-mnist", gz=True)
    write_mnist(tmp_path / "mnist")  # must not be picked up as Fashion-MNIST
    monkeypatch.setenv("LAZYRICH_DATA", str(tmp_path))
    ds = load_dataset("fashion-mnist", standardize=False, n_train=7)
    assert ds.name == "fashion-mnist" and ds.n_train == 7
    np.testing.assert_array_equal(ds.y_train, raw["train-labels-idx1-ubyte"][:7])


def test_missing_directory_and_files(tmp_path, monkeypatch):
    monkeypatch.delenv("LAZYRICH_DATA", raising=False)
    with pytest.raises(DataError) as e:
        resolve_data_dir(None)
    assert str(e.value) == "no data directory: pass --data-dir DIR or set LAZYRICH_DATA"
    with pytest.raises(DataError) as e:
        load_mnist(tmp_path / "nowhere")
    one_line_error(e, "nowhere", "does not exist", "--data-dir")
    with pytest.raises(DataError) as e:
        load_mnist(tmp_path)
    one_line_error(
        e,
        "train-images-idx3-ubyte",
        str(tmp_path / "mnist"),
        str(tmp_path / "MNIST/raw"),
        "https://",
    )
    with pytest.raises(DataError) as e:
        load_cifar10(tmp_path)
    one_line_error(e, "data_batch_1", "cifar-10-batches-py", "cifar-10-python.tar.gz")
    with pytest.raises(DataError) as e:
        load_cifar5m(tmp_path)
    one_line_error(e, "cifar5m_part0.npz", str(tmp_path), "github.com/preetum/cifar5m")
    # one file missing from an otherwise complete set
    write_mnist(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError) as e:
        load_mnist(tmp_path)
    one_line_error(e, "t10k-labels-idx1-ubyte", "not found", str(tmp_path / "mnist"))


def test_corrupt_and_truncated_files(tmp_path):
    raw = write_mnist(tmp_path / "mnist")
    path = tmp_path / "mnist" / "train-images-idx3-ubyte"
    good = path.read_bytes()
    path.write_bytes(good[:-7])  # truncated
    with pytest.raises(DataError) as e:
        load_mnist(tmp_path)
    one_line_error(e, "corrupt file", str(path), "truncated")
    path.write_bytes(b"\x12\x34" + good[2:])  # bad magic number
    with pytest.raises(DataError) as e:
        load_mnist(tmp_path)
    one_line_error(e, "corrupt file", str(path), "magic")
    path.unlink()
    gz = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(good)[:-20])  # truncated gzip stream
    with pytest.raises(DataError) as e:
        load_mnist(tmp_path)
    one_line_error(e, "corrupt file", str(gz))
    gz.write_bytes(b"not a gzip file at all")
    with pytest.raises(DataError) as e:
        load_mnist(tmp_path)
    one_line_error(e, "corrupt file", str(gz))
    # label count disagrees with image count
    gz.unlink()
    path.write_bytes(good)
    (tmp_path / "mnist" / "train-labels-idx1-ubyte").write_bytes(
        idx_bytes(raw["train-labels-idx1-ubyte"][:3])
    )
    with pytest.raises(DataError) as e:
        load_mnist(tmp_path)
    one_line_error(e, "corrupt file", "3 labels for 12 images")
    # CIFAR-10: garbage and truncated pickles
    write_cifar10(tmp_path / "cifar-10-batches-py")
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    whole = batch.read_bytes()
    batch.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError) as e:
        load_cifar10(tmp_path)
    one_line_error(e, "corrupt file", str(batch))
    batch.write_bytes(b"garbage")
    with pytest.raises(DataError) as e:
        load_cifar10(tmp_path)
    one_line_error(e, "corrupt file", str(batch))
    # CIFAR-5m: truncated zip, missing arrays
    write_cifar5m(tmp_path / "cifar5m")
    part = tmp_path / "cifar5m" / "cifar5m_part0.npz"
    part.write_bytes(part.read_bytes()[:100])
    with pytest.raises(DataError) as e:
        load_cifar5m(tmp_path)
    one_line_error(e, "corrupt file", str(part))
    np.savez(part, A=np.zeros(3))
    with pytest.raises(DataError) as e:
        load_cifar5m(tmp_path)
    one_line_error(e, "corrupt file", str(part), "'X'")


def test_cifar10_round_trip(tmp_path):
    raw = write_cifar10(tmp_path / "cifar-10-batches-py")
    ds = load_cifar10(tmp_path, standardize=False)
    assert ds.x_train.shape == (20, 32, 32, 3) and ds.x_test.shape == (4, 32, 32, 3)
    # oracle: the channel-major row layout of the pickle, pixel by pixel
    data = raw["data_batch_2"][0]
    x = np.asarray(ds.x_train)
    for n, h, w, c in [(0, 0, 0, 0), (1, 5, 7, 2), (3, 31, 30, 1), (2, 16, 0, 2)]:
        assert x[4 + n, h, w, c] == np.float32(data[n, c * 1024 + h * 32 + w]) / np.float32(255)
    np.testing.assert_array_equal(ds.y_test, raw["test_batch"][1])
    np.testing.assert_array_equal(
        ds.y_train, sum((raw[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    )
    std = load_cifar10(tmp_path)
    np.testing.assert_allclose(np.asarray(std.x_train.mean(axis=(0, 1, 2))), 0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(std.x_train.std(axis=(0, 1, 2))), 1, atol=1e-4)
    assert std.x_train.std(axis=(0, 1, 2)).shape == (3,)


@pytest.mark.parametrize("layout", ["python2", "protocol2", "default"])
def test_cifar10_genuine_format_round_trip(tmp_path, layout):
    """Batches laid out as the official python 2 files (protocol 2, python 2 strings, the
    numpy.core globals), and as python 3 pickles of the same dict at protocol 2 (bytes through
    `_codecs.encode`) and the default protocol, load bit for bit through the restricted
    unpickler; the standard unpickler is the oracle for what the bytes hold."""
    from lazyrich.data._unpickle import load_batch
    from tests.test_loader_fuzz import CIFAR_NAMES, cifar_batch_dict, python2_cifar_batch

    rng = np.random.default_rng(7)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = {}
    for name in CIFAR_NAMES:
        b = batches[name] = cifar_batch_dict(rng, name, 4)
        if layout == "python2":
            data = python2_cifar_batch(b[b"batch_label"], b[b"labels"], b[b"data"], b[b"filenames"])
            ops = list(pickletools.genops(data))
            names = {op.name for op, _, _ in ops}
            assert data[:2] == b"\x80\x02"
            assert {"SHORT_BINSTRING", "BINSTRING"} <= names  # python 2 str, read as bytes
            assert not names & {"BINUNICODE", "SHORT_BINBYTES", "BINBYTES", "STACK_GLOBAL"}
            found = [a for op, a, _ in ops if op.name == "GLOBAL"]
            assert found == ["numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"]
        else:
            data = pickle.dumps(b, protocol=2 if layout == "protocol2" else None)
        oracle = pickle.loads(data, encoding="bytes")
        assert set(oracle) == set(b) and oracle[b"labels"] == b[b"labels"]
        np.testing.assert_array_equal(oracle[b"data"], b[b"data"])
        ours = load_batch(data)
        assert set(ours) == set(b)
        assert ours[b"data"].dtype == np.uint8 and ours[b"data"].shape == (4, 3072)
        assert ours[b"data"].tobytes() == b[b"data"].tobytes()
        assert ours[b"labels"] == b[b"labels"] and ours[b"filenames"] == b[b"filenames"]
        assert ours[b"batch_label"] == b[b"batch_label"]
        (folder / name).write_bytes(data)
    ds = load_cifar10(tmp_path, standardize=False)

    def images(name):  # channel-major rows -> (n, 32, 32, 3)
        return batches[name][b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)

    train = np.concatenate([images(n) for n in CIFAR_NAMES[:5]])
    np.testing.assert_array_equal(np.asarray(ds.x_train), f32_scaled(train))
    np.testing.assert_array_equal(np.asarray(ds.x_test), f32_scaled(images("test_batch")))
    np.testing.assert_array_equal(
        ds.y_train, sum((batches[n][b"labels"] for n in CIFAR_NAMES[:5]), [])
    )
    np.testing.assert_array_equal(ds.y_test, batches["test_batch"][b"labels"])


def test_cifar5m_round_trip(tmp_path):
    raw = write_cifar5m(tmp_path / "cifar5m")
    ds = load_cifar5m(tmp_path, parts=(2, 0), n_test=4, standardize=False)
    np.testing.assert_array_equal(
        np.asarray(ds.x_train), f32_scaled(np.concatenate([raw[2][0], raw[0][0]]))
    )
    np.testing.assert_array_equal(ds.y_train, np.concatenate([raw[2][1], raw[0][1]]))
    np.testing.assert_array_equal(np.asarray(ds.x_test), f32_scaled(raw[5][0][:4]))
    np.testing.assert_array_equal(ds.y_test, raw[5][1][:4])
    cut = load_cifar5m(tmp_path, parts=(0, 1, 2), n_train=8, n_test=2, standardize=False)
    np.testing.assert_array_equal(cut.y_train, np.concatenate([raw[0][1], raw[1][1][:2]]))
    with pytest.raises(ConfigError, match="also a training part"):
        load_cifar5m(tmp_path, parts=(0, 5))
    with pytest.raises(ConfigError, match="hold only 6 images"):
        load_cifar5m(tmp_path, parts=(0,), n_train=7, n_test=2)


# ---------------------------------------------------------------- mnist1d


def test_mnist1d_small():
    np_state, py_state = np.random.get_state()[1].copy(), random.getstate()  # noqa: NPY002
    ds = mnist1d(150, 50, seed=1)
    assert np.array_equal(np.random.get_state()[1], np_state) and random.getstate() == py_state  # noqa: NPY002
    assert (
        ds.x_train.shape == (150, 40)
        and ds.x_test.shape == (50, 40)
        and ds.x_train.dtype == jnp.float32
    )
    assert ds.num_classes == 10 and ds.name == "mnist1d"
    labels = np.asarray(jnp.concatenate([ds.y_train, ds.y_test]))
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), [20] * 10)  # 20 per class
    assert abs(float(ds.x_train.mean())) < 1e-5 and abs(float(ds.x_train.std()) - 1) < 1e-4
    from lazyrich.data._mnist1d import _generate

    _generate.cache_clear()  # regenerate from scratch: determinism is not just the cache
    again = mnist1d(150, 50, seed=1)
    np.testing.assert_array_equal(again.x_train, ds.x_train)
    np.testing.assert_array_equal(again.y_test, ds.y_test)
    other = mnist1d(150, 50, seed=2)
    assert not np.allclose(other.x_train, ds.x_train)
