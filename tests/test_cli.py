"""The `lazyrich` command: one-line errors with exit code 2, report, resume after SIGKILL."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from analysis.cli import main

TINY = [
    "--dim", "4", "--width", "8", "--depth", "2", "--batch", "4", "--steps", "20",
    "--gamma-min", "0.1", "--gamma-max", "10", "--eta-min", "0.01", "--eta-max", "1",
    "--seeds", "1", "--records", "4", "--n-test", "16", "--chunk-size", "3", "--depth", "2",
    "--sharpness-iters", "2", "--sharpness-points", "1", "--sharpness-batch", "8",
]  # fmt: skip
# long enough per chunk (9 runs, 3 chunks) that a SIGKILL lands mid-sweep
SLOW = [a if a != "20" else "2000" for a in TINY]


def _subprocess_env(**extra) -> dict:
    """The test session's environment for a child `lazyrich run`: one CPU device (no forced
    host device count) but the same XLA compiler options, so its numbers match in-process runs."""
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f]
    return dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=" ".join(flags), **extra)


def _run_error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize(
    "argv, text",
    [
        (["run", "no-such-study"], "unknown study 'no-such-study'"),
        (["run", "gamma-eta", "--preset", "huge"], "unknown preset 'huge'"),
        (["run", "gamma-eta", "--gamma-min", "0"], "--gamma-min must be a finite number > 0"),
        (["run", "gamma-eta", "--gamma-max", "nan"], "--gamma-max must be a finite number > 0"),
        (["run", "gamma-eta", "--eta-min", "-1"], "--eta-min must be a finite number > 0"),
        (["run", "gamma-eta", "--eta-max", "inf"], "--eta-max must be a finite number > 0"),
        (["run", "gamma-eta", "--width", "0"], "--width must be >= 1"),
        (["run", "gamma-eta", "--depth", "0"], "--depth must be >= 1"),
        (["run", "gamma-eta", "--batch", "0"], "--batch must be >= 1"),
        (
            ["run", "gamma-eta", "--data-dir", "/no/such/dir"],
            "gamma-eta reads no data files (its tasks are generated): drop --data-dir",
        ),
        (["frobnicate"], "unknown command 'frobnicate'"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, tmp_path, argv, text):
    code, err = _run_error(capsys, argv + ["--out", str(tmp_path)] if argv[0] == "run" else argv)
    assert code == 2
    assert err.count("\n") == 0 and err.startswith("lazyrich: error:"), err
    assert text in err
    assert not (tmp_path / "gamma-eta").exists()  # nothing written for a bad option


def test_unwritable_output_directory(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, err = _run_error(capsys, ["run", "gamma-eta", *TINY, "--out", str(blocker / "sub")])
    assert code == 2 and err.count("\n") == 0
    assert "cannot write to output directory" in err


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    """One uninterrupted run of the slow tiny sweep, shared by the tests below."""
    out = tmp_path_factory.mktemp("clean")
    assert main(["run", "gamma-eta", *SLOW, "--out", str(out)]) == 0
    return out


def _assert_same_results(a_dir: Path, b_dir: Path):
    a = xr.open_dataset(a_dir / "gamma-eta" / "results.nc", engine="scipy").load()
    b = xr.open_dataset(b_dir / "gamma-eta" / "results.nc", engine="scipy").load()
    assert set(a.data_vars) == set(b.data_vars)
    for name in b.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_bad_option_keeps_existing_results(capsys, clean_run):
    before = (clean_run / "gamma-eta" / "results.nc").read_bytes()
    config = (clean_run / "gamma-eta" / "config.json").read_text()
    code, _ = _run_error(capsys, ["run", "gamma-eta", "--width", "-3", "--out", str(clean_run)])
    assert code == 2
    assert (clean_run / "gamma-eta" / "results.nc").read_bytes() == before
    assert (clean_run / "gamma-eta" / "config.json").read_text() == config
    # the report collects it, with its figures, readable in a browser
    assert main(["report", "--out", str(clean_run)]) == 0
    html = (clean_run / "report.html").read_text()
    assert "gamma-eta/figures/loss_heatmap.png" in html and "eta_star" in html
    for fig in ("loss_heatmap", "loss_curves"):
        assert (clean_run / "gamma-eta" / "figures" / f"{fig}.png").stat().st_size > 1000


def test_resume_with_other_config_is_refused(capsys, clean_run):
    code, err = _run_error(
        capsys, ["run", "gamma-eta", *SLOW, "--width", "16", "--out", str(clean_run), "--resume"]
    )
    assert code == 2 and "different config (differs in: width)" in err


def test_report_without_results(capsys, tmp_path):
    code, err = _run_error(capsys, ["report", "--out", str(tmp_path)])
    assert code == 2 and "no study results" in err


def test_help_exits_zero(capsys):
    assert main(["--help"]) == 0
    assert "lazyrich run STUDY" not in capsys.readouterr().err


def test_sigkill_and_resume_is_bit_identical(tmp_path, clean_run):
    """A sweep killed with SIGKILL mid-way and resumed equals one never interrupted."""
    cmd = [sys.executable, "-m", "analysis.cli", "run", "gamma-eta", *SLOW]
    env = _subprocess_env()
    killed = tmp_path / "killed"
    proc = subprocess.Popen(cmd + ["--out", str(killed)], env=env, stderr=subprocess.DEVNULL)
    chunks = killed / "gamma-eta" / "chunks"
    deadline = time.time() + 240
    main_chunk = lambda k: list(chunks.glob(f"case0-[0-9a-f]*_{k:05d}.npz"))  # not the probe's
    while not main_chunk(0):
        assert proc.poll() is None and time.time() < deadline, (
            "sweep ended before a chunk was saved"
        )
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not main_chunk(2), "sweep finished before it was killed"
    assert not (killed / "gamma-eta" / "results.nc").exists()
    assert main(["run", "gamma-eta", *SLOW, "--out", str(killed), "--resume"]) == 0
    _assert_same_results(killed, clean_run)


def test_two_processes_equal_one(tmp_path, clean_run):
    """Two processes (jax.distributed on localhost) split the chunks: same results as one."""
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "analysis.cli", "run", "gamma-eta", *SLOW, "--out", str(tmp_path)]
    base = _subprocess_env()
    procs = [
        subprocess.Popen(
            cmd,
            env=dict(
                base,
                LAZYRICH_COORDINATOR=f"localhost:{port}",
                LAZYRICH_NUM_PROCESSES="2",
                LAZYRICH_PROCESS_ID=str(i),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=400) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    own = {p.name[-9:] for p in (tmp_path / "gamma-eta" / "chunks").glob("case0-[0-9a-f]*.npz")}
    assert {"00000.npz", "00001.npz"} <= own  # both processes contributed
    _assert_same_results(tmp_path, clean_run)


def test_console_script_prints_no_traceback(tmp_path):
    exe = Path(sys.executable).parent / "lazyrich"
    out = subprocess.run(
        [str(exe), "run", "gamma-eta", "--depth", "0", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and out.stderr.strip().count("\n") == 0
