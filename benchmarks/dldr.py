"""Benchmark: P-BFGS step vs SGD step on an MLP, and TrajectorySampler overhead.

    uv run python -m benchmarks.dldr                       # CPU-sized defaults
    python3 -m benchmarks.dldr --width 1024 --depth 4 --batch 1024 --d 40   # GPU sizes

Writes benchmarks/results/dldr.json and prints one line per result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import jax
import optax
from jax.flatten_util import ravel_pytree

from lazyrich.models import MLP, functional
from lazyrich.optim.dldr import TrajectorySampler, dldr_subspace, p_bfgs, p_sgd


def machine() -> dict:
    return dict(
        platform=platform.platform(),
        cpu_count=os.cpu_count(),
        jax_version=jax.__version__,
        device=str(jax.devices()[0].device_kind),
        backend=jax.default_backend(),
    )


def timeit(fn, repeats: int) -> float:
    """Median seconds per call of `fn()` (which must block), after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--in-dim", type=int, default=40)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--d", type=int, default=20)
    ap.add_argument("--steps", type=int, default=50, help="steps per timed loop")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default="benchmarks/results/dldr.json")
    args = ap.parse_args(argv)

    key = jax.random.key(0)
    model = MLP(args.in_dim, args.width, args.depth, 10, parameterization="standard", key=key)
    params, apply = functional(model)
    w0, unravel = ravel_pytree(params)
    x = jax.random.normal(jax.random.key(1), (args.batch, args.in_dim))
    y = jax.random.randint(jax.random.key(2), (args.batch,), 0, 10)

    def loss_tree(p, batch):
        xb, yb = batch
        return optax.softmax_cross_entropy_with_integer_labels(apply(p, xb), yb).mean()

    def loss_flat(w, batch):
        return loss_tree(unravel(w), batch)

    sgd = optax.sgd(0.05, momentum=0.9)

    @jax.jit
    def sgd_step(p, s, batch):
        g = jax.grad(loss_tree)(p, batch)
        u, s = sgd.update(g, s, p)
        return optax.apply_updates(p, u), s

    # sample a trajectory (with the sampler) to build P
    sampler = TrajectorySampler()
    p, s = params, sgd.init(params)
    sampler.record(p)
    for _ in range(args.d + 5):
        p, s = sgd_step(p, s, (x, y))
        sampler.record(p)
    P, _ = dldr_subspace(sampler.samples(), args.d)
    P = P.astype(w0.dtype)

    def run_sgd():
        p, s = params, sgd.init(params)
        for _ in range(args.steps):
            p, s = sgd_step(p, s, (x, y))
        jax.block_until_ready(p)

    def run_sgd_sampled(directory=None):
        smp = TrajectorySampler(directory)
        p, s = params, sgd.init(params)
        for _ in range(args.steps):
            p, s = sgd_step(p, s, (x, y))
            smp.record(p)  # every step: the worst case (the paper samples once per epoch)
        jax.block_until_ready(p)
        smp.samples()

    psgd = p_sgd(0.05, P)

    @jax.jit
    def psgd_step(p, s, batch):
        g = jax.grad(loss_tree)(p, batch)
        u, s = psgd.update(g, s, p)
        return optax.apply_updates(p, u), s

    def run_psgd():
        p, s = params, psgd.init(params)
        for _ in range(args.steps):
            p, s = psgd_step(p, s, (x, y))
        jax.block_until_ready(p)

    def run_pbfgs(linesearch):
        opt = p_bfgs(loss_flat, P, linesearch=linesearch)

        def go():
            st = opt.init(w0)
            for _ in range(args.steps):
                st = opt.step(st, (x, y))
            jax.block_until_ready(st.alpha)

        return go

    results = {}
    t_sgd = timeit(run_sgd, args.repeats) / args.steps
    results["sgd_step_s"] = t_sgd
    results["psgd_step_s"] = timeit(run_psgd, args.repeats) / args.steps
    results["pbfgs_step_s"] = timeit(run_pbfgs("armijo"), args.repeats) / args.steps
    results["pbfgs_optax_ls_step_s"] = timeit(run_pbfgs("optax"), args.repeats) / args.steps
    results["sgd_step_with_sampler_every_step_s"] = (
        timeit(run_sgd_sampled, args.repeats) / args.steps
    )
    with tempfile.TemporaryDirectory() as tmp:
        results["sgd_step_with_sampler_spill_every_step_s"] = (
            timeit(lambda: run_sgd_sampled(Path(tmp) / "s"), args.repeats) / args.steps
        )
    # one P-BFGS step: how many line-search trials and loss evaluations it took
    opt = p_bfgs(loss_flat, P)
    st = opt.init(w0)
    tries = []
    for _ in range(args.steps):
        st = opt.step(st, (x, y))
        tries.append(int(st.tries))
    results["pbfgs_mean_linesearch_trials"] = sum(tries) / len(tries)
    results["ratio_pbfgs_over_sgd"] = results["pbfgs_step_s"] / t_sgd
    results["ratio_pbfgs_optax_over_sgd"] = results["pbfgs_optax_ls_step_s"] / t_sgd
    results["ratio_psgd_over_sgd"] = results["psgd_step_s"] / t_sgd
    results["sampler_overhead_every_step"] = (
        results["sgd_step_with_sampler_every_step_s"] / t_sgd - 1
    )
    results["sampler_spill_overhead_every_step"] = (
        results["sgd_step_with_sampler_spill_every_step_s"] / t_sgd - 1
    )

    config = dict(vars(args), n_params=int(w0.size), dtype=str(w0.dtype))
    for k, v in results.items():
        print(f"dldr {k} = {v:.6g}  (D={w0.size}, d={args.d}, batch={args.batch})")
    out = dict(machine=machine(), config=config, results=results)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
