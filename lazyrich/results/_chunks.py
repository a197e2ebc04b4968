"""Sweep chunks on disk: npz archives that carry their own identity and checksum.

A chunk is a finished piece of a long sweep (`StudyDir.save_chunk`), reused by `--resume`.
A chunk file is never trusted. Besides its arrays, the archive holds one more member,
`__chunk__.npy`: a JSON record (as bytes) of

- `format`: the layout's version (1);
- `tag` and `index`: the computation and the piece the chunk belongs to. The engine's tag
  ends with a fingerprint of the call (grid, records, batch, loss, data shapes, ...), so a
  chunk written by a different call is refused even when its file is copied or renamed;
- `sha256`: a digest of every array's name, dtype, shape and bytes.

`decode_chunk` reads an archive with its own bounded reader: every member must be stored
(not compressed), the members' sizes together must fit in the file, and each array's header
must describe exactly the bytes that follow it (so no allocation exceeds the file's real
size), object dtypes are refused (no unpickling), and the digest must match. Any failure is
a `CorruptChunk` with a short reason; the caller recomputes the chunk.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from collections.abc import Mapping

import numpy as np

META = "__chunk__"
FORMAT = 1
_MAX_HEADER = 10_000


class CorruptChunk(Exception):
    """A chunk file that cannot be used; the message says why (one short phrase)."""


class ChunkWarning(UserWarning):
    """An unreadable or foreign chunk was found and is recomputed."""


def _digest(arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(json.dumps([name, a.dtype.str, list(a.shape)]).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def encode_chunk(arrays: Mapping[str, np.ndarray], *, tag: str, index: int) -> bytes:
    """The bytes of an npz archive holding `arrays` and their identity record.

    **Arguments:**

    - `arrays`: the chunk's arrays by name (numeric or boolean dtypes; no objects).
    - `tag`: the computation's name (the engine's includes the call's fingerprint).
    - `index`: the chunk's index within the computation.

    **Returns:** the archive as bytes (uncompressed npz).

    **Raises:** `ValueError` for an array named `__chunk__` or an object array.
    """
    if META in arrays:
        raise ValueError(f"a chunk array cannot be named {META!r}")
    plain = {str(k): np.asarray(v) for k, v in arrays.items()}
    for k, v in plain.items():
        if v.dtype.hasobject:
            raise ValueError(f"chunk array {k!r} has an object dtype; store numbers only")
    meta = {"format": FORMAT, "tag": tag, "index": int(index), "sha256": _digest(plain)}
    record = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **plain, **{META: record})  # pyright: ignore[reportArgumentType]
    return buf.getvalue()


def _read_npy(raw: bytes, name: str) -> np.ndarray:
    """One `.npy` member, its header checked against the bytes that follow it."""
    f = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f, _MAX_HEADER)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f, _MAX_HEADER)
        else:
            raise CorruptChunk(f"array {name!r} has an unknown .npy version {version}")
    except (ValueError, TypeError, SyntaxError) as e:
        raise CorruptChunk(f"array {name!r} has a bad header ({e})") from None
    if dtype.hasobject:
        raise CorruptChunk(f"array {name!r} holds Python objects (refused: no unpickling)")
    if any(not isinstance(n, int) or n < 0 for n in shape):
        raise CorruptChunk(f"array {name!r} has an impossible shape {shape}")
    offset = f.tell()
    if math.prod(shape) * dtype.itemsize != len(raw) - offset:
        raise CorruptChunk(f"array {name!r}: its header does not match its size")
    flat = np.frombuffer(raw, dtype, math.prod(shape), offset)
    return flat.reshape(shape, order="F" if fortran else "C").copy()


def _read_archive(data: bytes) -> dict[str, np.ndarray]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            if sum(i.file_size for i in infos) > len(data):
                raise CorruptChunk("its members claim more bytes than the file holds")
            arrays = {}
            for info in infos:
                if info.compress_type != zipfile.ZIP_STORED or not info.filename.endswith(".npy"):
                    raise CorruptChunk(f"unexpected member {info.filename!r}")
                name = info.filename.removesuffix(".npy")
                if name in arrays:
                    raise CorruptChunk(f"array {name!r} appears twice")
                arrays[name] = _read_npy(zf.read(info), name)
            return arrays
    except CorruptChunk:
        raise
    except Exception as e:  # any failure of the archive: bad CRC, truncation, bad directory
        raise CorruptChunk(f"{type(e).__name__}: {e}") from None


def decode_chunk(
    data: bytes, *, tag: str, index: int, rows: int | None = None
) -> dict[str, np.ndarray]:
    """The arrays of a chunk written by `encode_chunk(..., tag=tag, index=index)`.

    **Arguments:**

    - `data`: the file's bytes.
    - `tag`, `index`: the computation and piece the caller expects.
    - `rows`: if given, the length every array's leading axis must have.

    **Returns:** the arrays by name (the identity record removed).

    **Raises:** `CorruptChunk` naming the first problem found.
    """
    arrays = _read_archive(data)
    record = arrays.pop(META, None)
    if record is None:
        raise CorruptChunk("it has no identity record (written by an older lazyrich?)")
    try:
        meta = json.loads(record.tobytes().decode())
        ok = isinstance(meta, dict) and meta.get("format") == FORMAT
    except (ValueError, RecursionError):
        ok, meta = False, {}
    if not ok:
        raise CorruptChunk("its identity record is unreadable")
    if meta.get("tag") != tag or meta.get("index") != index:
        raise CorruptChunk(
            f"it belongs to another computation ({meta.get('tag')!r}, chunk {meta.get('index')})"
        )
    if meta.get("sha256") != _digest(arrays):
        raise CorruptChunk("its checksum does not match its arrays")
    if rows is not None:
        for k, v in arrays.items():
            if v.ndim == 0 or v.shape[0] != rows:
                raise CorruptChunk(f"array {k!r} has shape {v.shape}, expected {rows} rows")
    return arrays
