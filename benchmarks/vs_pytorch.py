"""lazyrich against our own PyTorch implementations of the same methods, side by side.

The PyTorch code here is written from the papers' descriptions (PAPERS.md §1-3), not copied
from the authors' repositories. Needs the optional group: `uv sync --group peers`.

- `mup_mlp`: the per-run training loop of the γ paper's centred μP MLP, 784-256-256-256 → 1
  (`h1 = W0 x/√D`, `h_{l+1} = W_l φ(h_l)/√N`, `f = w·φ(h_L)/(N γ)` minus the initial
  function), plain SGD at lr η·N, online batches of 64, MSE: lazyrich's `scaled(MLP(...))`
  stepped in one `jit(lax.scan)` per chunk of steps, against a PyTorch loop over the same
  batches.
- `exact_gn`: one exact Gauss-Newton step of the `RevMLP` (same weights, copied from lazyrich):
  PyTorch does the §2 recursion with explicit Jacobian-vector products of the coupling maps and
  `torch.linalg.pinv` (truncated SVD, rtol 1e-2, atol 1e-5) for each half-layer; lazyrich is
  `exact_gauss_newton(normalize="none")` (the raw sum of block updates, as the paper).

- `pbfgs`, `dldr_pipeline`: DLDR's P-BFGS step and its whole pipeline on mnist1d (PAPERS.md §3),
  in `benchmarks.vs_pytorch_dldr`.

Each case is first checked for equal numbers on the same inputs (float64: losses / updates),
then timed in float32 in rounds with a rotated order; the ratio torch/lazyrich is taken within
each round and reported as median [min, max]. PyTorch is timed at `torch.set_num_threads` 1 and
`os.cpu_count()`, with `OMP_WAIT_POLICY=PASSIVE` (spinning OpenMP threads made its 2-thread
runs 40-50x slower on the loaded 2-core sandbox).

The pipeline case has phases rather than one call: it reports each phase's median seconds, and
the ratio of the totals per round. With `--cases` a subset runs and the JSON is named after it
(`vs_pytorch_pbfgs_dldr_pipeline.json`), so a partial run never overwrites the full one.

    uv sync --group peers && uv run python -m benchmarks.vs_pytorch
    uv run python -m benchmarks.vs_pytorch --cases pbfgs dldr_pipeline --rounds 5
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lazyrich.models import MLP, RevMLP, functional, partition, scaled
from lazyrich.optim import exact_gauss_newton
from lazyrich.train import mse

from ._machine import add_out, write
from .vs_pytorch_dldr import breakdown, check_pbfgs, check_pipeline, pbfgs_case, pipeline_case

CASES = ("mup_mlp", "exact_gn", "pbfgs", "dldr_pipeline")

# PyTorch's OpenMP threads spin while waiting; on a loaded 2-core machine that made its 2-thread
# runs 40-50x slower than 1 thread (measured here). Passive waiting, set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    import torch
except ImportError as e:  # pragma: no cover - depends on the optional group
    raise SystemExit(
        "benchmarks.vs_pytorch needs PyTorch: run `uv sync --group peers` first"
    ) from e


def _t(a, dtype):
    return torch.tensor(np.asarray(a), dtype=dtype)


# --------------------------------------------------------------------------- (a) μP MLP


def torch_mup_train(ws, mults, x, y, gamma, lr, dtype):
    """SGD on the centred μP MLP in PyTorch; returns (final weights, per-step losses)."""
    ws = [_t(w, dtype).requires_grad_(True) for w in ws]
    w0 = [w.detach().clone() for w in ws]

    def f(ws, xb):
        h = xb
        for i, (w, m) in enumerate(zip(ws, mults, strict=True)):
            h = m * (h @ w.T)
            if i < len(ws) - 1:
                h = torch.relu(h)
        return h

    losses = []
    for t in range(x.shape[0]):
        xb, yb = x[t], y[t]
        with torch.no_grad():
            f0 = f(w0, xb)
        out = (f(ws, xb) - f0) / gamma
        loss = torch.mean((out - yb) ** 2)
        grads = torch.autograd.grad(loss, ws)
        with torch.no_grad():
            for w, g in zip(ws, grads, strict=True):
                w -= lr * g
        losses.append(loss.detach())
    return ws, torch.stack(losses)


def jax_mup_train(model, x, y, lr):
    """The lazyrich side: `jit(lax.scan)` of SGD steps on `scaled(MLP)`; returns a function."""
    params, rest = partition(model)

    @jax.jit
    def run(params, x, y):
        def body(p, xy):
            loss, g = jax.value_and_grad(lambda q: mse(eqx_combine(q, rest)(xy[0]), xy[1]))(p)
            return jax.tree.map(lambda a, b: a - lr * b, p, g), loss

        return jax.lax.scan(body, params, (x, y))

    return params, run


def eqx_combine(p, rest):
    import equinox as eqx

    return eqx.combine(p, rest)


def mup_case(args, dtype_name, key):
    D, N, L, B, T = 784, args.width, 3, 64, args.steps
    dt = jnp.float64 if dtype_name == "float64" else jnp.float32
    tdt = torch.float64 if dtype_name == "float64" else torch.float32
    gamma, eta = 1.0, 0.05
    lr = eta * N
    net = MLP(D, N, L, 1, dtype=dt, key=key)
    model = scaled(net, gamma=gamma)
    kx, kt = jax.random.split(jax.random.fold_in(key, 1))
    x = jax.random.normal(kx, (T, B, D), dt)
    teacher = jax.random.normal(kt, (D,), dt) / np.sqrt(D)
    y = (x @ teacher)[..., None]
    ws = [layer.weight for layer in net.layers]
    mults = [layer.w_mult for layer in net.layers]
    params, run = jax_mup_train(model, x, y, lr)
    tx, ty = _t(x, tdt), _t(y, tdt)
    jax_fn = lambda: run(params, x, y)
    torch_fn = lambda: torch_mup_train(ws, mults, tx, ty, gamma, lr, tdt)
    return jax_fn, torch_fn, lambda j, t: (np.asarray(j[1]), t[1].numpy())


# --------------------------------------------------------------------------- (b) exact GN


def torch_gn_step(blocks, u, x, y, lr, relus, rtol=1e-2, atol=1e-5):
    """One exact GN step (PAPERS.md §2, MSE error 2(z − y), raw sum of block updates).

    `blocks`: list of dicts with c_f, c_g (h, d/2), w_f, w_g (d/2, h), b_f, b_g (d/2,).
    Returns the updated blocks.
    """
    half = x.shape[1] // 2

    def feats(c, v, relu):
        pre = v @ c.T
        return (torch.relu(pre), (pre > 0).to(v.dtype)) if relu else (pre, None)

    def lin(c, w, v, dv, relu):  # J of v ↦ σ(v Cᵀ) Wᵀ + b applied to dv
        pre_d = dv @ c.T
        if relu:
            pre_d = pre_d * ((v @ c.T) > 0).to(v.dtype)
        return pre_d @ w.T

    # forward
    h = x
    for b, r in zip(blocks, relus, strict=True):
        x1, x2 = h[:, :half], h[:, half:]
        y1 = x1 + feats(b["c_f"], x2, r)[0] @ b["w_f"].T + b["b_f"]
        y2 = x2 + feats(b["c_g"], y1, r)[0] @ b["w_g"].T + b["b_g"]
        h = torch.cat([y1, y2], 1)
    eps = 2.0 * (h @ u - y)
    t = eps @ u.T
    ones = torch.ones(x.shape[0], 1, dtype=x.dtype)
    new = []
    y_out = h
    for b, r in reversed(list(zip(blocks, relus, strict=True))):
        y1, y2 = y_out[:, :half], y_out[:, half:]
        t1, t2 = t[:, :half], t[:, half:]
        # inverse and the target passed back through it (linearized inverse)
        x2 = y2 - (feats(b["c_g"], y1, r)[0] @ b["w_g"].T + b["b_g"])
        dx2 = t2 - lin(b["c_g"], b["w_g"], y1, t1, r)
        x1 = y1 - (feats(b["c_f"], x2, r)[0] @ b["w_f"].T + b["b_f"])
        dx1 = t1 - lin(b["c_f"], b["w_f"], x2, dx2, r)
        a_f = torch.cat([feats(b["c_f"], x2, r)[0], ones], 1)
        dw_f = torch.linalg.pinv(a_f, rtol=rtol, atol=atol) @ t1
        m = lin(b["c_g"], b["w_g"], y1, a_f @ dw_f, r)
        a_g = torch.cat([feats(b["c_g"], y1, r)[0], ones], 1)
        dw_g = torch.linalg.pinv(a_g, rtol=rtol, atol=atol) @ (t2 - m)
        nb = dict(b)
        nb["w_f"] = b["w_f"] - lr * dw_f[:-1].T
        nb["b_f"] = b["b_f"] - lr * dw_f[-1]
        nb["w_g"] = b["w_g"] - lr * dw_g[:-1].T
        nb["b_g"] = b["b_g"] - lr * dw_g[-1]
        new.append(nb)
        y_out, t = torch.cat([x1, x2], 1), torch.cat([dx1, dx2], 1)
    return new[::-1]


def gn_case(args, dtype_name, key, batch):
    d, h = args.in_dim, args.hidden
    dt = jnp.float64 if dtype_name == "float64" else jnp.float32
    tdt = torch.float64 if dtype_name == "float64" else torch.float32
    model = RevMLP(d, num_blocks=2, hidden=h, out_dim=10, sigma=0.03, dtype=dt, key=key)
    x = jax.random.normal(jax.random.fold_in(key, 1), (batch, d), dt)
    y = jax.nn.one_hot(
        jax.random.randint(jax.random.fold_in(key, 2), (batch,), 0, 10), 10, dtype=dt
    )
    params, _ = functional(model)
    lr = 0.1
    gn = exact_gauss_newton(model, lr, loss="mse", normalize="none")
    state = gn.init(params)

    @jax.jit
    def step(p, state, x, y):  # data as arguments: closed-over arrays would be constant-folded
        upd, _ = gn.update(None, state, p, x=x, y=y)  # pyright: ignore[reportArgumentType]
        return optax.apply_updates(p, upd)

    keys = ("c_f", "c_g", "w_f", "w_g", "b_f", "b_g")
    tb = []
    for blk in model.blocks:
        vals = dict(
            c_f=blk.c_f.value, c_g=blk.c_g.value, w_f=blk.w_f, w_g=blk.w_g, b_f=blk.b_f, b_g=blk.b_g
        )
        tb.append({k: _t(vals[k], tdt) for k in keys})
    relus = [blk.relu for blk in model.blocks]
    tu, tx, ty = _t(model.readout.value, tdt), _t(x, tdt), _t(y, tdt)
    jax_fn = lambda: step(params, state, x, y)
    torch_fn = lambda: torch_gn_step(tb, tu, tx, ty, lr, relus)

    def numbers(j, t):
        a = np.concatenate([np.asarray(jnp.ravel(b.w_f)) for b in j.blocks])
        b = np.concatenate([bb["w_f"].numpy().ravel() for bb in t])
        return a, b

    return jax_fn, torch_fn, numbers


# --------------------------------------------------------------------------- timing


def side_by_side(
    jax_fn, torch_fn, rounds: int, threads: list[int], per: int = 1, peer: str = "torch"
) -> dict:
    """Median ms (per call / `per`) of lazyrich and of the PyTorch side (`peer`, the key prefix)
    at each thread count, in rounds of rotated order; ratios peer/lazyrich within each round,
    median [min, max]."""
    contestants = [("lazyrich", 0)] + [(peer, n) for n in threads]
    jax.block_until_ready(jax_fn())
    for n in threads:
        torch.set_num_threads(n)
        torch_fn()
    times: dict[tuple[str, int], list[float]] = {c: [] for c in contestants}
    for r in range(rounds):
        k = r % len(contestants)
        for name, n in contestants[k:] + contestants[:k]:
            if name == peer:
                torch.set_num_threads(n)
            t0 = time.perf_counter()
            if name == peer:
                torch_fn()
            else:
                jax.block_until_ready(jax_fn())
            times[(name, n)].append(time.perf_counter() - t0)
    tj = np.array(times[("lazyrich", 0)])
    out: dict = {"lazyrich_ms": 1e3 * float(np.median(tj)) / per}
    for n in threads:
        tt = np.array(times[(peer, n)])
        ratio = tt / tj
        out[f"{peer}_{n}t_ms"] = 1e3 * float(np.median(tt)) / per
        out[f"{peer}_{n}t_over_lazyrich"] = [
            float(np.median(ratio)),
            float(ratio.min()),
            float(ratio.max()),
        ]
    return out


def check(name, case, rel_tol):
    jax_fn, torch_fn, numbers = case
    a, b = numbers(jax_fn(), torch_fn())
    rel = float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-300))
    ok = rel <= rel_tol
    verdict = "ok" if ok else "FAIL"
    print(f"check {name}: relative difference {rel:.2e} (tolerance {rel_tol:g}) {verdict}")
    return {"relative_difference": rel, "tolerance": rel_tol, "ok": ok}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    p.add_argument("--width", type=int, default=256, help="μP MLP width N")
    p.add_argument("--steps", type=int, default=100, help="μP MLP SGD steps per timed call")
    p.add_argument("--in-dim", type=int, default=784, help="RevMLP d")
    p.add_argument("--hidden", type=int, default=1024, help="RevMLP h")
    p.add_argument("--batches", type=int, nargs="+", default=[256, 1000], help="GN batch sizes")
    p.add_argument("--pbfgs-in", type=int, default=40, help="P-BFGS MLP input dimension")
    p.add_argument("--pbfgs-width", type=int, default=256, help="P-BFGS MLP width")
    p.add_argument("--pbfgs-depth", type=int, default=3, help="P-BFGS MLP hidden layers")
    p.add_argument("--pbfgs-batch", type=int, default=256)
    p.add_argument("--pbfgs-steps", type=int, default=10, help="P-BFGS steps per timed call")
    p.add_argument("--d", type=int, default=40, help="P-BFGS subspace dimension")
    p.add_argument("--pipeline-epochs", type=int, default=5, help="P-BFGS epochs of the pipeline")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--small", action="store_true", help="tiny sizes (smoke test)")
    add_out(p, "vs_pytorch")
    a = p.parse_args(argv)
    if a.small:
        a.width, a.steps, a.in_dim, a.hidden, a.batches, a.rounds = 16, 5, 16, 32, [16], 2
        a.pbfgs_width, a.pbfgs_depth, a.pbfgs_batch, a.pbfgs_steps, a.d = 32, 2, 32, 4, 5
        a.pipeline_epochs = 2
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    print(
        f"torch {torch.__version__} (timed at 1 and {threads} threads, OMP_WAIT_POLICY="
        f"{os.environ.get('OMP_WAIT_POLICY')}); jax {jax.__version__}"
    )
    key = jax.random.key(0)
    checks = {}
    with jax.enable_x64(True):
        if "mup_mlp" in a.cases:
            checks["mup_mlp"] = check("mup_mlp float64 losses", mup_case(a, "float64", key), 1e-10)
        if "exact_gn" in a.cases:
            checks["exact_gn"] = check(
                "exact_gn float64 updated W_f",
                gn_case(a, "float64", key, a.batches[0]),
                1e-8,
            )
        if "pbfgs" in a.cases:
            checks["pbfgs"] = check_pbfgs(a, key)
        if "dldr_pipeline" in a.cases:
            checks["dldr_pipeline"] = check_pipeline(a)
    if "mup_mlp" in a.cases:
        checks["mup_mlp_f32"] = check("mup_mlp float32 losses", mup_case(a, "float32", key), 1e-4)
    results = []
    cases: list[tuple[str, str, Any, int]] = []
    if "mup_mlp" in a.cases:
        cases.append(
            ("mup_mlp", f"{a.steps} SGD steps, N={a.width}", mup_case(a, "float32", key), 1)
        )
    for b in a.batches if "exact_gn" in a.cases else []:
        cases.append((f"exact_gn_b{b}", f"1 step, d={a.in_dim} h={a.hidden} batch {b}",
                      gn_case(a, "float32", key, b), 1))  # fmt: skip
    if "pbfgs" in a.cases:
        pb = pbfgs_case(a, "float32", key)
        cases.append(("pbfgs", f"ms/step, MLP {a.pbfgs_in}-{a.pbfgs_width}x{a.pbfgs_depth}-10, "
                      f"d={a.d}, batch {a.pbfgs_batch}", pb[:3], a.pbfgs_steps))  # fmt: skip
    tcounts = sorted({1, threads})
    for name, what, (jf, tf, _), per in cases:
        r = {"name": name, "what": what, **side_by_side(jf, tf, a.rounds, tcounts, per)}
        results.append(r)
        for n in tcounts:
            m, lo, hi = r[f"torch_{n}t_over_lazyrich"]
            print(
                f"{name:>14} ({what}): lazyrich {r['lazyrich_ms']:.1f} ms, torch ({n} thread"
                f"{'s' if n > 1 else ''}) {r[f'torch_{n}t_ms']:.1f} ms; torch/lazyrich "
                f"{m:.2f} [{lo:.2f}, {hi:.2f}] over {a.rounds} rounds"
            )
        if name == "pbfgs":
            torch.set_num_threads(threads)
            jt = [int(t) for _, _, t in jf()]
            tt = [t for _, t in tf()[0]]
            r["trials_per_step"] = {"lazyrich": jt, "torch": tt}
            r["lazyrich_breakdown_ms"] = bd = breakdown(pb[3], 3 * a.rounds)
            print(f"{name:>14} line-search trials per step: lazyrich {jt}, torch {tt}")
            print(f"{name:>14} lazyrich pieces (ms): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in bd.items()))  # fmt: skip
    if "dldr_pipeline" in a.cases:
        r = pipeline_case(a, tcounts)
        results.append(r)
        print(f"dldr_pipeline ({r['what']}, D={r['num_params']}): lazyrich compile "
              f"{r['lazyrich_compile_s']:.2f} s (AOT, not in the times below)")  # fmt: skip
        for tag in ["lazyrich"] + [f"torch_{n}t" for n in tcounts]:
            ph = ", ".join(f"{k} {r[f'{tag}_{k}_s']:.3f}" for k in ("sampling", "pca", "pbfgs"))
            acc = r[f"{tag}_test_accuracy"]
            ratio = r.get(f"{tag}_over_lazyrich")
            vs = (
                f"; torch/lazyrich {ratio[0]:.2f} [{ratio[1]:.2f}, {ratio[2]:.2f}]" if ratio else ""
            )
            print(f"dldr_pipeline {tag}: {ph}; total {r[f'{tag}_total_s']:.3f} s (median of "
                  f"{a.rounds}){vs}; test accuracy {min(acc):.4f}-{max(acc):.4f}")  # fmt: skip
        pca1 = r["lazyrich_pca_lapack_1thread_s"]
        print(f"dldr_pipeline lazyrich PCA (dldr_subspace) with JAX's LAPACK at 1 OpenBLAS "
              f"thread: {pca1:.3f} s (above: OpenBLAS's default threads)")  # fmt: skip
        f32 = r["float32_lazyrich_vs_torch_rel_diff"]
        diffs = ", ".join(f"{k} {v:.1e}" for k, v in f32.items() if k != "test_accuracy")
        print(f"dldr_pipeline float32, lazyrich vs torch (1st round) rel. diff: {diffs}")
    print(f"load average {os.getloadavg()}")
    out = {
        "config": {**vars(a), "torch": torch.__version__, "torch_threads": threads},
        "checks": checks,
        "results": results,
    }
    name = "vs_pytorch" if set(a.cases) == set(CASES) else "_".join(["vs_pytorch", *a.cases])
    write(name, out, a.out)
    return out


if __name__ == "__main__":
    main()
