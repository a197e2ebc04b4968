"""Time per step: exact GN (RevMLP) vs Adam vs NTK-space GN, side by side in one process.

Default: a reduced CPU configuration (d = 64, h = 512, batch 256, 2 blocks). `--paper` uses the
paper's MNIST configuration (d = 784, h = 8000, batch 1000, 2 blocks), meant for the GPU.

    uv run python -m benchmarks.gauss_newton            # reduced, CPU
    uv run python -m benchmarks.gauss_newton --paper    # paper config (GPU)
    uv run python -m benchmarks.gauss_newton --small    # seconds (device-suite smoke)

Prints one line per result and writes benchmarks/results/gauss_newton.json (with the machine
and its load average, `benchmarks/_machine.py`).
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import optax

from lazyrich.models import RevMLP, functional
from lazyrich.optim import (
    exact_gauss_newton,
    ntk_gauss_newton,
    output_error,
    set_lapack_threads,
)

from ._machine import add_out, write


def _time(fn, *args, repeats: int) -> tuple[float, float]:
    """(compile+first call seconds, median seconds per call afterwards)."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    times.sort()
    return first, times[len(times) // 2]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--paper", action="store_true", help="d=784, h=8000, batch 1000, 2 blocks")
    p.add_argument("--in-dim", type=int, default=64)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--out-dim", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--ntk-method", choices=["dense", "cg", "skip"], default="cg")
    p.add_argument("--cg-maxiter", type=int, default=50)
    p.add_argument("--small", action="store_true", help="d=16, h=32, batch 16 (smoke test)")
    add_out(p, "gauss_newton")
    a = p.parse_args(argv)
    if a.paper:
        a.in_dim, a.hidden, a.batch, a.blocks = 784, 8000, 1000, 2
    if a.small:
        a.in_dim, a.hidden, a.batch, a.repeats, a.cg_maxiter = 16, 32, 16, 1, 5

    model = RevMLP(
        a.in_dim, num_blocks=a.blocks, hidden=a.hidden, out_dim=a.out_dim, key=jax.random.key(0)
    )
    x = jax.random.normal(jax.random.key(1), (a.batch, a.in_dim))
    y = jax.nn.one_hot(jax.random.randint(jax.random.key(2), (a.batch,), 0, a.out_dim), a.out_dim)
    params, apply = functional(model)

    gn = exact_gauss_newton(model, 0.5, loss="mse")
    gn_state = gn.init(params)

    @jax.jit
    def gn_step(params, state, x, y):
        # exact GN ignores the incoming updates (it computes its own direction from x, y)
        upd, state = gn.update(None, state, params, x=x, y=y)  # pyright: ignore[reportArgumentType]
        return optax.apply_updates(params, upd), state

    adam = optax.adam(1e-4)
    adam_state = adam.init(params)

    @jax.jit
    def adam_step(params, state, x, y):
        g = jax.grad(lambda p: jnp.mean(jnp.sum((apply(p, x) - y) ** 2, axis=-1)))(params)
        upd, state = adam.update(g, state, params)
        return optax.apply_updates(params, upd), state

    @jax.jit
    def ntk_step(params, x, y):
        eps = output_error(apply(params, x), y, "mse")
        d = ntk_gauss_newton(
            apply, params, x, eps, damping=1e-6, method=a.ntk_method, maxiter=a.cg_maxiter
        )
        return jax.tree.map(lambda p_, d_: p_ - 0.5 * d_, params, d)

    results = []
    runs: list = [
        ("exact_gn", gn_step, (params, gn_state, x, y)),
        ("adam", adam_step, (params, adam_state, x, y)),
    ]
    if a.ntk_method != "skip":
        runs.append((f"ntk_gn_{a.ntk_method}", ntk_step, (params, x, y)))
    for name, fn, args in runs:
        first, med = _time(fn, *args, repeats=a.repeats)
        results.append({"name": name, "seconds_per_step": med, "first_call_seconds": first})
    if jax.default_backend() == "cpu":
        # what the step cost before lazyrich set SciPy's OpenBLAS to one thread (its default
        # is one thread per core, oversubscribing XLA's own threads; lazyrich.optim._gauss_newton)
        set_lapack_threads(os.cpu_count() or 1)
        try:
            first, med = _time(gn_step, params, gn_state, x, y, repeats=a.repeats)
        finally:
            set_lapack_threads(1)
        results.append(
            {
                "name": "exact_gn_openblas_default_threads",
                "seconds_per_step": med,
                "first_call_seconds": first,
            }
        )
    base = results[1]["seconds_per_step"]
    for r in results:
        r["ratio_to_adam"] = r["seconds_per_step"] / base
        print(
            f"{r['name']:>33}: {r['seconds_per_step'] * 1e3:9.2f} ms/step "
            f"({r['ratio_to_adam']:.1f}x Adam; first call {r['first_call_seconds']:.2f} s)"
        )
    out = {
        "config": {
            "in_dim": a.in_dim,
            "hidden": a.hidden,
            "batch": a.batch,
            "blocks": a.blocks,
            "out_dim": a.out_dim,
            "repeats": a.repeats,
            "ntk_method": a.ntk_method,
            "cg_maxiter": a.cg_maxiter,
            "dtype": str(x.dtype),
        },
        "results": results,
    }
    write("gauss_newton", out, a.out)
    return out


if __name__ == "__main__":
    main()
