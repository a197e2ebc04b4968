"""Cases (c) and (d) of `benchmarks.vs_pytorch`: DLDR's P-BFGS and its pipeline (PAPERS.md §3).

The PyTorch code is written from PAPERS.md §3 and the docstring of `lazyrich.optim.p_bfgs`, not
copied from the authors' repository. Both sides use lazyrich's public API only on the JAX side.

- `pbfgs`: P-BFGS steps (`g = P∇L`, the inverse-Hessian BFGS update with the curvature guard
  `yᵀs > 1e-20`, `p = −Hg`, Armijo backtracking `0.4^m p`, m < 20, c = 0.4, on the same batch;
  when no trial passes, the last one, as the authors' loop) on a bias-free ReLU MLP with
  cross-entropy and random data. lazyrich: `p_bfgs(P, fallback="smallest")` through optax
  (`value`, `grad`, `value_fn`), one jitted step per batch. PyTorch: a loop on the flat weight
  vector (a functional forward on views of it), `P` a `(d, D)` tensor. `P` comes from a short
  SGD trajectory (`dldr_subspace`), as in `benchmarks.dldr` part 1; both sides get the same
  `w0`, `P` and batches.
- `dldr_pipeline`: the whole method on mnist1d in the DLDR study's quick setting (see
  `benchmarks.dldr.SETTINGS`): SGD (lr 0.1, momentum 0.9, batch 128) for the sampling epochs
  with `samples_per_epoch` samples per epoch + the initial point, PCA to `d` directions, then
  P-BFGS epochs at batch 256 from `w0`. lazyrich: one AOT-compiled `lax.scan` per epoch
  (SGD, sampled rows fed to a `TrajectorySampler`; P-BFGS through `p_bfgs`) and
  `dldr_subspace`. PyTorch: `torch.optim.SGD` on the flat weight vector, its own PCA through
  the eigendecomposition of the `t×t` Gram matrix of the centred samples (float64, samples
  kept as float32 like `TrajectorySampler`), and the P-BFGS loop of `pbfgs`. Same initial
  weights and the same batch order (lazyrich's `epoch_batches`, handed to PyTorch as index
  arrays before timing), so the two runs follow the same trajectory up to rounding.
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from lazyrich.data import epoch_batches, load_dataset, num_batches
from lazyrich.models import MLP, functional
from lazyrich.optim import TrajectorySampler, dldr_subspace, p_bfgs, set_lapack_threads
from lazyrich.train import accuracy, cross_entropy

from .dldr import SETTINGS, network

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks.vs_pytorch

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover - depends on the optional group
    raise SystemExit(
        "benchmarks.vs_pytorch needs PyTorch: run `uv sync --group peers` first"
    ) from e

# the paper's constants (PAPERS.md §3)
CURVATURE_EPS, FACTOR, C, TRIES = 1e-20, 0.4, 0.4, 20


def _t(a, dtype):
    return torch.tensor(np.asarray(a), dtype=dtype)


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-300))


def torch_logits(params):
    """`logits(w, x)` of a bias-free ReLU MLP (standard param.) on the flat `w`, in the order
    of lazyrich's `ravel_pytree` of `params` (layer by layer, each `(out, in)` row-major)."""
    shapes = [tuple(a.shape) for a in jax.tree.leaves(params)]
    sizes = [o * i for o, i in shapes]

    def logits(w, x):
        h = x
        for k, (wk, shape) in enumerate(zip(torch.split(w, sizes), shapes, strict=True)):
            h = h @ wk.view(shape).T
            if k < len(shapes) - 1:
                h = torch.relu(h)
        return h

    return logits


class TorchPBFGS:
    """P-BFGS on a flat weight vector `w` (PAPERS.md §3), H₀ = I, the authors' fallback."""

    def __init__(self, w0, p, logits):
        self.w, self.p, self.logits = w0.clone(), p, logits
        d = p.shape[0]
        self.eye = torch.eye(d, dtype=p.dtype)
        self.h, self.alpha = self.eye.clone(), torch.zeros(d, dtype=p.dtype)
        self.g_prev, self.s_prev, self.k = self.alpha.clone(), self.alpha.clone(), 0

    def step(self, x, y):
        """One step on the batch `(x, y)`; returns (loss at the start, line-search trials)."""
        w = self.w.detach().requires_grad_(True)
        value = F.cross_entropy(self.logits(w, x), y)
        (grad,) = torch.autograd.grad(value, w)
        with torch.no_grad():
            g = self.p @ grad
            if self.k > 0:
                yk, s = g - self.g_prev, self.s_prev
                ys = yk @ s
                if ys > CURVATURE_EPS:
                    rho = 1.0 / ys
                    left = self.eye - rho * torch.outer(s, yk)
                    self.h = left @ self.h @ left.T + rho * torch.outer(s, s)
            direction = -(self.h @ g)
            slope = g @ direction
            dw = self.p.T @ direction  # once per step: each trial is then w + t·dw
            value = value.detach()
            for m in range(TRIES):  # no break: t stays at the last trial, 0.4^19
                t = FACTOR**m
                if F.cross_entropy(self.logits(self.w + t * dw, x), y) < value + C * t * slope:
                    break
            self.w = self.w + t * dw
            self.g_prev, self.s_prev = g, t * direction
            self.alpha += self.s_prev
            self.k += 1
        return value, m + 1


def jit_pbfgs_step(apply):
    """The lazyrich side: one jitted `p_bfgs` step through optax; P is an argument (a
    closed-over P would be a constant of the compiled program)."""

    @jax.jit
    def step(p_mat, params, state, x, y):
        value_fn = lambda q: cross_entropy(apply(q, x), y)
        opt = p_bfgs(p_mat, fallback="smallest")
        value, grad = jax.value_and_grad(value_fn)(params)
        u, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=value_fn)
        return optax.apply_updates(params, u), state, value

    return step


# --------------------------------------------------------------------------- (c) P-BFGS


def trajectory_subspace(params, apply, x, y, d):
    """P (float32) of `d + 6` samples of a short SGD-momentum run, as benchmarks.dldr part 1."""
    params = jax.tree.map(lambda a: a.astype(jnp.float32), params)
    x = x.astype(jnp.float32)
    sgd = optax.sgd(0.05, momentum=0.9)

    @jax.jit
    def sgd_step(p, s):
        g = jax.grad(lambda q: cross_entropy(apply(q, x), y))(p)
        u, s = sgd.update(g, s, p)
        return optax.apply_updates(p, u), s

    sampler, p, s = TrajectorySampler(), params, sgd.init(params)
    sampler.record(p)
    for _ in range(d + 5):
        p, s = sgd_step(p, s)
        sampler.record(p)
    return dldr_subspace(sampler.samples(), d)[0]


def pbfgs_case(args, dtype_name, key):
    """`(jax_fn, torch_fn, numbers)`: `args.pbfgs_steps` P-BFGS steps from `w0` per call."""
    dt = jnp.float64 if dtype_name == "float64" else jnp.float32
    tdt = torch.float64 if dtype_name == "float64" else torch.float32
    k_steps, b, d_in = args.pbfgs_steps, args.pbfgs_batch, args.pbfgs_in
    model = MLP(d_in, args.pbfgs_width, args.pbfgs_depth, 10, parameterization="standard",
                dtype=dt, key=key)  # fmt: skip
    params, apply = functional(model)
    w0, _ = ravel_pytree(params)
    kx, ky = jax.random.split(jax.random.fold_in(key, 3))
    x = jax.random.normal(kx, (k_steps + 1, b, d_in), dt)
    y = jax.random.randint(ky, (k_steps + 1, b), 0, 10)
    p_mat = trajectory_subspace(params, apply, x[-1], y[-1], args.d).astype(dt)
    xs, ys = [x[i] for i in range(k_steps)], [y[i] for i in range(k_steps)]
    step = jit_pbfgs_step(apply)
    state0 = p_bfgs(p_mat, fallback="smallest").init(params)

    def jax_fn():
        p, s, out = params, state0, []
        for xb, yb in zip(xs, ys, strict=True):
            p, s, v = step(p_mat, p, s, xb, yb)
            out.append((v, s.s_prev, s.tries))  # pyright: ignore[reportAttributeAccessIssue]
        return out

    tw0, tp, logits = _t(w0, tdt), _t(p_mat, tdt), torch_logits(params)
    txs = [_t(a, tdt) for a in xs]
    tys = [torch.tensor(np.asarray(a), dtype=torch.long) for a in ys]

    def torch_fn():
        opt = TorchPBFGS(tw0, tp, logits)
        out = [opt.step(xb, yb) for xb, yb in zip(txs, tys, strict=True)]
        return out, opt.alpha

    def numbers(j, t):
        """losses, α and trials per step of both sides."""
        jl = np.array([float(v) for v, _, _ in j])
        ja = np.sum([np.asarray(s) for _, s, _ in j], axis=0)
        return {
            "losses": (jl, np.array([float(v) for v, _ in t[0]])),
            "alpha": (ja, t[1].numpy()),
            "tries": (np.array([int(n) for _, _, n in j]), np.array([n for _, n in t[0]])),
        }

    parts = dict(step=step, p_mat=p_mat, params=params, state0=state0, apply=apply, xs=xs, ys=ys)
    return jax_fn, torch_fn, numbers, parts


def check_pbfgs(args, key, rel_tol=1e-10) -> dict:
    """P-BFGS in float64 on both sides: losses and α relative difference, trials equal."""
    jax_fn, torch_fn, numbers, _ = pbfgs_case(args, "float64", key)
    nums = numbers(jax_fn(), torch_fn())
    out = {k: rel(*nums[k]) for k in ("losses", "alpha")}
    same_tries = bool(np.array_equal(*nums["tries"]))
    ok = max(out.values()) <= rel_tol and same_tries
    print(f"check pbfgs float64 {args.pbfgs_steps} steps: losses rel. diff {out['losses']:.2e}, "
          f"α {out['alpha']:.2e} (tolerance {rel_tol:g}); trials per step "
          f"{nums['tries'][0].tolist()} {'equal' if same_tries else 'DIFFER'}; "
          f"{'ok' if ok else 'FAIL'}")  # fmt: skip
    return {**out, "tries_equal": same_tries, "tries": nums["tries"][0].tolist(),
            "tolerance": rel_tol, "ok": ok}  # fmt: skip


def breakdown(parts: dict, repeats: int) -> dict:
    """ms of the pieces of one lazyrich P-BFGS step (each jitted alone, same shapes)."""
    apply, params, p_mat = parts["apply"], parts["params"], parts["p_mat"]
    x, y = parts["xs"][0], parts["ys"][0]
    w, unravel = ravel_pytree(params)
    delta = jnp.ones((p_mat.shape[0],), p_mat.dtype) * 1e-3
    loss = lambda q, x, y: cross_entropy(apply(q, x), y)
    pieces = {
        "value_and_grad": (jax.jit(jax.value_and_grad(loss)), (params, x, y)),
        "P @ grad": (jax.jit(lambda pm, g: pm @ ravel_pytree(g)[0]), (p_mat, params)),
        "P.T @ delta": (jax.jit(lambda pm, dl: pm.T @ dl), (p_mat, delta)),
        "forward (loss)": (jax.jit(loss), (params, x, y)),
        "trial = loss(w + P.T @ delta)": (
            jax.jit(lambda pm, w, dl, x, y: loss(unravel(w + pm.T @ dl), x, y)),
            (p_mat, w, delta, x, y),
        ),
        # the same product written `delta @ P`: XLA:CPU then calls gemv on P as stored,
        # where `P.T @ delta` first copies P into a transposed (D, d) array
        "delta @ P": (jax.jit(lambda pm, dl: dl @ pm), (p_mat, delta)),
        "trial = loss(w + delta @ P)": (
            jax.jit(lambda pm, w, dl, x, y: loss(unravel(w + dl @ pm), x, y)),
            (p_mat, w, delta, x, y),
        ),
        "whole step": (parts["step"], (p_mat, params, parts["state0"], x, y)),
    }
    out = {}
    for name, (fn, a) in pieces.items():
        jax.block_until_ready(fn(*a))
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*a))
            ts.append(time.perf_counter() - t0)
        out[name] = 1e3 * float(np.median(ts))
    return out


# --------------------------------------------------------------------------- (d) pipeline


class Pipeline:
    """The DLDR pipeline on mnist1d, in lazyrich and in PyTorch, from the same `w0` and order."""

    def __init__(self, args, dtype_name: str):
        small = args.small
        c = dict(SETTINGS["small" if small else "quick"])
        self.c, self.epochs = c, args.pipeline_epochs
        self.dt = jnp.float64 if dtype_name == "float64" else jnp.float32
        self.tdt = torch.float64 if dtype_name == "float64" else torch.float32
        data = load_dataset("mnist1d", n_train=c["n_train"], n_test=c["n_test"], seed=c["seed"])
        self.x, self.y = data.x_train.astype(self.dt), data.y_train
        self.xt, self.yt = data.x_test.astype(self.dt), data.y_test
        params0, self.apply, _, _ = network("mlp", data, c)
        self.params0 = jax.tree.map(lambda a: a.astype(self.dt), params0)
        self.w0 = ravel_pytree(self.params0)[0]
        n = data.n_train
        self.order = jax.random.fold_in(jax.random.key(c["seed"]), 1)
        nb, per = num_batches(n, c["batch"]), c["samples_per_epoch"]
        self.marks = [round(i * nb / per) - 1 for i in range(1, per + 1)]  # steps in an epoch
        self.sgd_idx = [
            epoch_batches(self.order, n, c["batch"], e) for e in range(c["sample_epochs"])
        ]
        self.pb_idx = [
            epoch_batches(self.order, n, c["pbfgs_batch"], e) for e in range(self.epochs)
        ]
        self.compile_s = self._compile()

    def _compile(self) -> float:
        c, x, y, apply = self.c, self.x, self.y, self.apply
        sgd = self.sgd = optax.sgd(c["lr"], momentum=0.9)
        marks = jnp.asarray(self.marks)

        def sgd_epoch(p, s, epoch, x, y):  # one epoch; the flat params at the sample marks
            def body(carry, i):
                g = jax.grad(lambda q: cross_entropy(apply(q, x[i]), y[i]))(carry[0])
                u, s = sgd.update(g, carry[1], carry[0])
                p = optax.apply_updates(carry[0], u)
                return (p, s), ravel_pytree(p)[0]

            idx = epoch_batches(self.order, x.shape[0], c["batch"], epoch)
            (p, s), flats = jax.lax.scan(body, (p, s), idx)
            return p, s, flats[marks]

        def pbfgs_epoch(p_mat, p, s, epoch, x, y):
            opt = p_bfgs(p_mat, fallback="smallest")

            def body(carry, i):
                value_fn = lambda q: cross_entropy(apply(q, x[i]), y[i])
                v, g = jax.value_and_grad(value_fn)(carry[0])
                u, s = opt.update(g, carry[1], carry[0], value=v, grad=g, value_fn=value_fn)
                return (optax.apply_updates(carry[0], u), s), v

            idx = epoch_batches(self.order, x.shape[0], c["pbfgs_batch"], epoch)
            return jax.lax.scan(body, (p, s), idx)

        t0 = time.perf_counter()
        p0, i0 = self.params0, jnp.int32(0)
        p_mat = jnp.zeros((c["d"], self.w0.size), self.dt)
        self.pb_state0 = p_bfgs(p_mat, fallback="smallest").init(p0)
        self.sgd_c = jax.jit(sgd_epoch).lower(p0, sgd.init(p0), i0, x, y).compile()
        self.pb_c = jax.jit(pbfgs_epoch).lower(p_mat, p0, self.pb_state0, i0, x, y).compile()
        self.acc = jax.jit(lambda p: accuracy(apply(p, self.xt), self.yt))
        t = 1 + c["sample_epochs"] * c["samples_per_epoch"]  # dldr_subspace: compiled on use
        warm = jax.random.normal(jax.random.key(9), (t, self.w0.size), jnp.float32)
        jax.block_until_ready(dldr_subspace(warm, c["d"])[0])
        TrajectorySampler().record(p0)
        jax.block_until_ready(self.acc(p0))
        return time.perf_counter() - t0

    def run_jax(self) -> dict:
        c, times, ep = self.c, {}, jnp.int32
        t0 = time.perf_counter()
        sampler, p, s = TrajectorySampler(), self.params0, self.sgd.init(self.params0)
        sampler.record(p)
        for e in range(c["sample_epochs"]):
            p, s, rows = self.sgd_c(p, s, ep(e), self.x, self.y)
            for r in range(rows.shape[0]):
                sampler.record(rows[r])
        samples = sampler.samples()
        times["sampling"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        p_mat = jax.block_until_ready(dldr_subspace(samples, c["d"])[0]).astype(self.dt)
        times["pca"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        p, s, losses = self.params0, self.pb_state0, []
        for e in range(self.epochs):
            (p, s), v = self.pb_c(p_mat, p, s, ep(e), self.x, self.y)
            losses.append(v)
        jax.block_until_ready(p)
        times["pbfgs"] = time.perf_counter() - t0
        return dict(times=times, w=ravel_pytree(p)[0], losses=jnp.concatenate(losses), p=p_mat,
                    samples=samples, test_accuracy=float(self.acc(p)))  # fmt: skip

    def run_torch(self) -> dict:
        c, times, tdt = self.c, {}, self.tdt
        if not hasattr(self, "tx"):  # data and the batch order, once, before any timing
            self.tx, self.ty = _t(self.x, tdt), torch.tensor(np.asarray(self.y), dtype=torch.long)
            self.txt = _t(self.xt, tdt)
            self.tyt = torch.tensor(np.asarray(self.yt), dtype=torch.long)
            to_long = lambda i: torch.tensor(np.asarray(i), dtype=torch.long)
            self.t_sgd_idx = [to_long(i) for i in self.sgd_idx]
            self.t_pb_idx = [to_long(i) for i in self.pb_idx]
        logits = torch_logits(self.params0)
        t0 = time.perf_counter()
        w = _t(self.w0, tdt).requires_grad_(True)
        opt = torch.optim.SGD([w], lr=c["lr"], momentum=0.9)
        samples = [w.detach().to(torch.float32).clone()]
        for idx in self.t_sgd_idx:
            for k, i in enumerate(idx):
                opt.zero_grad()
                F.cross_entropy(logits(w, self.tx[i]), self.ty[i]).backward()
                opt.step()
                if k in self.marks:
                    samples.append(w.detach().to(torch.float32).clone())
        times["sampling"] = time.perf_counter() - t0
        t0 = time.perf_counter()  # PCA through the t×t Gram matrix, in float64
        xc = torch.stack(samples).double()
        xc = xc - xc.mean(0, keepdim=True)
        _, u = torch.linalg.eigh(xc @ xc.T)  # ascending
        p_mat = u[:, -c["d"] :].T @ xc
        p_mat = (p_mat / torch.linalg.norm(p_mat, dim=1, keepdim=True)).to(torch.float32)
        times["pca"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        pb = TorchPBFGS(_t(self.w0, tdt), p_mat.to(tdt), logits)
        losses = [pb.step(self.tx[i], self.ty[i])[0] for idx in self.t_pb_idx for i in idx]
        times["pbfgs"] = time.perf_counter() - t0
        with torch.no_grad():
            acc = (logits(pb.w, self.txt).argmax(1) == self.tyt).double().mean()
        return dict(times=times, w=pb.w.numpy(), losses=torch.stack(losses).numpy(), p=pb.p,
                    samples=torch.stack(samples).numpy(), test_accuracy=float(acc))  # fmt: skip


def compare(j: dict, t: dict) -> dict:
    """Relative differences of two pipeline runs: samples, subspace, P-BFGS losses, weights."""
    pj, pt = np.asarray(j["p"], np.float64), t["p"].numpy().astype(np.float64)
    return {
        "samples": rel(j["samples"], t["samples"]),
        "subspace": rel(pt, (pt @ pj.T) @ pj),  # the part of torch's P off lazyrich's span
        "losses": rel(j["losses"], t["losses"]),
        "w": rel(j["w"], t["w"]),
        "test_accuracy": [j["test_accuracy"], t["test_accuracy"]],
    }


def check_pipeline(args, tol=(1e-12, 1e-6, 1e-5)) -> dict:
    """The whole pipeline in float64 on both sides. The samples should agree to rounding; the
    Gram-matrix PCA amplifies rounding (`P_i = Xᵀu_i/√λ_i`: an error in `u_i` grows by
    `√(λ_1/λ_i)`), and the P-BFGS epochs amplify the subspace's difference further."""
    pipe = Pipeline(args, "float64")
    out: dict = compare(pipe.run_jax(), pipe.run_torch())
    ok = all(out[k] <= x for k, x in zip(("samples", "subspace", "w"), tol, strict=True))
    acc = out["test_accuracy"]
    print(f"check dldr_pipeline float64: rel. diff of the samples {out['samples']:.2e} "
          f"(tolerance {tol[0]:g}), of P's span {out['subspace']:.2e} ({tol[1]:g}), P-BFGS losses "
          f"{out['losses']:.2e}, final weights {out['w']:.2e} ({tol[2]:g}); test accuracy "
          f"{acc[0]:.4f} vs {acc[1]:.4f}; {'ok' if ok else 'FAIL'}")  # fmt: skip
    return {**out, "tolerance": dict(zip(("samples", "subspace", "w"), tol, strict=True)),
            "ok": ok}  # fmt: skip


def pipeline_case(args, threads: list[int]) -> dict:
    """The float32 pipeline timed in `args.rounds` rounds of rotated order (lazyrich, torch at
    each thread count); per phase the median seconds, the total ratio torch/lazyrich per round."""
    pipe = Pipeline(args, "float32")
    # the OpenBLAS default under JAX's eigh (exact GN, run earlier, sets it to 1 thread)
    set_lapack_threads(os.cpu_count() or 1)
    contestants = [("lazyrich", 0)] + [("torch", n) for n in threads]
    runs: dict[tuple[str, int], list[dict]] = {k: [] for k in contestants}
    pipe.run_jax()  # warm-up: first-call costs outside the compiled programs, torch's own
    for n in threads:
        torch.set_num_threads(n)
        pipe.run_torch()
    for r in range(args.rounds):
        k = r % len(contestants)
        for name, n in contestants[k:] + contestants[:k]:
            if name == "torch":
                torch.set_num_threads(n)
            runs[(name, n)].append(pipe.run_torch() if name == "torch" else pipe.run_jax())
    set_lapack_threads(1)  # dldr_subspace alone with one OpenBLAS thread, as exact GN sets it
    samples, ts = runs[("lazyrich", 0)][0]["samples"], []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        jax.block_until_ready(dldr_subspace(samples, pipe.c["d"])[0])
        ts.append(time.perf_counter() - t0)
    set_lapack_threads(os.cpu_count() or 1)
    out_f32 = compare(runs[contestants[0]][0], runs[contestants[1]][0])
    total = lambda run: sum(run["times"].values())
    tj = np.array([total(x) for x in runs[("lazyrich", 0)]])
    c = pipe.c
    out: dict = {
        "name": "dldr_pipeline",
        "what": f"mnist1d {c['n_train']}, MLP {c['mlp_width']}x{c['mlp_depth']}, "
        f"{c['sample_epochs']} ep SGD + PCA d={c['d']} + {pipe.epochs} ep P-BFGS",
        "num_params": int(pipe.w0.size),
        "lazyrich_compile_s": pipe.compile_s,
        "float32_lazyrich_vs_torch_rel_diff": out_f32,
        "lazyrich_pca_lapack_1thread_s": float(np.median(ts)),
    }
    for (name, n), rs in runs.items():
        tag = "lazyrich" if name == "lazyrich" else f"torch_{n}t"
        for phase in ("sampling", "pca", "pbfgs"):
            out[f"{tag}_{phase}_s"] = float(np.median([x["times"][phase] for x in rs]))
        tt = np.array([total(x) for x in rs])
        out[f"{tag}_total_s"] = float(np.median(tt))
        out[f"{tag}_test_accuracy"] = [x["test_accuracy"] for x in rs]
        if name == "torch":
            ratio = tt / tj
            out[f"{tag}_over_lazyrich"] = [
                float(np.median(ratio)), float(ratio.min()), float(ratio.max())
            ]  # fmt: skip
    return out
