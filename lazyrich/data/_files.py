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

Every file is untrusted (a mirror or a shared directory may hold anything), so:

- **No code runs.** A CIFAR-10 batch is read by the restricted unpickler of `_unpickle`: it
  accepts only the few numpy globals a genuine batch refers to, never imports or calls them
  (our own checked rebuild makes the array), and refuses any other global by name. `.npz`
  arrays are read with our own checks, never with pickling allowed.
- **No allocation beyond the file's real size.** Declared sizes are checked before anything is
  allocated: an IDX header's shape × itemsize against the file's size; a pickle's
  length-prefixed strings, memo indices and array shapes against the bytes that remain; an
  `.npy` header's shape against its zip member, and the member's sizes against the zip's
  (stored or deflated members only). A compressed file (`.gz`, a deflated `.npz` member) is
  decompressed in chunks and never beyond the size its header declares, and a header that
  declares more than deflate can expand the file's real size to (1032:1) is refused first.

NumPy, gzip, pickle and zipfile are used here only to read bytes; everything numeric is JAX.
Every failure is a one-line `DataError` naming the file and the fix.
"""

from __future__ import annotations

import gzip
import math
import os
import pickle
import struct
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import jax.numpy as jnp
import numpy as np

from ..errors import DataError, require
from ._dataset import Dataset
from ._unpickle import Refused, load_batch, shown

ENV_VAR = "LAZYRICH_DATA"

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/ (mirror of yann.lecun.com/exdb/mnist)"
FASHION_URL = "https://github.com/zalandoresearch/fashion-mnist (data/fashion/*.gz)"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (extract it)"
CIFAR5M_URL = "https://github.com/preetum/cifar5m"

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# deflate emits at least 2 bits per 258-byte match: no stream expands by more than this
_DEFLATE_MAX_RATIO = 1032
_CHUNK = 1 << 22  # bytes decompressed per read
# what a malformed file can make the parsers raise (all of them mean "corrupt file")
_PARSE_ERRORS = (
    OSError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, OverflowError,
    RuntimeError, struct.error, zlib.error, zipfile.BadZipFile, zipfile.LargeZipFile,
    pickle.UnpicklingError,
)  # fmt: skip


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


def _corrupt(path: Path, what: str, fix: str = "delete it and re-download") -> DataError:
    return DataError(f"corrupt file {path}: {what}; {fix}")


def _read_upto(f: BinaryIO, n: int) -> bytes | bytearray:
    """Up to `n` bytes of `f`, read in chunks so that memory grows only with real data."""
    if n <= _CHUNK:
        return f.read(n)
    buf = bytearray()
    while len(buf) < n:
        chunk = f.read(min(_CHUNK, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    return buf


def _read_idx_stream(f: BinaryIO, path: Path, size: int, compressed: bool) -> np.ndarray:
    """Parse an IDX stream whose file holds `size` bytes (compressed or not)."""
    magic = f.read(4)
    if len(magic) < 4 or magic[0] or magic[1] or magic[2] not in _IDX_DTYPES or magic[3] < 1:
        raise _corrupt(path, "bad IDX magic number")
    ndim = magic[3]
    dims = f.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise _corrupt(path, "truncated IDX header")
    shape = struct.unpack(f">{ndim}I", dims)
    shown_shape = shown(shape)
    dtype = np.dtype(_IDX_DTYPES[magic[2]])
    nbytes = math.prod(shape) * dtype.itemsize  # python ints: no overflow
    total = 4 + 4 * ndim + nbytes
    if not compressed and total != size:
        hint = "truncated?" if size < total else "trailing data?"
        raise _corrupt(
            path, f"{size} bytes but its header {shown_shape} implies {shown(total)} ({hint})"
        )
    if compressed and total > _DEFLATE_MAX_RATIO * size:
        raise _corrupt(
            path,
            f"its header {shown_shape} implies {shown(total)} bytes, more than a {size}-byte "
            ".gz file can hold",
        )
    body = _read_upto(f, nbytes)
    if len(body) != nbytes:
        got = 4 + 4 * ndim + len(body)
        raise _corrupt(
            path, f"{got} bytes but its header {shown_shape} implies {shown(total)} (truncated?)"
        )
    if f.read(1):
        raise _corrupt(path, f"longer than the {total} bytes its header {shown_shape} implies")
    return np.frombuffer(body, dtype).reshape(shape)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or `.gz`), checking its magic number and length exactly.

    The header's shape × itemsize is checked against the file's real size before anything is
    allocated; a `.gz` file is decompressed in chunks, never beyond what its header declares
    (one byte more shows trailing data), and refused unread if the header declares more than
    deflate can expand the file to.

    **Arguments:**

    - `path`: the file (read as gzip if its name ends in `.gz`).

    **Returns:** a NumPy array of the header's shape and dtype (uint8, int8, big-endian
    int16/int32/float32/float64), read-only.

    **Raises:** `DataError` for an unreadable file, a bad magic number, a truncated header, a
    length that does not match the header, or a broken gzip stream.
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            size = os.fstat(raw.fileno()).st_size
            if path.suffix != ".gz":
                return _read_idx_stream(raw, path, size, compressed=False)
            with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                return _read_idx_stream(f, path, size, compressed=True)  # type: ignore[arg-type]
    except (OSError, EOFError, zlib.error) as err:
        raise _corrupt(path, f"{type(err).__name__}: {shown(str(err))}") from None


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


def _unpickle_batch(path: Path) -> Any:
    """The object in a CIFAR-10 batch, read by the restricted unpickler of `_unpickle`."""
    try:
        batch = load_batch(path.read_bytes())
    except Refused as err:
        raise _corrupt(
            path,
            f"not a CIFAR-10 batch: {err}",
            f"re-download it from the official archive {CIFAR10_URL}",
        ) from None
    except _PARSE_ERRORS as err:
        raise _corrupt(
            path, f"{type(err).__name__}: {shown(str(err))}", "delete it and re-extract"
        ) from None
    return batch


def _load_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle_batch(path)
    if not isinstance(batch, dict):
        raise _corrupt(path, "not a CIFAR-10 batch dict", "delete it and re-extract")
    batch = {k.decode("latin-1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise _corrupt(path, "no 'data'/'labels' entries", "delete it and re-extract")
    data, labels = batch["data"], batch["labels"]
    data = data if isinstance(data, np.ndarray) else None
    if data is None or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        found = "not an array" if data is None else f"{data.dtype} {data.shape}"
        raise _corrupt(
            path, f"data is {found}, expected uint8 (n, 3072)", "delete it and re-extract"
        )
    if isinstance(labels, np.ndarray) and labels.dtype.kind in "iu":
        pass
    elif isinstance(labels, list) and all(type(v) is int and 0 <= v < 10 for v in labels):
        labels = np.asarray(labels, dtype=np.int64)
    else:
        raise _corrupt(
            path, "labels are not a list of integers in 0..9", "delete it and re-extract"
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels


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


# ---------------------------------------------------------------- CIFAR-5m: .npz without pickles


def _read_npy_member(zf: zipfile.ZipFile, name: str, path: Path, size: int) -> np.ndarray:
    """Array `name` of an open `.npz`, its sizes checked against the zip's before reading."""
    try:
        info = zf.getinfo(f"{name}.npy")
    except KeyError:
        raise _corrupt(path, "no arrays 'X' and 'Y'") from None
    stored = info.compress_type == zipfile.ZIP_STORED
    if not stored and info.compress_type != zipfile.ZIP_DEFLATED:
        raise _corrupt(path, f"{name}.npy is compressed with method {info.compress_type}")
    bound = info.compress_size if stored else _DEFLATE_MAX_RATIO * info.compress_size
    if info.compress_size > size or info.file_size > bound:
        raise _corrupt(
            path, f"{name}.npy claims {info.file_size} bytes, more than the {size}-byte file holds"
        )
    with zf.open(info) as f:
        try:  # numpy's header parser (tokenize + literal_eval) raises many types on garbage
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise _corrupt(path, f"{name}.npy has format version {version}, not 1.0 or 2.0")
        except DataError:
            raise
        except Exception as err:  # noqa: BLE001 - any failure to parse the header is corruption
            raise _corrupt(
                path, f"unreadable {name}.npy header ({type(err).__name__}: {shown(str(err))})"
            ) from None
        if dtype.hasobject or dtype.kind not in ("u" if name == "X" else "iu"):
            raise _corrupt(path, f"{name} is {dtype}, expected " + (
                "uint8 images" if name == "X" else "integer labels"))  # fmt: skip
        if any(d < 0 for d in shape):
            raise _corrupt(path, f"{name}.npy has a negative size in its shape {shown(shape)}")
        nbytes = math.prod(shape) * dtype.itemsize
        if f.tell() + nbytes != info.file_size:
            raise _corrupt(
                path, f"{name}.npy holds {info.file_size - f.tell()} bytes of data but its "
                f"header {shown(shape)} {dtype} implies {shown(nbytes)}",
            )  # fmt: skip
        raw = _read_upto(f, nbytes)  # type: ignore[arg-type]
    if len(raw) != nbytes:
        raise _corrupt(path, f"{name}.npy is truncated")
    return np.frombuffer(raw, dtype).reshape(shape, order="F" if fortran else "C")


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as raw:
            size = os.fstat(raw.fileno()).st_size
            with zipfile.ZipFile(raw) as zf:
                x = _read_npy_member(zf, "X", path, size)
                y = _read_npy_member(zf, "Y", path, size)
    except DataError:
        raise
    except _PARSE_ERRORS as err:
        raise _corrupt(path, f"{type(err).__name__}: {shown(str(err))}") from None
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (32, 32, 3):
        raise _corrupt(path, f"X is {x.dtype} {x.shape}, expected uint8 (n, 32, 32, 3)")
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
