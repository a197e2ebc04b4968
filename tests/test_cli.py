"""The `lazyrich` command: one-line errors with exit code 2, report, resume after SIGKILL."""

import os
import signal
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
    "--seeds", "1", "--records", "4", "--n-test", "16", "--chunk-size", "3",
]  # fmt: skip


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
            "data directory /no/such/dir does not exist",
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


def test_bad_option_keeps_existing_results(capsys, tmp_path):
    assert main(["run", "gamma-eta", *TINY, "--out", str(tmp_path)]) == 0
    before = (tmp_path / "gamma-eta" / "results.nc").read_bytes()
    config = (tmp_path / "gamma-eta" / "config.json").read_text()
    code, _ = _run_error(capsys, ["run", "gamma-eta", "--width", "-3", "--out", str(tmp_path)])
    assert code == 2
    assert (tmp_path / "gamma-eta" / "results.nc").read_bytes() == before
    assert (tmp_path / "gamma-eta" / "config.json").read_text() == config
    # the report collects it, with its figures, readable in a browser
    assert main(["report", "--out", str(tmp_path)]) == 0
    html = (tmp_path / "report.html").read_text()
    assert "gamma-eta/figures/loss_heatmap.png" in html and "eta_star" in html
    for fig in ("loss_heatmap", "loss_curves"):
        assert (tmp_path / "gamma-eta" / "figures" / f"{fig}.png").stat().st_size > 1000


def test_report_without_results(capsys, tmp_path):
    code, err = _run_error(capsys, ["report", "--out", str(tmp_path)])
    assert code == 2 and "no study results" in err


def test_help_exits_zero(capsys):
    assert main(["--help"]) == 0
    assert "lazyrich run STUDY" not in capsys.readouterr().err


def test_sigkill_and_resume_is_bit_identical(tmp_path):
    """A sweep killed with SIGKILL mid-way and resumed equals one never interrupted."""
    slow = [a if a != "20" else "3000" for a in TINY]  # long enough to kill mid-sweep
    cmd = [sys.executable, "-m", "analysis.cli", "run", "gamma-eta", *slow]
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="")
    killed = tmp_path / "killed"
    proc = subprocess.Popen(cmd + ["--out", str(killed)], env=env, stderr=subprocess.DEVNULL)
    chunks = killed / "gamma-eta" / "chunks"
    deadline = time.time() + 240
    while not (chunks / "chunk_00000.npz").exists():
        assert proc.poll() is None and time.time() < deadline, (
            "sweep ended before a chunk was saved"
        )
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (chunks / "chunk_00002.npz").exists(), "sweep finished before it was killed"
    assert not (killed / "gamma-eta" / "results.nc").exists()

    assert main(["run", "gamma-eta", *slow, "--out", str(killed), "--resume"]) == 0
    assert main(["run", "gamma-eta", *slow, "--out", str(tmp_path / "clean")]) == 0
    a = xr.open_dataset(killed / "gamma-eta" / "results.nc", engine="scipy").load()
    b = xr.open_dataset(tmp_path / "clean" / "gamma-eta" / "results.nc", engine="scipy").load()
    for name in b.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_resume_with_other_config_is_refused(capsys, tmp_path):
    assert main(["run", "gamma-eta", *TINY, "--out", str(tmp_path)]) == 0
    code, err = _run_error(
        capsys, ["run", "gamma-eta", *TINY, "--width", "16", "--out", str(tmp_path), "--resume"]
    )
    assert code == 2 and "different config (differs in: width)" in err


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
