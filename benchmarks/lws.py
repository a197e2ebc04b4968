"""Benchmark: top-only vs full step (layer-wise sparse SGD) for MLPs of depth 3–8 and the CNN.

    uv run python -m benchmarks.lws                                   # CPU-sized defaults
    python3 -m benchmarks.lws --width 2048 --batch 1024 --cnn-width 64 --image 32   # GPU sizes
    uv run python -m benchmarks.lws --small                           # smoke test

Per model: time of a jitted SGD step with the full backward pass, of a top-only step
(backward truncated at the readout), and of `steps` probabilistic LWS-SGD steps (p = 0.1,
`lax.cond` inside one program) against the same number of plain SGD steps.
Writes benchmarks/results/lws.json (see `--out`) and prints one line per result.
"""

from __future__ import annotations

import argparse
import time

import equinox as eqx
import jax
import optax

from lazyrich.models import CNN, MLP, functional
from lazyrich.optim import layer_mask, lws_value_and_grad, plws_coin

from ._machine import add_out, write


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


def bench_model(name, model, x, y, args) -> dict:
    params, apply = functional(model)

    def loss(p, xb, yb):
        return optax.softmax_cross_entropy_with_integer_labels(apply(p, xb), yb).mean()

    opt = optax.sgd(0.01, momentum=0.9)
    top = layer_mask(params, "top")
    # PLWS's two branches written out: separate optimizer states for the top layers and the
    # rest; the top-only step differentiates the top layers alone (truncated backward pass)
    state = tuple(opt.init(half) for half in eqx.partition(params, top))
    top_grad = lws_value_and_grad(loss, top)

    def full_step(p, s):
        (g_top, g_rest), (p_top, p_rest) = (
            eqx.partition(jax.grad(loss)(p, x, y), top),
            (eqx.partition(p, top)),
        )
        u_top, s_top = opt.update(g_top, s[0], p_top)
        u_rest, s_rest = opt.update(g_rest, s[1], p_rest)
        new = eqx.combine(optax.apply_updates(p_top, u_top), optax.apply_updates(p_rest, u_rest))
        return new, (s_top, s_rest)

    def top_step(p, s):
        g_top = eqx.partition(top_grad(p, x, y)[1], top)[0]
        p_top, p_rest = eqx.partition(p, top)
        u_top, s_top = opt.update(g_top, s[0], p_top)
        return eqx.combine(optax.apply_updates(p_top, u_top), p_rest), (s_top, s[1])

    full_j, top_j = jax.jit(full_step), jax.jit(top_step)

    def loop(step):
        def go():
            p, s = params, state
            for _ in range(args.inner):
                p, s = step(p, s)
            jax.block_until_ready(p)

        return go

    t_full = timeit(loop(full_j), args.repeats) / args.inner
    t_top = timeit(loop(top_j), args.repeats) / args.inner

    # whole training: probabilistic LWS (p) vs SGD at equal steps, Python loop of jitted steps
    sgd_state = opt.init(params)

    @jax.jit
    def sgd_step(p, s):
        g = jax.grad(loss)(p, x, y)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s

    keys = jax.random.split(jax.random.key(0), args.train_steps)

    coins = [bool(plws_coin(k, args.p)) for k in keys]  # host-side coins, two jitted programs

    def train_plws():
        p, s = params, state
        for full in coins:
            p, s = (full_j if full else top_j)(p, s)
        jax.block_until_ready(p)

    def train_sgd():
        p, s = params, sgd_state
        for _ in range(args.train_steps):
            p, s = sgd_step(p, s)
        jax.block_until_ready(p)

    t_plws = timeit(train_plws, max(1, args.repeats // 2))
    t_sgd = timeit(train_sgd, max(1, args.repeats // 2))
    n = sum(int(x.size) for x in jax.tree.leaves(params))
    return dict(
        model=name,
        n_params=n,
        full_step_s=t_full,
        top_step_s=t_top,
        full_over_top=t_full / t_top,
        plws_train_s=t_plws,
        sgd_train_s=t_sgd,
        sgd_over_plws=t_sgd / t_plws,
    )


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--in-dim", type=int, default=100)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--depths", type=int, nargs="+", default=[3, 4, 5, 6, 7, 8])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--cnn-width", type=int, default=16)
    ap.add_argument("--image", type=int, default=16, help="CNN input is image×image×3")
    ap.add_argument("--p", type=float, default=0.1, help="full-update probability")
    ap.add_argument("--inner", type=int, default=20, help="steps per timed loop")
    ap.add_argument("--train-steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--small", action="store_true", help="tiny sizes (smoke test)")
    add_out(ap, "lws")
    args = ap.parse_args(argv)
    if args.small:
        ap.set_defaults(in_dim=16, width=32, depths=[3], batch=16, cnn_width=4, image=8, inner=3,
                        train_steps=5, repeats=1)  # fmt: skip
        args = ap.parse_args(argv)

    key = jax.random.key(0)
    x = jax.random.normal(jax.random.key(1), (args.batch, args.in_dim))
    y = jax.random.randint(jax.random.key(2), (args.batch,), 0, 10)
    results = []
    for depth in args.depths:
        model = MLP(args.in_dim, args.width, depth, 10, parameterization="standard", key=key)
        results.append(bench_model(f"mlp_depth{depth}", model, x, y, args))
        print_line(results[-1], args)
    img = jax.random.normal(jax.random.key(3), (args.batch, args.image, args.image, 3))
    cnn = CNN((args.image, args.image, 3), args.cnn_width, 10, key=key)
    results.append(bench_model("cnn", cnn, img, y, args))
    print_line(results[-1], args)

    out = dict(config=vars(args), results=results)
    write("lws", out, args.out)
    return out


def print_line(r: dict, args) -> None:
    print(
        f"lws {r['model']}: full {r['full_step_s'] * 1e3:.3f} ms, top-only "
        f"{r['top_step_s'] * 1e3:.3f} ms, full/top = {r['full_over_top']:.2f}x; "
        f"{args.train_steps} steps SGD {r['sgd_train_s']:.3f} s vs PLWS(p={args.p}) "
        f"{r['plws_train_s']:.3f} s, SGD/PLWS = {r['sgd_over_plws']:.2f}x "
        f"(params={r['n_params']}, batch={args.batch})"
    )


if __name__ == "__main__":
    main()
