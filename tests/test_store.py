"""lazyrich.results on disk: chunks are validated (fuzzed), one writer per directory (the lock),
files follow the umask, a full or read-only disk is one line, config.json is untrusted."""

import errno
import io
import json
import os
import signal
import socket
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest

from lazyrich.errors import ConfigError
from lazyrich.results import (
    ChunkWarning,
    StorageError,
    StudyDir,
    StudyLock,
    atomic_write_bytes,
    write_json,
)


def _arrays(rng=None):
    rng = np.random.default_rng(0) if rng is None else rng
    return {
        "test_loss": rng.normal(size=(3, 4)),
        "diverged": np.array([True, False, True]),
        "diverged_step": np.array([5, -1, 7], np.int64),
        "param:0": rng.normal(size=(3, 2, 5)).astype(np.float32),
    }


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a
    )


def _load_warned(store: StudyDir, index: int, tag: str, **kw):
    """load_chunk's result and the ChunkWarnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = store.load_chunk(index, tag=tag, **kw)
    return out, [w for w in caught if issubclass(w.category, ChunkWarning)]


@pytest.fixture
def store(tmp_path):
    return StudyDir(tmp_path, "s").prepare()


def test_chunk_round_trip_and_identity_checks(store):
    arrays = _arrays()
    store.save_chunk(3, arrays, tag="sweep-abc")
    back, warned = _load_warned(store, 3, "sweep-abc", rows=3)
    assert back is not None and _equal(back, arrays) and not warned
    assert store.load_chunk(4, tag="sweep-abc") is None  # missing: no warning, recomputed
    # a chunk copied from another call (or another index) is refused, with one warning
    path = store.chunk_path(3, "sweep-abc")
    for index, tag in [(3, "sweep-def"), (5, "sweep-abc")]:
        store.chunk_path(index, tag).write_bytes(path.read_bytes())
        back, warned = _load_warned(store, index, tag)
        assert back is None and len(warned) == 1
        assert str(store.chunk_path(index, tag)) in str(warned[0].message)
        assert "another computation" in str(warned[0].message)
    back, warned = _load_warned(store, 3, "sweep-abc", rows=4)  # wrong shapes for this call
    assert back is None and "expected 4 rows" in str(warned[0].message)


def _rewrite(path, members: dict[str, bytes]):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    path.write_bytes(buf.getvalue())


def _npy(array, header=None) -> bytes:
    f = io.BytesIO()
    if header is None:
        np.save(f, array, allow_pickle=True)
    else:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(array.tobytes())
    return f.getvalue()


def test_crafted_chunks_are_refused_without_unpickling_or_huge_allocation(store):
    arrays = _arrays()
    store.save_chunk(0, arrays, tag="t")
    path = store.chunk_path(0, "t")
    with zipfile.ZipFile(path) as zf:
        good = {n: zf.read(n) for n in zf.namelist()}
    cases = {
        # a valid archive whose record no longer matches: one array dropped, one changed
        "checksum": {k: v for k, v in good.items() if k != "diverged.npy"},
        "changed": {**good, "test_loss.npy": _npy(np.zeros((3, 4)))},
        # an object array (np.load with allow_pickle would run its pickle)
        "objects": {**good, "test_loss.npy": _npy(np.array([{"a": 1}, None], dtype=object))},
        # a header claiming 8 TB over 8 bytes of data
        "huge": {
            **good,
            "test_loss.npy": _npy(
                np.zeros(1), {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
            ),
        },
        "no record": {k: v for k, v in good.items() if k != "__chunk__.npy"},
        "foreign member": {**good, "evil.pkl": b"cos\nsystem\n"},
    }
    for name, members in cases.items():
        _rewrite(path, members)
        back, warned = _load_warned(store, 0, "t")
        assert back is None, name
        assert len(warned) == 1 and str(path) in str(warned[0].message), name


@pytest.mark.parametrize("fault", ["truncate", "flip", "random"])
def test_fuzzed_chunks_are_recomputed_or_exact(store, fault):
    """Seeded truncations, bit flips and random bytes: every damaged chunk is refused with
    one warning, unless the damage missed every byte that matters (then it loads exactly)."""
    rng = np.random.default_rng({"truncate": 1, "flip": 2, "random": 3}[fault])
    arrays = _arrays(rng)
    store.save_chunk(0, arrays, tag="t")
    path = store.chunk_path(0, "t")
    good = path.read_bytes()
    refused = 0
    for _ in range(150):
        data = bytearray(good)
        if fault == "truncate":
            data = data[: rng.integers(0, len(good))]
        elif fault == "flip":
            for i in rng.integers(0, len(good), size=rng.integers(1, 4)):
                data[i] ^= 1 << rng.integers(0, 8)
        else:
            data = bytearray(rng.bytes(int(rng.integers(0, 2 * len(good)))))
        path.write_bytes(bytes(data))
        back, warned = _load_warned(store, 0, "t")
        if back is None:
            refused += 1
            assert len(warned) == 1 and str(path) in str(warned[0].message)
        else:
            assert _equal(back, arrays) and not warned
    assert refused >= (150 if fault != "flip" else 120), refused


def test_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        store = StudyDir(tmp_path, "s").prepare()
        store.save_chunk(0, _arrays(), tag="t")
        write_json(store.config_path, {"a": 1})
        atomic_write_bytes(store.figure("f"), b"png")
        os.umask(0o002)
        write_json(store.summary_path, {"b": 2})
    finally:
        os.umask(old)
    mode = lambda p: p.stat().st_mode & 0o777
    assert mode(store.chunk_path(0, "t")) == 0o640
    assert mode(store.config_path) == 0o640 and mode(store.figure("f")) == 0o640
    assert mode(store.summary_path) == 0o664
    assert mode(store.path) == 0o750 and mode(store.chunks) == 0o750


@pytest.mark.parametrize(
    "code, fix",
    [
        (errno.ENOSPC, "free space on that disk"),
        (errno.EDQUOT, "free space on that disk"),
        (errno.EROFS, "writable"),
        (errno.EACCES, "writable"),
    ],
)
def test_full_or_read_only_disk_is_one_line_and_keeps_the_old_file(store, monkeypatch, code, fix):
    """Root ignores file modes, so the failing write is injected (at fsync, i.e. mid-write,
    for a full disk; at the temporary file's creation for a read-only one)."""
    target = store.path / "results.nc"
    atomic_write_bytes(target, b"finished")

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    where = "fsync" if code in (errno.ENOSPC, errno.EDQUOT) else "open"
    monkeypatch.setattr(os, where, fail)
    with pytest.raises(StorageError) as info:
        atomic_write_bytes(target, b"new bytes")
    monkeypatch.undo()
    message = str(info.value)
    assert "\n" not in message and str(target) in message and fix in message
    assert "--resume" in message
    assert target.read_bytes() == b"finished"
    assert [p.name for p in store.path.iterdir() if p.name.endswith(".tmp")] == []


def test_other_os_errors_are_not_disguised(store, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError) as info:
        atomic_write_bytes(store.path / "x", b"1")
    assert not isinstance(info.value, StorageError)


def test_start_removes_stale_temporaries(store):
    stale = [store.path / ".results.nc.1234abcd.tmp", store.chunks / ".t_00000.npz.beef.tmp"]
    store.chunks.mkdir()
    for p in stale:
        p.write_bytes(b"half")
    store.save_chunk(0, _arrays(), tag="t")
    store.start({"a": 1}, resume=True)
    assert not any(p.exists() for p in stale)
    assert store.chunk_path(0, "t").exists()  # resume keeps chunks
    store.start({"a": 1}, resume=False)
    assert not store.chunk_path(0, "t").exists()  # a fresh run discards them


@pytest.mark.parametrize("fault", ["truncate", "flip", "random"])
def test_fuzzed_config_json_on_resume_is_one_line(store, fault):
    config = {"study": "s", "width": 16, "gammas": [0.1, 1.0, 10.0], "lr": 0.001, "name": "x"}
    store.start(config, resume=False)
    good = store.config_path.read_bytes()
    rng = np.random.default_rng({"truncate": 11, "flip": 12, "random": 13}[fault])
    refused = 0
    for _ in range(100):
        data = bytearray(good)
        if fault == "truncate":
            data = data[: rng.integers(0, len(good))]
        elif fault == "flip":
            data[rng.integers(0, len(good))] ^= 1 << rng.integers(0, 8)
        else:
            data = bytearray(rng.bytes(int(rng.integers(0, 200))))
        store.config_path.write_bytes(bytes(data))
        try:
            store.start(config, resume=True)
        except ConfigError as e:
            refused += 1
            message = str(e)
            assert "\n" not in message
            assert str(store.config_path) in message or "different config" in message
            if str(store.config_path) in message:
                assert "delete" in message and "without --resume" in message
        else:  # accepted only if it still says the same (e.g. "1e-3" for "0.001")
            assert json.loads(bytes(data)) == config
    assert refused >= 95, refused


def test_deep_json_and_non_object_config(store):
    store.start({"a": 1}, resume=False)
    for text in ["[" * 100_000 + "]" * 100_000, "[1, 2]", "null", "\xff\xfe"]:
        store.config_path.write_bytes(text.encode("latin-1"))
        with pytest.raises(ConfigError, match="config.json"):
            store.start({"a": 1}, resume=True)


def test_lock_is_exclusive_names_the_holder_and_is_removed(store):
    with store.lock() as held:
        assert held.held and store.lock().path.exists()
        record = json.loads(held.path.read_text())
        with pytest.raises(ConfigError) as info:
            StudyLock(store.path).acquire()
        message = str(info.value)
        assert "\n" not in message and f"pid {os.getpid()}" in message
        assert socket.gethostname() in message and record["started"] in message
    assert not (store.path / ".lock").exists()
    with store.lock():  # free again
        pass


def test_stale_lock_of_a_dead_run_is_taken_over(store, tmp_path):
    # a lock file left by a run that died (its record names a pid that no longer exists)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record = {"pid": dead.pid, "host": socket.gethostname(), "started": "2020-01-01T00:00:00"}
    (store.path / ".lock").write_text(json.dumps(record))
    with store.lock() as held:
        assert json.loads(held.path.read_text())["pid"] == os.getpid()


def test_lock_of_a_killed_process_is_released_by_the_os(store):
    """A live holder in another process refuses us; SIGKILL it and the lock is free."""
    # the holder does what StudyLock.acquire does (flock, then its record), without the
    # seconds of importing lazyrich and JAX in a child
    code = (
        "import fcntl, json, os, socket, time; "
        f"fd = os.open({str(store.path / '.lock')!r}, os.O_RDWR | os.O_CREAT, 0o666); "
        "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); "
        "os.write(fd, json.dumps({'pid': os.getpid(), 'host': socket.gethostname(), "
        "'started': 'then'}).encode()); print('held', flush=True); time.sleep(600)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        with pytest.raises(ConfigError, match=f"pid {holder.pid} on host"):
            StudyLock(store.path).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (store.path / ".lock").exists()  # left behind, but no longer held
    with store.lock() as held:
        assert held.held
