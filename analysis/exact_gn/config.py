"""The exact Gauss-Newton study's configuration, presets, validation, data and model.

The study (PAPERS.md §2) as a whole:

A RevMLP is trained by exact Gauss-Newton, Adam and SGD (`seeds` initialisations and data
orders), in a full-batch setting (the first `full_batch` training examples, one step per epoch),
a mini-batch setting (all `n_train` examples, batches of `batch`) and a rank setting (GN only,
full batch on the first `rank_batch` examples, the paper's linear first block against a ReLU
first block whose half-layers all have full row rank when h + 1 >= rank_batch). In the full-batch
setting Adam and SGD also run a small grid of learning rates (a vmapped `eta` axis); the tuned
rate is the grid's lowest seed-mean final train loss. Per epoch: train/test loss and accuracy;
per step: the relative loss change on the batch just used; every `measure_every` epochs: NTK
similarity along a fixed probe vector, kernel distance to the initial NTK and linear CKA between
each block's output at initialisation and now, all on a fixed probe batch. The summary compares
those measures at a matched train loss as well as at the last epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import equinox as eqx
import jax
import numpy as np

from lazyrich.data import Dataset, load_dataset
from lazyrich.errors import require
from lazyrich.models import RevMLP
from lazyrich.train import Factory

from .._files import load_subset, require_sizes

NAME = "exact-gn"
TITLE = "Exact Gauss-Newton in reversible networks: fast fitting, poor generalisation, lazy?"
DESCRIPTION = (
    "A reversible MLP (additive coupling blocks with a fixed random inverted bottleneck of width "
    "h, a linear first block, a fixed orthonormal readout) trained from the same initialisation "
    "and data order by exact Gauss-Newton (blockwise pseudo-inverses through the exact inverse, "
    "no backpropagation), Adam and SGD. normalize sets the GN step's scale: none (the authors' "
    "code and the paper and evidence presets) applies the raw sum of the blocks' steps, J·Δθ = "
    "L·ε for L blocks when every half-layer has full row rank; blocks (the quick preset, the "
    "former convention) divides it by L so that J·Δθ = ε; fit rescales it to the best multiple in"
    " the linearized model. With loss ce GN uses the identity loss Hessian (as the authors do). "
    "Full batch: one step per epoch on the first full_batch training examples; mini-batch: "
    "shuffled batches over all n_train examples. The linear first block's features have rank at "
    "most d/2 + 1, so that block cannot have full row rank on batches larger than d/2 + 1 and "
    "contributes only its least-squares part; ReLU blocks have full row rank only when h + 1 >= "
    "batch. The rank setting separates that effect: GN on rank_batch examples with the linear "
    "first block against a ReLU first block, and gn_fit = <J·Δθ_raw, ε>/(L·|ε|²) at "
    "initialisation (1 when J·Δθ_raw = L·ε exactly). Measured: per-epoch train/test loss and "
    "accuracy; per step the relative change (L_after − L_before)/L_before of the loss on the "
    "batch just used (mean_batch_loss_drop is minus its mean over all steps, so positive means "
    "the batch loss fell); every few epochs, on a fixed probe batch, the cosine of K0·v and Kt·v "
    "for a fixed random v (NTK similarity), the kernel distance 1 − cos(K0, Kt) of the full NTKs,"
    " and linear CKA between each block's output at initialisation and now. epochs_to_train_loss "
    "counts epochs until the train loss falls to target_fraction × its initial value. Paper "
    "(Buffelli et al. 2024): full-batch GN fits in far fewer epochs than Adam/SGD; mini-batch GN "
    "saturates on train and test loss; training stays lazy (NTK and CKA near init). With the "
    "paper's small Adam/SGD learning rates the baselines also move little, so the summary "
    "compares the laziness measures at a matched train loss too (matched_train_loss; figure "
    "ntk_cka_vs_loss plots them against the train loss): with --match interpolate (the default) "
    "per setting and seed at the lowest train loss every optimizer reaches, each optimizer's "
    "measures interpolated linearly in log train loss between the two measured epochs that "
    "bracket that level, with control rows bounding how much the measures change across the "
    "brackets; with --match nearest (the first preregistered evidence run) at the lowest level "
    "where every optimizer has a measured epoch (>= 1) within 2% of it, each optimizer's "
    "measures at that epoch, and a control row with the largest distance per seed. In the "
    "full-batch setting adam and sgd are the "
    "tuned rates, adam_paper and sgd_paper the paper's; the claims use the tuned ones."
)

SETTINGS = ("full", "mini")
ALL_SETTINGS = ("full", "mini", "rank")
OPTIMIZERS = ("gn", "adam", "sgd")
NORMALIZE = ("blocks", "fit", "none")
Setting = Literal["full", "mini", "rank"]
Optimizer = Literal["gn", "adam", "sgd"]
NATIVE_DIM = {"mnist1d": 40, "mnist": 28 * 28, "cifar10": 32 * 32 * 3}
NUM_CLASSES = 10


@dataclass(frozen=True)
class Config:
    """Options of the exact Gauss-Newton study."""

    dataset: Literal["mnist1d", "mnist", "cifar10"] = "mnist1d"
    """mnist1d is generated locally; mnist and cifar10 are read from --data-dir."""
    data_dir: str = ""
    """Directory of the MNIST / CIFAR-10 files (empty: $LAZYRICH_DATA)."""
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
    Hessian, as the authors; the paper and evidence presets)."""
    normalize: str = "blocks"
    """Scale of the GN step, one of blocks|fit|none: none = the raw sum of the blocks' steps
    (J·Δθ = L·ε at full row rank; the authors' code, paper and evidence presets), blocks = the
    sum divided by the number of blocks L (J·Δθ = ε; the quick preset and the former default),
    fit = the best multiple in the linearized model."""
    settings: tuple[Setting, ...] = SETTINGS
    """Which settings to run: full (full batch), mini (mini-batch), rank (GN with a linear or a
    ReLU first block on rank_batch examples)."""
    optimizers: tuple[Optimizer, ...] = OPTIMIZERS
    """Which optimizers to run: gn (exact Gauss-Newton), adam, sgd."""
    full_batch: int = 128
    """Size of the full-batch training set: the first FULL_BATCH training examples, one step
    per epoch on all of them (paper: 1024)."""
    batch: int = 64
    """Batch size of the mini-batch setting (paper: 1000)."""
    rank_batch: int = 32
    """Examples of the rank setting (the first RANK_BATCH training examples, full batch)."""
    epochs: int = 30
    """Training epochs per run (paper: 100)."""
    epochs_mini: int = 0
    """Epochs of the mini-batch setting (0: --epochs)."""
    seeds: int = 1
    """Number of seeds (initialisation and data order): seed, seed + 1, ..."""
    adam_grid: tuple[float, ...] = ()
    """More Adam learning rates tried in the full-batch setting besides --adam-lr (tuned: the
    lowest seed-mean final train loss); the mini-batch setting uses --adam-lr."""
    sgd_grid: tuple[float, ...] = ()
    """More SGD learning rates tried in the full-batch setting besides --sgd-lr (as adam-grid)."""
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
    measure_every_mini: int = 0
    """Epochs between NTK / CKA measurements in the mini-batch setting (0: --measure-every);
    no claim compares the mini-batch runs at a matched loss."""
    match: Literal["interpolate", "nearest"] = "interpolate"
    """How the matched-train-loss comparison reads each optimizer at the level: interpolate
    (between the two consecutive measured epochs whose train losses bracket it, linearly in log
    train loss; needs --measure-every 1) or nearest (its measured epoch closest to the level, if
    within 2% of it; the first preregistered evidence run, where it matched 2 of 5 seeds)."""
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
    """First seed of the initialisation and data order; seed of the probe vector (and
    mnist1d)."""


PRESETS = {
    "quick": Config(),
    "evidence": Config(
        dataset="mnist",
        n_train=8000,
        n_test=2000,
        blocks=2,
        hidden=1024,
        loss="ce",
        normalize="none",
        settings=SETTINGS,
        full_batch=1024,
        batch=1000,
        epochs=15,
        epochs_mini=14,
        measure_every_mini=7,
        seeds=5,
        adam_grid=(1e-3,),
        sgd_grid=(1e-1,),
        probe=16,
        match="nearest",
    ),
    "paper": Config(
        dataset="mnist",
        n_train=60_000,
        n_test=10_000,
        blocks=2,
        hidden=8000,
        loss="ce",
        normalize="none",
        full_batch=1024,
        batch=1000,
        epochs=100,
        seeds=3,
        adam_grid=(1e-3, 1e-2),
        sgd_grid=(1e-1, 1.0),
        gn_lr_full=0.5,
        probe=128,
    ),
    "paper-cifar10": Config(
        dataset="cifar10",
        n_train=50_000,
        n_test=10_000,
        blocks=6,
        hidden=8000,
        loss="ce",
        normalize="none",
        full_batch=1024,
        batch=1000,
        epochs=100,
        seeds=3,
        adam_grid=(1e-3, 1e-2),
        sgd_grid=(1e-1, 1.0),
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
    require(
        not c.data_dir or c.dataset != "mnist1d",
        f"--data-dir {c.data_dir} is not used: --dataset mnist1d is generated, not read from "
        "files; drop --data-dir (or choose --dataset mnist or cifar10)",
    )
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
        "rank_batch",
        "seeds",
    ):
        v = getattr(c, name)
        require(v >= 1, f"--{name.replace('_', '-')} must be >= 1, got {v}")
    require(c.epochs_mini >= 0, f"--epochs-mini must be >= 0, got {c.epochs_mini}")
    require(
        c.measure_every_mini >= 0,
        f"--measure-every-mini must be >= 0 (0: --measure-every), got {c.measure_every_mini}",
    )
    require(
        c.normalize in NORMALIZE,
        f"--normalize {c.normalize!r} is unknown: pass one of {'|'.join(NORMALIZE)}",
    )
    require(c.loss in ("mse", "ce"), f"--loss {c.loss!r} is unknown: pass mse or ce")
    for name in ("gn_lr_full", "gn_lr_mini", "adam_lr", "sgd_lr", "adam_grid", "sgd_grid"):
        for v in np.atleast_1d(getattr(c, name)):
            require(
                np.isfinite(v) and v > 0,
                f"--{name.replace('_', '-')} must be finite numbers > 0, got {v}"
                if name.endswith("grid")
                else f"--{name.replace('_', '-')} must be a finite number > 0, got {v}",
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
    require(
        c.match in ("interpolate", "nearest"),
        f"--match {c.match!r} is unknown: pass interpolate or nearest",
    )
    require(
        c.match != "interpolate" or c.measure_every == 1,
        f"--match interpolate reads NTK and CKA at the two epochs that bracket the matched loss, "
        f"but --measure-every is {c.measure_every}: pass --measure-every 1 (or --match nearest)",
    )
    require(len(c.settings) >= 1, "--settings needs at least one of: full mini rank")
    require(
        set(c.settings) <= set(ALL_SETTINGS),
        f"--settings {' '.join(c.settings)}: pass some of {' '.join(ALL_SETTINGS)}",
    )
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
    require(
        c.rank_batch <= c.n_train,
        f"--rank-batch {c.rank_batch} exceeds --n-train {c.n_train}: pass --rank-batch <= n-train",
    )
    if c.dataset != "mnist1d":
        require_sizes(c.dataset, c.n_train, c.n_test, c.data_dir or None)


def load_data(c: Config) -> Dataset:
    """The study's data: standardised inputs flattened to `(n, d)` (first `features` entries)."""
    if c.dataset == "mnist1d":
        data = load_dataset("mnist1d", n_train=c.n_train, n_test=c.n_test, seed=c.seed)
    else:
        data = load_subset(c.dataset, c.n_train, c.n_test, c.data_dir or None)
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


def build_model(c: Config, in_dim: int, *, seed: int | None = None) -> RevMLP:
    """The RevMLP a run with `seed` (default `c.seed`) starts from; the engine's factory
    (`RevFactory`) builds the same model from the same key, `fold_in(key(seed), 0)`."""
    return RevFactory(in_dim, c.blocks, c.hidden, c.sigma)(
        jax.random.fold_in(jax.random.key(c.seed if seed is None else seed), 0), {}
    )


class RevFactory(Factory):
    """Each run's RevMLP from its seed's key (the engine passes `fold_in(key(seed), 0)`)."""

    in_dim: int = eqx.field(static=True)
    blocks: int = eqx.field(static=True)
    hidden: int = eqx.field(static=True)
    sigma: float = eqx.field(static=True)
    linear_first: bool = eqx.field(static=True, default=True)

    def __call__(self, key, hp) -> RevMLP:
        return RevMLP(
            self.in_dim,
            num_blocks=self.blocks,
            hidden=self.hidden,
            out_dim=NUM_CLASSES,
            sigma=self.sigma,
            linear_first=self.linear_first,
            key=key,
        )


def seeds(c: Config) -> list[int]:
    """The seeds of every setting: `seed, seed + 1, …`."""
    return list(range(c.seed, c.seed + c.seeds))


def order_key(c: Config) -> jax.Array:
    """Key of the epoch-shuffled batch order (shared by all optimizers)."""
    return jax.random.fold_in(jax.random.key(c.seed), 1)
