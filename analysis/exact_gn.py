"""The exact Gauss-Newton study: fast fitting, generalisation and laziness (PAPERS.md §2).

A RevMLP is trained from one initialisation with exact Gauss-Newton, Adam and SGD, in a
full-batch setting (the first `full_batch` training examples, one step per epoch) and a
mini-batch setting (all `n_train` examples, batches of `batch`). Per epoch: train/test loss and
accuracy; per step: the relative loss change on the batch just used; every `measure_every`
epochs: NTK similarity along a fixed probe vector, kernel distance to the initial NTK and linear
CKA between each block's output at initialisation and now, all on a fixed probe batch. The
summary compares those measures at a matched train loss as well as at the last epoch.

Every compiled function takes the model's fixed arrays (C, U) as arguments, so the paper-sized
model (h = 8000) is never baked into a program as constants.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr
from tqdm.auto import tqdm

from lazyrich.data import Dataset, epoch_batches, load_dataset, num_batches
from lazyrich.errors import require
from lazyrich.kernels import kernel_distance, linear_cka, ntk_probe_similarity, ntk_vector_product
from lazyrich.models import RevMLP, partition
from lazyrich.optim import exact_gauss_newton
from lazyrich.results import StudyDir, write_dataset
from lazyrich.train import accuracy, get_loss

from ._exact_gn_figures import figures
from ._exact_gn_summary import epochs_to_level as epochs_to_level
from ._exact_gn_summary import matched_train_loss as matched_train_loss
from ._exact_gn_summary import paper_claims as paper_claims
from ._exact_gn_summary import summarize as summarize
from ._files import load_subset, require_sizes

NAME = "exact-gn"
TITLE = "Exact Gauss-Newton in reversible networks: fast fitting, poor generalisation, lazy?"
DESCRIPTION = (
    "A reversible MLP (additive coupling blocks with a fixed random inverted bottleneck of width "
    "h, a linear first block, a fixed orthonormal readout) trained from the same initialisation "
    "and data order by exact Gauss-Newton (blockwise pseudo-inverses through the exact inverse, "
    "no backpropagation; the step is divided by the number of blocks so that J·Δθ = ε when every "
    "half-layer has full row rank), Adam and SGD. Full batch: one step per epoch on the first "
    "full_batch training examples; mini-batch: shuffled batches over all n_train examples. The "
    "linear first block's features have rank at most d/2 + 1, so that block cannot have full row "
    "rank on batches larger than d/2 + 1 and contributes only its least-squares part; ReLU blocks "
    "have full row rank only when h + 1 >= batch. Measured: per-epoch train/test loss and "
    "accuracy; per step the relative change (L_after − L_before)/L_before of the loss on the "
    "batch just used (mean_batch_loss_drop is minus its mean over all steps, so positive means "
    "the batch loss fell); every few epochs, on a fixed probe batch, the cosine of K0·v and Kt·v "
    "for a fixed random v (NTK similarity), the kernel distance 1 − cos(K0, Kt) of the full NTKs, "
    "and linear CKA between each block's output at initialisation and now. epochs_to_train_loss "
    "counts epochs until the train loss falls to target_fraction × its initial value. Paper "
    "(Buffelli et al. 2024): full-batch GN fits in far fewer epochs than Adam/SGD; mini-batch GN "
    "saturates on train and test loss; training stays lazy (NTK and CKA near init). With the "
    "paper's small Adam/SGD learning rates the baselines also move little, so the summary "
    "compares the laziness measures at a matched train loss too (matched_train_loss; figure "
    "ntk_cka_vs_loss plots them against the train loss): per setting a level every optimizer "
    "reaches, and each optimizer's measures at its first measured epoch (>= 1) whose train loss "
    "is at most that level."
)

SETTINGS = ("full", "mini")
OPTIMIZERS = ("gn", "adam", "sgd")
Setting = Literal["full", "mini"]
Optimizer = Literal["gn", "adam", "sgd"]
NATIVE_DIM = {"mnist1d": 40, "mnist": 28 * 28, "cifar10": 32 * 32 * 3}
NUM_CLASSES = 10
LOSS_NAMES = {"mse": "mse", "ce": "xent"}  # study loss → lazyrich.train loss


@dataclass(frozen=True)
class Config:
    """Options of the exact Gauss-Newton study."""

    dataset: Literal["mnist1d", "mnist", "cifar10"] = "mnist1d"
    """mnist1d is generated locally; mnist and cifar10 are read from --data-dir."""
    n_train: int = 1024
    """Training examples (the mini-batch setting uses all of them)."""
    n_test: int = 1000
    """Test examples."""
    features: int = 0
    """Use only the first FEATURES entries of each flattened input (0: all of them, 40 for
    mnist1d, 784 for MNIST, 3072 for CIFAR-10); RevMLP needs an even number."""
    blocks: int = 2
    """Number of coupling blocks (paper: 2 for MNIST, 6 for CIFAR-10)."""
    hidden: int = 512
    """Width h of the fixed inverted bottleneck C (paper: 8000)."""
    sigma: float = 1e-3
    """Standard deviation of the initial W (paper: 1e-3)."""
    loss: Literal["mse", "ce"] = "mse"
    """Loss: mean squared error on one-hot targets, or cross-entropy (GN with identity loss
    Hessian)."""
    settings: tuple[Setting, ...] = SETTINGS
    """Which settings to run: full (full batch) and/or mini (mini-batch)."""
    optimizers: tuple[Optimizer, ...] = OPTIMIZERS
    """Which optimizers to run: gn (exact Gauss-Newton), adam, sgd."""
    full_batch: int = 128
    """Size of the full-batch training set: the first FULL_BATCH training examples, one step
    per epoch on all of them (paper: 1024)."""
    batch: int = 64
    """Batch size of the mini-batch setting (paper: 1000)."""
    epochs: int = 30
    """Training epochs per run (paper: 100)."""
    gn_lr_full: float = 0.5
    """Exact GN learning rate, full batch (paper: 0.5 MNIST, 1.0 CIFAR-10)."""
    gn_lr_mini: float = 0.1
    """Exact GN learning rate, mini-batch (paper: 0.1)."""
    adam_lr: float = 1e-4
    """Adam learning rate (paper: 1e-4)."""
    sgd_lr: float = 1e-2
    """SGD learning rate (paper: 1e-2)."""
    rtol: float = 1e-2
    """Relative truncation of the GN pseudo-inverses (paper: 1e-2)."""
    atol: float = 1e-5
    """Absolute truncation of the GN pseudo-inverses (paper: 1e-5)."""
    probe: int = 32
    """Probe batch (the first PROBE training examples) for NTK similarity, kernel distance
    and CKA."""
    measure_every: int = 1
    """Epochs between NTK / CKA measurements (also at epoch 0 and at the last epoch). The
    matched-loss comparison uses measured epochs only, so keep it small."""
    match_fraction: float = 0.0
    """Level of the matched-train-loss comparison. 0: the common level, the highest of the
    optimizers' lowest train losses over the measured epochs >= 1 (each optimizer reaches it);
    else this fraction of the initial train loss (an optimizer may never reach it)."""
    target_fraction: float = 0.1
    """epochs_to_train_loss: epochs until the train loss is at most this fraction of its
    initial value."""
    plateau_tol: float = 0.1
    """Mini-batch GN counts as saturated when its train and test loss fall by less than this
    fraction over the second half of training."""
    seed: int = 0
    """Seed of the initialisation, the data order, the probe vector (and mnist1d)."""


PRESETS = {
    "quick": Config(),
    "paper": Config(
        dataset="mnist",
        n_train=60_000,
        n_test=10_000,
        blocks=2,
        hidden=8000,
        full_batch=1024,
        batch=1000,
        epochs=100,
        gn_lr_full=0.5,
        probe=128,
    ),
    "paper-cifar10": Config(
        dataset="cifar10",
        n_train=50_000,
        n_test=10_000,
        blocks=6,
        hidden=8000,
        full_batch=1024,
        batch=1000,
        epochs=100,
        gn_lr_full=1.0,
        probe=128,
    ),
}


# --------------------------------------------------------------------------- config and data


def input_dim(c: Config) -> int:
    """The flattened input size the RevMLP sees."""
    return c.features if c.features else NATIVE_DIM[c.dataset]


def validate(c: Config) -> None:
    """Check every option (and, for MNIST/CIFAR-10, that the files load) before any writing."""
    for name in (
        "n_train",
        "n_test",
        "blocks",
        "hidden",
        "full_batch",
        "batch",
        "epochs",
        "probe",
        "measure_every",
    ):
        v = getattr(c, name)
        require(v >= 1, f"--{name.replace('_', '-')} must be >= 1, got {v}")
    for name in ("gn_lr_full", "gn_lr_mini", "adam_lr", "sgd_lr"):
        v = getattr(c, name)
        require(
            np.isfinite(v) and v > 0,
            f"--{name.replace('_', '-')} must be a finite number > 0, got {v}",
        )
    require(np.isfinite(c.sigma) and c.sigma >= 0, f"--sigma must be >= 0, got {c.sigma}")
    require(c.rtol >= 0 and c.atol >= 0, f"--rtol and --atol must be >= 0, got {c.rtol}, {c.atol}")
    require(
        0 < c.target_fraction < 1, f"--target-fraction must be in (0, 1), got {c.target_fraction}"
    )
    require(0 < c.plateau_tol < 1, f"--plateau-tol must be in (0, 1), got {c.plateau_tol}")
    require(
        0 <= c.match_fraction < 1,
        f"--match-fraction must be in [0, 1) (0: the common level), got {c.match_fraction}",
    )
    require(c.seed >= 0, f"--seed must be >= 0, got {c.seed}")
    require(len(c.settings) >= 1, "--settings needs at least one of: full mini")
    require(len(c.optimizers) >= 1, "--optimizers needs at least one of: gn adam sgd")
    require(len(set(c.settings)) == len(c.settings), f"--settings repeats one: {c.settings}")
    require(
        len(set(c.optimizers)) == len(c.optimizers), f"--optimizers repeats one: {c.optimizers}"
    )
    native = NATIVE_DIM[c.dataset]
    require(
        0 <= c.features <= native,
        f"--features must be in 0..{native} for {c.dataset}, got {c.features}",
    )
    d = input_dim(c)
    require(
        d % 2 == 0,
        f"--features {d} is odd but RevMLP splits each input into two halves: pass an even "
        "--features",
    )
    require(
        d >= NUM_CLASSES,
        f"--features {d} is below the {NUM_CLASSES} outputs of the orthonormal readout: "
        f"pass --features >= {NUM_CLASSES}",
    )
    require(
        c.full_batch <= c.n_train,
        f"--full-batch {c.full_batch} exceeds --n-train {c.n_train}: pass --full-batch <= n-train",
    )
    require(
        c.batch <= c.n_train,
        f"--batch {c.batch} exceeds --n-train {c.n_train}: pass --batch <= n-train",
    )
    require(
        c.probe <= c.full_batch,
        f"--probe {c.probe} exceeds --full-batch {c.full_batch}: the probe batch is taken from "
        "the full-batch training set; pass --probe <= full-batch",
    )
    if c.dataset != "mnist1d":
        require_sizes(c.dataset, c.n_train, c.n_test)


def load_data(c: Config) -> Dataset:
    """The study's data: standardised inputs flattened to `(n, d)` (first `features` entries)."""
    if c.dataset == "mnist1d":
        data = load_dataset("mnist1d", n_train=c.n_train, n_test=c.n_test, seed=c.seed)
    else:
        data = load_subset(c.dataset, c.n_train, c.n_test)
    d = input_dim(c)
    flat = lambda x: x.reshape(x.shape[0], -1)[:, :d]
    return Dataset(
        flat(data.x_train),
        data.y_train,
        flat(data.x_test),
        data.y_test,
        name=data.name,
        num_classes=data.num_classes,
    )


def build_model(c: Config, in_dim: int) -> RevMLP:
    """The RevMLP every run starts from (same seed → same initialisation)."""
    return RevMLP(
        in_dim,
        num_blocks=c.blocks,
        hidden=c.hidden,
        out_dim=NUM_CLASSES,
        sigma=c.sigma,
        linear_first=True,
        key=jax.random.fold_in(jax.random.key(c.seed), 0),
    )


def order_key(c: Config) -> jax.Array:
    """Key of the epoch-shuffled batch order (shared by all optimizers)."""
    return jax.random.fold_in(jax.random.key(c.seed), 1)


def relative_change(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """`(L_after − L_before) / L_before`: negative when the step lowered the batch loss."""
    return (after - before) / before


# --------------------------------------------------------------------------- compiled pieces


def _apply(params, rest, x):
    return eqx.combine(params, rest)(x)


def _optimizer(kind: str, lr: float) -> optax.GradientTransformation:
    return optax.adam(lr) if kind == "adam" else optax.sgd(lr)


def make_epoch(c: Config, kind: str, lr: float, n: int, batch: int):
    """A jitted `epoch(params, state, rest, x, y, e) -> (params, state, before, after)`.

    Runs epoch `e` (batches from `epoch_batches(order_key(c), n, batch, e)`) as one scan and
    returns the loss on each batch before and after the step taken on it.
    """
    loss_fn = get_loss(LOSS_NAMES[c.loss])
    key = order_key(c)

    def step(params, state, rest, xb, yb):
        before = loss_fn(_apply(params, rest, xb), yb)
        if kind == "gn":
            opt = exact_gauss_newton(
                eqx.combine(params, rest), lr, loss=c.loss, rtol=c.rtol, atol=c.atol
            )
            # the GN step reads the batch, not a gradient: its `updates` argument is unused
            updates, state = opt.update(None, state, params, x=xb, y=yb)  # pyright: ignore[reportArgumentType]
        else:
            grads = jax.grad(lambda p: loss_fn(_apply(p, rest, xb), yb))(params)
            updates, state = _optimizer(kind, lr).update(grads, state, params)
        params = optax.apply_updates(params, updates)
        after = loss_fn(_apply(params, rest, xb), yb)
        return params, state, before, after

    @jax.jit
    def epoch(params, state, rest, x, y, e):
        def body(carry, idx):
            params, state = carry
            params, state, before, after = step(params, state, rest, x[idx], y[idx])
            return (params, state), (before, after)

        (params, state), (before, after) = jax.lax.scan(
            body, (params, state), epoch_batches(key, n, batch, e)
        )
        return params, state, before, after

    return epoch


def init_state(kind: str, lr: float, model: RevMLP, params):
    if kind == "gn":
        return exact_gauss_newton(model, lr).init(params)
    return _optimizer(kind, lr).init(params)


@functools.partial(jax.jit, static_argnums=(4,))
def _eval_chunk(params, rest, x, y, loss_name):
    pred = _apply(params, rest, x)
    n = x.shape[0]
    return get_loss(loss_name)(pred, y) * n, accuracy(pred, y) * n


def evaluate(params, rest, x, y, loss: str, chunk: int = 4096) -> tuple[float, float]:
    """Mean loss and accuracy on `(x, y)`, in chunks."""
    tot_l, tot_a = 0.0, 0.0
    for lo in range(0, x.shape[0], chunk):
        lv, av = _eval_chunk(params, rest, x[lo : lo + chunk], y[lo : lo + chunk], LOSS_NAMES[loss])
        tot_l, tot_a = tot_l + float(lv), tot_a + float(av)
    return tot_l / x.shape[0], tot_a / x.shape[0]


@functools.partial(jax.jit, static_argnums=(4,))
def _measure(params, rest, x, v, batch_size):
    """On the probe batch: `K v`, the full NTK `(n·k, n·k)` and each block's output."""
    apply = lambda p, xx: _apply(p, rest, xx)
    kv = ntk_vector_product(apply, params, x, v)
    n, k = v.shape
    cols = jax.lax.map(
        lambda e: ntk_vector_product(apply, params, x, e.reshape(n, k)).reshape(-1),
        jnp.eye(n * k, dtype=v.dtype),
        batch_size=batch_size,
    )
    blocks = eqx.combine(params, rest).blocks_forward(x)
    return kv, cols, blocks


def measure(params, rest, x, v) -> tuple[jax.Array, jax.Array, list[jax.Array]]:
    """`(K v, K, block outputs)` on the probe batch, `K` built from NTK-vector products."""
    size = sum(leaf.size for leaf in jax.tree.leaves(params))
    # NTK-vector products run `batch_size` at a time; bound their parameter-sized tangents
    batch_size = int(max(1, min(v.size, 5e8 // size)))
    return _measure(params, rest, x, v, batch_size)


# --------------------------------------------------------------------------- the study


def _measure_epochs(c: Config) -> np.ndarray:
    return np.unique(np.r_[np.arange(0, c.epochs + 1, c.measure_every), c.epochs])


def _setting_data(c: Config, data: Dataset, setting: str):
    if setting == "full":
        return data.x_train[: c.full_batch], data.y_train[: c.full_batch], c.full_batch
    return data.x_train, data.y_train, c.batch


def run(c: Config, store: StudyDir, *, progress: bool = True) -> dict:
    """Train every (setting, optimizer), write results.nc and figures, return the summary."""
    validate(c)
    data = load_data(c)
    model = build_model(c, input_dim(c))
    params0, rest = partition(model)
    probe_x = data.x_train[: c.probe]
    probe_v = jax.random.normal(
        jax.random.fold_in(jax.random.key(c.seed), 2), (c.probe, NUM_CLASSES), probe_x.dtype
    )
    kv0, k0, feats0 = measure(params0, rest, probe_x, probe_v)
    m_epochs = _measure_epochs(c)
    settings, opts = list(c.settings), list(c.optimizers)
    ns, no, ne, nm = len(settings), len(opts), c.epochs + 1, len(m_epochs)
    steps_per_epoch = {
        s: num_batches(
            c.full_batch if s == "full" else c.n_train, c.full_batch if s == "full" else c.batch
        )
        for s in settings
    }
    max_steps = c.epochs * max(steps_per_epoch.values())
    curves = {
        k: np.full((ns, no, ne), np.nan)
        for k in ("train_loss", "train_accuracy", "test_loss", "test_accuracy")
    }
    change = np.full((ns, no, max_steps), np.nan)
    ntk_sim = np.full((ns, no, nm), np.nan)
    kdist = np.full((ns, no, nm), np.nan)
    cka = np.full((ns, no, nm, c.blocks), np.nan)

    for si, s in enumerate(settings):
        x, y, batch = _setting_data(c, data, s)
        for oi, o in enumerate(opts):
            lr = {
                "gn": c.gn_lr_full if s == "full" else c.gn_lr_mini,
                "adam": c.adam_lr,
                "sgd": c.sgd_lr,
            }[o]
            epoch = make_epoch(c, o, lr, int(x.shape[0]), batch)
            params, state = params0, init_state(o, lr, model, params0)
            changes = []
            bar = tqdm(range(ne), desc=f"{NAME} {s} {o}", disable=not progress, unit="ep")
            for e in bar:
                if e > 0:
                    params, state, before, after = epoch(
                        params, state, rest, x, y, jnp.int32(e - 1)
                    )
                    changes.append(
                        relative_change(np.asarray(before, float), np.asarray(after, float))
                    )
                curves["train_loss"][si, oi, e], curves["train_accuracy"][si, oi, e] = evaluate(
                    params, rest, x, y, c.loss
                )
                curves["test_loss"][si, oi, e], curves["test_accuracy"][si, oi, e] = evaluate(
                    params, rest, data.x_test, data.y_test, c.loss
                )
                if e in m_epochs:
                    mi = int(np.searchsorted(m_epochs, e))
                    kv, kt, feats = measure(params, rest, probe_x, probe_v)
                    ntk_sim[si, oi, mi] = float(ntk_probe_similarity(kv0, kv))
                    kdist[si, oi, mi] = float(kernel_distance(k0, kt))
                    cka[si, oi, mi] = [
                        float(linear_cka(a, b)) for a, b in zip(feats0, feats, strict=True)
                    ]
            flat = np.concatenate(changes)
            change[si, oi, : flat.size] = flat

    ds = xr.Dataset(
        {
            **{k: (("setting", "optimizer", "epoch"), v) for k, v in curves.items()},
            "batch_loss_change": (("setting", "optimizer", "step"), change),
            "ntk_similarity": (("setting", "optimizer", "measure_epoch"), ntk_sim),
            "kernel_distance": (("setting", "optimizer", "measure_epoch"), kdist),
            "cka": (("setting", "optimizer", "measure_epoch", "block"), cka),
            "steps_per_epoch": (("setting",), np.array([steps_per_epoch[s] for s in settings])),
        },
        coords={
            "setting": settings,
            "optimizer": opts,
            "epoch": np.arange(ne),
            "step": np.arange(1, max_steps + 1),
            "measure_epoch": m_epochs,
            "block": np.arange(1, c.blocks + 1),
        },
        attrs={
            "study": NAME,
            "loss": c.loss,
            "batch_loss_change": "(L_after - L_before) / L_before on the batch of that step",
            "kernel_distance": "1 - cos(K0, Kt), full NTK on the probe batch",
            "ntk_similarity": "cos(K0 v, Kt v), fixed random probe v on the probe batch",
        },
    )
    write_dataset(store.results_path, ds)
    summary = summarize(ds, c)
    figures(ds, store, c, summary)
    return summary
