"""The DLDR study: training in a tiny subspace of the SGD trajectory (PAPERS.md §3, issue 6).

For each network (an MLP and a CNN) and each label condition (clean, and a fraction of the
training labels randomised): ordinary SGD with momentum runs for `full_epochs` epochs; during
its first `sample_epochs` epochs a `TrajectorySampler` records the parameters at
initialisation and `samples_per_epoch` times per epoch. PCA of those `t` samples (through the
`t×t` Gram matrix) gives `P ∈ R^(d×D)`; for each `d` training restarts from `w₀` with
`w = w₀ + Pᵀα` and runs P-SGD (momentum SGD on `PᵀP g`) and P-BFGS (quasi-Newton in α with
Armijo backtracking on each mini-batch) for `subspace_epochs` epochs. The top-`d` directions
are nested, so one PCA with the largest `d` serves every `d`. The full SGD run shares the seed
(initialisation and data order) with the sampling phase: the sampling phase is its beginning.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float
from tqdm.auto import tqdm

from lazyrich.data import ENV_VAR, Dataset, epoch_batches, load_dataset, num_batches
from lazyrich.errors import require
from lazyrich.models import CNN, MLP, functional
from lazyrich.optim import (
    TrajectorySampler,
    dldr_subspace,
    init_p_bfgs,
    p_bfgs_params,
    p_bfgs_step,
    p_sgd,
)
from lazyrich.results import StudyDir, write_dataset
from lazyrich.train import cross_entropy, fit

from . import _plots

NAME = "dldr"
TITLE = "DLDR: training in a tiny subspace of the SGD trajectory"
DESCRIPTION = (
    "An MLP and a CNN are trained by SGD with momentum; during the first sampling epochs the "
    "parameters are recorded (at initialisation and then periodically, t samples). PCA of the "
    "centred samples gives d orthonormal directions P; training restarts from w0 with "
    "w = w0 + Pᵀα and only the d coordinates α are trained, by P-SGD (momentum SGD on PᵀP g) "
    "and by P-BFGS (BFGS in α with Armijo backtracking on each mini-batch). Full SGD is run "
    "longer with the same seed as the reference. pbfgs_epochs_to_95pct counts P-BFGS epochs "
    "until its test accuracy reaches 95% of full SGD's final test accuracy (None if never). "
    "The label_noise entries repeat everything with a fraction of the training labels "
    "randomised (test labels clean). The paper's claim: with d = 40 P-BFGS matches ordinary "
    "training in far fewer epochs than the sampling phase, and is robust to label noise."
)

DatasetName = Literal["mnist1d", "mnist", "fashion-mnist", "cifar10"]
NetworkName = Literal["mlp", "cnn"]


@dataclass(frozen=True)
class Config:
    """Options of the DLDR study."""

    networks: tuple[NetworkName, ...] = ("mlp", "cnn")
    """Networks to run (each gets its own sampling, subspaces and baselines)."""
    mlp_data: DatasetName = "mnist1d"
    """Dataset of the MLP (mnist, fashion-mnist, cifar10 are read from --data-dir)."""
    cnn_data: DatasetName = "mnist1d"
    """Dataset of the CNN."""
    n_train: int | None = 4000
    """Training examples (None: the whole training set; mnist1d generates 4000)."""
    n_test: int | None = 1000
    """Test examples (None: the whole test set; mnist1d generates 1000)."""
    mlp_width: int = 64
    """Hidden width of the MLP."""
    mlp_depth: int = 2
    """Hidden layers of the MLP."""
    cnn_width: int = 8
    """Channels of the CNN's first convolution (then 2N channels, an 8N fully connected layer)."""
    lr: float = 0.1
    """Learning rate of SGD (momentum 0.9), for the sampling phase and the full run."""
    batch: int = 128
    """Batch size of SGD and P-SGD."""
    sample_epochs: int = 10
    """Epochs of the sampling phase (the first epochs of the full SGD run)."""
    samples_per_epoch: int = 8
    """Parameter samples per epoch of the sampling phase (1: once per epoch, as in the paper)."""
    full_epochs: int = 20
    """Epochs of the full SGD reference run (>= sample-epochs)."""
    ds: tuple[int, ...] = (5, 10, 20, 40)
    """Subspace dimensions d (each <= samples − 1)."""
    subspace_epochs: int = 6
    """Epochs of P-SGD and of P-BFGS for each d."""
    psgd_lr: float = 0.1
    """Learning rate of P-SGD (momentum 0.9)."""
    pbfgs_batch: int = 256
    """Batch size of P-BFGS (1024 in the paper)."""
    label_noise: float = 0.2
    """Fraction of training labels randomised in the label-noise variant (0: skip it)."""
    seed: int = 0
    """Seed of initialisation, data order, label noise (and of generated mnist1d data)."""


PRESETS = {
    "quick": Config(),
    "paper": Config(
        mlp_data="mnist",
        cnn_data="cifar10",
        n_train=None,
        n_test=None,
        mlp_width=512,
        mlp_depth=2,
        cnn_width=32,
        lr=0.05,
        batch=128,
        sample_epochs=80,
        samples_per_epoch=1,
        full_epochs=100,
        ds=(5, 10, 20, 40),
        subspace_epochs=20,
        psgd_lr=0.05,
        pbfgs_batch=1024,
        label_noise=0.2,
    ),
}


def num_samples(c: Config) -> int:
    """Samples the schedule records: initialisation plus `samples_per_epoch` per epoch."""
    return 1 + c.sample_epochs * c.samples_per_epoch


@functools.lru_cache(maxsize=2)
def _load(name: str, n_train: int | None, n_test: int | None, seed: int, data_dir: str) -> Dataset:
    del data_dir  # part of the cache key only: the loaders read $LAZYRICH_DATA themselves
    return load_dataset(name, n_train=n_train, n_test=n_test, seed=seed)


def load(name: str, c: Config) -> Dataset:
    """The dataset `name` as the config asks (cached, so `validate` and `run` load it once)."""
    return _load(name, c.n_train, c.n_test, c.seed, os.environ.get(ENV_VAR, ""))


def _dataset_of(c: Config, net: str) -> str:
    return c.mlp_data if net == "mlp" else c.cnn_data


def validate(c: Config) -> None:
    """Check every option and that the data can be loaded; raise a one-line ConfigError."""
    require(len(c.networks) >= 1, "--networks is empty: pass --networks mlp cnn (or one of them)")
    require(
        len(set(c.networks)) == len(c.networks),
        f"--networks {' '.join(c.networks)} repeats a network: name each at most once",
    )
    for name in ("mlp_width", "mlp_depth", "cnn_width", "batch", "full_epochs"):
        v = getattr(c, name)
        require(v >= 1, f"--{name.replace('_', '-')} must be >= 1, got {v}")
    for name in ("subspace_epochs", "pbfgs_batch"):
        v = getattr(c, name)
        require(v >= 1, f"--{name.replace('_', '-')} must be >= 1, got {v}")
    for name in ("n_train", "n_test"):
        v = getattr(c, name)
        require(v is None or v >= 1, f"--{name.replace('_', '-')} must be >= 1 (or None), got {v}")
    for name in ("lr", "psgd_lr"):
        v = getattr(c, name)
        require(np.isfinite(v) and v > 0, f"--{name.replace('_', '-')} must be > 0, got {v}")
    require(
        0.0 <= c.label_noise < 1.0,
        f"--label-noise must be in [0, 1), got {c.label_noise}: pass 0 to skip the variant",
    )
    t = num_samples(c)
    require(
        c.sample_epochs >= 1 and c.samples_per_epoch >= 1,
        f"the sampling schedule (--sample-epochs {c.sample_epochs}, --samples-per-epoch "
        f"{c.samples_per_epoch}) yields {t} sample(s); PCA needs at least 2: raise both to >= 1",
    )
    require(
        c.full_epochs >= c.sample_epochs,
        f"--full-epochs {c.full_epochs} is shorter than --sample-epochs {c.sample_epochs}: "
        "the sampling phase is the start of the full run; raise --full-epochs",
    )
    require(len(c.ds) >= 1, "--ds is empty: pass subspace dimensions, e.g. --ds 5 10 20 40")
    for d in c.ds:
        require(d >= 1, f"--ds: d={d} must be >= 1")
        require(
            d <= t - 1,
            f"d={d} exceeds samples−1={t - 1} (sampling {c.sample_epochs} epochs × "
            f"{c.samples_per_epoch} + 1); raise --sample-epochs or --samples-per-epoch, "
            "or lower --ds",
        )
    for net in c.networks:
        data = load(_dataset_of(c, net), c)  # DataError for a missing file, before any output
        nb = num_batches(data.n_train, c.batch)
        require(
            c.samples_per_epoch <= nb,
            f"--samples-per-epoch {c.samples_per_epoch} exceeds the {nb} SGD steps per epoch "
            f"of {data.name} (n_train={data.n_train}, batch={c.batch}): the schedule would "
            "repeat samples; lower --samples-per-epoch",
        )
        require(
            c.pbfgs_batch <= data.n_train,
            f"--pbfgs-batch {c.pbfgs_batch} exceeds the {data.n_train} training examples of "
            f"{data.name}: pass --pbfgs-batch <= {data.n_train}",
        )


# --------------------------------------------------------------------------- one condition


def _model(net: str, data: Dataset, c: Config, key: jax.Array):
    if net == "mlp":
        in_dim = int(np.prod(data.input_shape))
        return MLP(
            in_dim, c.mlp_width, c.mlp_depth, data.out_dim, parameterization="standard", key=key
        )
    shape = data.input_shape if len(data.input_shape) > 1 else (*data.input_shape, 1)
    return CNN(shape, c.cnn_width, data.out_dim, parameterization="standard", key=key)


def sample_steps(c: Config, nb: int) -> np.ndarray:
    """Global SGD steps at which the sampler records: 0, then `samples_per_epoch` evenly
    spaced per epoch (the last one at each epoch's end)."""
    per = c.samples_per_epoch
    return np.array([round(j * nb / per) for j in range(c.sample_epochs * per + 1)], np.int64)


def epochs_to(acc: np.ndarray, target: float) -> int | None:
    """First epoch index (0 = before training) with `acc >= target`, else None."""
    hit = np.nonzero(acc >= target)[0]
    return int(hit[0]) if hit.size else None


class Network(NamedTuple):
    """A network as a flat parameter vector `w = ravel_pytree(params)`, with its jitted
    subspace-training epochs (built once, so every label condition reuses the compiled code).

    - `apply(w, x)`: the network on flat parameters; `apply_tree(params, x)` on the pytree.
    - `psgd_epoch(ws, states, ps, x, y, order, epoch)`: one epoch of P-SGD, vmapped over rows.
    - `pbfgs_epoch(states, x, y, order, epoch)`: one epoch of P-BFGS, vmapped over rows.
    """

    w0: Float[Array, " D"]
    params0: Any
    apply_tree: Callable[[Any, Array], Array]
    apply: Callable[[Array, Array], Array]
    psgd: Callable[[Array], optax.GradientTransformation]
    psgd_epoch: Callable[..., Any]
    pbfgs_epoch: Callable[..., Any]


def make_network(net: str, data: Dataset, c: Config) -> Network:
    """The network `net` for `data`, initialised from `seed` (the same for every condition)."""
    key = jax.random.fold_in(jax.random.key(c.seed), 0)
    params0, apply_tree = functional(_model(net, data, c, key))
    w0, unravel = ravel_pytree(params0)

    def apply(w, x):
        return apply_tree(unravel(w), x)

    def loss(w, batch):
        xb, yb = batch
        return cross_entropy(apply(w, xb), yb)

    def psgd(p):
        return p_sgd(c.psgd_lr, p)

    @jax.jit
    def psgd_epoch(ws, states, ps, x, y, order, epoch):
        idx = epoch_batches(order, x.shape[0], c.batch, epoch)

        def one(w, st, p):
            opt = psgd(p)

            def body(carry, i):
                w, st = carry
                g = jax.grad(loss)(w, (x[i], y[i]))
                u, st = opt.update(g, st, w)
                return (w + u, st), None

            return jax.lax.scan(body, (w, st), idx)[0]

        return jax.vmap(one)(ws, states, ps)

    @jax.jit
    def pbfgs_epoch(states, x, y, order, epoch):
        idx = epoch_batches(order, x.shape[0], c.pbfgs_batch, epoch)

        def one(st):
            def body(st, i):
                return p_bfgs_step(loss, st, (x[i], y[i])), None

            return jax.lax.scan(body, st, idx)[0]

        return jax.vmap(one)(states)

    return Network(w0, params0, apply_tree, apply, psgd, psgd_epoch, pbfgs_epoch)


def _accuracies(apply, ws: Array, x: Array, y: Array, chunk: int = 2048) -> np.ndarray:
    """Accuracy of every row of `ws` (k, D) on `(x, y)`, in chunks: shape (k,)."""
    correct = np.zeros(ws.shape[0])
    for lo in range(0, x.shape[0], chunk):
        correct += np.asarray(_count_correct(apply, ws, x[lo : lo + chunk], y[lo : lo + chunk]))
    return correct / x.shape[0]


@jax.jit(static_argnums=0)
def _count_correct(apply, ws, x, y):
    return jax.vmap(lambda w: jnp.sum(jnp.argmax(apply(w, x), -1) == y))(ws)


def subspace_training(
    network: Network,
    p_pad: Float[Array, "k dmax D"],
    data: Dataset,
    c: Config,
    order: jax.Array,
    *,
    progress: bool = False,
    description: str = NAME,
) -> dict[str, np.ndarray]:
    """P-SGD and P-BFGS from `w0` for every subspace at once (vmapped over `k`).

    `p_pad[i]` holds the `d_i` directions of subspace `i` padded with zero rows to `dmax`
    rows; zero rows change neither `PᵀP g` (P-SGD) nor P-BFGS (their α-coordinates have zero
    gradient, so `H` keeps an identity block there and the step is zero), so each slice is
    exactly the run with its own `d_i × D` matrix. Batches are those of `fit` with key `order`.

    **Returns:** `psgd_test_accuracy`, `psgd_train_accuracy`, `pbfgs_test_accuracy`,
    `pbfgs_train_accuracy`, each `(k, subspace_epochs + 1)` (epoch 0 is `w0`), and the final
    flat parameters `psgd_w`, `pbfgs_w`, each `(k, D)`.
    """
    apply, x, y = network.apply, data.x_train, data.y_train
    k = p_pad.shape[0]
    ws = jnp.broadcast_to(network.w0, (k, network.w0.size))
    psgd_states = jax.vmap(lambda w, p: network.psgd(p).init(w))(ws, p_pad)
    bfgs = jax.vmap(lambda p: init_p_bfgs(network.w0, p))(p_pad)
    rows: dict[str, list] = {}

    def record(name, w):
        rows.setdefault(f"{name}_test_accuracy", []).append(
            _accuracies(apply, w, data.x_test, data.y_test)
        )
        rows.setdefault(f"{name}_train_accuracy", []).append(_accuracies(apply, w, x, y))

    record("psgd", ws)
    record("pbfgs", ws)
    for epoch in tqdm(range(c.subspace_epochs), desc=description, disable=not progress):
        e = jnp.int32(epoch)
        ws, psgd_states = network.psgd_epoch(ws, psgd_states, p_pad, x, y, order, e)
        bfgs = network.pbfgs_epoch(bfgs, x, y, order, e)
        record("psgd", ws)
        record("pbfgs", jax.vmap(p_bfgs_params)(bfgs))
    out = {name: np.stack(v, axis=1) for name, v in rows.items()}
    out["psgd_w"] = np.asarray(ws)
    out["pbfgs_w"] = np.asarray(jax.vmap(p_bfgs_params)(bfgs))
    return out


def run_condition(
    net: str, network: Network, data: Dataset, c: Config, progress: bool
) -> dict[str, np.ndarray]:
    """Full SGD with sampling, PCA, then P-SGD and P-BFGS for every d, on one dataset."""
    order = jax.random.fold_in(jax.random.key(c.seed), 1)  # data order, shared by every run
    nb = num_batches(data.n_train, c.batch)
    tag = f"{NAME} {net}{'-noisy' if data.name.endswith('-noisy') else ''}"

    # full SGD run; its first sample_epochs epochs are the sampling phase
    samples_at = sample_steps(c, nb)
    epoch_ends = np.arange(c.full_epochs + 1) * nb
    sampler = TrajectorySampler()
    wanted = set(samples_at.tolist())

    def sample(step, params):
        if step in wanted:
            sampler.record(params)
        return {}

    _, hist = fit(
        network.apply_tree,
        network.params0,
        data,
        optax.sgd(c.lr, momentum=0.9),
        batch=c.batch,
        record_at=np.union1d(samples_at, epoch_ends).tolist(),
        key=order,
        callback=sample,
        progress=progress,
        description=f"{tag} sgd",
    )
    at_epoch = np.isin(hist["step"], epoch_ends)
    out = {
        "sgd_test_accuracy": hist["test_accuracy"][at_epoch],
        "sgd_train_accuracy": hist["train_accuracy"][at_epoch],
        "sgd_test_loss": hist["test_loss"][at_epoch],
    }

    dmax = max(c.ds)
    p_all, ratio = dldr_subspace(sampler.samples(), dmax)
    out["explained_variance_ratio"] = np.asarray(ratio, np.float64)
    p_all = p_all.astype(network.w0.dtype)
    rows = jnp.arange(dmax)[None, :, None] < jnp.asarray(c.ds)[:, None, None]
    p_pad = jnp.where(rows, p_all[None], 0.0)  # (k, dmax, D): the first d_i rows of P
    sub = subspace_training(
        network, p_pad, data, c, order, progress=progress, description=f"{tag} subspace"
    )
    out.update({k: v for k, v in sub.items() if not k.endswith("_w")})
    return out


def condition_summary(res: dict[str, np.ndarray], c: Config) -> dict:
    """Headline numbers of one condition (network × label noise)."""
    full = float(res["sgd_test_accuracy"][-1])
    cum = np.cumsum(res["explained_variance_ratio"])
    target = 0.95 * full
    per_d = {}
    for i, d in enumerate(c.ds):
        per_d[str(d)] = {
            "pbfgs_test_accuracy": float(res["pbfgs_test_accuracy"][i, -1]),
            "psgd_test_accuracy": float(res["psgd_test_accuracy"][i, -1]),
            "pbfgs_epochs_to_95pct": epochs_to(res["pbfgs_test_accuracy"][i], target),
            "psgd_epochs_to_95pct": epochs_to(res["psgd_test_accuracy"][i], target),
            "explained_variance": float(cum[d - 1]),
        }
    return {
        "full_test_accuracy": full,
        "full_train_accuracy": float(res["sgd_train_accuracy"][-1]),
        "sgd_epochs_to_95pct": epochs_to(res["sgd_test_accuracy"], target),
        "d": per_d,
    }


# --------------------------------------------------------------------------- the study

CONDITIONS = ("clean", "label_noise")


def run(c: Config, store: StudyDir, *, progress: bool = True) -> dict:
    """Run every network and label condition, write results.nc and figures, return the summary."""
    validate(c)
    conditions = CONDITIONS if c.label_noise > 0 else CONDITIONS[:1]
    results: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    summary: dict = {
        "samples": num_samples(c),
        "sample_epochs": c.sample_epochs,
        "subspace_epochs": c.subspace_epochs,
    }
    for net in c.networks:
        base = load(_dataset_of(c, net), c)
        network = make_network(net, base, c)
        results[net] = {}
        entry: dict = {"dataset": base.name}
        for cond in conditions:
            data = base
            if cond == "label_noise":
                noise_key = jax.random.fold_in(jax.random.key(c.seed), 2)
                data = base.with_label_noise(c.label_noise, key=noise_key)
            res = run_condition(net, network, data, c, progress)
            results[net][cond] = res
            s = condition_summary(res, c)
            if cond == "clean":
                entry.update(num_params=int(network.w0.size), **s)
            else:
                entry["label_noise"] = {"fraction": c.label_noise, **s}
        summary[net] = entry

    ds = _dataset(results, c, conditions)
    write_dataset(store.results_path, ds)
    _figures(ds, store, c)
    return summary


def _dataset(results, c: Config, conditions) -> xr.Dataset:
    nets = list(results)

    def stack(name):
        return np.stack([np.stack([results[n][k][name] for k in conditions]) for n in nets])

    dims = ("network", "condition")
    t = num_samples(c)
    return xr.Dataset(
        {
            "sgd_test_accuracy": (dims + ("sgd_epoch",), stack("sgd_test_accuracy")),
            "sgd_train_accuracy": (dims + ("sgd_epoch",), stack("sgd_train_accuracy")),
            "sgd_test_loss": (dims + ("sgd_epoch",), stack("sgd_test_loss")),
            "psgd_test_accuracy": (dims + ("d", "epoch"), stack("psgd_test_accuracy")),
            "psgd_train_accuracy": (dims + ("d", "epoch"), stack("psgd_train_accuracy")),
            "pbfgs_test_accuracy": (dims + ("d", "epoch"), stack("pbfgs_test_accuracy")),
            "pbfgs_train_accuracy": (dims + ("d", "epoch"), stack("pbfgs_train_accuracy")),
            "explained_variance_ratio": (dims + ("component",), stack("explained_variance_ratio")),
        },
        coords={
            "network": nets,
            "condition": list(conditions),
            "sgd_epoch": np.arange(c.full_epochs + 1),
            "d": np.asarray(c.ds),
            "epoch": np.arange(c.subspace_epochs + 1),
            "component": np.arange(1, t),
        },
        attrs={
            "study": NAME,
            "samples": t,
            "sample_epochs": c.sample_epochs,
            "label_noise": c.label_noise,
            "datasets": ", ".join(f"{n}: {_dataset_of(c, n)}" for n in nets),
        },
    )


def _figures(ds: xr.Dataset, store: StudyDir, c: Config) -> None:
    nets, conds = list(ds.network.values), list(ds.condition.values)
    styles = {"clean": "-", "label_noise": "--"}

    fig, ax = _plots.figure()
    comps = ds.component.values
    for n in nets:
        for k in conds:
            cum = np.cumsum(ds.explained_variance_ratio.sel(network=n, condition=k).values)
            (line,) = ax.plot(comps, cum, styles[k], label=f"{n}, {k.replace('_', ' ')}")
            sel = np.asarray(c.ds) - 1
            ax.plot(comps[sel], cum[sel], "o", color=line.get_color(), ms=4)
    ax.set(
        xlabel="d (principal directions)",
        ylabel="explained variance",
        title=f"trajectory PCA, {int(ds.attrs['samples'])} samples",
        ylim=(0, 1.02),
    )
    ax.legend(fontsize=8)
    _plots.save(fig, store.figure("explained_variance"))

    dmax = int(max(c.ds))
    fig, axes = _plots.plt.subplots(
        len(nets), len(conds), figsize=(5.0 * len(conds), 3.6 * len(nets)), squeeze=False
    )
    for i, n in enumerate(nets):
        for j, k in enumerate(conds):
            ax = axes[i, j]
            v = ds.sel(network=n, condition=k)
            ax.plot(ds.sgd_epoch.values, v.sgd_test_accuracy.values, "k-", label="SGD")
            ax.axvline(c.sample_epochs, color="0.6", lw=0.8, ls=":", label="end of sampling")
            ax.plot(
                ds.epoch.values,
                v.psgd_test_accuracy.sel(d=dmax).values,
                "b-o",
                ms=3,
                label=f"P-SGD d={dmax}",
            )
            ax.plot(
                ds.epoch.values,
                v.pbfgs_test_accuracy.sel(d=dmax).values,
                "r-s",
                ms=3,
                label=f"P-BFGS d={dmax}",
            )
            ax.set(xlabel="epoch", ylabel="test accuracy", title=f"{n}, {k.replace('_', ' ')}")
            ax.legend(fontsize=7)
    _plots.save(fig, store.figure("accuracy_vs_epoch"))

    fig, axes = _plots.plt.subplots(1, len(nets), figsize=(5.0 * len(nets), 3.8), squeeze=False)
    for i, n in enumerate(nets):
        ax = axes[0, i]
        for k in conds:
            v = ds.sel(network=n, condition=k)
            lab = "" if k == "clean" else " (noisy)"
            ax.plot(
                c.ds,
                v.pbfgs_test_accuracy.values[:, -1],
                "r" + styles[k] + "s",
                label="P-BFGS" + lab,
            )
            ax.plot(
                c.ds, v.psgd_test_accuracy.values[:, -1], "b" + styles[k] + "o", label="P-SGD" + lab
            )
            ax.axhline(
                float(v.sgd_test_accuracy.values[-1]),
                color="k",
                ls=styles[k],
                lw=1,
                label="full SGD" + lab,
            )
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(c.ds), [str(d) for d in c.ds])
        ax.set(xlabel="d", ylabel="final test accuracy", title=n)
        ax.legend(fontsize=7)
    _plots.save(fig, store.figure("accuracy_vs_d"))
