"""Exact GN step time by Gram solver (`pinv_solve(solver=...)`), side by side in one process.

RevMLP d = 784, 2 blocks, float32; `eigh` is the default (and the step before the Cholesky
path existed), `auto` (Lanczos decides Cholesky or eigh), `cholesky` the untruncated solve (a
lower bound for the solver part, wrong where the spectrum is truncated), `matmuls_only` a
solver that returns its right-hand side (everything but the eigendecompositions). Rounds are
interleaved with a rotated order; each ratio is `eigh / this` within one round, reported as
median [min, max] over rounds.

    uv run python -m benchmarks.gn_solvers                     # h=1024, batch 256 and 1000
    uv run python -m benchmarks.gn_solvers --configs 1024:256 8000:1000 --repeats 3

Each solver is passed through `exact_gauss_newton(..., solver=...)`.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import numpy as np
import optax

from lazyrich.models import RevMLP, functional
from lazyrich.optim import AbstractGramSolver, exact_gauss_newton

from ._machine import add_out, write


class MatmulsOnly(AbstractGramSolver):
    """Returns its right-hand side: the step without any Gram solve."""

    def __call__(self, gram, rhs, *, rtol, atol, damping):
        del gram, rtol, atol, damping
        return rhs


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["1024:256", "1024:1000"], help="h:batch")
    p.add_argument("--in-dim", type=int, default=784)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--small", action="store_true", help="d=16, h=32, batch 16 (smoke test)")
    add_out(p, "gn_solvers")
    a = p.parse_args(argv)
    if a.small:
        a.in_dim, a.configs, a.repeats = 16, ["32:16"], 2
    solvers = {
        "eigh": "eigh",
        "auto": "auto",
        "cholesky": "cholesky",
        "matmuls_only": MatmulsOnly(),
    }
    results = []
    for cfg in a.configs:
        h, b = map(int, cfg.split(":"))
        model = RevMLP(a.in_dim, num_blocks=2, hidden=h, out_dim=10, key=jax.random.key(0))
        x = jax.random.normal(jax.random.key(1), (b, a.in_dim))
        y = jax.nn.one_hot(jax.random.randint(jax.random.key(2), (b,), 0, 10), 10)
        params, _ = functional(model)
        fns = {}
        for name, solver in solvers.items():
            gn = exact_gauss_newton(model, 0.5, loss="mse", solver=solver)
            state = gn.init(params)

            def step(p, s, x, y, gn=gn):
                u, s = gn.update(None, s, p, x=x, y=y)  # pyright: ignore[reportArgumentType]
                return optax.apply_updates(p, u), s

            step = jax.jit(step)
            jax.block_until_ready(step(params, state, x, y))  # compile with this solver
            fns[name] = (step, state)
        times: dict[str, list[float]] = {k: [] for k in fns}
        names = list(fns)
        for r in range(a.repeats):
            for k in names[r % len(names) :] + names[: r % len(names)]:
                f, st = fns[k]
                t0 = time.perf_counter()
                jax.block_until_ready(f(params, st, x, y))
                times[k].append(time.perf_counter() - t0)
        base = np.array(times["eigh"])
        for k, v in times.items():
            v = np.array(v)
            ratio = base / v
            row = {
                "hidden": h,
                "batch": b,
                "solver": k,
                "median_ms": 1e3 * float(np.median(v)),
                "min_ms": 1e3 * float(v.min()),
                "max_ms": 1e3 * float(v.max()),
                "eigh_over_this": [float(np.median(ratio)), float(ratio.min()), float(ratio.max())],
            }
            results.append(row)
            print(
                f"h={h} batch={b} {k:>12}: {row['median_ms']:8.1f} ms/step "
                f"[{row['min_ms']:.1f}, {row['max_ms']:.1f}]  eigh/this "
                f"{np.median(ratio):.2f} [{ratio.min():.2f}, {ratio.max():.2f}]"
            )
    print(f"load average {os.getloadavg()}")
    out = {"config": {"in_dim": a.in_dim, "repeats": a.repeats, "blocks": 2}, "results": results}
    write("gn_solvers", out, a.out)
    return out


if __name__ == "__main__":
    main()
