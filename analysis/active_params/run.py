"""Training (engine calls) and measures of the active-params study.

Every network trains with `lazyrich.train.train` from the network's initialisation with the
study's seed, so plain SGD, static LWS and PLWS on the focus network share the initial params
and the batch order (`lazyrich.data.batch_indices` of the seed). PLWS is
`lazyrich.optim.PLWS`: its accuracies come from one engine call with p as a vmapped grid axis;
its wall time from separate calls of one p each (a single run is not vmapped, so the top-only
steps run the truncated backward pass; under vmap `lax.cond` would run both branches), timed
by the engine's `step_seconds` (the training steps only, after a warm-up call compiled them),
interleaved with timed SGD calls (median and range over the repeats).

Per dataset × seed × network × activity score: the active top-k%, its per-layer report, and
the test accuracy after resetting the active k% or a control (`RULES`) to init; the matched
controls come from `lazyrich.measures.select_matched` (disjoint from the active set; a control
that cannot be matched at run time is NaN).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr
from tqdm.auto import tqdm

from lazyrich import functional
from lazyrich.data import Dataset, num_batches
from lazyrich.errors import ConfigError
from lazyrich.measures import (
    activity,
    layer_report,
    layer_strata,
    magnitude_strata,
    matched_order,
    reset,
    select_active,
    select_least,
    select_matched,
)
from lazyrich.optim import PLWS, layer_mask, masked, plws_coin
from lazyrich.results import StudyDir, write_dataset
from lazyrich.train import Grid, accuracy, default_devices, final_params, step_key, train

from .claims import claims
from .config import (
    NAME,
    RULES,
    Config,
    build_network,
    load_data,
    network_names,
    num_layers,
    parse_layers,
    seeds,
    validate,
)
from .figures import figures
from .summary import summarize

# --------------------------------------------------------------------------- training


def num_steps(c: Config, data: Dataset) -> int:
    """Steps of every run: `epochs` passes of `n_train // batch` batches."""
    return c.epochs * num_batches(data.n_train, c.batch)


def engine_run(c: Config, model, step, data: Dataset, *, steps: int, grid: Grid | None = None,
               record_at: list[int] | None = None, seed: int | None = None,
               devices: int | None = None) -> tuple[xr.Dataset, Any]:  # fmt: skip
    """One engine call: `(records, final params stacked over the grid's runs)`."""
    grid = grid or Grid.product(seed=[c.seed if seed is None else seed])
    kw: dict[str, Any] = dict(grid=grid, batch=c.batch, loss="ce", record_at=record_at or [steps],
                              progress=False, devices=default_devices(devices))  # fmt: skip
    rec = train(model, step, data, keep_params=True, **kw)
    return rec, final_params(rec, model)


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


def top_change_share(params0, params, percent: float = 10.0) -> float:
    """Share of ‖θ_T − θ_0‖² held by the `percent`% of parameters that changed most (|Δw|).
    Gaussian-distributed changes give ≈ 0.44 at 10%; one dominant few give ≈ 1."""
    pairs = zip(jax.tree.leaves(params0), jax.tree.leaves(params), strict=True)
    d = jnp.concatenate([jnp.ravel(b - a) for a, b in pairs])
    sq = jnp.sort(jnp.square(d))[::-1]
    k = max(1, round(sq.size * percent / 100.0))
    return float(jnp.sum(sq[:k]) / jnp.maximum(jnp.sum(sq), 1e-30))


def reinit_masks(params0, params, *, kind: str, percent: float, strata: dict) -> dict:
    """Per rule (`RULES`), the mask of the parameters reset at k = `percent`%. `strata` maps
    "random", "layer-matched", "magnitude-matched" to `(strata, order)` (`control_strata`)."""
    scores = activity(params0, params, kind=kind)
    active = select_active(scores, top_percent=percent)
    masks: dict[str, Any] = {"active": active, "least": select_least(scores, percent)}
    for rule, (st, order) in strata.items():
        try:  # random: one stratum, drawn among all entries (as select_random)
            masks[rule] = select_matched(active, st, key=jax.random.key(0), order=order,
                                         exclude_reference=rule != "random")  # fmt: skip
        except ConfigError:  # more than half of some stratum active: no disjoint control
            masks[rule] = None
    return masks


def control_strata(params0, *, bins: int, key) -> dict:
    """`rule -> (strata, order)` of the random and the matched controls (one sort each)."""
    k1, k2, k3 = jax.random.split(key, 3)
    out = {}
    zeros = jax.tree.map(lambda a: jnp.zeros(a.shape, jnp.int32), params0)
    rules = (("random", zeros, k1), ("layer-matched", layer_strata(params0), k2),
             ("magnitude-matched", magnitude_strata(params0, bins=bins), k3))  # fmt: skip
    for rule, st, k in rules:
        out[rule] = (st, matched_order(st, key=k))
    return out


def reinit_accuracies(apply, params0, params, data: Dataset, c: Config, kind: str,
                      strata: dict) -> np.ndarray:  # fmt: skip
    """Test accuracy after resetting each rule's k% to init: shape `(len(k), len(RULES))`."""
    out = np.full((len(c.reinit_percents), len(RULES)), np.nan)
    for i, k in enumerate(c.reinit_percents):
        masks = reinit_masks(params0, params, kind=kind, percent=float(k), strata=strata)
        for j, rule in enumerate(RULES):
            if masks[rule] is not None:
                out[i, j] = accuracy_on_test(apply, reset(params, params0, masks[rule]), data)
    return out


# --------------------------------------------------------------------------- timing


def time_steps(c: Config, model, sgd, plws, data: Dataset, *, steps: int, engine) -> dict:
    """Per-step wall time (seconds per training step, compiled) of SGD, top-only LWS and PLWS
    at each p on `model`, over `c.timing_repeats` interleaved repeats.

    Each repeat runs, in order: SGD, top-only LWS (PLWS with p = 0: the truncated backward
    pass), PLWS at each p (one run per engine call, so `lax.cond` runs only the drawn branch),
    then SGD again. The two SGD timings bracket the others: their mean is the repeat's SGD
    cost, their ratio the null control (identical trainings must time alike).

    **Returns:** `{"sgd": (2, repeats), "top": (repeats,), "plws": (len(p), repeats)}`.
    """
    one_p = lambda p: Grid.product(seed=[c.seed], p=[p])  # noqa: E731
    engine(c, model, sgd, data, steps=1)  # compile both programs before any timed call
    engine(c, model, plws, data, steps=1, grid=one_p(0.0))
    out = {"sgd": np.full((2, c.timing_repeats), np.nan),
           "top": np.full(c.timing_repeats, np.nan),
           "plws": np.full((len(c.plws_p), c.timing_repeats), np.nan)}  # fmt: skip

    def seconds(step, grid=None) -> float:
        rec, _ = engine(c, model, step, data, steps=steps, grid=grid)
        return float(rec.attrs["step_seconds"]) / steps

    for r in range(c.timing_repeats):
        out["sgd"][0, r] = seconds(sgd)
        out["top"][r] = seconds(plws, one_p(0.0))
        for pi, p in enumerate(c.plws_p):
            out["plws"][pi, r] = seconds(plws, one_p(p))
        out["sgd"][1, r] = seconds(sgd)
    return out


def equal_time_steps(steps: int, sgd_step: np.ndarray, plws_step: np.ndarray) -> int:
    """PLWS steps that fit in the wall time SGD used for `steps` steps: `steps` × median SGD
    step time / median PLWS step time (medians over the timing repeats; SGD's per repeat is
    the mean of its two bracketing timings), rounded, at least 1.

    **Arguments:**

    - `steps`: SGD's steps.
    - `sgd_step`: SGD's per-step seconds, shape `(2, repeats)` (or `(repeats,)`).
    - `plws_step`: PLWS's per-step seconds, shape `(repeats,)`.

    **Returns:** the step count.
    """
    sgd = np.asarray(sgd_step, float)
    sgd = sgd.mean(0) if sgd.ndim == 2 else sgd
    return max(1, round(steps * float(np.median(sgd)) / float(np.median(plws_step))))


# --------------------------------------------------------------------------- the study


def run(c: Config, store: StudyDir, *, progress: bool = True, devices: int | None = None) -> dict:
    """Time SGD, top-only LWS and PLWS on the focus network per dataset; train every network
    per dataset and seed, the focus network's LWS variants, and PLWS at equal steps and at
    equal wall time; write results and figures."""
    validate(c)
    engine = functools.partial(engine_run, devices=devices)
    names, ss, ds_names = network_names(c), seeds(c), list(c.datasets)
    nd, ns, nn, nsc, npp = len(ds_names), len(ss), len(names), len(c.scores), len(c.plws_p)
    nrep = c.timing_repeats
    max_layers = max(num_layers(c, n) for n in names)
    nk, nr = len(c.reinit_percents), len(RULES)
    sizes = np.full((nd, nn, max_layers), np.nan)
    frac, share = (np.full((nd, ns, nn, nsc, max_layers), np.nan) for _ in range(2))
    reinit = np.full((nd, ns, nn, nsc, nk, nr), np.nan)
    init_acc, sgd_acc, sgd_train_acc, top10 = (np.full((nd, ns, nn), np.nan) for _ in range(4))
    lws_acc = np.full((nd, ns, len(c.lws_variants)), np.nan)
    plws_acc, plws_eq_acc = (np.full((nd, ns, npp), np.nan) for _ in range(2))
    sgd_sec = np.full((nd, 2, nrep), np.nan)
    top_sec = np.full((nd, nrep), np.nan)
    plws_sec = np.full((nd, npp, nrep), np.nan)
    eq_steps = np.zeros((nd, npp), np.int64)
    timing_steps, train_steps = np.zeros(nd, np.int64), np.zeros(nd, np.int64)
    layer_names: dict[str, list[str]] = {}
    total = nd * (1 + ns * (nn + len(c.lws_variants) + 1))
    bar = tqdm(total=total, desc=NAME, disable=not progress, unit="run")
    sgd = optax.sgd(c.lr)  # one object: engine calls with it share compiled programs
    n_focus = num_layers(c, c.focus)
    plws = PLWS(sgd, p="p", top=tuple(parse_layers(c.plws_top, n_focus, "--plws-top")))
    for di, dname in enumerate(ds_names):
        data = load_data(c, dname)
        steps = train_steps[di] = num_steps(c, data)
        # wall times first (the equal-time budgets need them): the focus network, first seed
        bar.set_postfix_str(f"{dname} timing ({nrep} interleaved repeats)")
        timing_steps[di] = c.timing_epochs * num_batches(data.n_train, c.batch)
        t = time_steps(c, build_network(c, c.focus, data, c.seed), sgd, plws, data,
                       steps=int(timing_steps[di]), engine=engine)  # fmt: skip
        sgd_sec[di], top_sec[di], plws_sec[di] = t["sgd"], t["top"], t["plws"]
        eq_steps[di] = [equal_time_steps(steps, t["sgd"], t["plws"][pi]) for pi in range(npp)]
        bar.update()
        for si, seed in enumerate(ss):
            focus_model = None
            for ni, name in enumerate(names):
                bar.set_postfix_str(f"{dname} seed {seed} sgd {name}")
                model = build_network(c, name, data, seed)
                params0, apply = functional(model)
                rec, params = engine(c, model, sgd, data, steps=steps, record_at=[0, steps],
                                         seed=seed)  # fmt: skip
                params = run_of(params)
                init_acc[di, si, ni] = record(rec, "test_accuracy", 0)
                sgd_acc[di, si, ni] = record(rec, "test_accuracy")
                sgd_train_acc[di, si, ni] = record(rec, "train_accuracy")
                top10[di, si, ni] = top_change_share(params0, params)
                key = jax.random.fold_in(jax.random.key(seed), 2000 + ni)
                strata = control_strata(params0, bins=c.match_bins, key=key)
                for ki, kind in enumerate(c.scores):
                    mask = active_mask(params0, params, percent=float(c.active_percent),
                                       kind=kind)  # fmt: skip
                    report = layer_report(mask)
                    layer_names[name] = [r["layer"] for r in report]
                    for li, r in enumerate(report):
                        sizes[di, ni, li] = r["size"]
                        frac[di, si, ni, ki, li] = r["fraction"]
                        share[di, si, ni, ki, li] = r["share"]
                    reinit[di, si, ni, ki] = reinit_accuracies(apply, params0, params, data, c,
                                                               kind, strata)  # fmt: skip
                if name == c.focus:
                    focus_model = model
                bar.update()
            assert focus_model is not None
            params0 = functional(focus_model)[0]
            for vi, variant in enumerate(c.lws_variants):
                bar.set_postfix_str(f"{dname} seed {seed} lws {variant}")
                mask = layer_mask(params0, tuple(parse_layers(variant, n_focus, "--lws-variants")))
                rec, _ = engine(c, focus_model, masked(optax.sgd(c.lr), mask), data,
                                    steps=steps, seed=seed)  # fmt: skip
                lws_acc[di, si, vi] = record(rec, "test_accuracy")
                bar.update()
            # PLWS, p a vmapped grid axis: one call records every p at equal steps and at its
            # equal-wall-time step count
            bar.set_postfix_str(f"{dname} seed {seed} plws")
            grid = Grid.product(seed=[seed], p=list(c.plws_p))
            at = sorted({steps, *(int(n) for n in eq_steps[di])})
            rec, _ = engine(c, focus_model, plws, data, steps=at[-1], grid=grid, record_at=at)
            acc = rec.test_accuracy.isel(seed=0).transpose("p", "step")
            plws_acc[di, si] = acc.sel(step=steps).values
            plws_eq_acc[di, si] = [float(acc.isel(p=pi).sel(step=int(n)))
                                   for pi, n in enumerate(eq_steps[di])]  # fmt: skip
            bar.update()
    bar.close()
    plws_full = np.array([[plws_full_fraction(s, p, int(train_steps[0])) for p in c.plws_p]
                          for s in ss])  # fmt: skip

    ds = xr.Dataset(
        {
            "layer_size": (("dataset", "network", "layer"), sizes),
            "active_fraction": (("dataset", "seed", "network", "score", "layer"), frac),
            "active_share": (("dataset", "seed", "network", "score", "layer"), share),
            "top10_change_share": (("dataset", "seed", "network"), top10),
            "init_test_accuracy": (("dataset", "seed", "network"), init_acc),
            "sgd_test_accuracy": (("dataset", "seed", "network"), sgd_acc),
            "sgd_train_accuracy": (("dataset", "seed", "network"), sgd_train_acc),
            "reinit_test_accuracy": (("dataset", "seed", "network", "score", "k", "rule"), reinit),
            "lws_test_accuracy": (("dataset", "seed", "variant"), lws_acc),
            "plws_test_accuracy": (("dataset", "seed", "p"), plws_acc),
            "plws_equal_time_test_accuracy": (("dataset", "seed", "p"), plws_eq_acc),
            "equal_time_steps": (("dataset", "p"), eq_steps),
            "train_steps": (("dataset",), train_steps),
            "timing_steps": (("dataset",), timing_steps),
            "sgd_step_seconds": (("dataset", "bracket", "repeat"), sgd_sec),
            "top_step_seconds": (("dataset", "repeat"), top_sec),
            "plws_step_seconds": (("dataset", "p", "repeat"), plws_sec),
            "plws_full_step_fraction": (("seed", "p"), plws_full),
        },
        coords={
            "dataset": ds_names,
            "seed": np.asarray(ss),
            "network": names,
            "score": list(c.scores),
            "layer": np.arange(max_layers),
            "k": np.asarray(c.reinit_percents, float),
            "rule": list(RULES),
            "variant": list(c.lws_variants),
            "p": np.asarray(c.plws_p, float),
            "repeat": np.arange(c.timing_repeats),
            "bracket": ["first", "last"],
        },
        attrs={
            "study": NAME,
            "focus": c.focus,
            "plws_top": c.plws_top,
            "active_percent": c.active_percent,
            "layer_names": "; ".join(f"{n}: {', '.join(v)}" for n, v in layer_names.items()),
            "layer": "0 is the bottom (input) layer; NaN past a network's last layer",
            "k": "percent of all parameters reset to their initial values",
            "seconds": "per-step wall time of the engine's training steps (step_seconds / "
            "steps, compiled) on the focus network with the first seed; per repeat: "
            "SGD (bracket first), top-only LWS, PLWS at each p, SGD (bracket last)",
        },
    )
    write_dataset(store.results_path, ds)
    figures(ds, store, c)
    summary = summarize(ds, c)
    summary["claims"] = claims(ds, c)
    return summary
