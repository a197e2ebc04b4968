"""A study's directory on disk: config, results (netCDF), summary, figures; atomic writes.

Layout of `OUT/STUDY/`:

- `config.json`: the configuration the study ran with (checked on `--resume`);
- `results.nc`: an xarray Dataset (netCDF3 via scipy, so no HDF5 is needed);
- `summary.json`: the headline numbers;
- `figures/*.png`;
- `chunks/*.npz`: finished pieces of a long sweep (kept for `--resume`).

Every write goes to a temporary file in the same directory and is renamed into place, so a
killed process never leaves a half-written file and never destroys a finished one.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
import xarray as xr

from ..errors import ConfigError


def atomic_write_bytes(path: Path, data: bytes, *, every_process: bool = False) -> None:
    """Write `data` to `path` through a temporary file and a rename.

    In a multi-process launch only process 0 writes, unless `every_process` (sweep chunks).
    The parent directories are created; the temporary file is fsynced before the rename and
    removed if anything fails.

    **Arguments:**

    - `path`: the destination; an existing file is replaced in one step.
    - `data`: the bytes to write.
    - `every_process`: write from every process of a multi-process launch (default: only
      process 0 writes; the others return at once).
    """
    if not every_process and jax.process_count() > 1 and jax.process_index() != 0:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.ndarray, np.generic)) or hasattr(obj, "__array__"):
        arr = np.asarray(obj)
        return _jsonable(arr.tolist()) if arr.ndim else _jsonable(arr.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: Path, obj: Any) -> None:
    """Atomically write `obj` as indented JSON (NaN → null, arrays → lists).

    Mappings (keys made strings), lists and tuples are converted recursively; NumPy and JAX
    arrays become (nested) lists or numbers; NaN becomes `null` and ±∞ the strings
    `"inf"` / `"-inf"`; `Path`s become strings. Only process 0 writes.

    **Arguments:**

    - `path`: the destination file.
    - `obj`: the object to write.
    """
    text = json.dumps(_jsonable(obj), indent=2, sort_keys=False)
    atomic_write_bytes(Path(path), (text + "\n").encode())


def read_json(path: Path) -> Any:
    """Read a JSON file (e.g. one written by `write_json`).

    **Arguments:**

    - `path`: the file.

    **Returns:** the parsed object; `null` comes back as `None` and `"inf"` stays a string
    (the conversion of `write_json` is not undone).

    **Raises:** the standard `OSError` / `json.JSONDecodeError` for a missing or malformed
    file (not a `DataError`).
    """
    return json.loads(Path(path).read_text())


def _netcdf_safe(ds: xr.Dataset) -> xr.Dataset:
    """Cast dtypes netCDF3 cannot hold (bool, int64, float16) to ones it can."""
    out = ds.copy()
    for name, var in list(out.variables.items()):
        if var.dtype == bool:
            out[name] = var.astype(np.int8)
        elif var.dtype.kind in "iu" and var.dtype.itemsize > 4:
            out[name] = var.astype(np.int32)
        elif var.dtype.kind == "f" and var.dtype.itemsize < 4:
            out[name] = var.astype(np.float32)
    return out


def write_dataset(path: Path, ds: xr.Dataset) -> None:
    """Atomically write an xarray Dataset as netCDF3 (scipy engine).

    netCDF3 cannot hold some dtypes, so a copy is cast first: bool → int8, 64-bit integers →
    int32, float16 → float32. Only process 0 writes.

    **Arguments:**

    - `path`: the destination file (conventionally `results.nc`).
    - `ds`: the Dataset; it is not modified.
    """
    data = _netcdf_safe(ds).to_netcdf(None, engine="scipy")
    atomic_write_bytes(Path(path), bytes(data))


def read_dataset(path: Path) -> xr.Dataset:
    """Read a Dataset written by `write_dataset` fully into memory.

    **Arguments:**

    - `path`: the netCDF3 file.

    **Returns:** the `xr.Dataset`, loaded and closed (the dtype casts of `write_dataset` are
    not undone: booleans come back as int8).
    """
    with xr.open_dataset(Path(path), engine="scipy") as ds:
        return ds.load()


class StudyDir:
    """Paths and writers for one study's output directory `root/name`."""

    def __init__(self, root: Path | str, name: str, *, devices: int | None = None):
        """**Arguments:**

        - `root`: the output directory (`--out`, default `runs/`).
        - `name`: the study's name; its files go to `root/name`. Nothing is created until
          `prepare` or `start`.
        - `devices`: how many local devices the study's engine calls shard their runs over
          (`--devices`; `None`: `lazyrich.train.default_devices()`).
        """
        self.root = Path(root)
        self.path = self.root / name
        self.name = name
        self.devices = devices

    def prepare(self) -> StudyDir:
        """Create the directory, or fail with one line if it cannot be written."""
        try:
            (self.path / "figures").mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise ConfigError(
                f"cannot write to output directory {self.root} ({e.strerror or e}); "
                "pass --out with a writable directory"
            ) from None
        return self

    config_path = property(lambda self: self.path / "config.json")
    results_path = property(lambda self: self.path / "results.nc")
    summary_path = property(lambda self: self.path / "summary.json")
    figures = property(lambda self: self.path / "figures")
    chunks = property(lambda self: self.path / "chunks")

    def figure(self, name: str) -> Path:
        return self.figures / f"{name}.png"

    def start(self, config: Mapping[str, Any], *, resume: bool) -> None:
        """Record `config`; on resume, insist it equals the recorded one.

        Without `resume`, chunks of an earlier run in the same directory are discarded
        (results.nc and the other files are replaced when the new run writes them).
        """
        self.prepare()
        config = _jsonable(config)
        if resume and self.config_path.exists():
            old = read_json(self.config_path)
            if old != config:
                changed = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
                raise ConfigError(
                    f"--resume: {self.path} was run with a different config "
                    f"(differs in: {', '.join(changed)}); rerun with the same options "
                    "or choose another --out"
                )
        elif not resume and self.chunks.exists():
            for p in self.chunks.glob("*.npz"):
                p.unlink()
        write_json(self.config_path, config)

    def chunk_path(self, index: int, tag: str = "chunk") -> Path:
        """Where chunk `index` of the computation named `tag` is saved."""
        return self.chunks / f"{tag}_{index:05d}.npz"

    def save_chunk(
        self, index: int, arrays: Mapping[str, np.ndarray], *, tag: str = "chunk"
    ) -> None:
        """Save a finished chunk atomically (every process writes its own chunks)."""
        buf = io.BytesIO()
        np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})  # pyright: ignore[reportArgumentType]
        atomic_write_bytes(self.chunk_path(index, tag), buf.getvalue(), every_process=True)

    def load_chunk(self, index: int, *, tag: str = "chunk") -> dict[str, np.ndarray] | None:
        """A saved chunk, or None when it is missing or unreadable (then it is recomputed)."""
        path = self.chunk_path(index, tag)
        if not path.exists():
            return None
        try:
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError):
            return None  # an unreadable chunk is recomputed
