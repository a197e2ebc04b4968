"""Benchmark: DLDR (issue 6) — step costs, time to accuracy, and sampler overhead, in one run.

    uv run python -m benchmarks.dldr            # CPU: everything (a few minutes on 2 cores)
    uv run python -m benchmarks.dldr --quick    # CPU: MLP only for parts 2-3, fewer repeats
    uv run python -m benchmarks.dldr --small    # seconds (device-suite smoke)
    python3 -m benchmarks.dldr --parts 1 --width 1024 --depth 4 --batch 1024 --d 40   # GPU

Only lazyrich's public API; the networks and the setting are defined here (the DLDR study's
quick setting: mnist1d 4000/1000, SGD lr 0.1 momentum 0.9 batch 128, 10 sampling epochs × 8
samples + init, d = 40, P-BFGS batch 256).

1. **Step cost**: a P-SGD step and a P-BFGS step (our Armijo search and optax's) against an
   SGD-with-momentum step on the same MLP and batch (random data), median of repeated loops.
2. **Time to accuracy** on mnist1d: SGD alone versus DLDR = sampling phase (the same SGD,
   a `TrajectorySampler` recording `samples_per_epoch` times per epoch) + `dldr_subspace` +
   P-BFGS (`p_bfgs` in a scan over each epoch's batches). Target: `--target-fraction`
   × SGD's test accuracy after `full_epochs`. Every program is compiled ahead of time (its
   compile time reported apart) and test accuracy is evaluated between timed segments, so
   the reported time is training only; the fastest of `--tta-repeats` repeats is kept.
3. **Sampler overhead**: the SGD sampling phase as a Python loop of one jitted step each,
   with a `TrajectorySampler` recording once per epoch or every step, in memory or spilled
   to `.npy` chunks, against the same loop without sampler (and against itself, A/A, for the
   noise floor); overhead = min time(variant) / min time(none) − 1 over rotated rounds, in
   wall and process-CPU time, and as predicted by the cost of one `record` alone.

Writes benchmarks/results/dldr.json (see `--out`) and prints one line per result.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from lazyrich.data import batch_indices, epoch_batches, load_dataset, num_batches
from lazyrich.models import CNN, MLP, functional
from lazyrich.optim import TrajectorySampler, dldr_subspace, p_bfgs, p_sgd
from lazyrich.train import accuracy, cross_entropy

from ._machine import add_out, write

# the DLDR study's quick setting, and a tiny one for the smoke test
SETTINGS: dict[str, dict] = {
    "quick": dict(n_train=4000, n_test=1000, mlp_width=64, mlp_depth=2, cnn_width=8, lr=0.1,
                  batch=128, sample_epochs=10, samples_per_epoch=8, full_epochs=20, d=40,
                  pbfgs_batch=256, seed=0),
    "small": dict(n_train=512, n_test=256, mlp_width=16, mlp_depth=1, cnn_width=4, lr=0.1,
                  batch=64, sample_epochs=2, samples_per_epoch=4, full_epochs=3, d=5,
                  pbfgs_batch=128, seed=0),
}  # fmt: skip


def timeit(fn, repeats: int) -> float:
    """Median seconds per call of `fn()` (which must block), after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def network(net: str, data, c: dict):
    """`(params0, apply_tree, w0, apply_flat)` of the study's MLP or CNN (standard param.)."""
    key = jax.random.fold_in(jax.random.key(c["seed"]), 0)
    if net == "mlp":
        d_in = int(np.prod(data.input_shape))
        model = MLP(d_in, c["mlp_width"], c["mlp_depth"], data.out_dim,
                    parameterization="standard", key=key)  # fmt: skip
    else:
        shape = data.input_shape if len(data.input_shape) > 1 else (*data.input_shape, 1)
        model = CNN(shape, c["cnn_width"], data.out_dim, parameterization="standard", key=key)
    params0, apply_tree = functional(model)
    w0, unravel = ravel_pytree(params0)
    return params0, apply_tree, w0, lambda w, x: apply_tree(unravel(w), x)


# --------------------------------------------------------------------------- 1. step cost


def step_costs(args) -> dict:
    """Seconds per SGD, P-SGD and P-BFGS step on one MLP and batch, and their ratios."""
    model = MLP(args.in_dim, args.width, args.depth, 10, parameterization="standard",
                key=jax.random.key(0))  # fmt: skip
    params, apply = functional(model)
    w0, _ = ravel_pytree(params)
    batch = (
        jax.random.normal(jax.random.key(1), (args.batch, args.in_dim)),
        jax.random.randint(jax.random.key(2), (args.batch,), 0, 10),
    )
    loss_tree = lambda p, b: cross_entropy(apply(p, b[0]), b[1])

    def jit_step(opt):
        @jax.jit
        def step(p, s):
            u, s = opt.update(jax.grad(loss_tree)(p, batch), s, p)
            return optax.apply_updates(p, u), s

        return step

    sgd = optax.sgd(0.05, momentum=0.9)
    sgd_j = jit_step(sgd)
    sampler, p, s = TrajectorySampler(), params, sgd.init(params)  # P from a short trajectory
    sampler.record(p)
    for _ in range(args.d + 5):
        p, s = sgd_j(p, s)
        sampler.record(p)
    P = dldr_subspace(sampler.samples(), args.d)[0].astype(w0.dtype)
    psgd = p_sgd(0.05, P)

    def loop(opt, step):
        def go():
            p, s = params, opt.init(params)
            for _ in range(args.steps):
                p, s = step(p, s)
            jax.block_until_ready((p, s))

        return go

    def jit_pbfgs(opt):  # the optax form: value, grad and value_fn of the same batch
        value_fn = lambda q: loss_tree(q, batch)

        @jax.jit
        def step(p, s):
            value, grad = jax.value_and_grad(value_fn)(p)
            u, s = opt.update(grad, s, p, value=value, grad=grad, value_fn=value_fn)
            return optax.apply_updates(p, u), s

        return step

    pbfgs_armijo, pbfgs_optax = p_bfgs(P), p_bfgs(P, linesearch="optax")
    per = lambda go: timeit(go, args.repeats) / args.steps
    r = {
        "sgd_step_s": per(loop(sgd, sgd_j)),
        "psgd_step_s": per(loop(psgd, jit_step(psgd))),
        "pbfgs_step_s": per(loop(pbfgs_armijo, jit_pbfgs(pbfgs_armijo))),
        "pbfgs_optax_ls_step_s": per(loop(pbfgs_optax, jit_pbfgs(pbfgs_optax))),
    }
    step, tries = jit_pbfgs(pbfgs_armijo), []
    p, s = params, pbfgs_armijo.init(params)
    for _ in range(args.steps):
        p, s = step(p, s)
        tries.append(int(s.tries))  # pyright: ignore[reportAttributeAccessIssue]
    r["pbfgs_mean_linesearch_trials"] = sum(tries) / len(tries)
    for k in ("psgd", "pbfgs", "pbfgs_optax_ls"):
        r[f"ratio_{k}_over_sgd"] = r[f"{k}_step_s"] / r["sgd_step_s"]
    config = {k: getattr(args, k) for k in ("in_dim", "width", "depth", "batch", "d", "steps")}
    return dict(config=config | {"n_params": int(w0.size), "dtype": str(w0.dtype)}, results=r)


# --------------------------------------------------------------------------- 2. time to accuracy


def time_to_accuracy(net: str, data, c: dict, args) -> dict:
    """SGD alone versus sampling + PCA + P-BFGS, training time to the same test accuracy."""
    params0, apply_tree, w0, apply = network(net, data, c)
    order = jax.random.fold_in(jax.random.key(c["seed"]), 1)
    n, nb = data.n_train, num_batches(data.n_train, c["batch"])
    xy = (data.x_train, data.y_train)
    sgd = optax.sgd(c["lr"], momentum=0.9)

    def sgd_steps(p, s, start, num, x, y):  # `num` SGD steps from global step `start`
        def body(t, carry):
            idx = batch_indices(order, n, c["batch"], t)
            g = jax.grad(lambda q: cross_entropy(apply_tree(q, x[idx]), y[idx]))(carry[0])
            u, s = sgd.update(g, carry[1], carry[0])
            return optax.apply_updates(carry[0], u), s

        return jax.lax.fori_loop(start, start + num, body, (p, s))

    loss = lambda w, b: cross_entropy(apply(w, b[0]), b[1])

    def pbfgs_epoch(carry, P, epoch, x, y):  # carry: (flat params w, p_bfgs state)
        idx = epoch_batches(order, n, c["pbfgs_batch"], epoch)
        opt = p_bfgs(P)

        def step(carry, i):
            w, st = carry
            value_fn = lambda q: loss(q, (x[i], y[i]))
            value, g = jax.value_and_grad(value_fn)(w)
            u, st = opt.update(g, st, w, value=value, grad=g, value_fn=value_fn)
            return (w + u, st), None

        return jax.lax.scan(step, carry, idx)[0]

    test_acc = jax.jit(lambda f, p: accuracy(f(p, data.x_test), data.y_test), static_argnums=0)
    i32 = jnp.int32(0)
    t0 = time.perf_counter()  # compile every program ahead of time
    P0 = jnp.zeros((c["d"], w0.size), w0.dtype)
    carry0 = (w0, p_bfgs(P0).init(w0))
    sgd_c = jax.jit(sgd_steps).lower(params0, sgd.init(params0), i32, i32, *xy).compile()
    pb_c = jax.jit(pbfgs_epoch).lower(carry0, P0, i32, *xy).compile()
    compile_s = time.perf_counter() - t0

    def timed(fn, *a):
        t = time.perf_counter()
        out = jax.block_until_ready(fn(*a))
        return out, time.perf_counter() - t

    # SGD alone: epoch by epoch, test accuracy evaluated outside the timed segments
    p, s = params0, sgd.init(params0)
    accs, secs = [float(test_acc(apply_tree, p))], [0.0]
    for e in range(c["full_epochs"]):
        (p, s), dt = timed(sgd_c, p, s, jnp.int32(e * nb), jnp.int32(nb), *xy)
        accs.append(float(test_acc(apply_tree, p)))
        secs.append(secs[-1] + dt)
    target = args.target_fraction * accs[-1]
    k_sgd = next(k for k, a in enumerate(accs) if a >= target)

    # DLDR: sampling phase (the start of the same SGD run, sampler included), PCA, P-BFGS
    per = c["samples_per_epoch"]
    marks = [round(j * nb / per) for j in range(c["sample_epochs"] * per + 1)]
    sampler, p, s = TrajectorySampler(), params0, sgd.init(params0)
    t = time.perf_counter()
    sampler.record(p)
    for a, b in zip(marks[:-1], marks[1:], strict=True):
        p, s = sgd_c(p, s, jnp.int32(a), jnp.int32(b - a), *xy)
        sampler.record(p)
    sampling_s = time.perf_counter() - t
    (P, _), pca_s = timed(lambda: dldr_subspace(sampler.samples(), c["d"]))
    P = P.astype(w0.dtype)
    st = (w0, p_bfgs(P).init(w0))
    pb_accs, pb_secs = [], [0.0]
    for e in range(c["subspace_epochs"]):
        st, dt = timed(pb_c, st, P, jnp.int32(e), *xy)
        pb_accs.append(float(test_acc(apply, st[0])))
        pb_secs.append(pb_secs[-1] + dt)
    k_pb = next((k + 1 for k, a in enumerate(pb_accs) if a >= target), None)
    out = {
        "net": net, "num_params": int(w0.size), "d": c["d"], "samples": len(sampler),
        "sgd_final_test_accuracy": accs[-1], "target_test_accuracy": target,
        "sgd_epochs_to_target": k_sgd, "pbfgs_epochs_to_target": k_pb,
        "pbfgs_best_test_accuracy": max(pb_accs), "compile_s": compile_s,
        "sgd_train_s": secs[k_sgd], "sgd_full_run_s": secs[-1],
        "dldr_parts_s": {"sampling": sampling_s, "pca": pca_s,
                         "pbfgs": pb_secs[k_pb if k_pb is not None else -1]},
    }  # fmt: skip
    if k_pb is not None:
        out["dldr_train_s"] = sum(out["dldr_parts_s"].values())
        out["ratio_dldr_over_sgd"] = out["dldr_train_s"] / out["sgd_train_s"]
    return out


def fastest(runs: list[dict]) -> dict:
    """The repeat with the fastest DLDR (else SGD) path, with every repeat's ratio."""
    key = "dldr_train_s" if "dldr_train_s" in runs[0] else "sgd_train_s"
    best = dict(min(runs, key=lambda r: r[key]))
    best["sgd_train_s"] = min(r["sgd_train_s"] for r in runs)
    if "dldr_train_s" in best:
        best["ratio_dldr_over_sgd"] = best["dldr_train_s"] / best["sgd_train_s"]
        best["ratio_per_repeat"] = [r["ratio_dldr_over_sgd"] for r in runs]
    return best


# --------------------------------------------------------------------------- 3. sampler overhead


def sampler_overhead(net: str, data, c: dict, args) -> dict:
    """% slowdown of the SGD sampling phase from recording once per epoch or every step."""
    params0, apply_tree, w0, _ = network(net, data, c)
    order = jax.random.fold_in(jax.random.key(c["seed"]), 1)
    nb = num_batches(data.n_train, c["batch"])
    opt = optax.sgd(c["lr"], momentum=0.9)
    x, y = data.x_train, data.y_train

    @jax.jit
    def step(p, s, t):
        idx = batch_indices(order, data.n_train, c["batch"], t)
        g = jax.grad(lambda q: cross_entropy(apply_tree(q, x[idx]), y[idx]))(p)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s

    ts = [jnp.int32(t) for t in range(c["sample_epochs"] * nb)]

    def phase(every: int | None, spill: bool) -> tuple[float, float]:
        directory = tempfile.mkdtemp(prefix="dldr_spill_") if spill else None
        smp = TrajectorySampler(directory, chunk_rows=args.chunk_rows) if every else None
        every = every or 1
        p, s = params0, opt.init(params0)
        t0, c0 = time.perf_counter(), time.process_time()
        if smp is not None:
            smp.record(p)
        for i, t in enumerate(ts):
            p, s = step(p, s, t)
            if smp is not None and (i + 1) % every == 0:
                smp.record(p)
        jax.block_until_ready((p, s))
        if smp is not None:
            smp.samples()
        elapsed = time.perf_counter() - t0, time.process_time() - c0
        if directory is not None:
            shutil.rmtree(directory)
        return elapsed

    variants = {
        "none": (None, False),
        "none_again": (None, False),  # A/A: the noise floor
        "epoch_memory": (nb, False),
        "epoch_spill": (nb, True),
        "step_memory": (1, False),
        "step_spill": (1, True),
    }
    names = list(variants)
    for name in names:  # warm-up: compile, first spill
        phase(*variants[name])
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.sampler_repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            w, pc = phase(*variants[name])
            wall[name].append(w)
            cpu[name].append(pc)
    # the cost of one `record` alone, and the overhead it predicts per variant
    record_s = {}
    for mode in ("memory", "spill"):
        directory = tempfile.mkdtemp(prefix="dldr_spill_") if mode == "spill" else None
        smp = TrajectorySampler(directory, chunk_rows=args.chunk_rows)
        smp.record(params0)
        k = 20 * args.chunk_rows
        t0 = time.perf_counter()
        for _ in range(k):
            smp.record(params0)
        smp.samples()
        record_s[mode] = (time.perf_counter() - t0) / k
        if directory is not None:
            shutil.rmtree(directory)
    best = {n: min(v) for n, v in wall.items()}
    best_cpu = {n: min(v) for n, v in cpu.items()}
    counts = {"epoch": 1 + c["sample_epochs"], "step": 1 + len(ts)}
    return {
        "net": net, "num_params": int(w0.size), "steps": len(ts), "record_s": record_s,
        "phase_min_s": best, "phase_all_s": wall, "phase_cpu_min_s": best_cpu,
        "overhead": {n: best[n] / best["none"] - 1.0 for n in names[1:]},
        "overhead_cpu": {n: best_cpu[n] / best_cpu["none"] - 1.0 for n in names[1:]},
        "overhead_predicted_from_record_s": {
            f"{rate}_{mode}": counts[rate] * record_s[mode] / best["none"]
            for rate in counts for mode in record_s
        },
    }  # fmt: skip


# --------------------------------------------------------------------------- main


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="MLP only for parts 2-3, fewer repeats")
    ap.add_argument("--small", action="store_true", help="tiny sizes, MLP only (smoke test)")
    ap.add_argument("--parts", type=int, nargs="+", default=[1, 2, 3], choices=[1, 2, 3])
    g = ap.add_argument_group("1. step cost (MLP on random data)")
    g.add_argument("--in-dim", type=int, default=40)
    g.add_argument("--width", type=int, default=256)
    g.add_argument("--depth", type=int, default=3)
    g.add_argument("--batch", type=int, default=256)
    g.add_argument("--d", type=int, default=20)
    g.add_argument("--steps", type=int, default=50, help="steps per timed loop")
    g.add_argument("--repeats", type=int, default=5)
    g = ap.add_argument_group("2-3. mnist1d, the study's quick setting")
    g.add_argument("--nets", nargs="+", default=["mlp", "cnn"], choices=["mlp", "cnn"])
    g.add_argument("--target-fraction", type=float, default=0.95)
    g.add_argument("--subspace-epochs", type=int, default=6, help="P-BFGS epochs at most")
    g.add_argument("--tta-repeats", type=int, default=2, help="repeats of part 2 (fastest kept)")
    g.add_argument("--sampler-repeats", type=int, default=5, help="rounds of part 3")
    g.add_argument("--chunk-rows", type=int, default=4, help="records per spilled .npy chunk")
    add_out(ap, "dldr")
    args = ap.parse_args(argv)
    if args.quick or args.small:  # new defaults; options given explicitly still win
        ap.set_defaults(nets=["mlp"], steps=20, repeats=3, sampler_repeats=3, tta_repeats=1)
    if args.small:
        ap.set_defaults(width=32, depth=2, batch=32, d=5, steps=5, repeats=1, sampler_repeats=1,
                        subspace_epochs=2, chunk_rows=2)  # fmt: skip
    args = ap.parse_args(argv)
    c = SETTINGS["small" if args.small else "quick"] | {"subspace_epochs": args.subspace_epochs}

    t_start = time.perf_counter()
    payload: dict = {"load_average_start": os.getloadavg(), "args": vars(args), "setting": c}
    runtime: dict[str, float] = {}
    if 1 in args.parts:
        t = time.perf_counter()
        payload["step_cost"] = sc = step_costs(args)
        runtime["step_cost"] = time.perf_counter() - t
        for k, v in sc["results"].items():
            print(f"dldr step_cost {k} = {v:.4g}  (MLP D={sc['config']['n_params']}, "
                  f"d={args.d}, batch={args.batch})")  # fmt: skip
    if 2 in args.parts or 3 in args.parts:
        data = load_dataset("mnist1d", n_train=c["n_train"], n_test=c["n_test"], seed=c["seed"])
    if 2 in args.parts:
        t = time.perf_counter()
        tta = payload["time_to_accuracy"] = {}
        for net in args.nets:
            r = tta[net] = fastest(
                [time_to_accuracy(net, data, c, args) for _ in range(args.tta_repeats)]
            )
            dldr = (
                f"DLDR {r['dldr_train_s']:.2f} s ({c['sample_epochs']} ep sampling + "
                f"{r['pbfgs_epochs_to_target']} ep P-BFGS); ratio {r['ratio_dldr_over_sgd']:.2f}"
                if "dldr_train_s" in r
                else "DLDR: P-BFGS did not reach the target"
            )
            print(f"dldr time_to_acc {net}: target {r['target_test_accuracy']:.3f}; SGD "
                  f"{r['sgd_train_s']:.2f} s ({r['sgd_epochs_to_target']} ep); {dldr}  "
                  "(training only, fastest repeat)")  # fmt: skip
        runtime["time_to_accuracy"] = time.perf_counter() - t
    if 3 in args.parts:
        t = time.perf_counter()
        so = payload["sampler_overhead"] = {}
        for net in args.nets:
            r = so[net] = sampler_overhead(net, data, c, args)
            pct = lambda d: ", ".join(f"{k} {100 * v:+.1f}%" for k, v in d.items())
            print(f"dldr sampler {net}: phase {r['phase_min_s']['none']:.3f} s; overhead "
                  f"{pct(r['overhead'])}; CPU time: {pct(r['overhead_cpu'])}; predicted from "
                  f"one record: {pct(r['overhead_predicted_from_record_s'])}")  # fmt: skip
        runtime["sampler_overhead"] = time.perf_counter() - t
    payload["runtime_s"] = runtime | {"total": time.perf_counter() - t_start}
    write("dldr", payload, args.out)
    return payload


if __name__ == "__main__":
    main()
