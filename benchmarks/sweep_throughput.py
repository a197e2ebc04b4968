"""Sweep throughput: the vmapped engine against plain loops of the same model, side by side.

Config (issue 2): centred μP MLP D=784, N=1000 (CPU default 256), L=3, batch 64, MSE, 64 runs
(8 γ × 8 η, one seed), online Gaussian inputs with a linear teacher. Three ways, one process:

- `engine`: `lazyrich.train.run_sweep`, all runs in one vmapped program (fori_loop of steps);
- `vmapped-loop`: a plain `jit(vmap(step))` called once per step from Python;
- `single-loop`: a `jit(step)` per run, called once per step per run (one run at a time).

Prints run-steps per second for each and the ratios.
Writes benchmarks/results/sweep_throughput.json.

    uv run python -m benchmarks.sweep_throughput                # CPU size
    python3 -m benchmarks.sweep_throughput --width 1000 --steps 2000 --loop-steps 200   # GPU
"""

from __future__ import annotations

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from lazyrich.models import MLP, functional, partition, scaled
from lazyrich.train import Grid, OnlineSetup, mse, run_sweep

from ._machine import write


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=784)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--runs", type=int, default=64, help="γ × η grid of this many runs (square)")
    ap.add_argument("--steps", type=int, default=300, help="steps per run, engine and vmapped loop")
    ap.add_argument(
        "--loop-steps", type=int, default=50, help="steps per run for the single-run loop"
    )
    args = ap.parse_args()
    D, N = args.dim, args.width
    teacher = jax.random.normal(jax.random.key(7), (D,)) / np.sqrt(D)

    def sample(key, n):
        x = jax.random.normal(key, (n, D))
        return x, (x @ teacher)[:, None]

    tx, ty = sample(jax.random.key(1), 256)
    make = lambda k, g: scaled(MLP(D, N, args.depth, 1, key=k), gamma=g)
    setup = OnlineSetup(make, sample, tx, ty, batch=args.batch, lr_multiplier=float(N))
    side = int(np.sqrt(args.runs))
    gammas, etas = np.logspace(-1, 2, side), np.logspace(-4, -2, args.runs // side)
    grid = Grid.of(gammas, etas, [0])
    R = grid.num_runs
    results = {}

    # engine: compile once with a short sweep, then time a full one
    run_sweep(setup, grid, [1], progress=False)
    t0 = time.perf_counter()
    run_sweep(setup, grid, [args.steps], progress=False)
    dt = time.perf_counter() - t0
    results["engine"] = R * args.steps / dt

    # plain vmapped loop: jit(vmap(step)) per step, the same model and data stream
    g_runs, e_runs, _ = grid.runs()
    keys = jnp.stack([jax.random.fold_in(jax.random.key(0), 0)] * R)
    models = eqx.filter_vmap(make)(keys, jnp.asarray(g_runs, jnp.float32))
    params, rest = partition(models)
    eta = jnp.asarray(e_runs * N, jnp.float32)
    data_key = jax.random.fold_in(jax.random.key(0), 1)

    def step(p, r, lr, x, y):
        g = jax.grad(lambda q: mse(eqx.combine(q, r)(x), y))(p)
        return jax.tree.map(lambda a, b: a - lr * b, p, g)

    vstep = jax.jit(jax.vmap(step, (0, 0, 0, None, None)))
    draw = jax.jit(lambda t: sample(jax.random.fold_in(data_key, t), args.batch))
    x, y = draw(0)
    jax.block_until_ready(vstep(params, rest, eta, x, y))
    t0 = time.perf_counter()
    p = params
    for t in range(args.steps):
        x, y = draw(t)
        p = vstep(p, rest, eta, x, y)
    jax.block_until_ready(p)
    results["vmapped-loop"] = R * args.steps / (time.perf_counter() - t0)

    # one run at a time
    p1, apply = functional(make(keys[0], 1.0))
    rest1 = partition(make(keys[0], 1.0))[1]
    sstep = jax.jit(step)
    jax.block_until_ready(sstep(p1, rest1, 1e-3, x, y))
    n_loop = min(R, 8)
    t0 = time.perf_counter()
    for r in range(n_loop):
        q = p1
        for t in range(args.loop_steps):
            x, y = draw(t)
            q = sstep(q, rest1, float(eta[r]), x, y)
        jax.block_until_ready(q)
    results["single-loop"] = n_loop * args.loop_steps / (time.perf_counter() - t0)

    for k, v in results.items():
        print(f"{k:>13}: {v:10.0f} run-steps/s   engine/this = {results['engine'] / v:5.2f}")
    path = write(
        "sweep_throughput", {"config": vars(args) | {"runs": R}, "run_steps_per_s": results}
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
