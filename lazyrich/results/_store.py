"""A study's directory on disk: config, results (netCDF), summary, figures; atomic writes.

Layout of `OUT/STUDY/`:

- `config.json`: the configuration the study ran with (checked on `--resume`);
- `results.nc`: an xarray Dataset (netCDF3 via scipy, so no HDF5 is needed);
- `summary.json`: the headline numbers;
- `figures/*.png`;
- `chunks/*.npz`: finished pieces of a long sweep (kept for `--resume`; see `_chunks`);
- `.lock`: present while a run writes here (one writer per directory; see `_lock`).

Every write goes to a temporary file in the same directory and is renamed into place, so a
killed process never leaves a half-written file and never destroys a finished one. The
temporary file is created with mode 0666 less the user's umask (as `open()` creates files),
so results on a shared directory are as readable as any other file the user writes. A write
that fails for want of space or permission (`ENOSPC`, `EDQUOT`, `EROFS`, `EACCES`, `EPERM`)
raises a one-line `StorageError` naming the file and the fix; finished chunks stay on disk.
Everything read back is untrusted: a chunk that fails any check is recomputed, with one
`ChunkWarning`; an unreadable `config.json` on `--resume` is a one-line `ConfigError`.
"""

from __future__ import annotations

import errno
import json
import math
import os
import secrets
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
import xarray as xr

from ..errors import ConfigError
from ._chunks import ChunkWarning, CorruptChunk, decode_chunk, encode_chunk
from ._lock import StudyLock

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_NO_PERMISSION = (errno.EROFS, errno.EACCES, errno.EPERM)


class StorageError(ConfigError):
    """A write failed for want of space or permission; the message names the file and fix."""


def storage_error(path: Path | str, error: OSError) -> StorageError | None:
    """The one-line `StorageError` for a failed write of `path`, or None for other errors.

    **Arguments:**

    - `path`: the file being written.
    - `error`: the `OSError` the write raised.

    **Returns:** a `StorageError` for a full disk or quota (`ENOSPC`, `EDQUOT`) or a
    read-only / forbidden location (`EROFS`, `EACCES`, `EPERM`); otherwise `None`.
    """
    reason = error.strerror or str(error)
    if error.errno in _NO_SPACE:
        fix = "free space on that disk (or choose another --out)"
    elif error.errno in _NO_PERMISSION:
        fix = f"make {Path(path).parent} writable (or choose another --out)"
    else:
        return None
    return StorageError(
        f"cannot write {path} ({reason}): {fix}, then rerun the same command with --resume "
        "(the chunks already written are kept)"
    )


def _temporary(directory: Path, name: str) -> tuple[int, Path]:
    """A new file `directory/.name.XXXX.tmp`, mode 0666 less the umask (like `open()`)."""
    while True:
        tmp = directory / f".{name}.{secrets.token_hex(4)}.tmp"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def atomic_write_bytes(path: Path, data: bytes, *, every_process: bool = False) -> None:
    """Write `data` to `path` through a temporary file and a rename.

    In a multi-process launch only process 0 writes, unless `every_process` (sweep chunks).
    The parent directories are created; the temporary file (mode 0666 less the umask, as
    `open()` would create it) is fsynced before the rename and removed if anything fails.

    **Arguments:**

    - `path`: the destination; an existing file is replaced in one step.
    - `data`: the bytes to write.
    - `every_process`: write from every process of a multi-process launch (default: only
      process 0 writes; the others return at once).

    **Raises:** `StorageError` (one line naming `path` and the fix) when the disk is full or
    the location is read-only or forbidden; `path` is then unchanged.
    """
    if not every_process and jax.process_count() > 1 and jax.process_index() != 0:
        return
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _temporary(path.parent, path.name)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.lexists(tmp):
            try:
                os.unlink(tmp)
            except OSError:
                pass
        error = storage_error(path, e) if isinstance(e, OSError) else None
        if error is not None:
            raise error from None
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

    def __init__(self, root: Path | str, name: str):
        """**Arguments:**

        - `root`: the output directory (`--out`, default `runs/`).
        - `name`: the study's name; its files go to `root/name`. Nothing is created until
          `prepare` or `start`.
        """
        self.root = Path(root)
        self.path = self.root / name
        self.name = name

    def prepare(self) -> StudyDir:
        """Create the directory, or fail with one line if it cannot be written."""
        try:
            (self.path / "figures").mkdir(parents=True, exist_ok=True)
            fd, probe = _temporary(self.path, "write-test")  # unique: runs may race here
            os.close(fd)
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

    def lock(self) -> StudyLock:
        """The directory's writer lock, to hold while a run writes here (`prepare` first).

        **Returns:** a `StudyLock`; use it as `with store.lock(): ...`. Taking it raises a
        one-line `ConfigError` naming the other run (pid, host, start time) when one holds it.
        """
        return StudyLock(self.path)

    def _recorded_config(self) -> Any:
        """`config.json` as written by an earlier run, read as untrusted input."""
        fix = f"delete {self.config_path} or run without --resume"
        try:
            old = json.loads(self.config_path.read_bytes().decode())
        except (OSError, ValueError, RecursionError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
            raise ConfigError(
                f"--resume: {self.config_path} is unreadable ({reason}): {fix}"
            ) from None
        if not isinstance(old, dict):
            raise ConfigError(f"--resume: {self.config_path} is not a JSON object: {fix}")
        return old

    def _remove_temporaries(self) -> None:
        """Remove temporary files left by killed writers (only the lock holder may)."""
        for directory in (self.path, self.chunks, self.figures):
            for p in directory.glob(".*.tmp") if directory.is_dir() else ():
                p.unlink(missing_ok=True)

    def start(self, config: Mapping[str, Any], *, resume: bool) -> None:
        """Record `config`; on resume, insist it equals the recorded one.

        Without `resume`, chunks of an earlier run in the same directory are discarded
        (results.nc and the other files are replaced when the new run writes them).
        Temporary files left by a killed run are removed. Call it while holding `lock()`.

        **Raises:** `ConfigError` (one line) when resuming from a `config.json` that is
        unreadable, not a JSON object, or different from `config`.
        """
        self.prepare()
        config = _jsonable(config)
        if resume and self.config_path.exists():
            old = self._recorded_config()
            if old != config:
                changed = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
                raise ConfigError(
                    f"--resume: {self.path} was run with a different config "
                    f"(differs in: {', '.join(changed)}); rerun with the same options "
                    "or choose another --out"
                )
        try:
            self._remove_temporaries()
            if not resume and self.chunks.exists():
                for p in self.chunks.glob("*.npz"):
                    p.unlink()
        except OSError as e:
            error = storage_error(self.chunks, e)
            if error is None:
                raise
            raise error from None
        write_json(self.config_path, config)

    def chunk_path(self, index: int, tag: str = "chunk") -> Path:
        """Where chunk `index` of the computation named `tag` is saved."""
        return self.chunks / f"{tag}_{index:05d}.npz"

    def save_chunk(
        self, index: int, arrays: Mapping[str, np.ndarray], *, tag: str = "chunk"
    ) -> None:
        """Save a finished chunk atomically (every process writes its own chunks).

        The archive carries `tag`, `index` and a checksum of `arrays`, which `load_chunk`
        checks.

        **Arguments:**

        - `index`: the chunk's index within the computation.
        - `arrays`: its arrays by name (numbers or booleans).
        - `tag`: the computation's name (the engine's ends with the call's fingerprint).

        **Raises:** `StorageError` when the disk is full or read-only.
        """
        data = encode_chunk(arrays, tag=tag, index=index)
        atomic_write_bytes(self.chunk_path(index, tag), data, every_process=True)

    def load_chunk(
        self, index: int, *, tag: str = "chunk", rows: int | None = None
    ) -> dict[str, np.ndarray] | None:
        """A saved chunk, or None when it is missing or fails a check (then it is recomputed).

        The file is never trusted: any failure to read it (a damaged or truncated archive,
        a bad CRC, an object array), a checksum that does not match its arrays, or a record
        naming another computation or chunk (or, with `rows`, arrays of another length)
        makes it unusable; a `ChunkWarning` names the file and the reason.

        **Arguments:**

        - `index`: the chunk's index within the computation.
        - `tag`: the computation's name, as given to `save_chunk`.
        - `rows`: if given, the length every array's leading axis must have.

        **Returns:** the arrays by name, or `None`.
        """
        path = self.chunk_path(index, tag)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            warnings.warn(
                f"chunk {path} is unreadable ({e.strerror or e}); recomputing it",
                ChunkWarning,
                stacklevel=2,
            )
            return None
        try:
            return decode_chunk(data, tag=tag, index=index, rows=rows)
        except CorruptChunk as e:
            warnings.warn(f"chunk {path} is unusable ({e}); recomputing it", ChunkWarning, 2)
            return None
