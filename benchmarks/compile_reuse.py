"""Compile reuse: a fresh model of the same structure must not recompile.

Compiled programs are keyed on structure (`lazyrich.functional` returns an `Apply` pytree,
jitted with `eqx.filter_jit`), not on the identity of a closure. For each case we time the
first call on a model (trace + compile + run), then the first call on a *fresh* model of the
same structure (another init key), then that call again (steady state). Target: the fresh
model's first call costs under 5% of the first model's.

    uv run python -m benchmarks.compile_reuse            # CPU
    python3 -m benchmarks.compile_reuse                  # GPU (device machine)

Cases are `Case(name, make, call)`: `make(key)` builds the arguments from a fresh model,
`call(*args)` runs the operation; add one to `_cases` to time another operation.
Prints one line per case and writes benchmarks/results/compile_reuse.json.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from lazyrich.data import Dataset
from lazyrich.kernels import empirical_ntk
from lazyrich.models import MLP, RevMLP, functional
from lazyrich.optim import exact_gauss_newton
from lazyrich.train import Grid, train

from ._machine import write


class Case(NamedTuple):
    name: str
    make: Callable[[jax.Array], tuple[Any, ...]]  # init key -> arguments of `call`
    call: Callable[..., Any]


def _ntk_case(a: argparse.Namespace) -> Case:
    x = jax.random.normal(jax.random.key(100), (a.n, a.in_dim))

    def make(key):
        model = MLP(a.in_dim, a.width, a.depth, a.out_dim, parameterization="ntk", key=key)
        return (*functional(model), x)

    return Case("empirical_ntk", make, lambda params, apply, x: empirical_ntk(apply, params, x))


def _jacobian_cases(a: argparse.Namespace) -> list[Case]:
    """For contrast: the Jacobian method (8 inputs, so compilation dominates) through the
    `Apply` and through a plain closure (compiled once per function object)."""
    x = jax.random.normal(jax.random.key(103), (8, a.in_dim))

    def make(key, closure):
        model = MLP(a.in_dim, a.width, a.depth, a.out_dim, parameterization="ntk", key=key)
        params, apply = functional(model)
        return params, (lambda p, xx: apply(p, xx)) if closure else apply, x

    def call(params, apply, x):
        return empirical_ntk(apply, params, x, method="jacobian")

    return [
        Case("empirical_ntk_jacobian", lambda key: make(key, False), call),
        Case("empirical_ntk_jacobian_closure", lambda key: make(key, True), call),
    ]


@eqx.filter_jit
def _gn_step(model, params, state, x, y):
    # the transformation is built from the (traced) model inside the program: its frozen C, U
    # are arguments, not constants, so a fresh RevMLP reuses the program
    opt = exact_gauss_newton(model, 0.5, loss="mse")
    updates, state = opt.update(None, state, params, x=x, y=y)
    return optax.apply_updates(params, updates), state


def _gn_case(a: argparse.Namespace) -> Case:
    x = jax.random.normal(jax.random.key(101), (a.batch, a.gn_dim))
    labels = jax.random.randint(jax.random.key(102), (a.batch,), 0, a.out_dim)
    y = jax.nn.one_hot(labels, a.out_dim)

    def make(key):
        model = RevMLP(a.gn_dim, num_blocks=2, hidden=a.hidden, out_dim=a.out_dim, key=key)
        params, _ = functional(model)
        state = exact_gauss_newton(model, 0.5, loss="mse").init(params)
        return model, params, state, x, y

    return Case("exact_gauss_newton_step", make, _gn_step)


def _sgd(hp):
    return optax.sgd(hp["eta"])


def _engine_case(a: argparse.Namespace) -> Case:
    """One engine call (a 4-run η grid, 20 epochs-worth of steps, 2 records) on a model."""
    x = jax.random.normal(jax.random.key(104), (512, a.in_dim))
    y = jnp.argmax(x[:, : a.out_dim], -1)
    data = Dataset(x[:384], y[:384], x[384:], y[384:], name="toy", num_classes=a.out_dim)
    grid = Grid.product(eta=[0.01, 0.03, 0.1, 0.3])

    def make(key):
        return (MLP(a.in_dim, a.width, a.depth, a.out_dim, parameterization="mup", key=key),)

    def call(model):
        ds = train(model, _sgd, data, grid=grid, record_at=[6, 60], batch=64, loss="ce",
                   progress=False)  # fmt: skip
        return jnp.asarray(ds["test_loss"].values)

    return Case("engine_train", make, call)


def _cases(a: argparse.Namespace) -> list[Case]:
    return [_ntk_case(a), _gn_case(a), _engine_case(a), *_jacobian_cases(a)]


def _seconds(call, args) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(call(*args))
    return time.perf_counter() - t0


def run_case(case: Case) -> dict:
    first_args = jax.block_until_ready(case.make(jax.random.key(0)))
    first = _seconds(case.call, first_args)
    fresh_args = jax.block_until_ready(case.make(jax.random.key(1)))  # same structure
    second = _seconds(case.call, fresh_args)
    steady = _seconds(case.call, fresh_args)
    return {
        "name": case.name,
        "first_call_seconds": first,
        "fresh_model_seconds": second,
        "steady_seconds": steady,
        "ratio": second / first,
        "recompile_seconds": second - steady,
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--in-dim", type=int, default=64)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--out-dim", type=int, default=10)
    p.add_argument("--n", type=int, default=64, help="NTK inputs")
    p.add_argument("--gn-dim", type=int, default=64, help="RevMLP input dimension")
    p.add_argument("--hidden", type=int, default=512, help="RevMLP hidden width")
    p.add_argument("--batch", type=int, default=256, help="Gauss-Newton batch")
    a = p.parse_args(argv)
    jnp.zeros(()).block_until_ready()  # start the backend outside the timings
    results = []
    for case in _cases(a):
        rec = run_case(case)
        results.append(rec)
        print(
            f"{rec['name']:31s} first {rec['first_call_seconds']:8.3f} s  "
            f"fresh model {rec['fresh_model_seconds']:8.4f} s  "
            f"steady {rec['steady_seconds']:8.4f} s  ratio {rec['ratio']:6.1%}  "
            f"fresh - steady {rec['recompile_seconds']:7.4f} s"
        )
    out = {"config": vars(a), "results": results}
    write("compile_reuse", out)
    return out


if __name__ == "__main__":
    main()
