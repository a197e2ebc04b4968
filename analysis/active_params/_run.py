"""Training (engine calls) and measures of the active-params study.

Every network trains with `lazyrich.train.train` from the network's initialisation with the
study's seed, so plain SGD, static LWS and PLWS on the focus network share the initial params
and the batch order (`lazyrich.data.batch_indices` of the seed). PLWS is
`lazyrich.optim.PLWS`: its accuracies come from one engine call with p as a vmapped grid axis;
its wall time from separate calls of one p each (a single run is not vmapped, so the top-only
steps run the truncated backward pass; under vmap `lax.cond` would run both branches), timed
by the engine's `step_seconds` (the training steps only, after a warm-up call compiled them),
interleaved with timed SGD calls.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr
from jaxtyping import Array
from tqdm.auto import tqdm

from lazyrich import functional
from lazyrich.data import Dataset, num_batches
from lazyrich.measures import activity, layer_report, reset, select_active
from lazyrich.optim import PLWS, layer_mask, masked, plws_coin
from lazyrich.results import StudyDir, write_dataset
from lazyrich.train import Grid, accuracy, step_key, train

from ._config import (
    NAME,
    RULES,
    Config,
    build_network,
    load_data,
    network_names,
    num_layers,
    parse_layers,
    validate,
)
from ._figures import figures
from ._summary import summarize

# --------------------------------------------------------------------------- training


def num_steps(c: Config, data: Dataset) -> int:
    """Steps of every run: `epochs` passes of `n_train // batch` batches."""
    return c.epochs * num_batches(data.n_train, c.batch)


def engine_run(c: Config, model, step, data: Dataset, *, steps: int, grid: Grid | None = None,
               record_at: list[int] | None = None) -> tuple[xr.Dataset, Any]:  # fmt: skip
    """One engine call: `(records, final params stacked over the grid's runs)`."""
    out = train(model, step, data, grid=grid or Grid.product(seed=[c.seed]), batch=c.batch,
                loss="ce", record_at=record_at or [steps], return_params=True,
                progress=False)  # fmt: skip
    assert isinstance(out, tuple)
    return out


def record(rec: xr.Dataset, name: str, step: int = -1) -> float:
    """`name` of the single run of `rec` at record index `step`."""
    return float(rec[name].isel(step=step).values.ravel()[0])


def run_of(params: Any, i: int = 0) -> Any:
    """Run `i` of params stacked over runs (as JAX arrays)."""
    return jax.tree.map(lambda a: jnp.asarray(a[i]), params)


def plws_full_fraction(seed: int, p: float, steps: int) -> float:
    """Fraction of full updates PLWS drew: its coins replayed from the engine's step keys."""
    coins = jax.vmap(lambda t: plws_coin(step_key(seed, t), p))(jnp.arange(steps))
    return float(jnp.mean(coins))


def accuracy_on_test(apply, params, data: Dataset) -> float:
    return float(_accuracy(apply, params, data.x_test, data.y_test))


@functools.partial(jax.jit, static_argnums=0)
def _accuracy(apply, params, x, y):
    return accuracy(apply(params, x), y)


# --------------------------------------------------------------------------- measures


@functools.partial(jax.jit, static_argnames=("percent", "kind"))
def active_mask(params0, params, *, percent: float, kind: str):
    """The global top-`percent`% of parameters by activity score (a boolean pytree)."""
    return select_active(activity(params0, params, kind=kind), top_percent=percent)


def reset_count(total: int, percent: float) -> int:
    """How many parameters k% of `total` is: `round(total · k / 100)`, at least 1 (as in
    `lazyrich.measures._active.select_active`)."""
    return max(1, min(total, round(total * percent / 100.0)))


@functools.partial(jax.jit, static_argnames=("kind",))
def rule_ranks(params0, params, key, *, kind: str) -> Array:
    """Per rule (`RULES`), every parameter's rank in that rule's order, shape `(3, total)`.

    The first `count` ranks of a rule are the parameters `select_active` (most changed first),
    `select_random` (a uniform permutation) and `select_least` (least changed first) would
    pick for that count; ties go to the lower position, as in `jax.lax.top_k`. One sort per
    rule serves every k, so k need not be a compile-time constant.
    """
    scores = activity(params0, params, kind=kind)
    flat = jnp.concatenate([jnp.ravel(s) for s in jax.tree.leaves(scores)])
    neg = jnp.where(flat == 0, 0.0, -flat)  # no -0.0: it sorts before +0.0
    orders = (
        jnp.argsort(neg, stable=True),
        jax.random.permutation(key, flat.size),
        jnp.argsort(flat, stable=True),
    )
    positions = jnp.arange(flat.size, dtype=jnp.int32)
    return jnp.stack([jnp.zeros_like(positions).at[o].set(positions) for o in orders])


@jax.jit
def reset_first(params0, params, ranks: Array, count: Array):
    """`params` with the parameters of rank < `count` reset to `params0`."""
    flat = ranks < count
    leaves, treedef = jax.tree.flatten(params)
    masks, start = [], 0
    for leaf in leaves:
        masks.append(flat[start : start + leaf.size].reshape(leaf.shape))
        start += leaf.size
    return reset(params, params0, jax.tree.unflatten(treedef, masks))


def reinit_accuracies(apply, params0, params, data: Dataset, c: Config, key) -> np.ndarray:
    """Test accuracy after resetting each rule's k% to init: shape `(len(k), len(RULES))`."""
    total = sum(int(x.size) for x in jax.tree.leaves(params))
    ranks = rule_ranks(params0, params, key, kind=c.activity_kind)
    out = np.full((len(c.reinit_percents), len(RULES)), np.nan)
    for i, k in enumerate(c.reinit_percents):
        count = jnp.int32(reset_count(total, k))
        for j in range(len(RULES)):
            out[i, j] = accuracy_on_test(apply, reset_first(params0, params, ranks[j], count), data)
    return out


# --------------------------------------------------------------------------- the study


def run(c: Config, store: StudyDir, *, progress: bool = True) -> dict:
    """Train every network and the focus network's LWS variants; write results and figures."""
    validate(c)
    data = load_data(c)
    steps = num_steps(c, data)
    names = network_names(c)
    max_layers = max(num_layers(c, n) for n in names)
    shape = (len(names), max_layers)
    layer = {k: np.full(shape, np.nan) for k in ("size", "fraction", "share")}
    nk, nr = len(c.reinit_percents), len(RULES)
    reinit = np.full((len(names), nk, nr), np.nan)
    init_acc, sgd_acc, sgd_train_acc = (np.full(len(names), np.nan) for _ in range(3))
    layer_names: dict[str, list[str]] = {}
    total = len(names) + len(c.lws_variants) + 1 + c.timing_repeats
    bar = tqdm(total=total, desc=NAME, disable=not progress, unit="run")
    sgd = optax.sgd(c.lr)  # one object: engine calls with it share compiled programs

    focus: dict[str, Any] = {}
    for ni, name in enumerate(names):
        bar.set_postfix_str(f"sgd {name}")
        model = build_network(c, name, data)
        params0, apply = functional(model)
        rec, params = engine_run(c, model, sgd, data, steps=steps, record_at=[0, steps])
        params = run_of(params)
        init_acc[ni] = record(rec, "test_accuracy", 0)
        sgd_acc[ni] = record(rec, "test_accuracy")
        sgd_train_acc[ni] = record(rec, "train_accuracy")
        mask = active_mask(params0, params, percent=float(c.active_percent), kind=c.activity_kind)
        report = layer_report(mask)
        layer_names[name] = [r["layer"] for r in report]
        for li, r in enumerate(report):
            layer["size"][ni, li] = r["size"]
            layer["fraction"][ni, li] = r["fraction"]
            layer["share"][ni, li] = r["share"]
        key = jax.random.fold_in(jax.random.key(c.seed), 2000 + ni)
        reinit[ni] = reinit_accuracies(apply, params0, params, data, c, key)
        if name == c.focus:
            focus = dict(model=model, params0=params0)
        bar.update()

    n_focus = num_layers(c, c.focus)
    model, params0 = focus["model"], focus["params0"]
    lws_acc = np.full(len(c.lws_variants), np.nan)
    for vi, variant in enumerate(c.lws_variants):
        bar.set_postfix_str(f"lws {variant}")
        mask = layer_mask(params0, tuple(parse_layers(variant, n_focus, "--lws-variants")))
        rec, _ = engine_run(c, model, masked(optax.sgd(c.lr), mask), data, steps=steps)
        lws_acc[vi] = record(rec, "test_accuracy")
        bar.update()

    # PLWS accuracies: one engine call, p a vmapped grid axis
    bar.set_postfix_str("plws")
    plws = PLWS(sgd, p="p", top=tuple(parse_layers(c.plws_top, n_focus, "--plws-top")))
    grid = Grid.product(seed=[c.seed], p=list(c.plws_p))
    rec, _ = engine_run(c, model, plws, data, steps=steps, grid=grid)
    plws_acc = rec.test_accuracy.isel(step=-1).values.reshape(len(c.plws_p))
    plws_full = np.array([plws_full_fraction(c.seed, p, steps) for p in c.plws_p])
    bar.update()

    # wall times: one run per call (not vmapped), SGD and each p interleaved
    one_p = lambda p: Grid.product(seed=[c.seed], p=[p])  # noqa: E731
    engine_run(c, model, plws, data, steps=1, grid=one_p(c.plws_p[0]))  # compile (warm-up)
    sgd_seconds = np.full(c.timing_repeats, np.nan)
    plws_seconds = np.full((len(c.plws_p), c.timing_repeats), np.nan)
    for r in range(c.timing_repeats):
        bar.set_postfix_str(f"timing {r + 1}/{c.timing_repeats}")
        rec, _ = engine_run(c, model, sgd, data, steps=steps)  # compiled by the SGD run above
        sgd_seconds[r] = rec.attrs["step_seconds"]
        for pi, p in enumerate(c.plws_p):
            rec, _ = engine_run(c, model, plws, data, steps=steps, grid=one_p(p))
            plws_seconds[pi, r] = rec.attrs["step_seconds"]
        bar.update()
    bar.close()

    ds = xr.Dataset(
        {
            "layer_size": (("network", "layer"), layer["size"]),
            "active_fraction": (("network", "layer"), layer["fraction"]),
            "active_share": (("network", "layer"), layer["share"]),
            "init_test_accuracy": (("network",), init_acc),
            "sgd_test_accuracy": (("network",), sgd_acc),
            "sgd_train_accuracy": (("network",), sgd_train_acc),
            "reinit_test_accuracy": (("network", "k", "rule"), reinit),
            "lws_test_accuracy": (("variant",), lws_acc),
            "plws_test_accuracy": (("p",), plws_acc),
            "sgd_train_seconds": (("repeat",), sgd_seconds),
            "plws_train_seconds": (("p", "repeat"), plws_seconds),
            "plws_full_step_fraction": (("p",), plws_full),
        },
        coords={
            "network": names,
            "layer": np.arange(max_layers),
            "k": np.asarray(c.reinit_percents, float),
            "rule": list(RULES),
            "variant": list(c.lws_variants),
            "p": np.asarray(c.plws_p, float),
            "repeat": np.arange(c.timing_repeats),
        },
        attrs={
            "study": NAME,
            "dataset": c.dataset,
            "focus": c.focus,
            "steps": steps,
            "activity_kind": c.activity_kind,
            "active_percent": c.active_percent,
            "layer_names": "; ".join(f"{n}: {', '.join(v)}" for n, v in layer_names.items()),
            "layer": "0 is the bottom (input) layer; NaN past a network's last layer",
            "k": "percent of all parameters reset to their initial values",
            "seconds": "wall time of the engine's training steps (step_seconds), compiled",
        },
    )
    write_dataset(store.results_path, ds)
    figures(ds, store, c)
    return summarize(ds, c)
