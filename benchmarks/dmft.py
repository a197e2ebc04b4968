"""DMFT solvers (`lazyrich.theory.dmft`): time and memory against P (points) and T (steps).

Each case runs in a fresh process (so its peak resident memory is its own): the exact
deep-linear solver at L = 2 and L = 3 (memory O(L (T P)²), time O((T P)³)),
and the sampling solver at L = 2 and 3 (tanh, S sites × B batches; L = 3 carries tangents of
every site's path: memory O(S T P · T P)). Exact L = 2 runs a one-step
recursion (memory O(P²), time O(T P³)). Reported per case: the first
call (compilation included), the median of the further calls, the peak RSS of the process
and, for scale, the same process's RSS before the solver ran. All in float64, 2 values of γ.

    uv run python -m benchmarks.dmft              # CPU sizes: P·T up to 10^4 (minutes)
    python3 -m benchmarks.dmft --paper            # GPU: larger P·T
    uv run python -m benchmarks.dmft --small      # seconds (smoke)

Prints one line per case and writes benchmarks/results/dmft.json (see `--out`).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

from ._machine import add_out, write

# (solver, depth, P, T): P training points (+ P/4 test points), T steps
CPU = [
    ("exact", 2, 100, 100), ("exact", 2, 100, 1000), ("exact", 2, 1000, 10),
    ("exact", 3, 10, 100), ("exact", 3, 20, 100), ("exact", 3, 30, 100),
    ("sampling", 2, 50, 200), ("sampling", 2, 100, 100), ("sampling", 3, 8, 10),
    ("sampling", 3, 4, 20),
]  # fmt: skip
PAPER = [
    ("exact", 2, 1000, 1000), ("exact", 3, 50, 100), ("sampling", 2, 1000, 100),
    ("sampling", 3, 10, 20),
]  # fmt: skip
SMALL = [("exact", 2, 8, 10), ("sampling", 2, 8, 10)]  # smoke: one process per case


def _rss_mb() -> float:
    # ru_maxrss is in kB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(solver: str, depth: int, p: int, t: int, samples: int, repeats: int) -> dict:
    """Time one solver call at size (P, T) in this process and report its peak memory."""
    import jax
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    from lazyrich.theory import dmft

    q = max(1, p // 4)
    if solver == "sampling" and depth == 3:
        samples = min(samples, 2048)  # tangent history: 2 S T (P+Q) · T (P+Q) numbers per γ
    rng = np.random.default_rng(0)
    x = rng.normal(size=(p + q, 8))
    y = np.tanh(x[:, 0]) + 0.1 * rng.normal(size=p + q)
    kwargs: dict[str, Any] = dict(
        depth=depth,
        activation="linear" if solver == "exact" else "tanh",
        gamma=[0.5, 2.0],
        eta0=[0.1, 1.0],
        steps=np.arange(0, t, max(1, t // 10)),
        solver=solver,
        samples=samples,
        batches=4,
        y_test=y[p:],
    )
    before = _rss_mb()
    t0 = time.perf_counter()
    ds = dmft(x[:p], y[:p], x[p:], **kwargs)
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        dmft(x[:p], y[:p], x[p:], **kwargs)
        times.append(time.perf_counter() - t0)
    return {
        "solver": solver,
        "depth": depth,
        "P": p,
        "Q": q,
        "T": t,
        "PT": p * t,
        "samples": samples if solver == "sampling" else None,
        "first_call_s": first,
        "median_s": sorted(times)[len(times) // 2] if times else None,
        "peak_rss_mb": _rss_mb(),
        "rss_before_mb": before,
        "final_train_loss": [float(v) for v in ds.train_loss.values[:, -1]],
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--paper", action="store_true", help="larger sizes (GPU)")
    p.add_argument("--small", action="store_true", help="tiny sizes (smoke test)")
    p.add_argument("--samples", type=int, default=16384, help="sites per batch (sampling)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--timeout", type=int, default=600, help="seconds per case")
    p.add_argument("--case", nargs=4, metavar=("SOLVER", "L", "P", "T"), help=argparse.SUPPRESS)
    add_out(p, "dmft")
    a = p.parse_args(argv)
    if a.case:
        solver, depth, pp, t = a.case[0], int(a.case[1]), int(a.case[2]), int(a.case[3])
        print(json.dumps(run_case(solver, depth, pp, t, a.samples, a.repeats)))
        return {}
    cases = SMALL if a.small else PAPER if a.paper else CPU
    samples = 256 if a.small else a.samples
    repeats = 1 if a.small else a.repeats
    results = []
    for solver, depth, pp, t in cases:
        cmd = [sys.executable, "-m", "benchmarks.dmft", "--case", solver, str(depth), str(pp)]
        cmd += [str(t), "--samples", str(samples), "--repeats", str(repeats)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            r = json.loads(lines[-1]) if proc.returncode == 0 and lines else None
            status = "ok" if r else f"failed rc={proc.returncode}: {proc.stderr[-300:]}"
        except subprocess.TimeoutExpired:
            r, status = None, f"timeout after {a.timeout} s"
        r = r or {"solver": solver, "depth": depth, "P": pp, "T": t, "PT": pp * t}
        r["status"] = status
        results.append(r)
        if status == "ok":
            print(
                f"{solver:8s} L={depth} P={pp:5d} T={t:5d} P*T={pp * t:7d}  first "
                f"{r['first_call_s']:8.2f} s  median {r['median_s'] or float('nan'):8.2f} s  "
                f"peak RSS {r['peak_rss_mb']:8.0f} MB"
            )
        else:
            print(f"{solver:8s} L={depth} P={pp:5d} T={t:5d}  {status}")
    info = {"dtype": "float64", "gammas": 2}
    out = {"info": info, "config": vars(a), "results": results}
    write("dmft", out, a.out)
    return out


if __name__ == "__main__":
    main()
