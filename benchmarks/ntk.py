"""Empirical NTK: lazyrich's own against neural-tangents' implementations, side by side.

Same model (ReLU MLP, ntk parameterization), same inputs, trace over the logits. Every
implementation is wrapped in one `jax.jit`; we report the median time per call after a
compile call and XLA's compiled memory footprint (arguments + outputs + temporaries) as the
peak-memory figure, which is measured the same way for every implementation. An
implementation that fails (e.g. out of memory) is reported as failed, not skipped.

    uv run python -m benchmarks.ntk                     # CPU: 64-256-256-10, n in {64, 256}
    python3 -m benchmarks.ntk --paper      # GPU: 784-1024-1024-10, n in {256, 1024, 4096}
    uv run python -m benchmarks.ntk --small                 # seconds (device-suite smoke)
    uv run python -m benchmarks.ntk --paper --nt-impls --ours structured --out ...
                                           # CPU: the paper's MLP, ours only (nt runs out
                                           # of memory there)

Prints one line per result and writes benchmarks/results/ntk.json (see `--out`).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from lazyrich.kernels import empirical_ntk, nt
from lazyrich.models import MLP, functional, param_count

from ._machine import add_out, write


def _time(fn, *args, repeats: int) -> tuple[float, float]:
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


def _memory_bytes(jitted, *args) -> int | None:
    try:
        m = jitted.lower(*args).compile().memory_analysis()
        return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes)
    except Exception:  # noqa: BLE001 - not every backend reports it
        return None


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--paper", action="store_true", help="784-1024-1024-10, n in 256,1024,4096")
    p.add_argument("--in-dim", type=int, default=64)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--out-dim", type=int, default=10)
    p.add_argument("--n", type=int, nargs="+", default=[64, 256])
    p.add_argument("--chunk-size", type=int, default=None, help="our chunk size (None: one block)")
    p.add_argument("--nt-impls", type=int, nargs="*", default=[1, 2, 3], help="none: ours only")
    p.add_argument("--ours", nargs="+", default=["structured", "jacobian", "ntvp"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--small", action="store_true", help="16-32-10, n=16 (smoke test)")
    add_out(p, "ntk")
    a = p.parse_args(argv)
    if a.paper:
        a.in_dim, a.width, a.depth, a.n = 784, 1024, 2, [256, 1024, 4096]
    if a.small:
        a.in_dim, a.width, a.depth, a.n, a.repeats = 16, 32, 1, [16], 1

    model = MLP(
        a.in_dim, a.width, a.depth, a.out_dim, parameterization="ntk", key=jax.random.key(0)
    )
    params, apply = functional(model)
    info = {"params": param_count(model)}
    results = []
    for n in a.n:
        x = jax.random.normal(jax.random.key(1), (n, a.in_dim))
        impls = {}
        for m in a.ours:
            impls[f"lazyrich_{m}"] = jax.jit(
                lambda p_, x_, m=m: empirical_ntk(apply, p_, x_, method=m, chunk_size=a.chunk_size)
            )
        for i in a.nt_impls:
            ntk_fn = nt.empirical_ntk_fn(apply, trace_axes=(-1,), implementation=i)  # pyright: ignore[reportArgumentType]
            impls[f"nt_impl{i}"] = jax.jit(lambda p_, x_, f=ntk_fn: f(x_, None, p_))
        row, ref = {}, None
        for name, fn in impls.items():
            rec = {"name": name, "n": n}
            try:
                first, sec = _time(fn, params, x, repeats=a.repeats)
                out = fn(params, x)
                if ref is None:
                    ref = out
                err = float(jnp.max(jnp.abs(out - ref)) / jnp.max(jnp.abs(ref)))
                rec.update(seconds=sec, first_call_seconds=first, max_rel_diff=err)
                rec["memory_bytes"] = _memory_bytes(fn, params, x)
            except Exception as e:  # noqa: BLE001 - OOM and friends are results too
                rec.update(
                    seconds=None, error=f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                )
            row[name] = rec
        nt_times = [
            r["seconds"] for k, r in row.items() if k.startswith("nt_") and r.get("seconds")
        ]
        best_nt = min(nt_times) if nt_times else None
        for rec in row.values():
            if rec.get("seconds") and best_nt:
                rec["speedup_vs_best_nt"] = best_nt / rec["seconds"]
            results.append(rec)
            if rec.get("seconds") is None:
                print(f"n={n:5d} {rec['name']:18s} FAILED {rec['error']}")
            else:
                mem = rec.get("memory_bytes")
                mem_s = f"{mem / 2**20:9.1f} MiB" if mem is not None else "      n/a"
                sp = rec.get("speedup_vs_best_nt")
                sp_s = f"{sp:6.2f}x vs best nt" if sp else ""
                print(
                    f"n={n:5d} {rec['name']:18s} {rec['seconds'] * 1e3:10.2f} ms  mem {mem_s}  "
                    f"{sp_s}  (max rel diff {rec['max_rel_diff']:.1e})"
                )
        # after every n, so a run stopped by a timeout keeps the sizes it finished
        out = {"info": info, "config": vars(a), "results": results, "complete": n == a.n[-1]}
        write("ntk", out, a.out)
    return out


if __name__ == "__main__":
    main()
