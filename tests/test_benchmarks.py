"""The device suite end to end at tiny sizes on the CPU, and the benchmarks' public imports.

Speed is never asserted here (it is measured in benchmarks/); these check that every step of
`benchmarks/device_suite.sh` runs, and writes JSON that records the machine it ran on.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "benchmarks" / "device_suite.sh"


def suite_steps(mode: str) -> list[str]:
    """Step names of the GPU branch (`gpu`) or the `--cpu-smoke` branch of the suite."""
    text = SUITE.read_text()
    smoke, gpu = text.split('if [ "$SMOKE" = 1 ]; then\n  step ', 1)[1].split("\nelse\n", 1)
    gpu = gpu.split("\nfi\n", 1)[0]
    body = "  step " + smoke if mode == "smoke" else gpu
    return re.findall(r"^\s*step (\w+) ", body, flags=re.M)


def test_smoke_runs_every_gpu_step():
    gpu = suite_steps("gpu")
    assert len(gpu) == 8
    assert suite_steps("smoke") == gpu


def test_device_suite_cpu_smoke(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "LAZYRICH_BENCH_OUT"}
    env |= {"OUT": str(tmp_path), "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(SUITE), "--cpu-smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    log = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, log
    rows = [r.split("\t") for r in (tmp_path / "suite_summary.tsv").read_text().splitlines()[1:]]
    assert [r[0] for r in rows] == suite_steps("smoke"), log
    assert all(r[1] == "ok" for r in rows), log
    for name in suite_steps("smoke"):
        data = json.loads((tmp_path / f"{name}.json").read_text())
        assert data["machine"]["jax"] and data["machine"]["device"].startswith("cpu"), name
    sweep = json.loads((tmp_path / "sweep_throughput.json").read_text())
    for way in ("engine", "plain-scan", "vmapped-loop", "single-loop"):
        r = sweep["results"][way]
        assert r["run_steps_per_s"] > 0 and 0 < r["fraction_of_peak"], way
    timing = json.loads((tmp_path / "gamma_eta_timing.json").read_text())
    assert [r["rc"] for r in timing["runs"]] == [0]  # one study run end to end (no fit)
    assert (tmp_path / "gamma_eta_runs").is_dir()


def test_benchmarks_import_only_public_names():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    proc = subprocess.run(
        [ruff, "check", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "analysis" not in "".join(
        line
        for p in (ROOT / "benchmarks").glob("*.py")
        for line in p.read_text().splitlines()
        if line.startswith(("import ", "from "))
    )
