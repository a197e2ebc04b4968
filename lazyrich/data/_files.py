"""Loaders for datasets stored as local files in their standard formats. Nothing is downloaded.

Supported layouts (under the data directory from `--data-dir` or `LAZYRICH_DATA`):

- MNIST: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
  `t10k-labels-idx1-ubyte` (raw or `.gz`), in `DIR/mnist`, `DIR/MNIST/raw` or `DIR`.
- Fashion-MNIST: the same names, in `DIR/fashion-mnist`, `DIR/FashionMNIST/raw` or `DIR`.
- CIFAR-10: python pickles `data_batch_1` … `data_batch_5`, `test_batch`, in
  `DIR/cifar-10-batches-py` or `DIR`.
- CIFAR-5m: `cifar5m_part0.npz` … `cifar5m_part5.npz` (arrays `X` uint8 (n, 32, 32, 3), `Y`),
  in `DIR/cifar5m`, `DIR/cifar-5m` or `DIR`.

Images come back as float32 in `[0, 1]` (`uint8 / 255`), then, unless `standardize=False`,
standardised per channel with the *training* set's mean and standard deviation; shape
`(n, H, W, C)` channel-last (MNIST `(n, 28, 28, 1)`, CIFAR `(n, 32, 32, 3)`); labels int32.

NumPy, gzip, pickle and zipfile are used here only to read bytes; everything numeric is JAX.
Every failure is a one-line `DataError` naming the file and the fix.
"""

from __future__ import annotations

import gzip
import os
import pickle
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from ..errors import DataError, require
from ._dataset import Dataset

ENV_VAR = "LAZYRICH_DATA"

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/ (mirror of yann.lecun.com/exdb/mnist)"
FASHION_URL = "https://github.com/zalandoresearch/fashion-mnist (data/fashion/*.gz)"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (extract it)"
CIFAR5M_URL = "https://github.com/preetum/cifar5m"

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory: `data_dir` if given, else `$LAZYRICH_DATA`; it must exist.

    **Arguments:**

    - `data_dir`: a directory, or `None` / `""` to read `$LAZYRICH_DATA`; `~` is expanded.

    **Returns:** the directory as a `Path`.

    **Raises:** `DataError` if neither is set or the directory does not exist.
    """
    if data_dir is None or str(data_dir) == "":
        data_dir = os.environ.get(ENV_VAR) or None
    if data_dir is None:
        raise DataError(f"no data directory: pass --data-dir DIR or set {ENV_VAR}")
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise DataError(
            f"data directory {path} does not exist: pass --data-dir DIR or set {ENV_VAR} "
            "to an existing directory"
        )
    return path


def _find(root: Path, subdirs: Sequence[str], names: Sequence[str], what: str, url: str) -> Path:
    """First existing `root/sub/name` over subdirs × names, else a one-line `DataError`."""
    dirs = [root / s if s else root for s in subdirs]
    for d in dirs:
        for name in names:
            if (d / name).is_file():
                return d / name
    searched = ", ".join(str(d) for d in dirs)
    raise DataError(
        f"{what} file {names[0]} not found (searched {searched}): download it from {url} "
        f"into {dirs[0]}"
    )


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(
            f"corrupt file {path} ({type(err).__name__}): delete it and re-download"
        ) from None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or `.gz`), checking its magic number and length exactly.

    **Arguments:**

    - `path`: the file (read as gzip if its name ends in `.gz`).

    **Returns:** a NumPy array of the header's shape and dtype (uint8, int8, big-endian
    int16/int32/float32/float64), a read-only view of the file's bytes.

    **Raises:** `DataError` for an unreadable file, a bad magic number, a truncated header or a
    length that does not match the header.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES or data[3] < 1:
        raise DataError(f"corrupt file {path}: bad IDX magic number; delete it and re-download")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"corrupt file {path}: truncated IDX header; delete it and re-download")
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(
            f"corrupt file {path}: {len(data)} bytes but its header {shape} implies {expected} "
            "(truncated?); delete it and re-download"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(shape)


def _images(
    x_train: np.ndarray, x_test: np.ndarray, standardize: bool
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """uint8 (n, H, W, C) → float32 in [0, 1], then per-channel standardisation by train stats."""
    # a 256-entry table gives exactly float32(v) / float32(255) (XLA may turn a division by a
    # constant into a multiplication by its reciprocal, which is off by one ulp for some v)
    table = jnp.asarray(np.arange(256, dtype=np.float32) / np.float32(255.0))
    xtr, xte = table[jnp.asarray(x_train)], table[jnp.asarray(x_test)]
    if standardize:
        axes = tuple(range(xtr.ndim - 1))
        mean = jnp.mean(xtr, axis=axes)
        std = jnp.std(xtr, axis=axes)
        std = jnp.where(std > 0, std, 1.0)
        xtr, xte = (xtr - mean) / std, (xte - mean) / std
    return xtr, xte


def _labels(y: np.ndarray, path: Path, n: int, num_classes: int = 10) -> jnp.ndarray:
    y = np.asarray(y).reshape(-1)
    if y.shape[0] != n:
        raise DataError(
            f"corrupt file {path}: {y.shape[0]} labels for {n} images; delete it and re-download"
        )
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(
            f"corrupt file {path}: labels outside 0..{num_classes - 1}; delete it and re-download"
        )
    return jnp.asarray(y, dtype=jnp.int32)


def load_mnist(
    data_dir: str | os.PathLike | None = None, *, fashion: bool = False, standardize: bool = True
) -> Dataset:
    """MNIST (or Fashion-MNIST with `fashion=True`) from local IDX files.

    **Arguments:**

    - `data_dir`: the data directory (else `$LAZYRICH_DATA`); see the module table for where
      the four files are searched (raw or `.gz`).
    - `fashion`: load Fashion-MNIST instead.
    - `standardize`: standardise with the training mean/std (else values are `uint8/255`).

    **Returns:** `Dataset` named `"mnist"` / `"fashion-mnist"`, x `(n, 28, 28, 1)`, 10 classes.
    """
    root = resolve_data_dir(data_dir)
    what, url = ("Fashion-MNIST", FASHION_URL) if fashion else ("MNIST", MNIST_URL)
    subdirs = ("fashion-mnist", "FashionMNIST/raw", "") if fashion else ("mnist", "MNIST/raw", "")
    arrays = {}
    for split in ("train", "t10k"):
        for kind, dims in (("images-idx3", 3), ("labels-idx1", 1)):
            name = f"{split}-{kind}-ubyte"
            path = _find(root, subdirs, (name, name + ".gz"), what, url)
            # the other three files must sit where the first one was found
            rel = path.parent.relative_to(root).as_posix()
            subdirs = ("" if rel == "." else rel,)
            arr = read_idx(path)
            if arr.ndim != dims or arr.dtype != np.uint8:
                raise DataError(
                    f"corrupt file {path}: expected a {dims}-d uint8 IDX array, got "
                    f"{arr.ndim}-d {arr.dtype}; delete it and re-download"
                )
            arrays[(split, kind[:6])] = (arr, path)
    x_train, x_test = _images(
        arrays[("train", "images")][0][..., None],
        arrays[("t10k", "images")][0][..., None],
        standardize,
    )
    (ytr, ytr_path), (yte, yte_path) = arrays[("train", "labels")], arrays[("t10k", "labels")]
    y_train = _labels(ytr, ytr_path, x_train.shape[0])
    y_test = _labels(yte, yte_path, x_test.shape[0])
    name = "fashion-mnist" if fashion else "mnist"
    return Dataset(x_train, y_train, x_test, y_test, name=name, num_classes=10)


def _load_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, OSError, ValueError, TypeError, AttributeError,
            ImportError, IndexError, KeyError) as err:  # fmt: skip
        raise DataError(
            f"corrupt file {path} ({type(err).__name__}): delete it and re-extract"
        ) from None
    if not isinstance(batch, dict):
        raise DataError(f"corrupt file {path}: not a CIFAR-10 batch dict; delete it and re-extract")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise DataError(
            f"corrupt file {path}: no 'data'/'labels' entries; delete it and re-extract"
        )
    data = np.asarray(batch["data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(
            f"corrupt file {path}: data is {data.dtype} {data.shape}, expected uint8 (n, 3072); "
            "delete it and re-extract"
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, np.asarray(batch["labels"])


def load_cifar10(data_dir: str | os.PathLike | None = None, *, standardize: bool = True) -> Dataset:
    """CIFAR-10 from the python pickle batches (`cifar-10-batches-py/`).

    **Arguments:**

    - `data_dir`: the data directory (else `$LAZYRICH_DATA`); the batches are searched in
      `DIR/cifar-10-batches-py` and `DIR`.
    - `standardize`: standardise per channel with the training mean/std (else values are
      `uint8/255`).

    **Returns:** `Dataset` named `"cifar10"`, x `(n, 32, 32, 3)` (50000 train, 10000 test).
    """
    root = resolve_data_dir(data_dir)
    first = _find(root, ("cifar-10-batches-py", ""), ("data_batch_1",), "CIFAR-10", CIFAR10_URL)
    folder = "" if first.parent == root else "cifar-10-batches-py"
    xs, ys = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        path = _find(root, (folder,), (name,), "CIFAR-10", CIFAR10_URL)
        x, y = _load_cifar_batch(path)
        xs.append(x)
        ys.append(_labels(y, path, x.shape[0]))
    x_train, x_test = _images(np.concatenate(xs[:5]), xs[5], standardize)
    y_train = jnp.concatenate(ys[:5])
    return Dataset(x_train, y_train, x_test, ys[5], name="cifar10", num_classes=10)


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            x, y = z["X"], z["Y"]
    except KeyError:
        raise DataError(
            f"corrupt file {path}: no arrays 'X' and 'Y'; delete it and re-download"
        ) from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as err:
        raise DataError(
            f"corrupt file {path} ({type(err).__name__}): delete it and re-download"
        ) from None
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (32, 32, 3):
        raise DataError(
            f"corrupt file {path}: X is {x.dtype} {x.shape}, expected uint8 (n, 32, 32, 3); "
            "delete it and re-download"
        )
    return x, y


def load_cifar5m(
    data_dir: str | os.PathLike | None = None,
    *,
    parts: Sequence[int] = (0,),
    test_part: int = 5,
    n_train: int | None = None,
    n_test: int = 10000,
    standardize: bool = True,
) -> Dataset:
    """CIFAR-5m (Nakkiran et al. 2021) from `cifar5m_part{0..5}.npz` (arrays `X`, `Y`).

    The release has no test split. The training set is the concatenation of `parts` (in the
    given order, truncated to `n_train` if given, reading no more parts than needed); the test
    set is the first `n_test` images of `test_part`, which must not be among `parts`. Each part
    holds about 1M images (3 GB as uint8, 12 GB as float32): the default loads one part.

    **Arguments:**

    - `data_dir`: the data directory (else `$LAZYRICH_DATA`); the parts are searched in
      `DIR/cifar5m`, `DIR/cifar-5m` and `DIR`.
    - `parts`: training parts, distinct, in 0..5 (default `(0,)`).
    - `test_part`: the part the test set is cut from (default 5), not in `parts`.
    - `n_train`: training images (default: all of `parts`).
    - `n_test`: test images, the first of `test_part` (default 10000).
    - `standardize`: standardise per channel with the training mean/std (else `uint8/255`).

    **Raises:** `ConfigError` for parts out of range, repeated or containing `test_part`, or
    sizes the parts do not hold; `DataError` for a missing or corrupt file.

    **Returns:** `Dataset` named `"cifar5m"`, x `(n, 32, 32, 3)`, 10 classes.
    """
    parts = tuple(int(p) for p in parts)
    require(len(parts) >= 1, "cifar5m parts must name at least one of 0..5")
    require(all(0 <= p <= 5 for p in parts + (test_part,)), "cifar5m parts must be in 0..5")
    require(len(set(parts)) == len(parts), f"cifar5m parts {parts} repeat a part; list each once")
    require(
        test_part not in parts,
        f"cifar5m test_part {test_part} is also a training part; pick parts without it",
    )
    require(n_train is None or n_train >= 1, f"cifar5m n_train must be >= 1, got {n_train}")
    require(n_test >= 1, f"cifar5m n_test must be >= 1, got {n_test}")
    root = resolve_data_dir(data_dir)
    subdirs = ("cifar5m", "cifar-5m", "")

    xs, ys, have = [], [], 0
    for p in parts:
        path = _find(root, subdirs, (f"cifar5m_part{p}.npz",), "CIFAR-5m", CIFAR5M_URL)
        x, y = _load_npz(path)
        take = x.shape[0] if n_train is None else min(x.shape[0], n_train - have)
        xs.append(x[:take])
        ys.append(_labels(y, path, x.shape[0])[:take])
        have += take
        if n_train is not None and have >= n_train:
            break
    require(
        n_train is None or have >= n_train,
        f"cifar5m n_train={n_train} but parts {parts} hold only {have} images; add parts",
    )
    path = _find(root, subdirs, (f"cifar5m_part{test_part}.npz",), "CIFAR-5m", CIFAR5M_URL)
    xt, yt = _load_npz(path)
    y_test = _labels(yt, path, xt.shape[0])
    require(
        n_test <= xt.shape[0],
        f"cifar5m n_test={n_test} but part {test_part} holds {xt.shape[0]} images; lower n_test",
    )
    x_train, x_test = _images(np.concatenate(xs), xt[:n_test], standardize)
    return Dataset(
        x_train, jnp.concatenate(ys), x_test, y_test[:n_test], name="cifar5m", num_classes=10
    )
