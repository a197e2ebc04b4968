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

Flops of `lazyrich_structured` (issue 19). For the traced kernel of a bias-free MLP with layers
`(a_l → b_l)`, `n` inputs (`x2=None`), `k` logits, the structured kernel does, in multiply-adds:

- the per-example backward signals `g[c, i] = ∂f_c(x_i)/∂y_l` of every layer: one forward,
  `n·Σ_l a_l·b_l`, and `k` VJPs through every layer above the first, `k·n·Σ_{l≥2} a_l·b_l`;
- per layer, the activation Gram `x_l x_lᵀ`, `n²·a_l`, and the signal Gram
  `Σ_c g_c g_cᵀ`, `n²·k·b_l`.

So `flops = 2·n²·Σ_l (a_l + k·b_l) + 2·n·(Σ_l a_l·b_l + k·Σ_{l≥2} a_l·b_l)` (the elementwise
products and sums of the `n × n` blocks, `O(n²·L)`, are left out): quadratic in `n` once
`n ≳ (Σ a·b + k·Σ_{l≥2} a·b) / Σ (a + k·b)` (≈ 530 for the paper's MLP, ≈ 14 for the CPU one),
so `time(4n) / time(n)` tends to 16 from below. Reported next to XLA's own count
(`cost_analysis()["flops"]` of the compiled call), the achieved GFLOP/s (model flops over the
best call) and the float32 matmul peak measured in the same process (best of 5 `jnp.dot` of
`--peak-n`², just before and just after the kernel's timed calls, so both see the same load).
Not with `--chunk-size` (blocks recompute the features and skip those below the diagonal).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp

from lazyrich.kernels import empirical_ntk, nt
from lazyrich.models import MLP, functional, param_count

from ._machine import add_out, default_peak_n, matmul_peak_way, write


def _time(fn, *args, repeats: int, around: Callable[[], object] | None = None):
    """`(first call, median, best)` seconds of `repeats` calls after the first; `around()` is
    called just before the timed calls and just after them (the matmul peak, so that it sees
    the load they saw; not between them: its 2048² operands leave a small kernel's next call
    with cold caches: 4.2 ms instead of 1.3 ms for the 84k-parameter MLP at n=64)."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    if around is not None:
        around()
        jax.block_until_ready(fn(*args))  # warm again after the peak's matmuls
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    if around is not None:
        around()
    times.sort()
    return first, times[len(times) // 2], times[0]


def _compiled_stats(jitted, *args) -> dict:
    """XLA's memory footprint (arguments + outputs + temporaries) and flop count, if reported."""
    out: dict = {"memory_bytes": None, "xla_flops": None}
    try:
        compiled = jitted.lower(*args).compile()
    except Exception:  # noqa: BLE001 - reported as missing, the timing already ran
        return out
    try:
        m = compiled.memory_analysis()
        out["memory_bytes"] = int(
            m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
        )
    except Exception:  # noqa: BLE001 - not every backend reports it
        pass
    try:
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        out["xla_flops"] = float(cost["flops"])
    except Exception:  # noqa: BLE001 - nor this
        pass
    return out


def structured_flops(sizes: list[int], n: int, k: int) -> dict[str, int]:
    """Model flop count of the traced structured kernel of a bias-free MLP with layer widths
    `sizes` on `n` inputs (`x2=None`), `k` logits; see the module docstring."""
    layers = list(zip(sizes[:-1], sizes[1:], strict=True))
    gram = 2 * n * n * sum(a + k * b for a, b in layers)
    forward = 2 * n * sum(a * b for a, b in layers)
    backward = 2 * k * n * sum(a * b for a, b in layers[1:])
    return {
        "gram": gram,
        "forward": forward,
        "backward_signals": backward,
        "total": gram + forward + backward,
    }


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
    p.add_argument("--peak-n", type=int, default=0, help="matmul peak size (0: 2048 CPU, 8192 GPU)")
    add_out(p, "ntk")
    a = p.parse_args(argv)
    if a.paper:
        a.in_dim, a.width, a.depth, a.n = 784, 1024, 2, [256, 1024, 4096]
    if a.small:
        a.in_dim, a.width, a.depth, a.n, a.repeats = 16, 32, 1, [16], 1
        a.peak_n = a.peak_n or 256
    a.peak_n = a.peak_n or default_peak_n()
    sizes = [a.in_dim] + [a.width] * a.depth + [a.out_dim]
    # the flop count is that of one block (no --chunk-size)
    count = "structured" in a.ours and a.chunk_size is None
    peak_way = matmul_peak_way(a.peak_n, repeats=5) if count else None

    model = MLP(
        a.in_dim, a.width, a.depth, a.out_dim, parameterization="ntk", key=jax.random.key(0)
    )
    params, apply = functional(model)
    info = {"params": param_count(model), "layer_sizes": sizes}
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
            peaks: list[float] = []
            flops = name == "lazyrich_structured" and peak_way is not None
            around = (lambda pk=peaks, w=peak_way: pk.append(w())) if flops and peak_way else None
            try:
                first, sec, best = _time(fn, params, x, repeats=a.repeats, around=around)
                out = fn(params, x)
                if ref is None:
                    ref = out
                err = float(jnp.max(jnp.abs(out - ref)) / jnp.max(jnp.abs(ref)))
                rec.update(seconds=sec, first_call_seconds=first, max_rel_diff=err)
                rec["best_seconds"] = best
                rec.update(_compiled_stats(fn, params, x))
                if flops:
                    rec.update(_flop_rates(sizes, n, a.out_dim, best, max(peaks), a.peak_n))
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
                if "gflops" in rec:
                    print(_flop_line(rec))
        # after every n, so a run stopped by a timeout keeps the sizes it finished
        growth = _growth(results)
        out = {"info": info, "config": vars(a), "results": results, "complete": n == a.n[-1]}
        out["structured_time_growth"] = growth
        write("ntk", out, a.out)
    for g in growth:
        print(
            f"structured n {g['n_from']} -> {g['n_to']}: time x{g['time_ratio']:.2f} (best "
            f"x{g['best_time_ratio']:.2f}), n^2 x{g['n2_ratio']:.1f}, "
            f"model flops x{g['flops_ratio']:.2f}"
        )
    return out


def _flop_rates(sizes, n, k, best, peak, peak_n) -> dict:
    model = structured_flops(sizes, n, k)
    gflops = model["total"] / best / 1e9
    return {
        "model_flops": model,
        "gflops": gflops,
        "matmul_peak_gflops": peak,
        "matmul_peak_n": peak_n,
        "fraction_of_peak": gflops / peak,
    }


def _flop_line(rec: dict) -> str:
    xla = rec.get("xla_flops")
    xla_s = f"{xla / 1e9:.3g}" if xla is not None else "n/a"
    m = rec["model_flops"]
    return (
        f"        model {m['total'] / 1e9:.3g} GFLOP (Gram {m['gram'] / 1e9:.3g}, forward "
        f"{m['forward'] / 1e9:.3g}, backward signals {m['backward_signals'] / 1e9:.3g}), XLA "
        f"{xla_s} GFLOP; best {rec['best_seconds'] * 1e3:.1f} ms = {rec['gflops']:.1f} GFLOP/s "
        f"= {100 * rec['fraction_of_peak']:.1f}% of the matmul peak "
        f"{rec['matmul_peak_gflops']:.1f} GFLOP/s ({rec['matmul_peak_n']}^2 float32, same run)"
    )


def _growth(results: list[dict]) -> list[dict]:
    """`time(n') / time(n)` of `lazyrich_structured` between consecutive sizes, next to the
    ratio of `n²` and of the model flops."""
    recs = [r for r in results if r["name"] == "lazyrich_structured" and r.get("gflops")]
    return [
        {
            "n_from": r0["n"],
            "n_to": r1["n"],
            "time_ratio": r1["seconds"] / r0["seconds"],
            "best_time_ratio": r1["best_seconds"] / r0["best_seconds"],
            "n2_ratio": (r1["n"] / r0["n"]) ** 2,
            "flops_ratio": r1["model_flops"]["total"] / r0["model_flops"]["total"],
        }
        for r0, r1 in zip(recs[:-1], recs[1:], strict=True)
    ]


if __name__ == "__main__":
    main()
