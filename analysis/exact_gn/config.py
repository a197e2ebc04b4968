"""The exact Gauss-Newton study's configuration, presets, validation, data and model.

The study (PAPERS.md §2) as a whole:

A RevMLP is trained from one initialisation with exact Gauss-Newton, Adam and SGD, in a
full-batch setting (the first `full_batch` training examples, one step per epoch) and a
mini-batch setting (all `n_train` examples, batches of `batch`). Per epoch: train/test loss and
accuracy; per step: the relative loss change on the batch just used; every `measure_every`
epochs: NTK similarity along a fixed probe vector, kernel distance to the initial NTK and linear
CKA between each block's output at initialisation and now, all on a fixed probe batch. The
summary compares those measures at a matched train loss as well as at the last epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jax
import numpy as np

from lazyrich.data import Dataset, load_dataset
from lazyrich.errors import require
from lazyrich.models import RevMLP

from .._files import load_subset, require_sizes

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
