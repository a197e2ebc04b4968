"""What a benchmark ran on (and its matmul peak), and where its JSON goes: shared by every
benchmark.

Results go to `--out PATH` if given, else to `$LAZYRICH_BENCH_OUT/NAME.json` if that variable
is set (the device suite sets it to `$OUT`), else to `benchmarks/results/NAME.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp

RESULTS = Path(__file__).parent / "results"
OUT_ENV = "LAZYRICH_BENCH_OUT"


def machine() -> dict:
    """Platform, Python, CPU count, load average, JAX version and device of this process."""
    dev = jax.devices()[0]
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "device": f"{dev.platform}:{getattr(dev, 'device_kind', '')}",
        "device_count": jax.device_count(),
    }


def default_peak_n() -> int:
    """Matmul size for `matmul_peak_way`: 2048 on the CPU, 8192 on an accelerator."""
    return 2048 if jax.default_backend() == "cpu" else 8192


def matmul_peak_way(n: int, repeats: int = 3) -> Callable[[], float]:
    """`measure() -> GFLOP/s`: best of `repeats` float32 `jnp.dot` of two n × n matrices.

    The machine's matmul peak as this process sees it (compiled here; call `measure()`
    interleaved with the benchmark's own timings so a change of load hits both alike)."""
    a, b = jax.random.normal(jax.random.key(0), (2, n, n), jnp.float32)
    dot = jax.jit(jnp.dot)
    jax.block_until_ready(dot(a, b))

    def measure() -> float:
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            jax.block_until_ready(dot(a, b))
            best = min(best, time.perf_counter() - t0)
        return 2 * n**3 / best / 1e9

    return measure


def add_out(parser: argparse.ArgumentParser, name: str) -> None:
    """`--out PATH` (default: `$LAZYRICH_BENCH_OUT/NAME.json` or benchmarks/results/NAME.json)."""
    parser.add_argument(
        "--out",
        default=None,
        help=f"JSON path (default: ${OUT_ENV}/{name}.json if set, else benchmarks/results/)",
    )


def result_path(name: str, out: str | os.PathLike | None = None) -> Path:
    if out is not None:
        return Path(out)
    base = os.environ.get(OUT_ENV)
    return (Path(base) if base else RESULTS) / f"{name}.json"


def write(name: str, payload: dict, out: str | os.PathLike | None = None) -> Path:
    """Write `{"machine": machine(), **payload}` as JSON; returns the path."""
    path = result_path(name, out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2, default=str) + "\n")
    print(f"wrote {path}")
    return path
