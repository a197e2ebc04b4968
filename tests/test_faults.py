"""Faults, not only clean interruptions: `lazyrich run` survives SIGKILL at seeded random
points with damaged chunks, stale temporaries and stale locks between resumes (the final
results.nc equals an uninterrupted run's, byte for byte), a full or read-only disk mid-run,
a second run into the same directory, a corrupt config.json, and options a preset ignores.

The fault-injection test runs `LAZYRICH_FAULT_KILLS` kill points (default 3) drawn from
`LAZYRICH_FAULT_SEED` (default 0); for a longer campaign:

    LAZYRICH_FAULT_KILLS=20 uv run pytest tests/test_faults.py -o addopts="" -k injection
"""

import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import lazyrich.results._store as store_module
from analysis.cli import main
from lazyrich.results import StudyLock

pytestmark = pytest.mark.cost(100)  # seconds, loaded 2-core machine: scheduled first

TINY = [
    "--dim", "4", "--width", "8", "--depth", "2", "--batch", "4", "--steps", "300",
    "--gamma-min", "0.1", "--gamma-max", "10", "--eta-min", "0.01", "--eta-max", "1",
    "--seeds", "1", "--records", "4", "--n-test", "16", "--chunk-size", "1",
    "--sharpness-iters", "2", "--sharpness-points", "1", "--sharpness-batch", "8",
]  # fmt: skip
KILLS = int(os.environ.get("LAZYRICH_FAULT_KILLS", "3"))
SEED = int(os.environ.get("LAZYRICH_FAULT_SEED", "0"))
FAULTS = ("truncate", "flip", "delete", "stale-temp", "stale-lock")
UMASK = 0o002


def _run(out: Path, *extra: str) -> int:
    return main(["run", "gamma-eta", *TINY, "--out", str(out), *extra])


def _results(out: Path) -> bytes:
    return (out / "gamma-eta" / "results.nc").read_bytes()


def _chunks(out: Path) -> list[Path]:
    return sorted((out / "gamma-eta" / "chunks").glob("*.npz"))


def _leftovers(out: Path) -> list[str]:
    study = out / "gamma-eta"
    return [p.name for p in study.rglob(".*") if p.name.endswith(".tmp") or p.name == ".lock"]


def _lines(err: str) -> list[str]:
    """stderr's lines, progress-bar redraws (carriage returns) split off."""
    return re.split(r"[\r\n]+", err)


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in _lines(err) if line.startswith("lazyrich: error:")]
    assert len(lines) == 1, err[-2000:]
    return lines[0]


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """One uninterrupted run (under umask 002), shared by the tests below."""
    out = tmp_path_factory.mktemp("clean")
    old = os.umask(UMASK)
    try:
        assert _run(out) == 0
    finally:
        os.umask(old)
    return out


def test_files_follow_the_umask(clean):
    study = clean / "gamma-eta"
    files = [p for p in study.rglob("*") if p.is_file()]
    assert {"results.nc", "config.json", "summary.json"} <= {p.name for p in files}
    assert any(p.suffix == ".npz" for p in files) and any(p.suffix == ".png" for p in files)
    for p in files:
        assert p.stat().st_mode & 0o777 == 0o666 & ~UMASK, p
    assert _leftovers(clean) == []  # the lock is gone after the run


def test_damaged_chunks_are_recomputed_with_one_warning_each(tmp_path, clean, capsys):
    out = tmp_path / "damaged"
    shutil.copytree(clean, out)
    chunks = _chunks(out)
    truncated, foreign, flipped = chunks[1], chunks[2], chunks[3]
    truncated.write_bytes(truncated.read_bytes()[:-7])
    shutil.copyfile(chunks[0], foreign)  # a valid chunk of another index
    data = bytearray(flipped.read_bytes())
    data[len(data) // 3] ^= 0x10  # inside an array's bytes: a bad CRC
    flipped.write_bytes(bytes(data))
    capsys.readouterr()
    assert _run(out, "--resume") == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for path in (truncated, foreign, flipped):
        lines = [line for line in _lines(err) if str(path) in line]
        assert len(lines) == 1 and lines[0].startswith("lazyrich: warning: chunk"), err[-2000:]
        assert lines[0].endswith("recomputing it")
    assert _results(out) == _results(clean)


def _hold(out: Path):
    (out / "gamma-eta").mkdir(parents=True)
    return StudyLock(out / "gamma-eta")


def test_second_run_into_a_locked_directory_is_refused(tmp_path, capsys):
    with _hold(tmp_path) as held:
        started = json.loads(held.path.read_text())["started"]
        for extra in ([], ["--resume"]):
            assert _run(tmp_path, *extra) == 2
            line = _error_line(capsys)
            assert f"pid {os.getpid()} on host {socket.gethostname()}" in line
            assert f"started {started}" in line and "in use by another run" in line
            assert not (tmp_path / "gamma-eta" / "config.json").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["dldr", "--data-dir", "/nonexistent"],
        ["exact-gn", "--data-dir", "/nonexistent"],
        ["complexity", "--data-dir", "/nonexistent"],
        ["active-params", "--data-dir", "/nonexistent"],
    ],
)
def test_data_dir_where_data_are_generated_is_refused(tmp_path, capsys, argv):
    assert main(["run", *argv, "--out", str(tmp_path)]) == 2
    line = _error_line(capsys)
    assert "--data-dir /nonexistent is not used" in line and "drop --data-dir" in line
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("fault", ["truncate", "flip", "random", "empty"])
def test_corrupt_config_json_on_resume_is_one_line(tmp_path, clean, capsys, fault):
    out = tmp_path / "cfg"
    shutil.copytree(clean, out)
    config = out / "gamma-eta" / "config.json"
    rng = np.random.default_rng(["truncate", "flip", "random", "empty"].index(fault))
    good = config.read_bytes()
    bad = {
        "truncate": good[: len(good) // 2],
        "flip": good[:10] + bytes([good[10] ^ 0x80]) + good[11:],
        "random": rng.bytes(300),
        "empty": b"",
    }[fault]
    config.write_bytes(bad)
    before = _results(out)
    assert _run(out, "--resume") == 2
    line = _error_line(capsys)
    assert f"delete {config} or run without --resume" in line
    assert _results(out) == before and config.read_bytes() == bad  # nothing lost or replaced


def test_full_then_read_only_disk_mid_run_keeps_chunks(tmp_path, clean, capsys, monkeypatch):
    """A full disk at the 5th chunk, then a read-only directory when results.nc is written:
    each is one line and exit 2, and --resume reuses every chunk already written. Root
    ignores file modes, so the failures are injected where the store creates files."""
    out = tmp_path / "disk"
    create = store_module._temporary
    chunk_writes = []

    def full_at_fifth_chunk(directory, name):
        if name.endswith(".npz"):
            chunk_writes.append(name)
            if len(chunk_writes) == 5:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(directory / name))
        return create(directory, name)

    monkeypatch.setattr(store_module, "_temporary", full_at_fifth_chunk)
    capsys.readouterr()
    assert _run(out) == 2
    line = _error_line(capsys)
    failed = out / "gamma-eta" / "chunks" / chunk_writes[-1]
    assert f"cannot write {failed} (No space left on device)" in line
    assert "free space on that disk" in line and "--resume" in line
    kept = {p: p.stat().st_mtime_ns for p in _chunks(out)}
    assert len(kept) == 4 and not failed.exists() and _leftovers(out) == []

    def read_only_results(directory, name):
        if name == "results.nc":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(directory / name))
        return create(directory, name)

    monkeypatch.setattr(store_module, "_temporary", read_only_results)
    assert _run(out, "--resume") == 2
    line = _error_line(capsys)
    assert "results.nc (Read-only file system)" in line
    assert f"make {out / 'gamma-eta'} writable" in line
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())  # reused, not rewritten

    monkeypatch.undo()
    assert _run(out, "--resume") == 0
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())
    assert _results(out) == _results(clean)


def _subprocess_env(cache: Path) -> dict:
    """One CPU device and the session's XLA options (so numbers match in-process runs), and
    a shared compilation cache (so each resumed child does not compile again)."""
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f]
    return dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        XLA_FLAGS=" ".join(flags),
        JAX_COMPILATION_CACHE_DIR=str(cache),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
    )


def _writes(out: Path) -> set[tuple[str, int]]:
    found = set()
    for p in _chunks(out):
        try:
            found.add((p.name, p.stat().st_mtime_ns))
        except FileNotFoundError:
            pass
    return found


def _inject(fault: str, out: Path, rng: np.random.Generator, victims: list[Path], pid: int):
    study = out / "gamma-eta"
    if fault == "stale-lock":  # a lock record of a run that is gone (the killed one)
        record = {"pid": pid, "host": socket.gethostname(), "started": "2020-01-01T00:00:00"}
        (study / ".lock").write_text(json.dumps(record))
        return None
    if fault == "stale-temp":  # what a writer killed mid-write leaves
        name = victims[0].name if victims else "case0_00000.npz"
        for where in (study / "chunks", study):
            (where / f".{name}.{rng.integers(1 << 30):08x}.tmp").write_bytes(rng.bytes(100))
        return None
    if not victims:
        return None
    path = victims.pop()
    data = path.read_bytes()
    if fault == "truncate":
        path.write_bytes(data[: rng.integers(0, len(data))])
    elif fault == "flip":
        i = int(rng.integers(0, len(data)))
        path.write_bytes(data[:i] + bytes([data[i] ^ int(rng.integers(1, 256))]) + data[i + 1 :])
    else:
        path.unlink()
    return path


def test_fault_injection_kill_damage_resume_is_bit_identical(tmp_path, clean, capsys):
    """KILLS seeded kill points; after each SIGKILL every fault kind is applied (a truncated,
    a flipped and a deleted chunk, stale temporaries, a stale lock); the last resume gives
    the uninterrupted run's results.nc, byte for byte."""
    rng = np.random.default_rng(SEED)
    out = tmp_path / "faulty"
    cmd = [sys.executable, "-m", "analysis.cli", "run", "gamma-eta", *TINY, "--out", str(out)]
    env = _subprocess_env(tmp_path / "jax-cache")
    killed_mid_run, truncated = 0, None
    for k in range(KILLS):
        before = _writes(out)
        target, delay = int(rng.integers(1, 4)), float(rng.uniform(0.0, 0.3))
        log = tmp_path / f"round{k}.err"
        with log.open("wb") as err:
            proc = subprocess.Popen(cmd + (["--resume"] if k else []), env=env, stderr=err)
            deadline = time.time() + 300
            while proc.poll() is None and len(_writes(out) - before) < target:
                assert time.time() < deadline, "no chunk written in 300 s"
                time.sleep(0.01)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            code = proc.wait()
        assert code in (0, -signal.SIGKILL), log.read_text()[-3000:]
        assert "Traceback" not in log.read_text()
        killed_mid_run += code == -signal.SIGKILL
        chunks = _chunks(out)
        victims = [chunks[i] for i in rng.permutation(len(chunks))]
        for fault in rng.permutation(FAULTS):
            damaged = _inject(str(fault), out, rng, victims, proc.pid)
            truncated = damaged if fault == "truncate" else truncated
    assert killed_mid_run >= 1, "every run finished before its kill point"
    capsys.readouterr()
    assert _run(out, "--resume") == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if truncated is not None:  # the last round's truncated chunk: one warning, recomputed
        assert sum(str(truncated) in line for line in _lines(err)) == 1, err[-2000:]
    assert _leftovers(out) == []
    assert _results(out) == _results(clean)
    print(
        f"fault injection: {KILLS} kill points ({killed_mid_run} mid-run) x {len(FAULTS)} "
        "fault kinds, results.nc identical"
    )
