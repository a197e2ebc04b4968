"""Closed-form lazy dynamics: lazyrich against `nt.predict.gradient_descent_mse_ensemble`.

Infinite-width NTK of a ReLU MLP (stax), P train and Q test points, T times, k outputs.
Both sides include the kernel evaluation (the same `kernel_fn`) and the solve; we report the
median wall time over interleaved repeats after one warm-up call (with the eigendecomposition of
the train kernel alone, the floor both share), and the largest relative difference of the test
predictions.

    uv run python -m benchmarks.lazy_dynamics             # CPU: P=1000, Q=250, T=20, k=10
    python3 -m benchmarks.lazy_dynamics --paper           # GPU: P=4000, Q=1000, T=20, k=10
    uv run python -m benchmarks.lazy_dynamics --small     # seconds (device-suite smoke)

Prints one line per result and writes benchmarks/results/lazy_dynamics.json (see `--out`).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from lazyrich.kernels import nt, stax_twin
from lazyrich.models import MLP
from lazyrich.theory import kernel_gd_predictions

from ._machine import add_out, write


def _median_times(fns: dict, repeats: int) -> tuple[dict, dict]:
    """Median seconds per call of each function, timed interleaved (one call of each per round,
    so a change of machine load hits all alike), after one warm-up call each."""
    outs = {name: jax.block_until_ready(fn()) for name, fn in fns.items()}  # compile, caches
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            times[name].append(time.perf_counter() - t0)
    return {name: sorted(t)[len(t) // 2] for name, t in times.items()}, outs


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--paper", action="store_true", help="P=4000, Q=1000, T=20, k=10")
    p.add_argument("--train", type=int, default=1000)
    p.add_argument("--test", type=int, default=250)
    p.add_argument("--times", type=int, default=20)
    p.add_argument("--outputs", type=int, default=10)
    p.add_argument("--in-dim", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--x64", action="store_true", help="float64 (default float32)")
    p.add_argument("--small", action="store_true", help="P=64, Q=16, T=5, k=2 (smoke test)")
    add_out(p, "lazy_dynamics")
    a = p.parse_args(argv)
    if a.paper:
        a.train, a.test, a.times, a.outputs = 4000, 1000, 20, 10
    if a.small:
        a.train, a.test, a.times, a.outputs, a.in_dim, a.repeats = 64, 16, 5, 2, 8, 1
    if a.x64:
        jax.config.update("jax_enable_x64", True)

    keys = jax.random.split(jax.random.key(0), 3)
    x_train = jax.random.normal(keys[0], (a.train, a.in_dim))
    x_test = jax.random.normal(keys[1], (a.test, a.in_dim))
    y_train = jax.random.normal(keys[2], (a.train, a.outputs))
    times = jnp.logspace(-1, 3, a.times)
    model = MLP(a.in_dim, 64, 2, a.outputs, parameterization="ntk", key=jax.random.key(1))
    kernel_fn = jax.jit(stax_twin(model).kernel_fn, static_argnames="get")

    def ours():
        k_train = kernel_fn(x_train, None, "ntk")
        k_test = kernel_fn(x_test, x_train, "ntk")
        return kernel_gd_predictions(k_train, k_test, y_train, times).test

    def theirs():
        predict = nt.predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y_train)
        return predict(t=times, x_test=x_test, get="ntk")

    info = {"dtype": str(x_train.dtype)}
    k_train = kernel_fn(x_train, None, "ntk")
    eigh = jax.jit(jnp.linalg.eigh)
    fns = {
        "lazyrich_closed_form": ours,
        "nt_gradient_descent_mse_ensemble": theirs,
        "eigh_of_train_kernel_alone": lambda: eigh(k_train),  # the floor both share
    }
    secs, outs = _median_times(fns, a.repeats)
    out_ours, out_nt = outs["lazyrich_closed_form"], outs["nt_gradient_descent_mse_ensemble"]
    diff = float(jnp.max(jnp.abs(out_ours - out_nt)) / jnp.max(jnp.abs(out_nt)))
    t_nt = secs["nt_gradient_descent_mse_ensemble"]
    results = [{"name": k, "seconds": v, "speedup_vs_nt": t_nt / v} for k, v in secs.items()]
    size = f"P={a.train} Q={a.test} T={a.times} k={a.outputs}"
    for r in results:
        print(
            f"{size} {r['name']:34s} {r['seconds']:9.3f} s  {r['speedup_vs_nt']:6.2f}x vs nt  "
            f"(max rel diff of test predictions {diff:.1e})"
        )
    out = {"info": info, "config": vars(a), "max_rel_diff": diff, "results": results}
    write("lazy_dynamics", out, a.out)
    return out


if __name__ == "__main__":
    main()
