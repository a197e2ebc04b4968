"""Benchmark: DLDR (issue 6) — step costs, time to accuracy, and sampler overhead, in one run.

    uv run python -m benchmarks.dldr            # CPU: everything (a few minutes on 2 cores)
    uv run python -m benchmarks.dldr --quick    # CPU: MLP only for parts 2-3, fewer repeats
    python3 -m benchmarks.dldr --width 1024 --depth 4 --batch 1024 --d 40   # GPU sizes, part 1

1. **Step cost**: a P-SGD step and a P-BFGS step (our Armijo search and optax's) against an
   SGD-with-momentum step on the same MLP and batch (random data), median of repeated loops.
2. **Time to accuracy** on mnist1d in the study's quick setting (`analysis.dldr`,
   `PRESETS["quick"]`): SGD alone (`lazyrich.train.fit`) versus DLDR = sampling phase (the
   same SGD for `sample_epochs` epochs through `fit`, a `TrajectorySampler` recording in its
   callback) + `dldr_subspace` (d = max of the study's ds) + P-BFGS (`p_bfgs` as `fit`'s step).
   Target: `--target-fraction` (0.95, as the study's `*_epochs_to_95pct`) × SGD's test accuracy
   after `full_epochs`; each path is timed to the end of the first epoch whose test accuracy
   reaches it; the fastest of `--tta-repeats` repeats is kept per path. Reported times are
   wall-clock **minus compilation and minus evaluation**: compilation is the union of JAX's
   own compile events (tracing, lowering, XLA compile; `jax.monitoring` time spans),
   evaluation the union of the calls to `fit`'s `evaluate` (full train + test sets at each
   record: 81 records in the sampling phase, one per epoch elsewhere). Both are reported
   separately.
3. **Sampler overhead**: the SGD sampling phase (`sample_epochs` epochs, batch 128) as a
   Python loop of one jitted step each (`lazyrich.train.sgd_step` on `batch_indices`), with
   a `TrajectorySampler` recording once per epoch (the paper's rate) or every step, in host
   memory or spilled to `.npy` chunks, against the same loop without sampler (and against
   itself, A/A, for the noise floor). Per round all variants run once (rotated order); the
   overhead is `min time(variant) / min time(no sampler) − 1` over rounds (the least
   disturbed run on a shared machine); the median over rounds of the paired ratio is kept
   as a check, and the same ratio of process CPU time (all threads), which other processes
   disturb far less but which misses the cost of losing the overlap of host and device.
   Also the cost of one `record` alone (memory / spill) and the overhead it predicts,
   `records × cost / phase time`, which is far less noisy than a difference of two phases.

Writes benchmarks/results/dldr.json and prints one line per result.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import tempfile
import time
from unittest import mock

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

import lazyrich.train._loop as train_loop
from analysis.dldr import PRESETS, Network, epochs_to, load, make_network, sample_steps
from lazyrich.data import Dataset, batch_indices, num_batches
from lazyrich.models import MLP, functional
from lazyrich.optim import TrajectorySampler, dldr_subspace, p_bfgs, p_bfgs_params, p_sgd
from lazyrich.train import cross_entropy, fit, sgd_step

from ._machine import write

COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


def timeit(fn, repeats: int) -> float:
    """Median seconds per call of `fn()` (which must block), after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# --------------------------------------------------------------------------- 1. step cost


def step_costs(args) -> dict:
    """Seconds per SGD, P-SGD and P-BFGS step on one MLP and batch, and their ratios."""
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

    def jit_step(opt):
        @jax.jit
        def step(p, s, batch):
            g = jax.grad(loss_tree)(p, batch)
            u, s = opt.update(g, s, p)
            return optax.apply_updates(p, u), s

        return step

    sgd = optax.sgd(0.05, momentum=0.9)
    sgd_j = jit_step(sgd)

    # a short SGD trajectory, sampled every step, gives P
    sampler = TrajectorySampler()
    p, s = params, sgd.init(params)
    sampler.record(p)
    for _ in range(args.d + 5):
        p, s = sgd_j(p, s, (x, y))
        sampler.record(p)
    P, _ = dldr_subspace(sampler.samples(), args.d)
    P = P.astype(w0.dtype)
    psgd = p_sgd(0.05, P)
    psgd_j = jit_step(psgd)

    def run(opt, step):
        def go():
            p, s = params, opt.init(params)
            for _ in range(args.steps):
                p, s = step(p, s, (x, y))
            jax.block_until_ready((p, s))

        return go

    def run_pbfgs(linesearch):
        opt = p_bfgs(loss_flat, P, linesearch=linesearch)

        def go():
            st = opt.init(w0)
            for _ in range(args.steps):
                st = opt.step(st, (x, y))
            jax.block_until_ready(st)

        return go

    r = {}
    r["sgd_step_s"] = timeit(run(sgd, sgd_j), args.repeats) / args.steps
    r["psgd_step_s"] = timeit(run(psgd, psgd_j), args.repeats) / args.steps
    r["pbfgs_step_s"] = timeit(run_pbfgs("armijo"), args.repeats) / args.steps
    r["pbfgs_optax_ls_step_s"] = timeit(run_pbfgs("optax"), args.repeats) / args.steps
    opt = p_bfgs(loss_flat, P)
    st, tries = opt.init(w0), []
    for _ in range(args.steps):
        st = opt.step(st, (x, y))
        tries.append(int(st.tries))
    r["pbfgs_mean_linesearch_trials"] = sum(tries) / len(tries)
    r["ratio_psgd_over_sgd"] = r["psgd_step_s"] / r["sgd_step_s"]
    r["ratio_pbfgs_over_sgd"] = r["pbfgs_step_s"] / r["sgd_step_s"]
    r["ratio_pbfgs_optax_over_sgd"] = r["pbfgs_optax_ls_step_s"] / r["sgd_step_s"]
    config = dict(
        in_dim=args.in_dim,
        width=args.width,
        depth=args.depth,
        batch=args.batch,
        d=args.d,
        steps=args.steps,
        repeats=args.repeats,
        n_params=int(w0.size),
        dtype=str(w0.dtype),
    )
    return dict(config=config, results=r)


# --------------------------------------------------------------------------- 2. time to accuracy


class Clock:
    """Wall clock (`time.time()`) plus the intervals spent compiling and evaluating.

    Compilation: JAX's monitoring time spans of tracing, lowering and XLA compilation.
    Evaluation: the calls of `lazyrich.train._loop.evaluate` made by `fit` while `evaluating()`
    is active. `excluded(t0, t1)` is the length of the union of those intervals in `[t0, t1]`.
    """

    def __init__(self):
        self.spans: list[tuple[str, float, float]] = []
        jax.monitoring.register_event_time_span_listener(self._on_span)

    def _on_span(self, event: str, start: float, end: float, **kwargs) -> None:
        if event in COMPILE_EVENTS:
            self.spans.append(("compile", start, end))

    def close(self) -> None:
        jax.monitoring.unregister_event_time_span_listener(self._on_span)

    @contextlib.contextmanager
    def evaluating(self):
        original = train_loop.evaluate

        def timed(*args, **kwargs):
            t0 = time.time()
            try:
                return original(*args, **kwargs)
            finally:
                self.spans.append(("eval", t0, time.time()))

        with mock.patch.object(train_loop, "evaluate", timed):
            yield

    def excluded(self, t0: float, t1: float, kinds=("compile", "eval")) -> float:
        iv = sorted(
            (max(s, t0), min(e, t1)) for k, s, e in self.spans if k in kinds and e > t0 and s < t1
        )
        total, lo, hi = 0.0, None, None
        for s, e in iv:
            if hi is None or s > hi:
                if hi is not None:
                    total += hi - lo
                lo, hi = s, e
            else:
                hi = max(hi, e)
        return total + (hi - lo if hi is not None else 0.0)

    def split(self, t0: float, t1: float) -> dict:
        """`wall`, `compile`, `eval` (evaluation outside compilation) and `train` (the rest)."""
        both = self.excluded(t0, t1)
        comp = self.excluded(t0, t1, ("compile",))
        return dict(wall=t1 - t0, compile=comp, eval=both - comp, train=t1 - t0 - both)


def _stamper(stamps: list[float], sampler: TrajectorySampler | None = None):
    def callback(step, params):
        if sampler is not None:
            sampler.record(params)
        stamps.append(time.time())
        return {}

    return callback


def time_to_accuracy(net: str, network: Network, data: Dataset, c, args, clock: Clock) -> dict:
    """SGD alone versus sampling + PCA + P-BFGS, both timed to the same test accuracy."""
    order = jax.random.fold_in(jax.random.key(c.seed), 1)  # the study's data order
    nb = num_batches(data.n_train, c.batch)
    sgd = optax.sgd(c.lr, momentum=0.9)
    d = max(c.ds)

    # SGD alone, evaluated at every epoch end
    stamps: list[float] = []
    t0 = time.time()
    _, hist = fit(
        network.apply_tree,
        network.params0,
        data,
        sgd,
        batch=c.batch,
        record_at=[e * nb for e in range(c.full_epochs + 1)],
        key=order,
        callback=_stamper(stamps),
    )
    sgd_acc = hist["test_accuracy"]
    target = args.target_fraction * float(sgd_acc[-1])
    k_sgd = epochs_to(sgd_acc, target)
    assert k_sgd is not None  # the target is below SGD's own final accuracy
    sgd_split = clock.split(t0, stamps[k_sgd])
    sgd_total = clock.split(t0, stamps[-1])

    # DLDR: sampling phase (the start of the same SGD run), PCA, P-BFGS
    sampler = TrajectorySampler()
    t0 = time.time()
    fit(
        network.apply_tree,
        network.params0,
        data,
        sgd,
        batch=c.batch,
        record_at=sample_steps(c, nb).tolist(),
        key=order,
        callback=_stamper([], sampler),
    )
    t_sampled = time.time()
    p, _ = dldr_subspace(sampler.samples(), d)
    p = jax.block_until_ready(p.astype(network.w0.dtype))
    t_pca = time.time()

    def loss(w, batch):
        return cross_entropy(network.apply(w, batch[0]), batch[1])

    opt = p_bfgs(loss, p)

    def step(state, opt_state, xb, yb):
        new = opt.step(state, (xb, yb))
        return new, opt_state, new.loss

    def apply_state(state, xb):
        return network.apply(p_bfgs_params(state), xb)

    nbb = num_batches(data.n_train, c.pbfgs_batch)
    stamps = []
    _, hist = fit(
        apply_state,
        opt.init(network.w0),
        data,
        batch=c.pbfgs_batch,
        record_at=[e * nbb for e in range(c.subspace_epochs + 1)],
        key=order,
        step=step,
        callback=_stamper(stamps),
    )
    pb_acc = hist["test_accuracy"]
    k_pb = epochs_to(pb_acc, target)
    parts = {
        "sampling": clock.split(t0, t_sampled),
        "pca": clock.split(t_sampled, t_pca),
        "pbfgs": clock.split(t_pca, stamps[k_pb if k_pb is not None else -1]),
    }
    keys = ("wall", "compile", "eval", "train")
    dldr = {k: sum(part[k] for part in parts.values()) for k in keys}
    reached = k_pb is not None
    return {
        "net": net,
        "num_params": int(network.w0.size),
        "d": d,
        "samples": len(sampler),
        "sgd_final_test_accuracy": float(sgd_acc[-1]),
        "target_test_accuracy": target,
        "sgd_epochs_to_target": k_sgd,
        "sample_epochs": c.sample_epochs,
        "pbfgs_epochs_to_target": k_pb,
        "pbfgs_best_test_accuracy": float(pb_acc.max()),
        "sgd_to_target_s": sgd_split,
        "sgd_full_run_s": sgd_total,
        "dldr_to_target_s": dldr if reached else None,
        "dldr_parts_s": parts,
    }


def summarize(runs: list[dict]) -> dict:
    """Repeats of `time_to_accuracy` (same numbers, different timings): per path the fastest
    repeat's training time (wall minus compilation and evaluation; DLDR's parts from its
    fastest repeat), their ratio, the compile time of the first (cold) repeat, and every
    repeat."""
    first = runs[0]
    out = {k: v for k, v in first.items() if not k.endswith("_s")}
    for r in runs[1:]:  # deterministic on CPU: every repeat reaches the target at the same epoch
        assert (r["sgd_epochs_to_target"], r["pbfgs_epochs_to_target"]) == (
            first["sgd_epochs_to_target"],
            first["pbfgs_epochs_to_target"],
        )
    sgd = min(r["sgd_to_target_s"]["train"] for r in runs)
    out["sgd_train_s"] = sgd
    out["sgd_compile_s"] = first["sgd_full_run_s"]["compile"]
    if first["dldr_to_target_s"] is not None:
        fastest = min(runs, key=lambda r: r["dldr_to_target_s"]["train"])
        dldr = fastest["dldr_to_target_s"]["train"]
        out["dldr_train_s"] = dldr
        out["dldr_parts_train_s"] = {p: v["train"] for p, v in fastest["dldr_parts_s"].items()}
        out["dldr_compile_s"] = first["dldr_to_target_s"]["compile"]
        out["ratio_dldr_over_sgd"] = dldr / sgd
        out["ratio_dldr_over_sgd_per_repeat"] = [
            r["dldr_to_target_s"]["train"] / r["sgd_to_target_s"]["train"] for r in runs
        ]
    out["repeats"] = [{k: v for k, v in r.items() if k.endswith("_s")} for r in runs]
    return out


# --------------------------------------------------------------------------- 3. sampler overhead


def sampler_overhead(net: str, network: Network, data: Dataset, c, args) -> dict:
    """% slowdown of the SGD sampling phase from recording once per epoch or every step."""
    order = jax.random.fold_in(jax.random.key(c.seed), 1)
    nb = num_batches(data.n_train, c.batch)
    opt = optax.sgd(c.lr, momentum=0.9)
    one = sgd_step(network.apply_tree, opt)
    x, y = data.x_train, data.y_train

    @jax.jit
    def step(params, opt_state, t):
        idx = batch_indices(order, data.n_train, c.batch, t)
        params, opt_state, _ = one(params, opt_state, x[idx], y[idx])
        return params, opt_state

    ts = [jnp.int32(t) for t in range(c.sample_epochs * nb)]

    def phase(every: int | None, spill: bool) -> tuple[float, float]:
        directory = tempfile.mkdtemp(prefix="dldr_spill_") if spill else None
        smp = None
        if every is not None:
            smp = TrajectorySampler(directory, chunk_rows=args.chunk_rows)
        p, s = network.params0, opt.init(network.params0)
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
    times: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.sampler_repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            wall, proc = phase(*variants[name])
            times[name].append(wall)
            cpu[name].append(proc)
    # the cost of one record alone (ravel, device→host copy, spill amortised over chunks,
    # the final gather amortised over records), and the overhead it predicts per variant
    trained = jax.block_until_ready(step(network.params0, opt.init(network.params0), ts[0])[0])
    record_s = {}
    for mode in ("memory", "spill"):
        directory = tempfile.mkdtemp(prefix="dldr_spill_") if mode == "spill" else None
        smp = TrajectorySampler(directory, chunk_rows=args.chunk_rows)
        smp.record(trained)
        n = 20 * args.chunk_rows
        t0 = time.perf_counter()
        for _ in range(n):
            smp.record(trained)
        smp.samples()
        record_s[mode] = (time.perf_counter() - t0) / n
        if directory is not None:
            shutil.rmtree(directory)
    counts = {"epoch": 1 + c.sample_epochs, "step": 1 + len(ts)}
    predicted = {
        f"{rate}_{mode}": counts[rate] * record_s[mode] / min(times["none"])
        for rate in counts
        for mode in record_s
    }
    # min over rounds (the least-disturbed run on a shared machine) and, as a check, the
    # median over rounds of the paired ratio time(variant) / time(no sampler) in that round
    best = {n: min(v) for n, v in times.items()}
    best_cpu = {n: min(v) for n, v in cpu.items()}
    paired = {
        n: statistics.median(v / b for v, b in zip(times[n], times["none"], strict=True))
        for n in names[1:]
    }
    return {
        "net": net,
        "num_params": int(network.w0.size),
        "steps": len(ts),
        "records_once_per_epoch": 1 + c.sample_epochs,
        "records_every_step": 1 + len(ts),
        "phase_min_s": best,
        "phase_all_s": times,
        "overhead": {n: best[n] / best["none"] - 1.0 for n in names[1:]},
        # process CPU time (all threads): insensitive to other processes, blind to lost overlap
        "phase_cpu_min_s": best_cpu,
        "overhead_cpu": {n: best_cpu[n] / best_cpu["none"] - 1.0 for n in names[1:]},
        "overhead_paired_median": {n: v - 1.0 for n, v in paired.items()},
        "record_s": record_s,
        "overhead_predicted_from_record_s": predicted,
    }


# --------------------------------------------------------------------------- main


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="MLP only for parts 2-3, fewer repeats")
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
    g.add_argument("--tta-repeats", type=int, default=2, help="repeats of part 2 (fastest kept)")
    g.add_argument("--sampler-repeats", type=int, default=5, help="rounds of part 3")
    g.add_argument("--chunk-rows", type=int, default=4, help="records per spilled .npy chunk")
    args = ap.parse_args(argv)
    if args.quick:  # new defaults; options given explicitly still win
        ap.set_defaults(nets=["mlp"], steps=20, repeats=3, sampler_repeats=3, tta_repeats=1)
        args = ap.parse_args(argv)

    load_start = os.getloadavg()
    t_start = time.perf_counter()
    payload: dict = {"load_average_start": load_start}
    c = PRESETS["quick"]

    runtime: dict[str, float] = {}
    if 1 in args.parts:
        t = time.perf_counter()
        payload["step_cost"] = step_costs(args)
        runtime["step_cost"] = time.perf_counter() - t
        res = payload["step_cost"]["results"]
        n = payload["step_cost"]["config"]["n_params"]
        for k, v in res.items():
            print(f"dldr step_cost {k} = {v:.4g}  (MLP D={n}, d={args.d}, batch={args.batch})")

    if 2 in args.parts or 3 in args.parts:
        data = load("mnist1d", c)
        networks = {net: make_network(net, data, c) for net in args.nets}
    if 2 in args.parts:
        t = time.perf_counter()
        clock = Clock()
        tta = {}
        with clock.evaluating():
            for net in args.nets:
                runs = [
                    time_to_accuracy(net, networks[net], data, c, args, clock)
                    for _ in range(args.tta_repeats)
                ]
                r = tta[net] = summarize(runs)
                print(
                    f"dldr time_to_acc {net}: target {r['target_test_accuracy']:.3f}; SGD "
                    f"{r['sgd_train_s']:.2f} s ({r['sgd_epochs_to_target']} ep); "
                    + (
                        f"DLDR {r['dldr_train_s']:.2f} s ({r['sample_epochs']} ep sampling + "
                        f"{r['pbfgs_epochs_to_target']} ep P-BFGS); "
                        f"ratio {r['ratio_dldr_over_sgd']:.2f}"
                        if "dldr_train_s" in r
                        else "DLDR: P-BFGS did not reach the target"
                    )
                    + "  (best of repeats; compile, eval excluded)"
                )
        clock.close()
        runtime["time_to_accuracy"] = time.perf_counter() - t
        payload["time_to_accuracy"] = dict(
            setting={
                k: getattr(c, k)
                for k in (
                    "n_train",
                    "n_test",
                    "mlp_width",
                    "mlp_depth",
                    "cnn_width",
                    "lr",
                    "batch",
                    "sample_epochs",
                    "samples_per_epoch",
                    "full_epochs",
                    "subspace_epochs",
                    "pbfgs_batch",
                    "seed",
                )
            }
            | {"d": max(c.ds), "target_fraction": args.target_fraction, "dataset": "mnist1d"},
            timing="seconds; 'train' = wall minus compilation minus evaluation (see docstring)",
            results=tta,
        )
    if 3 in args.parts:
        t = time.perf_counter()
        so = {}
        for net in args.nets:
            r = so[net] = sampler_overhead(net, networks[net], data, c, args)
            print(
                f"dldr sampler {net}: phase {r['phase_min_s']['none']:.3f} s; overhead "
                + ", ".join(f"{k} {100 * v:+.1f}%" for k, v in r["overhead"].items())
                + "; CPU time: "
                + ", ".join(f"{k} {100 * v:+.1f}%" for k, v in r["overhead_cpu"].items())
                + f"; one record {1e3 * r['record_s']['memory']:.2f} ms (memory), "
                f"{1e3 * r['record_s']['spill']:.2f} ms (spill), predicting "
                + ", ".join(
                    f"{k} {100 * v:+.1f}%" for k, v in r["overhead_predicted_from_record_s"].items()
                )
            )
        payload["sampler_overhead"] = dict(
            config=dict(
                sample_epochs=c.sample_epochs,
                batch=c.batch,
                chunk_rows=args.chunk_rows,
                rounds=args.sampler_repeats,
                spill_dir=tempfile.gettempdir(),
            ),
            results=so,
        )
        runtime["sampler_overhead"] = time.perf_counter() - t

    payload["runtime_s"] = runtime | {"total": time.perf_counter() - t_start}
    payload["args"] = vars(args)
    path = write("dldr", payload)
    print(f"wrote {path} in {payload['runtime_s']['total']:.0f} s (load {load_start} at start)")
    return payload


if __name__ == "__main__":
    main()
