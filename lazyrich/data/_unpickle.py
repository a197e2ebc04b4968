"""A restricted unpickler for CIFAR-10's python batches: a data file cannot run code.

`pickle.load` calls whatever a file names (`os.system` included) while it reads it. The
official CIFAR-10 batches (python 2 pickles, protocol 2) hold a dict of byte-string keys, lists
of ints and byte strings, and one uint8 array, stored as

    numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b"b")
    BUILD (1, (10000, 3072), numpy.dtype("u1", 0, 1) BUILD (3, "|", None, ...), False, raw)

so those three globals (and their numpy 2 `numpy._core` names) are allowed, plus the two that a
python 3 pickle of the same dict can use: `_codecs.encode(str, "latin1")` for bytes at protocol
≤ 2 and `numpy._core.numeric._frombuffer(buf, dtype, shape, order)` for arrays at protocol 5.
None of them is imported or called: `find_class` returns a stand-in that checks its arguments
(plain numeric dtypes only; array data of exactly shape × itemsize bytes, no more than the
file holds) and makes the array itself with `np.frombuffer`. Any other global is refused by
name before anything is imported, as are persistent ids and state set on a stand-in.

Before unpickling, `pickletools.genops` walks the opcodes: every length-prefixed argument must
fit in the bytes that remain and every memo index must lie below its offset, since the C
unpickler allocates a declared length (or a memo of the declared index) before reading.
"""

from __future__ import annotations

import io
import math
import pickle
import pickletools
import re
from typing import Any

import numpy as np

# the globals a genuine CIFAR-10 batch (or a python 3 pickle of the same dict) refers to
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): "reconstruct",
    ("numpy._core.multiarray", "_reconstruct"): "reconstruct",
    ("numpy", "ndarray"): "ndarray",
    ("numpy", "dtype"): "dtype",
    ("numpy.core.numeric", "_frombuffer"): "frombuffer",
    ("numpy._core.numeric", "_frombuffer"): "frombuffer",
    ("_codecs", "encode"): "encode",
}
_PLAIN_DTYPE = re.compile(r"b1|[iu][1248]|f[248]")
_MEMO_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"})


class Refused(Exception):
    """A batch asked for something a genuine CIFAR-10 batch never does (the message says what)."""


def shown(value: object, limit: int = 80, depth: int = 0) -> str:
    """`value` (read from an untrusted file) as one short printable line: strings cut before
    they are escaped, no repr of anything large."""
    if isinstance(value, str | bytes | bytearray):
        s = ascii(value[:limit])
        s = s[1:-1] if isinstance(value, str) and depth == 0 else s
    elif value is None or isinstance(value, bool | float):
        s = ascii(value)
    elif isinstance(value, int):
        s = str(value) if value.bit_length() <= 64 else "a huge int"
    elif isinstance(value, tuple) and depth < 2:
        items = [shown(v, limit, depth + 1) for v in value[:9]]
        s = "(" + ", ".join(items[:8] + (["…"] if len(items) > 8 else [])) + ")"
        s = s[:-1] + ",)" if len(value) == 1 else s
    else:
        s = type(value).__name__
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value if isinstance(value, str) else None


class _Global:
    """Stands in for an allowed global: calling it runs our checked rebuild, never numpy's."""

    __slots__ = ("kind", "limit")

    def __init__(self, kind: str, limit: int):
        self.kind, self.limit = kind, limit

    def __call__(self, *args: Any) -> Any:
        if self.kind == "reconstruct":
            ok = len(args) == 3 and isinstance(args[0], _Global) and args[0].kind == "ndarray"
            if not (ok and args[1] == (0,) and _text(args[2]) == "b"):
                raise Refused("it rebuilds an array in a way numpy's pickles never do")
            return _Array(self.limit)
        if self.kind == "dtype":
            code = _text(args[0]) if len(args) == 3 else None
            if code is None or not _PLAIN_DTYPE.fullmatch(code) or args[1:] != (0, 1):
                raise Refused(f"it asks for dtype {shown(args[:1])}, not a plain numeric one")
            return _DType(np.dtype(code))
        if self.kind == "frombuffer":
            if len(args) != 4 or _text(args[3]) not in ("C", "F"):
                raise Refused("it rebuilds an array in a way numpy's pickles never do")
            array = _Array(self.limit)
            array.build(args[0], args[1], args[2], _text(args[3]) == "F")
            return array
        if self.kind == "encode":  # python 3's protocol-2 pickle of bytes: encode(str, latin1)
            if len(args) != 2 or not isinstance(args[0], str) or args[1] not in _LATIN1:
                raise Refused("it calls _codecs.encode other than for latin-1 bytes")
            return args[0].encode("latin-1")
        raise Refused("it calls numpy.ndarray directly")

    def __setstate__(self, state: Any) -> None:
        raise Refused("it sets the state of a numpy function")


_LATIN1 = ("latin1", "latin-1")


class _DType:
    """A plain numeric dtype being unpickled; its state may only set the byte order."""

    __slots__ = ("dtype", "built")

    def __init__(self, dtype: np.dtype):
        self.dtype, self.built = dtype, False

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) in (8, 9)) or self.built:
            raise Refused("it sets a dtype's state in a way numpy's pickles never do")
        order = _text(state[1])
        single = self.dtype.itemsize == 1
        ok = (
            state[0] in (3, 4)
            and order in (("|",) if single else ("<", ">", "="))
            and state[2:5] == (None, None, None)
            and all(type(v) is int for v in state[5:8])
            and (len(state) == 8 or state[8] is None)
        )
        if not ok:
            raise Refused(f"its dtype state {shown(state)} is not a plain numeric dtype's")
        self.built = True
        if order in ("<", ">"):
            self.dtype = self.dtype.newbyteorder(order)


class _Array:
    """An array being unpickled: `build` checks shape × itemsize against its data (and the file's
    size) and makes it with `np.frombuffer`."""

    __slots__ = ("array", "limit")

    def __init__(self, limit: int):
        self.array: np.ndarray | None = None
        self.limit = limit

    def build(self, raw: Any, dtype: Any, shape: Any, fortran: Any) -> None:
        if self.array is not None or not isinstance(dtype, _DType):
            raise Refused("it rebuilds an array in a way numpy's pickles never do")
        if not (isinstance(shape, tuple) and len(shape) <= 32):
            raise Refused(f"its array shape {shown(shape)} is not a tuple of sizes")
        if not all(type(s) is int and 0 <= s < 2**63 for s in shape):
            raise Refused(f"its array shape {shown(shape)} is not a tuple of sizes")
        if not isinstance(raw, bytes | bytearray):
            raise Refused("its array data is not a byte string")
        nbytes = math.prod(shape) * dtype.dtype.itemsize
        if nbytes > self.limit:
            raise Refused(
                f"it declares a {shown(shape)} {dtype.dtype} array ({shown(nbytes)} bytes) in a "
                f"{self.limit}-byte file"
            )
        if nbytes != len(raw):
            raise Refused(f"its {shown(shape)} {dtype.dtype} array has {len(raw)} bytes of data")
        order = "F" if fortran else "C"
        self.array = np.frombuffer(raw, dtype.dtype).reshape(shape, order=order)

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise Refused("it rebuilds an array in a way numpy's pickles never do")
        if len(state) == 5 and state[0] != 1:
            raise Refused(f"its array state has version {shown(state[0])}, not 1")
        shape, dtype, fortran, raw = state[-4:]
        self.build(raw, dtype, shape, fortran)


class _BatchUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` that resolves only `_ALLOWED_GLOBALS`, each to a checked stand-in."""

    def __init__(self, data: bytes):
        super().__init__(io.BytesIO(data), encoding="bytes")
        self.limit = len(data)

    def find_class(self, module: str, name: str) -> Any:
        kind = _ALLOWED_GLOBALS.get((module, name))
        if kind is None:
            raise Refused(f"it asks to load `{shown(module, 60)}.{shown(name, 60)}`")
        return _Global(kind, self.limit)

    def persistent_load(self, pid: Any) -> Any:
        raise Refused("it refers to objects outside the file (persistent ids)")


def _scan_pickle(data: bytes) -> None:
    """Walk the opcodes without building anything: every length-prefixed argument must fit in
    the bytes that remain and every memo index must be below its offset (the unpickler would
    otherwise allocate the declared size first)."""
    for op, arg, pos in pickletools.genops(io.BytesIO(data)):
        if op.name in _MEMO_OPS and isinstance(arg, int) and not 0 <= arg <= (pos or 0):
            raise Refused(f"it uses memo slot {shown(arg)} at offset {pos}")
        if op.name == "STOP":
            return


def load_batch(data: bytes) -> Any:
    """Unpickle `data` with `_BatchUnpickler` after `_scan_pickle`.

    **Arguments:**

    - `data`: the whole file.

    **Returns:** the unpickled object; where it is a dict, each value that is an array comes
    back as a read-only NumPy array (arrays elsewhere stay unusable stand-ins).

    **Raises:** `Refused` for anything a genuine batch never holds; the unpickler's own errors
    (`pickle.UnpicklingError`, `ValueError`, `EOFError`, ...) for a malformed stream.
    """
    _scan_pickle(data)
    obj = _BatchUnpickler(data).load()
    if isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(value, _Array):
                if value.array is None:
                    raise Refused(f"its entry {shown(key)} is an array without data")
                obj[key] = value.array
    return obj
