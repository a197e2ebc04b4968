"""Every file loader fuzzed with malformed files: one-line `DataError`, no code run, no big
allocation.

Loaders: MNIST IDX (plain), Fashion-MNIST IDX (`.gz`), CIFAR-10 python batches, CIFAR-5m `.npz`.
Each case writes the loader's tiny dataset with one file replaced by a malformed version —
seeded truncations, bit flips, wrong magic numbers, huge declared sizes (an IDX header claiming
about 4·10^9 images, a pickle or `.npy` array of 10^12 rows, a gzip bomb of 1 GiB of zeros
behind a small header, a zip entry claiming 4 GB), random bytes, trailing bytes, and malicious
pickles whose `__reduce__` would create a marker file — then calls the loader and checks:

- the outcome is a `DataError` whose message is one line naming the file, or (only for a flip
  or trailing bytes that leave a well-formed file) a dataset: of the pristine shapes where a
  pickle's or zip's pixel or label byte was flipped, bit-identical to the pristine data where
  the damage hit bytes the format ignores (a pickle's bytes after STOP, a gzip's zero padding
  or a deflate stream's final padding bits); never another exception type;
- the marker file never exists and the data directory holds the same files afterwards;
- the peak of Python/NumPy allocations (`tracemalloc`) stays under 16 MiB (the files are a few
  KiB; a loader that trusted a declared size would allocate gigabytes).

Run as a script for the figure: `uv run python -m tests.test_loader_fuzz [--cases N] [--seed S]`.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from lazyrich.data import load_cifar5m, load_cifar10, load_mnist
from lazyrich.errors import DataError

PEAK_LIMIT = 16 << 20  # bytes: far above what a tiny file needs, far below a trusted huge size
IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
IDX_NAMES += ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR_NAMES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
NPZ_NAMES = tuple(f"cifar5m_part{p}.npz" for p in range(6))


# ---------------------------------------------------------------- well-formed files


def idx_bytes(arr: np.ndarray) -> bytes:
    """An IDX file of uint8 `arr`."""
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def _py2_str(b: bytes) -> bytes:
    """A python 2 `str` as cPickle writes it (SHORT_BINSTRING / BINSTRING)."""
    return (b"U" + bytes([len(b)]) if len(b) < 256 else b"T" + struct.pack("<i", len(b))) + b


def _py2_int(v: int) -> bytes:
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)
    if -(2**31) <= v < 2**31:
        return b"J" + struct.pack("<i", v)
    raw = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw  # LONG1, a python 2 long


def python2_cifar_batch(
    batch_label: bytes,
    labels: list[int],
    data: np.ndarray,
    filenames: list[bytes],
    shape: tuple[int, ...] | None = None,
) -> bytes:
    """A CIFAR-10 batch laid out opcode for opcode as the official python 2 files are: protocol
    2, a dict of python 2 strings (which read back as bytes), `data` as
    `numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), 'b')` built from
    `(1, shape, numpy.dtype('u1', 0, 1), False, raw)`, `labels` a list of ints, `filenames` a
    list of strings. `shape` overrides the declared array shape (to forge a huge one)."""
    memo = iter(range(1, 1 << 30))

    def put() -> bytes:
        i = next(memo)
        return b"q" + bytes([i]) if i < 256 else b"r" + struct.pack("<I", i)

    shape = data.shape if shape is None else shape
    assert len(shape) == 2
    out = [b"\x80\x02}", put(), b"("]
    out += [_py2_str(b"data"), put(), b"cnumpy.core.multiarray\n_reconstruct\n", put()]
    out += [b"cnumpy\nndarray\n", put(), _py2_int(0), b"\x85", _py2_str(b"b"), b"\x87R", put()]
    out += [b"(", _py2_int(1), _py2_int(shape[0]), _py2_int(shape[1]), b"\x86"]
    out += [b"cnumpy\ndtype\n", put(), _py2_str(b"u1"), _py2_int(0), _py2_int(1), b"\x87R", put()]
    out += [b"(", _py2_int(3), _py2_str(b"|"), b"NNN", _py2_int(-1), _py2_int(-1), _py2_int(0)]
    out += [b"tb\x89", _py2_str(np.ascontiguousarray(data, np.uint8).tobytes()), put(), b"tb"]
    out += [_py2_str(b"labels"), put(), b"]", put(), b"("]
    out += [_py2_int(v) for v in labels] + [b"e"]
    out += [_py2_str(b"batch_label"), put(), _py2_str(batch_label), put()]
    out += [_py2_str(b"filenames"), put(), b"]", put(), b"("]
    out += [_py2_str(f) + put() for f in filenames] + [b"eu."]
    return b"".join(out)


def cifar_batch_dict(rng: np.random.Generator, name: str, n: int) -> dict:
    """A batch's dict as the official files hold it (bytes keys, list labels, uint8 data)."""
    return {
        b"batch_label": f"{name} of a tiny test set".encode(),
        b"labels": [int(v) for v in rng.integers(0, 10, n)],
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{name}_{i:04d}.png".encode() for i in range(n)],
    }


def npy_bytes(header: dict, payload: bytes) -> bytes:
    """A `.npy` file (format 1.0) with a hand-written header dict and payload."""
    text = repr(header).encode("latin-1")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + payload


def zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def write_pristine(kind: str, root: Path, rng: np.random.Generator) -> dict[Path, bytes]:
    """The tiny dataset of loader `kind` under `root`; returns {path: bytes} of its files."""
    files: dict[Path, bytes] = {}
    if kind in ("mnist", "fashion-mnist.gz"):
        folder = root / ("mnist" if kind == "mnist" else "fashion-mnist")
        sizes = {"train": 5, "t10k": 3}
        for name in IDX_NAMES:
            n = sizes[name.split("-")[0]]
            arr = rng.integers(0, 256, (n, 28, 28)) if "images" in name else rng.integers(0, 10, n)
            data = idx_bytes(arr)
            if kind == "mnist":
                files[folder / name] = data
            else:
                files[folder / (name + ".gz")] = gzip.compress(data, mtime=0)
    elif kind == "cifar10":
        folder = root / "cifar-10-batches-py"
        for i, name in enumerate(CIFAR_NAMES):
            b = cifar_batch_dict(rng, name, 3)
            if i % 3 == 0:  # the official python 2 layout
                data = python2_cifar_batch(
                    b[b"batch_label"], b[b"labels"], b[b"data"], b[b"filenames"]
                )
            else:  # python 3 pickles: protocol 2 and the default
                data = pickle.dumps(b, protocol=2 if i % 3 == 1 else pickle.DEFAULT_PROTOCOL)
            files[folder / name] = data
    elif kind == "cifar5m":
        folder = root / "cifar5m"
        for name in NPZ_NAMES:
            x = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)  # CIFAR-10's shapes: one
            y = rng.integers(0, 10, 3).astype(np.int64)  # compiled scaling serves both
            buf = io.BytesIO()
            np.savez(buf, X=x, Y=y)
            files[folder / name] = buf.getvalue()
    else:
        raise ValueError(kind)
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


LOADERS: dict[str, Callable[[Path], object]] = {
    "mnist": lambda root: load_mnist(root, standardize=False),
    "fashion-mnist.gz": lambda root: load_mnist(root, fashion=True, standardize=False),
    "cifar10": lambda root: load_cifar10(root, standardize=False),
    "cifar5m": lambda root: load_cifar5m(root, parts=(0, 1, 2, 3, 4), n_test=3, standardize=False),
}
LABELS = {
    "mnist": "MNIST IDX",
    "fashion-mnist.gz": "Fashion-MNIST IDX .gz",
    "cifar10": "CIFAR-10 batches",
    "cifar5m": "CIFAR-5m .npz",
}


# ---------------------------------------------------------------- malformed files


@dataclass
class Case:
    loader: str
    kind: str
    target: Path
    data: bytes
    accept: str  # "never"; "same": only as the pristine data (bytes the format ignores);
    # "shapes": as any data of the pristine shapes (a flipped pixel or label is well-formed)


def _flip(data: bytes, rng: np.random.Generator, lo: int, hi: int) -> bytes:
    out = bytearray(data)
    for pos in rng.integers(lo, hi, int(rng.integers(1, 9))):
        out[pos] ^= 1 << int(rng.integers(0, 8))
    return bytes(out) if bytes(out) != data else _flip(data, rng, lo, hi)


def _evil_pickles(marker: Path, rng: np.random.Generator) -> list[bytes]:
    """Pickles whose loading would create `marker` (each a different route to running code)."""
    m = str(marker)

    class Reduce:
        def __init__(self, fn, *args):
            self.fn, self.args = fn, args

        def __reduce__(self):
            return self.fn, self.args

    payloads = [
        Reduce(os.system, f"touch '{m}'"),
        Reduce(open, m, "w"),
        Reduce(exec, f"open({m!r}, 'w').close()"),
        Reduce(eval, f"open({m!r}, 'w').close()"),
        Reduce(subprocess.call, ["touch", m]),
        Reduce(Path(m).touch),
        Reduce(shutil.copy, os.devnull, m),
    ]
    good = cifar_batch_dict(rng, "evil", 2)
    out = []
    for evil in payloads:
        proto = int(rng.integers(0, pickle.HIGHEST_PROTOCOL + 1))
        out.append(pickle.dumps(evil, protocol=proto))  # the whole file
        out.append(pickle.dumps({**good, b"extra": evil}, protocol=proto))  # beside real data
        out.append(pickle.dumps({**good, b"labels": [1, evil]}, protocol=proto))  # nested
    # an object array (numpy pickles its elements): the dtype is refused before they load
    obj = np.array([Reduce(os.system, f"touch '{m}'")], dtype=object)
    out.append(pickle.dumps({**good, b"data": obj}, protocol=2))
    return out


def _huge_pickles(rng: np.random.Generator) -> list[bytes]:
    """Pickles declaring far more than they hold (strings, memo, arrays, frames)."""
    b = cifar_batch_dict(rng, "huge", 2)
    args = (b[b"batch_label"], b[b"labels"], b[b"data"], b[b"filenames"])
    return [
        python2_cifar_batch(*args, shape=(10**12, 3072)),
        python2_cifar_batch(*args, shape=(2**31 - 1, 2**31 - 1)),
        b"\x80\x04\x8e" + struct.pack("<Q", 1 << 60) + b"abc.",  # BINBYTES8
        b"\x80\x04\x8d" + struct.pack("<Q", 1 << 60) + b"abc.",  # BINUNICODE8
        b"\x80\x04\x96" + struct.pack("<Q", 1 << 60) + b"abc.",  # BYTEARRAY8
        b"\x80\x02T" + struct.pack("<i", 2**31 - 1) + b"abc.",  # BINSTRING
        b"\x80\x02}r" + struct.pack("<I", 2**31) + b".",  # LONG_BINPUT at index 2^31
        b"\x80\x02}p99999999999\n.",  # PUT (text) at a huge index
        b"\x80\x04\x95" + struct.pack("<Q", 1 << 60) + b"}.",  # FRAME
        b"\x80\x02\x8b" + struct.pack("<i", 2**31 - 1) + b"\x01.",  # LONG4
    ]


def _npz_huge(rng: np.random.Generator) -> list[bytes]:
    """`.npz` files whose headers or zip entries claim far more than they hold."""
    y = npy_bytes({"descr": "<i8", "fortran_order": False, "shape": (2,)}, bytes(16))
    small = bytes(int(rng.integers(0, 64)))
    out = [
        zip_bytes({"X.npy": npy_bytes(hdr, small), "Y.npy": y})
        for hdr in (
            {"descr": "|u1", "fortran_order": False, "shape": (10**12, 32, 32, 3)},
            {"descr": "|u1", "fortran_order": False, "shape": (2**62, 2**62, 32, 3)},
            {"descr": "|u1", "fortran_order": True, "shape": (10**6, 32, 32, 3)},
        )
    ]
    # a zip entry claiming 4 GB: its central record's uncompressed size (stored: must equal the
    # compressed size), then both sizes in both records (more than the file holds)
    x = npy_bytes({"descr": "|u1", "fortran_order": False, "shape": (1, 32, 32, 3)}, bytes(3072))
    good = zip_bytes({"X.npy": x, "Y.npy": y})
    central, local = b"PK\x01\x02", b"PK\x03\x04"
    both = ((local, 18), (local, 22), (central, 20), (central, 24))
    for fields in (((central, 24),), both):
        patched = bytearray(good)
        for sig, offset in fields:
            at = patched.index(sig) + offset
            patched[at : at + 4] = struct.pack("<I", 0xFFFFFFF0)
        out.append(bytes(patched))
    # a deflated entry claiming ~1 GB from a few hundred bytes (over deflate's 1032:1)
    z = bytearray(zip_bytes({"X.npy": x, "Y.npy": y}, zipfile.ZIP_DEFLATED))
    at = z.index(b"PK\x01\x02")
    z[at + 24 : at + 28] = struct.pack("<I", 1 << 30)
    out.append(bytes(z))
    return out


def _gzip_bomb(header_shape: tuple[int, ...], rng: np.random.Generator) -> bytes:
    """A small IDX header then 1 GiB of zeros as 1024 gzip members of 1 MiB (about 1 MB)."""
    head = struct.pack(">BBBB", 0, 0, 8, len(header_shape))
    head += struct.pack(f">{len(header_shape)}I", *header_shape)
    zeros = gzip.compress(bytes(1 << 20), mtime=0)
    return gzip.compress(head, mtime=0) + zeros * 1024


def make_cases(
    loader: str, files: dict[Path, bytes], n: int, seed: int, marker: Path
) -> Iterator[Case]:
    """`n` seeded malformed versions of one of `files` each."""
    rng = np.random.default_rng([seed, list(LOADERS).index(loader)])
    paths = list(files)
    kinds = ["truncate", "flip", "magic", "huge", "random", "trailing"]
    kinds += ["malicious"] * (loader in ("cifar10", "cifar5m"))
    evil = _evil_pickles(marker, rng) if loader == "cifar10" else []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        target = paths[int(rng.integers(0, len(paths)))]
        good = files[target]
        accept = "never"
        if kind == "truncate":
            data = good[: int(rng.integers(0, len(good)))]
        elif kind == "flip":
            if loader == "mnist":  # the header: every flip there is detectable
                data = _flip(good, rng, 0, 4 + 4 * good[3])
            elif loader == "fashion-mnist.gz":  # the deflate stream and the CRC/size trailer
                # (the CRC catches changed data; the final byte's padding bits are ignored)
                data, accept = _flip(good, rng, 10, len(good)), "same"
            else:  # anywhere: a flipped pixel or label leaves a well-formed file
                data, accept = _flip(good, rng, 0, len(good)), "shapes"
        elif kind == "magic":
            if loader == "mnist":
                bad = good[:4]
                while bad == good[:4]:
                    bad = bytes(rng.integers(0, 256, 4, dtype=np.uint8))
                data = bad + good[4:]
            elif loader == "fashion-mnist.gz":
                data = bytes(rng.integers(0, 256, 2, dtype=np.uint8)) + good[2:]
                data = data if data[:2] != b"\x1f\x8b" else b"\x1f\x8c" + good[2:]
            elif loader == "cifar10":  # an unsupported pickle protocol
                data = b"\x80" + bytes([int(rng.integers(6, 256))]) + good[2:]
            else:  # the zip's local header, or the .npy magic inside it
                x = np.zeros((2, 32, 32, 3), np.uint8).tobytes()
                hdr = {"descr": "|u1", "fortran_order": False, "shape": (2, 32, 32, 3)}
                npy = npy_bytes(hdr, x)
                at = good.index(b"PK\x03\x04", int(rng.integers(0, 2)) * 100)
                data = (
                    good[:at] + b"PK\x05\x06" + good[at + 4 :]
                    if rng.random() < 0.5
                    else zip_bytes({"X.npy": b"\x93NUMPX" + npy[6:], "Y.npy": bytes(16)})
                )
        elif kind == "huge":
            if loader == "mnist":
                data = bytearray(good)
                dim = int(rng.integers(0, good[3]))
                data[4 + 4 * dim : 8 + 4 * dim] = struct.pack(">I", int(rng.integers(2**30, 2**32)))
                data = bytes(data)
            elif loader == "fashion-mnist.gz":
                if rng.random() < 0.5:  # a bomb behind an honest header
                    target = next(p for p in paths if "images" in p.name)
                    data = _gzip_bomb((2, 28, 28), rng)
                else:  # a header declaring ~3·10^12 bytes
                    head = struct.pack(">BBBB3I", 0, 0, 8, 3, 2**32 - 1, 28, 28)
                    data = gzip.compress(head + bytes(64))
            elif loader == "cifar10":
                options = _huge_pickles(rng)
                data = options[i // len(kinds) % len(options)]
            else:
                options = _npz_huge(rng)
                data = options[i // len(kinds) % len(options)]
        elif kind == "random":
            data = bytes(rng.integers(0, 256, int(rng.integers(0, 2048)), dtype=np.uint8))
        elif kind == "trailing":
            extra = bytes(rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8))
            data = good + extra
            # a pickle ends at STOP, gzip skips zero padding, a zip is read from its end
            accept = "never" if loader == "mnist" else "same"
        else:  # malicious
            if loader == "cifar10":
                data = evil[i // len(kinds) % len(evil)]
            else:  # an object array inside the .npz (np.save pickles it)
                buf = io.BytesIO()
                objs = np.array([None, _Marker(str(marker))], dtype=object)
                np.savez(buf, X=objs, Y=np.zeros(2, np.int64))
                data = buf.getvalue()
        yield Case(loader, kind, target, data, accept)


class _Marker:
    """Pickles to `open(path, 'w')`: loading it creates the marker file."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


# ---------------------------------------------------------------- running the cases


@dataclass
class Tally:
    cases: int = 0
    rejected: int = 0
    accepted: int = 0
    other: list[str] = field(default_factory=list)  # exceptions other than DataError
    bad_messages: list[str] = field(default_factory=list)
    wrongly_accepted: list[str] = field(default_factory=list)
    code_ran: int = 0
    side_effects: list[str] = field(default_factory=list)
    peak: int = 0
    over_peak: list[str] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=dict)


def _arrays(ds) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(a) for a in (ds.x_train, ds.y_train, ds.x_test, ds.y_test))


def fuzz(n: int = 60, seed: int = 0, workdir: Path | None = None) -> dict[str, Tally]:
    """Run `n` malformed files through each loader; returns a `Tally` per loader."""
    tmp = tempfile.TemporaryDirectory() if workdir is None else None
    base = Path(tmp.name) if tmp is not None else Path(workdir)  # type: ignore[arg-type]
    tallies = {}
    try:
        for loader, load in LOADERS.items():
            root, marker = base / loader / "data", base / loader / "PWNED"
            files = write_pristine(loader, root, np.random.default_rng(seed))
            pristine = _arrays(load(root))  # also compiles the scaling once, outside tracing
            listing = sorted(p.relative_to(root) for p in root.rglob("*"))
            tally = tallies[loader] = Tally()
            tracemalloc.start()
            try:
                for case in make_cases(loader, files, n, seed, marker):
                    _run_case(case, root, load, pristine, tally)
                    if marker.exists():
                        tally.code_ran += 1
                        marker.unlink()
                    now = sorted(p.relative_to(root) for p in root.rglob("*"))
                    if now != listing:
                        tally.side_effects.append(f"{case.kind}: {now}")
                    case.target.write_bytes(files[case.target])
            finally:
                tracemalloc.stop()
    finally:
        if tmp is not None:
            tmp.cleanup()
    return tallies


def _run_case(case: Case, root: Path, load, pristine: tuple[np.ndarray, ...], tally: Tally):
    case.target.write_bytes(case.data)
    tally.cases += 1
    tally.by_kind[case.kind] = tally.by_kind.get(case.kind, 0) + 1
    tracemalloc.reset_peak()
    label = f"{case.kind} on {case.target.name}"
    try:
        ds = load(root)
    except DataError as e:
        tally.rejected += 1
        msg = str(e)
        if "\n" in msg or case.target.name not in msg:
            tally.bad_messages.append(f"{label}: {msg!r}")
    except Exception as e:  # noqa: BLE001 - the fuzz counts any other exception as a failure
        tally.other.append(f"{label}: {type(e).__name__}: {str(e)[:200]}")
    else:
        tally.accepted += 1
        got = _arrays(ds)
        shapes = [a.shape for a in got] == [a.shape for a in pristine]
        same = shapes and all(np.array_equal(a, b) for a, b in zip(got, pristine, strict=True))
        if not {"never": False, "same": same, "shapes": shapes}[case.accept]:
            tally.wrongly_accepted.append(f"{label}: shapes {[a.shape for a in got]}, same {same}")
    peak = tracemalloc.get_traced_memory()[1]
    tally.peak = max(tally.peak, peak)
    if peak > PEAK_LIMIT:
        tally.over_peak.append(f"{label}: {peak} bytes")


def figure(tallies: dict[str, Tally]) -> str:
    """The fuzz figure as a table, one row per loader."""
    rows = [
        f"{'loader':<24}{'cases':>6}{'DataError':>10}{'loaded':>8}{'other exc.':>11}"
        f"{'code run':>9}{'peak alloc':>12}"
    ]
    for name, t in tallies.items():
        rows.append(
            f"{LABELS[name]:<24}{t.cases:>6}{t.rejected:>10}{t.accepted:>8}{len(t.other):>11}"
            f"{t.code_ran:>9}{t.peak / 2**20:>9.2f} MiB"
        )
    total = [
        sum(getattr(t, a) for t in tallies.values()) for a in ("cases", "rejected", "accepted")
    ]
    other = sum(len(t.other) for t in tallies.values())
    ran = sum(t.code_ran for t in tallies.values())
    rows.append(f"{'all':<24}{total[0]:>6}{total[1]:>10}{total[2]:>8}{other:>11}{ran:>9}")
    return "\n".join(rows)


def _failures(tallies: dict[str, Tally]) -> list[str]:
    out = []
    for name, t in tallies.items():
        for what in ("other", "bad_messages", "wrongly_accepted", "side_effects", "over_peak"):
            out += [f"{name} {what}: {s}" for s in getattr(t, what)]
        if t.code_ran:
            out.append(f"{name}: code ran in {t.code_ran} cases")
    return out


# ---------------------------------------------------------------- tests


def test_every_loader_survives_the_fuzz(tmp_path):
    n = 60
    tallies = fuzz(n=n, seed=0, workdir=tmp_path)
    assert _failures(tallies) == []
    for name, t in tallies.items():
        assert t.cases == n and t.rejected + t.accepted == n, name
        # every kind ran, and the kinds that always damage the structure were all rejected
        assert set(t.by_kind) >= {"truncate", "flip", "magic", "huge", "random", "trailing"}
        assert t.rejected >= n - t.by_kind["flip"] - t.by_kind["trailing"], name
    assert tallies["mnist"].rejected == n  # every damage to a plain IDX file shows
    assert tallies["cifar10"].by_kind["malicious"] >= 8
    assert tallies["cifar5m"].by_kind["malicious"] >= 8


class _Reduce:
    """Pickles as `fn(*args)` (then BUILD with `state` if given)."""

    def __init__(self, fn, args, state=None):
        self.fn, self.args, self.state = fn, args, state

    def __reduce__(self):
        return (self.fn, self.args) if self.state is None else (self.fn, self.args, self.state)


def _abuses() -> dict[str, bytes]:
    """Pickles that reach the allowed numpy/codecs globals with what no genuine batch holds."""
    import _codecs

    reconstruct = np.zeros(1).__reduce__()[0]  # numpy's _reconstruct, whatever its module
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]  # numpy's _frombuffer (protocol 5)
    u1 = np.dtype("u1")
    plain = (3, "|", None, None, None, -1, -1, 0)

    def array(state):  # numpy's own pickle of an ndarray, with `state` in place of the real one
        return _Reduce(reconstruct, (np.ndarray, (0,), b"b"), state)

    objs = {
        "object dtype": np.array([1, None], dtype=object),
        "structured dtype": np.zeros(2, dtype=[("a", "u1")]),
        "string dtype": np.array(["ab", "cd"]),
        "codecs rot13": _Reduce(_codecs.encode, ("abc", "rot13")),
        "codecs zlib": _Reduce(_codecs.encode, (b"abc", "zlib_codec")),
        "ndarray called": _Reduce(np.ndarray, ((10**12,),)),
        "reconstruct a dtype": _Reduce(reconstruct, (np.dtype, (0,), b"b")),
        "reconstruct huge": _Reduce(reconstruct, (np.ndarray, (10**12,), b"b")),
        "dtype dict state": _Reduce(np.dtype, ("u1", False, True), {"__class__": 1}),
        "dtype fields state": _Reduce(np.dtype, ("u1", 0, 1), (3, "|", None, ("a",)) + plain[4:]),
        "dtype order state": _Reduce(np.dtype, ("u1", 0, 1), (3, ">") + plain[2:]),
        "array object state": array((1, (2,), u1, False, [1, 2])),
        "array bad version": array((7, (2,), u1, False, b"ab")),
        "array huge shape": array((1, (10**12,), u1, False, b"ab")),
        "array negative shape": array((1, (-1, -2), u1, False, b"ab")),
        "array short data": array((1, (3,), u1, False, b"ab")),
        "array not a dtype": array((1, (2,), "u1", False, b"ab")),
        "frombuffer huge": _Reduce(frombuffer, (b"ab", u1, (10**12,), "C")),
        "frombuffer order": _Reduce(frombuffer, (b"ab", u1, (2,), "K")),
    }  # fmt: skip
    out = {k: pickle.dumps({b"data": v, b"labels": [0, 1]}, protocol=2) for k, v in objs.items()}
    state = pickle.dumps(plain, protocol=2)[2:-1]
    twice = b"\x80\x02}U\x04datacnumpy\ndtype\nU\x02u1K\x00K\x01\x87R" + state + b"b" + state
    out["dtype built twice"] = twice + b"bs."
    out["build on a global"] = b"\x80\x02cnumpy\ndtype\n}b."
    out["persistent id"] = b"\x80\x02X\x01\x00\x00\x00aQ."
    out["ext code"] = b"\x80\x02\x82\x01."
    return out


@pytest.mark.parametrize("abuse", sorted(_abuses()))
def test_allowed_globals_are_not_a_way_in(tmp_path, abuse):
    root = tmp_path / "data"
    write_pristine("cifar10", root, np.random.default_rng(2))
    batch = root / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(_abuses()[abuse])
    with pytest.raises(DataError) as e:
        load_cifar10(root)
    msg = str(e.value)
    assert "\n" not in msg and str(batch) in msg and "corrupt file" in msg, msg
    if abuse != "ext code":  # (an empty extension registry: the unpickler's own ValueError)
        assert "not a CIFAR-10 batch" in msg and "re-download it from the official" in msg, msg


def test_malicious_batch_through_the_cli(tmp_path, capsys):
    from analysis.cli import main

    root, marker = tmp_path / "data", tmp_path / "PWNED"
    write_pristine("cifar10", root, np.random.default_rng(1))

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch '{marker}'",)

    batch = root / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(pickle.dumps(Evil(), protocol=2))
    out = tmp_path / "runs"
    argv = ["run", "complexity", "--tasks", "cifar10", "--networks", "mlp"]
    code = main([*argv, "--data-dir", str(root), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and err.startswith("lazyrich: error:"), err
    assert str(batch) in err and "not a CIFAR-10 batch" in err, err
    assert "it asks to load `posix.system`" in err or "`nt.system`" in err, err
    assert "re-download it from the official archive" in err, err
    assert not marker.exists()


def test_gzip_bomb_stops_at_the_declared_size(tmp_path):
    """The bomb's header declares 2×28×28 bytes; the stream holds 1 GiB more. Reading stops
    one byte past the declared size (peak allocation ≪ 1 GiB) and names the excess."""
    from lazyrich.data import read_idx

    path = tmp_path / "bomb-idx3-ubyte.gz"
    path.write_bytes(_gzip_bomb((2, 28, 28), np.random.default_rng(0)))
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        try:
            read_idx(path)
            raise AssertionError("the bomb was accepted")
        except DataError as e:
            assert "longer than the 1584 bytes its header (2, 28, 28) implies" in str(e)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak  # < 1 MiB: it decompressed only the first member or two
    assert time.perf_counter() - t0 < 5  # no 1 GiB inflate (generous: a loaded 2-core box)
    # the same stream of the declared size but zlib-compressed differently still loads
    arr = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    path.write_bytes(gzip.compress(idx_bytes(arr), compresslevel=1))
    np.testing.assert_array_equal(read_idx(path), arr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fuzz every file loader; print the figure.")
    parser.add_argument("--cases", type=int, default=250, help="malformed files per loader")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    tallies = fuzz(n=args.cases, seed=args.seed)
    print(figure(tallies))
    failures = _failures(tallies)
    for line in failures:
        print("FAIL", line)
    print(f"seed {args.seed}, {time.perf_counter() - t0:.1f} s, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
