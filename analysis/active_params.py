"""Active parameters and layer-wise sparse SGD (PAPERS.md §4, Li & Banerjee 2021).

MLPs of several widths and the CNN are trained with plain SGD from a fixed initialisation.
Per network: which parameters moved most (global top-k% by activity score) and how they spread
over the layers; the test accuracy after resetting the active k% to their initial values,
against a random k% and the least-changed k%. On one *focus* network: static layer-wise
sparse SGD (only some layers trained, backward pass truncated below the lowest trained layer)
and probabilistic LWS-SGD (the top layers every step, the whole net with probability p), with
the wall time of PLWS training against SGD training at equal steps.

Training runs as jitted `fori_loop`s over a precomputed batch order (the same order for every
run of a network), so SGD and PLWS are timed the same way: PLWS draws its coins up front and
runs each stretch of equal coins as one call of the jitted top-only or full step loop
(`lazyrich.optim._lws.top_step` / `full_step`, the two programs of `plws(mode="python")`).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr
from jaxtyping import Array
from tqdm.auto import tqdm

from lazyrich import functional
from lazyrich.data import Dataset, epoch_batches, mnist1d
from lazyrich.errors import require
from lazyrich.measures import (
    activity,
    layer_report,
    reset,
    select_active,
)
from lazyrich.models import CNN, MLP
from lazyrich.optim import LAYER_SETS as LAYER_PRESETS
from lazyrich.optim import (
    full_step,
    init_plws,
    layer_indices,
    layer_mask,
    lws_value_and_grad,
    masked,
    top_step,
)
from lazyrich.results import StudyDir, write_dataset
from lazyrich.train import evaluate, get_loss

from . import _plots
from ._files import load_subset, require_sizes

NAME = "active-params"
TITLE = "Active parameters and layer-wise sparse SGD"
DESCRIPTION = (
    "ReLU MLPs (standard parameterization, He initialisation, no biases, `depth` hidden layers) "
    "of several widths and the CNN (conv(N) → pool → conv(2N) → pool → fc(8N) → readout) are "
    "trained with plain SGD (no momentum) on mnist1d, MNIST or CIFAR-10. Activity of a parameter "
    "is its relative change |w_T − w_0| / (|w_0| + 1e-8) (or the absolute change); the active "
    "parameters are the global top active_percent% over all layers. active_fraction_by_layer is "
    "active / size per layer (bottom first), active_share_bottom_layer the bottom layer's share "
    "of all active parameters, bottom_size_share its share of all parameters and "
    "bottom_enrichment the ratio of the two (> 1: over-represented among the active). "
    "Re-initialisation: the trained net with the top-k% active parameters reset to their initial "
    "values, against a uniformly random k% and the k% least-changed (same count); the drop is "
    "trained test accuracy minus accuracy after the reset. On the focus network, from the same "
    "initialisation and batch order as SGD: static LWS-SGD training only the top, bottom, top + "
    "bottom or all layers, and probabilistic LWS-SGD updating the top layers every step and the "
    "whole network with probability p (separate SGD states for top and rest). "
    "plws_backprop_speedup = SGD training wall time / PLWS training wall time at equal steps "
    "(the shortest of timing_repeats runs each, SGD and PLWS interleaved), after compilation, both "
    "run as jitted loops; on a shared CPU these timings are noisy. Paper (abstract only): "
    "active parameters sit mostly in the bottom layers, more so for wider nets; resetting them "
    "hurts far more than resetting random ones; top + bottom LWS generalises close to SGD; "
    "PLWS matches SGD with 2–5× cheaper back-propagation."
)

DATASETS = ("mnist1d", "mnist", "cifar10")
FILE_DATASETS = ("mnist", "cifar10")
RULES = ("active", "random", "least")


@dataclass(frozen=True)
class Config:
    """Options of the active-parameters study."""

    dataset: Literal["mnist1d", "mnist", "cifar10"] = "mnist1d"
    """mnist1d is generated locally; mnist and cifar10 are read from --data-dir."""
    n_train: int = 4000
    """Training examples (MNIST / CIFAR-10: the first n_train of the files)."""
    n_test: int = 1000
    """Test examples."""
    widths: tuple[int, ...] = (64, 256, 1024)
    """MLP hidden widths."""
    depth: int = 3
    """MLP hidden layers (the MLP has depth + 1 layers; layer 0 is the bottom)."""
    cnn_width: int = 16
    """CNN channels N of the first convolution (0: no CNN)."""
    focus: str = "mlp-256"
    """The network for static and probabilistic LWS-SGD: mlp-WIDTH (one of --widths) or cnn."""
    epochs: int = 8
    """SGD epochs of every run (all runs of a network take the same number of steps)."""
    batch: int = 32
    """Batch size."""
    lr: float = 0.1
    """SGD learning rate (plain SGD, also inside LWS and PLWS)."""
    activity_kind: Literal["relative", "absolute"] = "relative"
    """Activity score: relative change |w_T - w_0| / (|w_0| + 1e-8), or absolute |w_T - w_0|."""
    active_percent: float = 5.0
    """The active parameters of the per-layer report: the global top ACTIVE_PERCENT% by score."""
    reinit_percents: tuple[float, ...] = (0.1, 1.0, 5.0, 10.0)
    """k values (percent of all parameters, in (0, 100]) of the re-initialisation test."""
    lws_variants: tuple[str, ...] = ("top", "bottom", "top+bottom", "all")
    """Static LWS layer sets: top, bottom, top+bottom, all, or comma-separated layer indices
    (0 is the bottom layer, -1 the readout), e.g. 0,-1."""
    plws_p: tuple[float, ...] = (0.1, 0.25, 0.5)
    """Probabilistic LWS: probabilities (in [0, 1]) of a full-network update per step."""
    plws_top: str = "top"
    """Probabilistic LWS: the layers updated every step (same syntax as --lws-variants)."""
    close_tol: float = 0.02
    """paper_claims: top+bottom LWS counts as close to SGD within this test-accuracy gap."""
    timing_repeats: int = 2
    """Timed trainings of SGD and of each PLWS on the focus network (extra ones interleaved);
    the shortest of each counts."""
    seed: int = 0
    """Seed of the data (mnist1d), the initialisations, the batch order and the coins."""


PRESETS = {
    "quick": Config(),
    "paper": Config(
        dataset="mnist",
        n_train=60_000,
        n_test=10_000,
        widths=(64, 256, 1024, 4096),
        cnn_width=32,
        focus="mlp-1024",
        epochs=20,
        batch=128,
        lr=0.1,
    ),
    "paper-cifar10": Config(
        dataset="cifar10",
        n_train=50_000,
        n_test=10_000,
        widths=(64, 256, 1024, 4096),
        cnn_width=64,
        focus="cnn",
        epochs=30,
        batch=128,
        lr=0.05,
    ),
}


# --------------------------------------------------------------------------- config and data


def network_names(c: Config) -> list[str]:
    """`mlp-W` for each width, then `cnn` (if `cnn_width > 0`)."""
    return [f"mlp-{w}" for w in c.widths] + (["cnn"] if c.cnn_width > 0 else [])


def num_layers(c: Config, network: str) -> int:
    """Layers of `network` (as `lazyrich.measures._active` counts them): depth + 1, or 4 (CNN)."""
    return 4 if network == "cnn" else c.depth + 1


def parse_layers(spec: str, n_layers: int, option: str) -> list[int]:
    """Sorted layer indices of a layer-set string (a preset or comma-separated indices)."""
    dummy = [np.zeros(1)] * n_layers  # one layer per root leaf: the library's own checks
    text = spec.strip()
    if text in LAYER_PRESETS:
        return layer_indices(dummy, text)
    parts = [s.strip() for s in text.split(",") if s.strip()]
    require(
        len(parts) > 0,
        f"{option}: layer set {spec!r} is empty: name at least one layer, e.g. top, bottom, "
        "top+bottom, all or indices such as 0,-1",
    )
    for s in parts:
        require(
            s.lstrip("-").isdigit(),
            f"{option}: unknown layer set {spec!r}: use top, bottom, top+bottom, all or "
            "comma-separated layer indices such as 0,-1",
        )
    return layer_indices(dummy, [int(s) for s in parts])


def validate(c: Config) -> None:
    """Check every option (and, for MNIST / CIFAR-10, that the files load) before any writing."""
    for name in ("n_train", "n_test", "depth", "epochs", "batch", "timing_repeats"):
        v = getattr(c, name)
        require(v >= 1, f"--{name.replace('_', '-')} must be >= 1, got {v}")
    require(c.cnn_width >= 0, f"--cnn-width must be >= 0 (0: no CNN), got {c.cnn_width}")
    require(len(c.widths) >= 1, "--widths needs at least one MLP width, e.g. --widths 64 256")
    for w in c.widths:
        require(w >= 1, f"--widths: every width must be >= 1, got {w}")
    require(len(set(c.widths)) == len(c.widths), f"--widths repeats a width: {c.widths}")
    require(c.batch <= c.n_train, f"--batch {c.batch} exceeds --n-train {c.n_train}")
    require(math.isfinite(c.lr) and c.lr > 0, f"--lr must be a finite number > 0, got {c.lr}")
    require(
        0 < c.active_percent <= 100,
        f"--active-percent {c.active_percent} must be in (0, 100]: pass e.g. --active-percent 5",
    )
    require(len(c.reinit_percents) >= 1, "--reinit-percents needs at least one k, e.g. 1 10")
    for k in c.reinit_percents:
        require(
            0 < k <= 100,
            f"--reinit-percents: k={k} must be in (0, 100]: pass percentages such as 0.1 1 5 10",
        )
    require(
        len(set(c.reinit_percents)) == len(c.reinit_percents),
        f"--reinit-percents repeats a value: {c.reinit_percents}",
    )
    names = network_names(c)
    require(
        c.focus in names,
        f"--focus {c.focus!r} is not one of the networks run ({', '.join(names)}): pass one of "
        "them, e.g. --focus mlp-256 (an MLP width from --widths) or --focus cnn",
    )
    n = num_layers(c, c.focus)
    require(len(c.lws_variants) >= 1, "--lws-variants needs at least one layer set, e.g. top")
    for v in c.lws_variants:
        parse_layers(v, n, "--lws-variants")
    require(
        len(set(c.lws_variants)) == len(c.lws_variants),
        f"--lws-variants repeats a layer set: {c.lws_variants}",
    )
    parse_layers(c.plws_top, n, "--plws-top")
    require(len(c.plws_p) >= 1, "--plws-p needs at least one probability, e.g. --plws-p 0.1")
    for p in c.plws_p:
        require(
            0.0 <= p <= 1.0,
            f"--plws-p: p={p} must be in [0, 1] (probability of a full update per step): "
            "pass e.g. --plws-p 0.1 0.25",
        )
    require(len(set(c.plws_p)) == len(c.plws_p), f"--plws-p repeats a value: {c.plws_p}")
    require(0 <= c.close_tol <= 1, f"--close-tol must be in [0, 1], got {c.close_tol}")
    require(c.seed >= 0, f"--seed must be >= 0, got {c.seed}")
    if c.dataset in FILE_DATASETS:
        require_sizes(c.dataset, c.n_train, c.n_test)


def load_data(c: Config) -> Dataset:
    """The study's train/test split (10 classes)."""
    if c.dataset == "mnist1d":
        return mnist1d(c.n_train, c.n_test, seed=c.seed)
    return load_subset(c.dataset, c.n_train, c.n_test)


@eqx.filter_jit
def _init(kind: str, shape: tuple[int, ...], width: int, depth: int, classes: int, key):
    """One compiled initialiser per architecture (Python arguments are static)."""
    common: dict[str, Any] = dict(parameterization="standard", use_bias=False, sigma_w=2**0.5)
    if kind == "cnn":
        in_shape = shape + (1,) if len(shape) == 1 else shape
        return CNN(in_shape, width, classes, key=key, **common)
    return MLP(math.prod(shape), width, depth, classes, key=key, **common)


def build_network(c: Config, network: str, data: Dataset) -> MLP | CNN:
    """The initial network `network` (same config and name → same initialisation).

    ReLU, standard parameterization, He initialisation (σ_w = √2), no biases (a zero-initialised
    bias would have an unbounded relative change). Built by one compiled initialiser instead
    of an eager op per layer.
    """
    key = jax.random.fold_in(jax.random.key(c.seed), network_names(c).index(network))
    if network == "cnn":
        return _init("cnn", data.input_shape, c.cnn_width, 0, data.num_classes, key)
    width = int(network.split("-", 1)[1])
    return _init("mlp", data.input_shape, width, c.depth, data.num_classes, key)


def batch_order(c: Config, data: Dataset) -> jax.Array:
    """`(steps, batch)` indices of every step: `epochs` shuffled passes, remainders dropped."""
    key = jax.random.fold_in(jax.random.key(c.seed), 1000)
    return jnp.concatenate(
        [epoch_batches(key, data.n_train, c.batch, e) for e in range(c.epochs)]
    ).astype(jnp.int32)


# --------------------------------------------------------------------------- training


def make_advance(step):
    """Jitted `advance(params, state, x, y, order, start, num)`: steps start … start+num−1.

    `step(params, state, xb, yb) -> (params, state)`; step t uses the batch `order[t]`.
    """

    @jax.jit
    def advance(params, state, x, y, order, start, num):
        def body(t, carry):
            idx = order[t]
            return step(*carry, x[idx], y[idx])

        return jax.lax.fori_loop(start, start + num, body, (params, state))

    return advance


def _blocked(tree):
    return jax.block_until_ready(tree)


def _timed(fn, *args):
    """`(fn(*args) blocked, seconds)`."""
    t0 = time.perf_counter()
    out = _blocked(fn(*args))
    return out, time.perf_counter() - t0


@functools.lru_cache(maxsize=4)
def _sgd_advance(apply, lr: float):
    """`(optimizer, jitted advance)` of plain SGD for `apply` (cached: compiled once)."""
    loss = get_loss("xent")
    opt = optax.sgd(lr)

    def step(p, s, xb, yb):
        g = jax.grad(lambda q: loss(apply(q, xb), yb))(p)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s

    return opt, make_advance(step)


def train_sgd(apply, params, data: Dataset, order, lr: float):
    """Plain SGD over `order` from `params`.

    **Returns:** `(trained params, wall time in seconds)`; compilation is excluded.
    """
    opt, advance = _sgd_advance(apply, lr)
    state = opt.init(params)
    args = (data.x_train, data.y_train, order)
    _blocked(advance(params, state, *args, 0, 0))  # compile (once per apply and lr)
    (trained, _), seconds = _timed(advance, params, state, *args, 0, order.shape[0])
    return trained, seconds


def train_lws(apply, params, data: Dataset, order, lr: float, layers: list[int]):
    """Static LWS-SGD: only `layers` are trained (truncated backward pass)."""
    loss = get_loss("xent")
    mask = layer_mask(params, set(layers))
    opt = masked(optax.sgd(lr), mask)
    value_and_grad = lws_value_and_grad(lambda p, xb, yb: loss(apply(p, xb), yb), mask)

    def step(p, s, xb, yb):
        _, g = value_and_grad(p, xb, yb)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s

    advance = make_advance(step)
    params, _ = advance(params, opt.init(params), data.x_train, data.y_train, order, 0, len(order))
    return _blocked(params)


def coin_runs(coins: np.ndarray) -> list[tuple[bool, int, int]]:
    """Maximal stretches of equal coins: `[(full, start, length), ...]` covering every step."""
    runs, start = [], 0
    for t in range(1, len(coins) + 1):
        if t == len(coins) or coins[t] != coins[start]:
            runs.append((bool(coins[start]), start, t - start))
            start = t
    return runs


def make_plws(apply, params, lr: float, top: list[int]):
    """`(init, advance_top, advance_full)` of probabilistic LWS-SGD with top layers `top`."""
    loss = get_loss("xent")
    opt = optax.sgd(lr)
    top_mask = layer_mask(params, set(top))

    def loss_fn(p, xb, yb):
        return loss(apply(p, xb), yb)

    def top_only(p, s, xb, yb):
        return top_step(loss_fn, opt, top_mask, p, s, xb, yb)[:2]

    def full(p, s, xb, yb):
        return full_step(loss_fn, opt, top_mask, p, s, xb, yb)[:2]

    return (lambda p: init_plws(opt, p, top_mask)), make_advance(top_only), make_advance(full)


def train_plws(plws_parts, params, data: Dataset, order, p: float, *, key):
    """Probabilistic LWS-SGD: coins ~ Bernoulli(p) drawn up front, each stretch one call.

    **Returns:** `(params, wall time in seconds, fraction of full steps)`; compilation (of
    the two programs, shared by every p) is excluded.
    """
    init, advance_top, advance_full = plws_parts
    steps = int(order.shape[0])
    coins = np.asarray(jax.random.bernoulli(key, p, (steps,)))
    args = (data.x_train, data.y_train, order)
    state0 = init(params)
    for adv in (advance_top, advance_full):
        _blocked(adv(params, state0, *args, 0, 0))  # compile both programs
    runs = coin_runs(coins)
    t0 = time.perf_counter()
    trained, state = params, state0
    for full, start, length in runs:
        trained, state = (advance_full if full else advance_top)(
            trained, state, *args, start, length
        )
    trained = _blocked(trained)
    return trained, time.perf_counter() - t0, float(coins.mean())


def accuracy_on_test(apply, params, data: Dataset) -> float:
    return evaluate(apply, params, data.x_test, data.y_test, loss="xent")[1]


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
    order = batch_order(c, data)
    steps = int(order.shape[0])
    names = network_names(c)
    max_layers = max(num_layers(c, n) for n in names)
    shape = (len(names), max_layers)
    layer = {k: np.full(shape, np.nan) for k in ("size", "fraction", "share")}
    nk, nr = len(c.reinit_percents), len(RULES)
    reinit = np.full((len(names), nk, nr), np.nan)
    init_acc, sgd_acc, sgd_train_acc = (np.full(len(names), np.nan) for _ in range(3))
    layer_names: dict[str, list[str]] = {}
    total = len(names) + len(c.lws_variants) + len(c.plws_p) + c.timing_repeats - 1
    bar = tqdm(total=total, desc=NAME, disable=not progress, unit="run")

    focus: dict[str, Any] = {}
    for ni, name in enumerate(names):
        bar.set_postfix_str(f"sgd {name}")
        params0, apply = functional(build_network(c, name, data))
        init_acc[ni] = accuracy_on_test(apply, params0, data)
        params, seconds = train_sgd(apply, params0, data, order, c.lr)
        sgd_acc[ni] = accuracy_on_test(apply, params, data)
        sgd_train_acc[ni] = evaluate(apply, params, data.x_train, data.y_train)[1]
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
            focus = dict(apply=apply, params0=params0, sgd_seconds=seconds)
        bar.update()

    n_focus = num_layers(c, c.focus)
    apply, params0 = focus["apply"], focus["params0"]
    lws_acc = np.full(len(c.lws_variants), np.nan)
    for vi, variant in enumerate(c.lws_variants):
        bar.set_postfix_str(f"lws {variant}")
        layers = parse_layers(variant, n_focus, "--lws-variants")
        lws_acc[vi] = accuracy_on_test(
            apply, train_lws(apply, params0, data, order, c.lr, layers), data
        )
        bar.update()

    plws_parts = make_plws(apply, params0, c.lr, parse_layers(c.plws_top, n_focus, "--plws-top"))
    plws_acc, plws_full = np.full(len(c.plws_p), np.nan), np.full(len(c.plws_p), np.nan)
    sgd_seconds = np.full(c.timing_repeats, np.nan)
    plws_seconds = np.full((len(c.plws_p), c.timing_repeats), np.nan)
    sgd_seconds[0] = focus["sgd_seconds"]
    plws_keys = [jax.random.fold_in(jax.random.key(c.seed), 3000 + i) for i in range(len(c.plws_p))]
    for pi, p in enumerate(c.plws_p):
        bar.set_postfix_str(f"plws p={p:g}")
        params, plws_seconds[pi, 0], plws_full[pi] = train_plws(
            plws_parts, params0, data, order, p, key=plws_keys[pi]
        )
        plws_acc[pi] = accuracy_on_test(apply, params, data)
        bar.update()
    for r in range(1, c.timing_repeats):  # more timings, SGD and PLWS interleaved
        bar.set_postfix_str(f"timing {r + 1}/{c.timing_repeats}")
        sgd_seconds[r] = train_sgd(apply, params0, data, order, c.lr)[1]
        for pi, p in enumerate(c.plws_p):
            plws_seconds[pi, r] = train_plws(
                plws_parts, params0, data, order, p, key=plws_keys[pi]
            )[1]
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
        },
    )
    write_dataset(store.results_path, ds)
    _figures(ds, store, c)
    return summarize(ds, c)


# --------------------------------------------------------------------------- summary


def _key(v: float) -> str:
    return f"{v:g}"


def _label(network: str) -> str | int:
    return int(network.split("-", 1)[1]) if network.startswith("mlp-") else network


def summarize(ds: xr.Dataset, c: Config) -> dict:
    """The headline numbers of `ds` (see DESCRIPTION) and which paper claims hold."""
    out: dict[str, Any] = {"dataset": c.dataset, "focus": c.focus, "steps": int(ds.attrs["steps"])}
    frac, share, bottom_size = {}, {}, {}
    for name in ds.network.values:
        r = ds.sel(network=name)
        size = r.layer_size.values
        ok = np.isfinite(size)
        frac[_label(str(name))] = [float(v) for v in r.active_fraction.values[ok]]
        share[_label(str(name))] = [float(v) for v in r.active_share.values[ok]]
        bottom_size[_label(str(name))] = float(size[0] / size[ok].sum())
    out["active_fraction_by_layer"] = frac
    out["active_share_by_layer"] = share
    out["active_share_bottom_layer"] = {k: v[0] for k, v in share.items()}
    out["bottom_size_share"] = bottom_size
    out["bottom_enrichment"] = {  # > 1: the bottom layer holds more than its share of active
        k: v[0] / bottom_size[k] for k, v in share.items()
    }
    f = ds.sel(network=c.focus)
    trained = float(f.sgd_test_accuracy)
    out["init_test_accuracy"] = float(f.init_test_accuracy)
    out["sgd_test_accuracy"] = trained
    out["sgd_train_accuracy"] = float(f.sgd_train_accuracy)
    out["reinit_test_accuracy"] = {
        _key(k): {rule: float(f.reinit_test_accuracy.sel(k=k, rule=rule)) for rule in RULES}
        for k in ds.k.values
    }
    out["reinit_accuracy_drop"] = {
        k: {rule: trained - acc for rule, acc in v.items()}
        for k, v in out["reinit_test_accuracy"].items()
    }
    out["lws_test_accuracy"] = {
        str(v): float(ds.lws_test_accuracy.sel(variant=v)) for v in ds.variant.values
    }
    out["plws_test_accuracy"] = {_key(p): float(ds.plws_test_accuracy.sel(p=p)) for p in ds.p}
    sgd_s = float(ds.sgd_train_seconds.min())  # the shortest of the repeats
    out["sgd_train_seconds"] = sgd_s
    out["plws_train_seconds"] = {_key(p): float(ds.plws_train_seconds.sel(p=p).min()) for p in ds.p}
    out["plws_backprop_speedup"] = {k: sgd_s / v for k, v in out["plws_train_seconds"].items()}
    out["plws_full_step_fraction"] = {
        _key(p): float(ds.plws_full_step_fraction.sel(p=p)) for p in ds.p
    }
    out["paper_claims"] = paper_claims(out, c)
    return out


def paper_claims(s: dict, c: Config) -> dict:
    """Which of the paper's expectations hold in this run (None where not measured)."""
    claims: dict[str, Any] = {}
    mlps = sorted(k for k in s["active_fraction_by_layer"] if isinstance(k, int))
    claims["bottom_layer_highest_active_fraction"] = {
        w: bool(np.argmax(s["active_fraction_by_layer"][w]) == 0) for w in mlps
    }
    bottom = [s["active_share_bottom_layer"][w] for w in mlps]
    claims["bottom_share_grows_with_width"] = (
        bool(all(b2 >= b1 for b1, b2 in zip(bottom, bottom[1:], strict=False)))
        if len(mlps) > 1
        else None
    )
    claims["bottom_share_exceeds_size_share"] = {
        w: bool(s["active_share_bottom_layer"][w] > s["bottom_size_share"][w]) for w in mlps
    }
    enrichment = [s["bottom_enrichment"][w] for w in mlps]
    claims["bottom_enrichment_grows_with_width"] = (
        bool(all(b2 >= b1 for b1, b2 in zip(enrichment, enrichment[1:], strict=False)))
        if len(mlps) > 1
        else None
    )
    claims["reset_active_hurts_more_than_random"] = {
        k: bool(d["active"] > max(2 * d["random"], d["random"] + 0.01))
        for k, d in s["reinit_accuracy_drop"].items()
    }
    claims["reset_rule"] = "drop(active) > max(2 * drop(random), drop(random) + 0.01)"
    sgd = s["sgd_test_accuracy"]
    tb = s["lws_test_accuracy"].get("top+bottom")
    claims["top_bottom_close_to_sgd"] = None if tb is None else bool(abs(tb - sgd) <= c.close_tol)
    claims["top_bottom_rule"] = f"|acc(top+bottom) - acc(SGD)| <= {c.close_tol}"
    claims["plws_within_1pct_of_sgd"] = {
        p: bool(sgd - acc <= 0.01) for p, acc in s["plws_test_accuracy"].items()
    }
    claims["plws_speedup_2x_or_more"] = {
        p: bool(v >= 2.0) for p, v in s["plws_backprop_speedup"].items()
    }
    return claims


# --------------------------------------------------------------------------- figures


def _figures(ds: xr.Dataset, store: StudyDir, c: Config) -> None:
    names = [str(n) for n in ds.network.values]
    mlps = [n for n in names if n.startswith("mlp-")]
    cnn = "cnn" in names

    # active share and fraction per layer against width
    ncols = 3 if cnn else 2
    fig, axes = _plots.plt.subplots(1, ncols, figsize=(5.2 * ncols, 4.0), squeeze=False)
    widths = np.array([int(n.split("-")[1]) for n in mlps])
    n_layers = c.depth + 1
    for li in range(n_layers):
        r = ds.sel(network=mlps, layer=li)
        size_share = r.layer_size.values / ds.sel(network=mlps).layer_size.sum("layer").values
        axes[0, 0].plot(widths, r.active_share.values, "o-", color=f"C{li}", label=f"layer {li}")
        axes[0, 0].plot(widths, size_share, ":", color=f"C{li}")
        axes[0, 1].plot(widths, r.active_fraction.values, "o-", color=f"C{li}", label=f"layer {li}")
    for ax in axes[0, :2]:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("MLP width")
    axes[0, 0].set(
        ylabel="share of active parameters",
        title=f"active share per layer (dotted: share of parameters), top {c.active_percent:g}%",
    )
    axes[0, 1].set(ylabel="active / layer size", title="fraction of each layer active")
    axes[0, 1].set_yscale("log")
    axes[0, 0].legend(fontsize=7, title="0 = bottom", title_fontsize=7)
    if cnn:
        r = ds.sel(network="cnn")
        ok = np.isfinite(r.layer_size.values)
        x = np.arange(ok.sum())
        axes[0, 2].bar(x - 0.2, r.active_share.values[ok], 0.4, label="active share")
        axes[0, 2].bar(x + 0.2, r.layer_size.values[ok] / r.layer_size.values[ok].sum(), 0.4,
                       label="parameter share")  # fmt: skip
        axes[0, 2].set_xticks(x, ["conv1", "conv2", "fc", "readout"][: ok.sum()])
        axes[0, 2].set(title=f"CNN (N = {c.cnn_width})", ylabel="share")
        axes[0, 2].legend(fontsize=7)
    _plots.save(fig, store.figure("active_share_by_layer"))

    # accuracy after re-initialisation, per rule, one panel per network
    fig, axes = _plots.plt.subplots(
        1, len(names), figsize=(4.2 * len(names), 3.8), squeeze=False, sharey=True
    )
    ks = ds.k.values
    for i, name in enumerate(names):
        r = ds.sel(network=name)
        ax = axes[0, i]
        for j, rule in enumerate(RULES):
            ax.plot(ks, r.reinit_test_accuracy.sel(rule=rule), "o-", color=f"C{j}", label=rule)
        ax.axhline(float(r.sgd_test_accuracy), color="k", ls="--", lw=1, label="trained")
        ax.axhline(float(r.init_test_accuracy), color="0.5", ls=":", lw=1, label="init")
        ax.set_xscale("log")
        ax.set(xlabel="k (% of parameters reset)", title=name)
    axes[0, 0].set_ylabel("test accuracy after reset")
    axes[0, 0].legend(fontsize=7)
    _plots.save(fig, store.figure("reinit_accuracy"))

    # LWS variants and PLWS against SGD on the focus network
    fig, axes = _plots.plt.subplots(1, 2, figsize=(11, 3.8))
    sgd = float(ds.sgd_test_accuracy.sel(network=c.focus))
    labels = ["SGD"] + [f"LWS {v}" for v in ds.variant.values] + [f"PLWS p={p:g}" for p in ds.p]
    values = [sgd, *ds.lws_test_accuracy.values, *ds.plws_test_accuracy.values]
    colors = ["k"] + ["C0"] * ds.sizes["variant"] + ["C1"] * ds.sizes["p"]
    axes[0].bar(np.arange(len(values)), values, color=colors)
    axes[0].axhline(sgd, color="k", ls="--", lw=1)
    axes[0].set_xticks(np.arange(len(values)), labels, rotation=35, ha="right", fontsize=8)
    axes[0].set(ylabel="test accuracy", title=f"{c.focus}: layer-wise sparse SGD vs SGD")
    speed = float(ds.sgd_train_seconds.min()) / ds.plws_train_seconds.min("repeat").values
    axes[1].plot(ds.p.values, speed, "o-", color="C1")
    axes[1].axhline(1.0, color="k", ls="--", lw=1)
    axes[1].set(
        xlabel="p (probability of a full update)",
        ylabel="SGD time / PLWS time",
        title=f"{c.focus}: training wall-time ratio, {ds.attrs['steps']} steps",
    )
    _plots.save(fig, store.figure("lws_accuracy"))
