"""Sweep throughput: the vmapped engine against plain JAX of the same model and its kernel ceiling.

Config (issues 2, 9, 29): centred μP MLP D=784, N hidden (widths 256 and 512 in one run; GPU:
1000), L=3 hidden layers, batch 64, MSE, 64 runs (8 γ × 8 η, one seed; `--seeds` for more),
online Gaussian inputs with a linear teacher, plain SGD at η·N. Per width, in one process, in
run-steps per second (runs × steps / s):

- `engine`: the training engine (`engine_way`, `lazyrich.train.train` on the online `Stream`
  with the step θ ← θ − η·N·∇L as `optax.chain(identity, scale(-η·N))`), which does
  the work that depends only on the seed once per seed (the batch, the frozen initial copy's
  forward pass) and the first layer as one product over a seed's runs;
- `plain-scan`: a hand-written `jax.jit(lax.scan(vmap(step)))` of the same step, data drawn
  inside the scan, compiled ahead of time (no divergence masking), everything per run: every
  run gets its batch by indexing the per-seed batches with its seed index (an opaque gather),
  and evaluates its own frozen copy (the engine's layout before issue 29);
- `plain-shared`: the engine's layout in plain JAX, `jit(scan(vmap over seeds of vmap over a
  seed's runs))` with the seed's batch and frozen copy closed over by its runs;
- `vmapped-loop`: `jit(vmap(step))` called once per step from Python;
- `single-loop`: `jit(step)` per run, one run at a time (a per-run framework loop);
- `kernel-ceiling`: the shared step's matrix products timed alone: every `dot_general` of one
  `plain-shared` step (read from its jaxpr, with its shapes and dimension numbers) run as its
  own compiled call on random operands; the sum of their times is the step time of a program
  made of nothing but those products.

FLOPs are the FLOPs each way actually does: twice the multiply-adds of every `dot_general` in
the jaxpr of one step (`dot_flops`), divided by the runs; the engine, `plain-shared` and the
ceiling do those of a `plain-shared` step (tests/test_seed_shared.py counts the engine's own
step: the same work), the per-run ways those of a `plain-scan` step. That counts the frozen
copy's forward where it runs (once per seed, or once per run) and leaves out the input
gradient of the first layer that no way computes; the textbook rule 6 · batch ·
Σ fan_in·fan_out is in the JSON beside it (`flops_rule_6bs`). Achieved GFLOP/s is compared
with the float32 matmul peak measured in the same process (best of a few `jnp.dot` of n × n).
Every way (and the peak) is measured once per round, rounds interleaved in rotated order; the
best round of each is kept (the least disturbed on a shared machine).

    uv run python -m benchmarks.sweep_throughput                # CPU sizes (widths 256, 512)
    uv run python -m benchmarks.sweep_throughput --small        # seconds (device-suite smoke)
    python3 -m benchmarks.sweep_throughput --width 1000 --steps 1000 --loop-steps 100   # GPU
"""

from __future__ import annotations

import argparse
import math
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lazyrich.models import MLP, partition, scaled
from lazyrich.train import Factory, Grid, Stream, mse, train

from ._machine import add_out, default_peak_n, matmul_peak_way, write

SMALL = dict(dim=32, width="32", depth=2, batch=16, runs=4, steps=20, loop_steps=5, peak_n=256,
             rounds=1)  # fmt: skip
SHARED = ("engine", "plain-shared", "kernel-ceiling")  # ways that share a seed's work


class GammaMLP(Factory):
    """The benchmark's centred μP MLP at the run's `hp["gamma"]` (a `Factory`: equal fields,
    shared compiled programs)."""

    dim: int
    width: int
    depth: int

    def __call__(self, key, hp):
        return scaled(MLP(self.dim, self.width, self.depth, 1, key=key), gamma=hp["gamma"])


def engine_way(model: Factory, data: Stream, grid: Grid, steps: int, *, batch: int, n: int):
    """`measure() -> run-steps/s` of the training engine (`lazyrich.train.train`) on `grid`,
    SGD at η·`n` (compiled here, by a 1-step call). The one place that names the engine: swap
    these lines when `lazyrich.train` changes."""
    step = lambda hp: optax.chain(optax.identity(), optax.scale(-hp["eta"] * n))  # noqa: E731
    train(model, step, data, grid=grid, record_at=[1], batch=batch, progress=False)

    def measure():
        t0 = time.perf_counter()
        train(model, step, data, grid=grid, record_at=[steps], batch=batch, progress=False)
        return grid.num_runs * steps / (time.perf_counter() - t0)

    return measure


def dots_of(jaxpr) -> list:
    """Every `dot_general` equation of a jaxpr and its sub-jaxprs (each sub-jaxpr once: a loop
    body counts as one trip)."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            found.append(eqn)
        for p in eqn.params.values():
            for sub in p if isinstance(p, (tuple, list)) else [p]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    found += dots_of(inner)
    return found


def dot_flops(jaxpr) -> int:
    """2 × multiply-adds of every `dot_general` in `jaxpr` (see `dots_of`)."""
    total = 0
    for eqn in dots_of(jaxpr):
        (lc, _), _ = eqn.params["dimension_numbers"]
        lhs = eqn.invars[0].aval.shape
        total += 2 * math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[c] for c in lc)
    return total


def kernel_ceiling_way(jaxpr, runs: int, reps: int):
    """`measure() -> run-steps/s` if a step took only the time of its `dot_general`s, each
    compiled alone and timed over `reps` back-to-back calls on random operands."""
    calls = []
    for i, eqn in enumerate(dots_of(jaxpr)):
        params = {k: eqn.params[k] for k in ("dimension_numbers", "precision")}
        params["preferred_element_type"] = eqn.params.get("preferred_element_type")
        fn = jax.jit(lambda a, b, params=params: jax.lax.dot_general(a, b, **params))
        ops = [
            jax.random.normal(jax.random.key(i + j), v.aval.shape, v.aval.dtype)
            for j, v in enumerate(eqn.invars)
        ]
        jax.block_until_ready(fn(*ops))
        calls.append((fn, ops))

    def measure():
        total = 0.0
        for fn, ops in calls:
            t0 = time.perf_counter()
            for _ in range(reps):
                out = fn(*ops)
            jax.block_until_ready(out)
            total += (time.perf_counter() - t0) / reps
        return runs / total

    return measure


def sgd_step(params, rest, lr, x, y):
    """One plain SGD step of one run (the model is `eqx.combine(params, rest)`)."""
    g = jax.grad(lambda q: mse(eqx.combine(q, rest)(x), y))(params)
    return jax.tree.map(lambda a, b: a - lr * b, params, g)


vstep = jax.vmap(sgd_step)


def plain_scan_way(params, rest, lr, si, draw, steps: int):
    """`jit(lax.scan(vmap(sgd_step)))` over `steps` steps, compiled ahead of time."""

    def run(p, rest, lr, si):
        def body(p, t):
            return vstep(p, rest, lr, *draw(t, si)), None

        return jax.lax.scan(body, p, jnp.arange(steps))[0]

    compiled = jax.jit(run).lower(params, rest, lr, si).compile()

    def measure():
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(params, rest, lr, si))
        return lr.shape[0] * steps / (time.perf_counter() - t0)

    return measure


def plain_shared_way(params, rest, lr, seed_of, sample, batch: int, steps: int):
    """`jit(lax.scan(vmap over seeds of vmap over a seed's runs))` of `sgd_step`: the engine's
    layout in plain JAX. Each seed's batch is drawn once and closed over by its runs, as is
    its frozen copy (every non-trainable leaf but γ), so both, the copy's forward pass and the
    first layer's product with the batch, are batched once per seed.

    **Returns:** `(measure, jaxpr of one step)`."""
    order = np.argsort(seed_of, kind="stable")  # runs grouped by seed, (S, K)
    n_seeds = len(np.unique(seed_of))
    group = lambda tree: jax.tree.map(lambda a: a[order].reshape((n_seeds, -1) + a.shape[1:]), tree)
    mask = eqx.tree_at(lambda m: m.gamma.value, jax.tree.map(lambda _: True, rest), replace=False)
    seed_part, run_part = eqx.partition(rest, mask)
    firsts = np.searchsorted(seed_of[order], np.unique(seed_of))
    seed_rest = jax.tree.map(lambda a: a[order][firsts], seed_part)
    keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.key(s), 1))(
        jnp.asarray(np.unique(seed_of), jnp.uint32)
    )
    p0, rr, lr_g = group(params), group(run_part), group(lr)

    def one_step(p, t):
        def per_seed(p_g, rr_g, sr, lr_s, key):
            x, y = sample(jax.random.fold_in(key, t), batch)
            one = lambda q, r, e: sgd_step(q, eqx.combine(r, sr), e, x, y)  # noqa: E731
            return jax.vmap(one)(p_g, rr_g, lr_s)

        return jax.vmap(per_seed)(p, rr, seed_rest, lr_g, keys)

    def run(p):
        return jax.lax.scan(lambda p, t: (one_step(p, t), None), p, jnp.arange(steps))[0]

    compiled = jax.jit(run).lower(p0).compile()

    def measure():
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(p0))
        return lr.shape[0] * steps / (time.perf_counter() - t0)

    return measure, jax.make_jaxpr(one_step)(p0, 0).jaxpr


def vmapped_loop_way(params, rest, lr, si, draw, steps: int):
    step = jax.jit(lambda p, rest, lr, si, t: vstep(p, rest, lr, *draw(t, si)))
    jax.block_until_ready(step(params, rest, lr, si, 0))

    def measure():
        t0 = time.perf_counter()
        p = params
        for t in range(steps):
            p = step(p, rest, lr, si, t)
        jax.block_until_ready(p)
        return lr.shape[0] * steps / (time.perf_counter() - t0)

    return measure


def single_loop_way(params, rest, lr, si, draw, steps: int, runs: int):
    one = lambda tree, r: jax.tree.map(lambda a: a[r], tree)
    sstep = jax.jit(sgd_step)
    draw1 = jax.jit(lambda t, s: one(draw(t, s[None]), 0))
    jax.block_until_ready(sstep(one(params, 0), one(rest, 0), lr[0], *draw1(0, si[0])))

    def measure():
        t0 = time.perf_counter()
        for r in range(runs):
            q, rr, e = one(params, r), one(rest, r), lr[r]
            for t in range(steps):
                q = sstep(q, rr, e, *draw1(t, si[r]))
            jax.block_until_ready(q)
        return runs * steps / (time.perf_counter() - t0)

    return measure


def one_width(args, width: int) -> dict:
    """Every way at one width, interleaved rounds; the figures and FLOP counts."""
    D, N, B = args.dim, width, args.batch
    teacher = jax.random.normal(jax.random.key(7), (D,)) / np.sqrt(D)

    def sample(key, n):
        x = jax.random.normal(key, (n, D))
        return x, (x @ teacher)[:, None]

    make = lambda k, g: scaled(MLP(D, N, args.depth, 1, key=k), gamma=g)
    model, stream = GammaMLP(D, N, args.depth), Stream(sample, *sample(jax.random.key(1), 256))
    side = max(1, int(np.sqrt(args.runs)))
    grid = Grid.of(
        np.logspace(-1, 2, side).tolist(),
        np.logspace(-4, -2, args.runs // side).tolist(),
        list(range(args.seeds)),
    )
    R = grid.num_runs

    # the same R models, learning rates and data streams for the plain-JAX ways
    runs = grid.runs()
    seed_keys = jax.vmap(jax.random.key)(jnp.arange(args.seeds, dtype=jnp.uint32))
    init_keys = jax.vmap(lambda k: jax.random.fold_in(k, 0))(seed_keys)[runs["seed"]]
    models = eqx.filter_vmap(make)(init_keys, jnp.asarray(runs["gamma"], jnp.float32))
    params, rest = partition(models)
    lr = jnp.asarray(runs["eta"] * N, jnp.float32)
    data_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(seed_keys)
    si = jnp.asarray(runs["seed"], jnp.int32)  # every run's seed index, as in the engine

    def draw(t, si):  # the step-t batch of each run: its seed's batch, by an opaque gather
        x, y = jax.vmap(lambda k: sample(jax.random.fold_in(k, t), B))(data_keys)
        return x[si], y[si]

    seed_of = np.asarray(runs["seed"])
    shared_way, shared_jaxpr = plain_shared_way(params, rest, lr, seed_of, sample, B, args.steps)
    plain_jaxpr = jax.make_jaxpr(lambda p: vstep(p, rest, lr, *draw(0, si)))(params).jaxpr
    # the engine does the work of `plain-shared` (its layout; tests/test_seed_shared.py counts
    # the engine's own step); the per-run ways do that of `plain-scan`
    flops = {"shared": dot_flops(shared_jaxpr) / R, "per_run": dot_flops(plain_jaxpr) / R}
    ways = {  # each compiled here, then measured once per round
        "engine": engine_way(model, stream, grid, args.steps, batch=B, n=N),
        "plain-scan": plain_scan_way(params, rest, lr, si, draw, args.steps),
        "plain-shared": shared_way,
        "vmapped-loop": vmapped_loop_way(params, rest, lr, si, draw, args.steps),
        "single-loop": single_loop_way(params, rest, lr, si, draw, args.loop_steps, min(R, 8)),
        "kernel-ceiling": kernel_ceiling_way(shared_jaxpr, R, args.ceiling_reps),
        "peak": matmul_peak_way(args.peak_n),
    }
    flops_of = {w: flops["shared" if w in SHARED else "per_run"] for w in ways}
    # rounds interleave the ways (rotated order) so a change of machine load hits all alike;
    # the best of each is kept, and the median over rounds of the paired engine/plain-scan ratio
    names = list(ways)
    all_rounds: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            all_rounds[name].append(ways[name]())
    best = {n: max(v) for n, v in all_rounds.items()}
    peak = best.pop("peak")
    rate = best
    paired = sorted(
        e / p for e, p in zip(all_rounds["engine"], all_rounds["plain-scan"], strict=True)
    )
    sizes = [D] + [N] * args.depth + [1]
    macs = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    results = {}
    for way, r in rate.items():
        gf = r * flops_of[way] / 1e9
        results[way] = {
            "run_steps_per_s": r,
            "engine_over_this": rate["engine"] / r,
            "flops_per_run_step": flops_of[way],
            "gflops": gf,
            "gflops_rule_6bs": r * 6 * B * macs / 1e9,
            "fraction_of_peak": gf / peak,
        }
        print(
            f"sweep_throughput N={N:<5} {way:>14}: {r:10.0f} run-steps/s  engine/this "
            f"{rate['engine'] / r:5.2f}  {gf:8.1f} GFLOP/s  {100 * gf / peak:5.1f}% of peak"
        )
    print(f"sweep_throughput N={N:<5} matmul peak (float32, {args.peak_n}^2): {peak:.1f} GFLOP/s")
    print(
        f"sweep_throughput N={N:<5} engine/plain-scan: {rate['engine'] / rate['plain-scan']:.2f} "
        f"(best of {args.rounds} rounds each; median paired ratio {paired[len(paired) // 2]:.2f});"
        f" FLOPs per run-step: shared {flops['shared']:.4g}, per run {flops['per_run']:.4g}, "
        f"6·B·Σ {6 * B * macs:.4g}"
    )
    return {
        "width": N,
        "runs": R,
        "layer_sizes": sizes,
        "flops_per_run_step": flops,
        "flops_rule_6bs": 6 * B * macs,
        "matmul_peak_gflops": peak,
        "engine_over_plain_scan": rate["engine"] / rate["plain-scan"],
        "engine_over_plain_scan_paired_median": paired[len(paired) // 2],
        "engine_over_kernel_ceiling": rate["engine"] / rate["kernel-ceiling"],
        "run_steps_per_s": rate,
        "all_rounds": all_rounds,
        "results": results,
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--dim", type=int, default=784)
    ap.add_argument("--width", default="256,512", help="hidden width(s), comma-separated")
    ap.add_argument("--depth", type=int, default=3, help="hidden layers")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--runs", type=int, default=64, help="γ × η runs per seed (square grid)")
    ap.add_argument("--seeds", type=int, default=1, help="seeds (every seed runs the γ × η grid)")
    ap.add_argument("--steps", type=int, default=100, help="steps per run (engine, scan, loop)")
    ap.add_argument("--loop-steps", type=int, default=25, help="steps per run, single-run loop")
    ap.add_argument("--ceiling-reps", type=int, default=10, help="calls per product, ceiling")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (best kept)")
    ap.add_argument("--peak-n", type=int, default=0, help="matmul size (0: 2048 CPU, 8192 GPU)")
    ap.add_argument("--small", action="store_true", help="tiny sizes (CPU smoke test)")
    add_out(ap, "sweep_throughput")
    args = ap.parse_args(argv)
    if args.small:
        ap.set_defaults(**SMALL)
        args = ap.parse_args(argv)
    if args.peak_n == 0:
        args.peak_n = default_peak_n()
    widths = [int(w) for w in str(args.width).split(",")]
    by_width = {str(w): one_width(args, w) for w in widths}
    first = by_width[str(widths[0])]
    out = {
        "config": vars(args) | {"widths": widths},
        "flops_rule": "2 x multiply-adds of every dot_general in the jaxpr of one step, per run: "
        "the work each way does (the engine's frozen-copy forward once per seed, the plain "
        "ways' once per run); flops_rule_6bs = 6 * batch * sum(fan_in * fan_out)",
        "matmul_precision": str(getattr(jax.config, "jax_default_matmul_precision", None)),
        "by_width": by_width,
        # the first width's figures at the top level (the layout earlier versions wrote)
        **{k: first[k] for k in ("matmul_peak_gflops", "engine_over_plain_scan",
                                 "engine_over_plain_scan_paired_median", "run_steps_per_s",
                                 "all_rounds", "results")},
    }  # fmt: skip
    write("sweep_throughput", out, args.out)
    return out


if __name__ == "__main__":
    main()
