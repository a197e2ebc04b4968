"""Options, presets, validation, tasks and networks of the complexity study."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import jax
from jaxtyping import PRNGKeyArray

from lazyrich.data import (
    Dataset,
    ball_dataset,
    load_cifar10,
    load_mnist,
    mnist1d,
    resolve_data_dir,
)
from lazyrich.errors import require
from lazyrich.models import MLP, PaperCNN

NAME = "complexity"
TITLE = "SGD learns functions of increasing complexity"
DESCRIPTION = (
    "Binary tasks — mnist1d and MNIST / CIFAR-10 with label = class > 4, and a 2-D 'sinusoidal "
    "ball' (x uniform on [−1, 1]², label 1 inside ‖x − c‖ < r0·(1 + a·sin(kθ)), c = (0.3, 0.3), "
    "r0 = 0.8, a = 0.25, k = 6, every label flipped with probability 0.1 in train and test) — "
    "learned by a ReLU MLP and the CNN of Nakkiran et al. (4 convolutions of 32 channels, average "
    "pooling after the 2nd and 4th, two dense layers of 2000; the quick preset shrinks it to 16 "
    "and 128), both in standard parameterization with He initialisation, trained with "
    "plain SGD until zero training error or a step cap. L is logistic regression trained to "
    "convergence on the same data. On the test set, from hard predictions: I(F_t;Y), "
    "μ(F_t;L) = I(F_t;Y) − I(F_t;Y|L) (how much of F_t's information L explains) and "
    "I(L;Y|F_t) (≈ 0 when L is retained), in bits. One practical margin per quantity (the "
    "paper's 'almost all' read as 90%): T0 is the first record where L explains less than 90% "
    "of F_t's information, the Miller–Madow I(F_t;Y|L) > 0.1·I(F_t;Y), among the records where "
    "F_t's information resolves that ratio (I(F_t;Y) ≥ t0_floor × 1/(n ln 2) bits, the plug-in "
    "noise scale of I(F_t;Y|L) at n test points); null: never. A permutation test of "
    "I(F_t;Y|L) = 0 at family-wise level alpha over the same records (F_t shuffled within each "
    "L-stratum, `permutations` shuffles, Bonferroni) is reported beside it (T0_significance), "
    "not used. 'Before T0' is measured as Σμ / ΣI(F_t;Y) over every earlier record with "
    "I(F_t;Y) > 0, and likewise before T_L (a control independent of T0's rule). T_L is the "
    "first record where F_t's test accuracy reaches L's. "
    "retention = μ_final / I(L;Y); its claim is judged on I(L;Y|F_final) / I(L;Y) "
    "(Miller–Madow). The claims' 90% intervals run over the runs (networks × "
    "seeds); per run, a bootstrap over test points (`bootstrap` resamples) gives a 5–95% range "
    "of the pre-T0 ratio and of the retention, reported beside them. The paper predicts "
    "μ ≈ I(F_t;Y) until about T_L and retention close to 1."
)

TASKS = ("mnist1d", "ball", "mnist", "cifar10")
FILE_TASKS = ("mnist", "cifar10")
NETWORKS = ("mlp", "cnn")


@dataclass(frozen=True)
class Config:
    """Options of the complexity study."""

    tasks: tuple[str, ...] = ("mnist1d", "ball")
    """Binary tasks: mnist1d, ball, mnist, cifar10 (the last two from local files)."""
    networks: tuple[str, ...] = ("mlp", "cnn")
    """Networks: mlp, cnn (the CNN runs only on sequence/image tasks, not on the 2-D ball)."""
    n_train: int = 4000
    """Training examples per task (MNIST/CIFAR: the first n_train, at most what the files hold)."""
    n_test: int = 1000
    """Test examples per task (MNIST/CIFAR: at most what the files hold)."""
    n_test_ball: int = 0
    """Test examples of the ball task (0: n_test)."""
    data_dir: str = ""
    """Directory of the MNIST / CIFAR-10 files (empty: $LAZYRICH_DATA)."""
    ball_noise: float = 0.1
    """Probability that a ball label is flipped (train and test alike)."""
    width: int = 256
    """MLP hidden width."""
    depth: int = 2
    """MLP hidden layers."""
    cnn_channels: int = 16
    """CNN channels of each of the 4 convolutions."""
    cnn_dense: int = 128
    """Width of each of the CNN's two dense layers."""
    steps: int = 2000
    """Maximum SGD steps per run (training stops earlier at zero training error)."""
    batch: int = 32
    """SGD batch size."""
    lr: float = 0.1
    """SGD learning rate (plain SGD, no momentum, no weight decay)."""
    lr_ball: float = 0.0
    """SGD learning rate on the ball task (0: --lr). The ball's F_t reaches L's accuracy within
    a few steps at the others' rate, too early for records to resolve the phase before T_L."""
    records: int = 20
    """Log-spaced recording steps (besides one at the end of every epoch)."""
    stop_train_error: float = 0.0
    """Stop at the first record whose training error is <= this (0: zero training error)."""
    t0_floor: float = 50.0
    """T0 looks only at records with I(F_t;Y) >= t0_floor / (n ln 2) bits (n test points): the
    plug-in noise scale of I(F_t;Y|L) for binary F, Y, L is 1/(n ln 2), so there the ratio
    I(F_t;Y|L) / I(F_t;Y) is resolved to 1/t0_floor = 0.02, a fifth of its margin 0.1."""
    permutations: int = 199
    """Shuffles of the permutation test (raised to ceil(records / alpha) if fewer, so that a
    Bonferroni rejection is possible)."""
    alpha: float = 0.05
    """Family-wise significance level of the T0 test."""
    bootstrap: int = 100
    """Bootstrap resamples of the test points for the per-run ranges (reported, not the claims'
    intervals, which run over runs)."""
    linear_steps: int = 1000
    """Maximum L-BFGS iterations of the linear classifier L."""
    seed: int = 0
    """Seed of the data; first seed of the initialisation and batch order."""
    n_seeds: int = 1
    """Seeds seed, seed + 1, ... of the initialisation and batch order (the data stay fixed)."""


PRESETS = {
    "quick": Config(),
    "evidence": Config(
        tasks=("mnist1d", "ball", "mnist"),
        n_train=8000,
        n_test=10_000,
        n_test_ball=20_000,
        width=256,
        depth=2,
        cnn_channels=8,
        cnn_dense=64,
        steps=3000,
        batch=32,
        lr=0.02,
        lr_ball=0.005,
        records=40,
        permutations=999,
        bootstrap=200,
        # issue 25: 6 seeds, so the ball (MLP only) has 6 runs and the others 12 (>= 5 units);
        # sizing() gives the arithmetic and the wall time (~20 min on 2 quiet cores)
        n_seeds=6,
    ),
    "paper": Config(
        tasks=("mnist1d", "ball", "mnist", "cifar10"),
        n_train=60_000,
        n_test=10_000,
        width=1024,
        depth=2,
        cnn_channels=32,
        cnn_dense=2000,
        steps=100_000,
        batch=64,
        lr=0.01,
        records=60,
        linear_steps=5000,
    ),
}


# ------------------------------------------------------------------------------ data


@functools.lru_cache(maxsize=4)
def _load(task: str, n_train: int, n_test: int, noise: float, seed: int, root: str) -> Dataset:
    """The binary dataset of `task` (cached, so validate() and run() load files once)."""
    if task == "mnist1d":
        return mnist1d(n_train, n_test, seed=seed).binary(4)
    if task == "ball":
        return ball_dataset(n_train, n_test, noise=noise, key=jax.random.key(seed))
    full = load_mnist(root) if task == "mnist" else load_cifar10(root)
    return full.subset(min(n_train, full.n_train), min(n_test, full.n_test)).binary(4)


def load_task(c: Config, task: str) -> Dataset:
    """The binary train/test split of `task` under config `c`."""
    n_test = c.n_test_ball if task == "ball" and c.n_test_ball > 0 else c.n_test
    root = str(resolve_data_dir(c.data_dir or None)) if task in FILE_TASKS else ""
    return _load(task, c.n_train, n_test, c.ball_noise, c.seed, root)


def seeds(c: Config) -> list[int]:
    """`seed, seed + 1, ..., seed + n_seeds - 1`."""
    return [c.seed + i for i in range(c.n_seeds)]


# ------------------------------------------------------------------------------ networks


def make_network(c: Config, network: str, data: Dataset, *, key: PRNGKeyArray) -> MLP | PaperCNN:
    """The MLP (standard parameterization, ReLU, biases) or the paper's CNN for `data`."""
    if network == "mlp":
        d = math.prod(data.input_shape)
        return MLP(d, c.width, c.depth, 2, parameterization="standard", use_bias=True,
                   sigma_w=2**0.5, sigma_b=0.0, key=key)  # fmt: skip
    return PaperCNN(data.input_shape, c.cnn_channels, c.cnn_dense, 2, key=key)


def cnn_applies(data: Dataset) -> bool:
    """The CNN needs a sequence or an image of spatial size >= 4 (not the 2-D ball's points)."""
    shape = data.input_shape
    spatial = shape if len(shape) == 1 else shape[:-1]
    return len(shape) >= 1 and data.name != "ball" and all(s >= 4 for s in spatial)


# ------------------------------------------------------------------------------ validation


def validate(c: Config) -> None:
    """Check every option (and that the files of MNIST / CIFAR-10 tasks exist) before writing."""
    for name in ("n_train", "n_test", "width", "depth", "cnn_channels", "cnn_dense", "steps",
                 "batch", "records", "linear_steps", "bootstrap", "n_seeds"):  # fmt: skip
        v = getattr(c, name)
        require(v >= 1, f"--{name.replace('_', '-')} must be >= 1, got {v}")
    require(len(c.tasks) >= 1, f"--tasks needs at least one of: {', '.join(TASKS)}")
    for t in c.tasks:
        require(t in TASKS, f"unknown task {t!r}: choose --tasks from {', '.join(TASKS)}")
    require(len(set(c.tasks)) == len(c.tasks), f"--tasks lists a task twice: {' '.join(c.tasks)}")
    require(
        not c.data_dir or any(t in FILE_TASKS for t in c.tasks),
        f"--data-dir {c.data_dir} is not used: the tasks {' '.join(c.tasks)} are generated, not "
        f"read from files; drop --data-dir (or add one of {', '.join(FILE_TASKS)} to --tasks)",
    )
    require(len(c.networks) >= 1, f"--networks needs at least one of: {', '.join(NETWORKS)}")
    for n in c.networks:
        require(n in NETWORKS, f"unknown network {n!r}: choose --networks from mlp, cnn")
    require(
        len(set(c.networks)) == len(c.networks),
        f"--networks lists a network twice: {' '.join(c.networks)}",
    )
    require(c.batch <= c.n_train, f"--batch {c.batch} exceeds --n-train {c.n_train}")
    require(math.isfinite(c.lr) and c.lr > 0, f"--lr must be a finite number > 0, got {c.lr}")
    require(
        math.isfinite(c.lr_ball) and c.lr_ball >= 0,
        f"--lr-ball must be a finite number >= 0 (0: --lr), got {c.lr_ball}",
    )
    require(0.0 <= c.ball_noise < 0.5, f"--ball-noise must be in [0, 0.5), got {c.ball_noise}")
    require(
        0.0 <= c.stop_train_error < 1.0,
        f"--stop-train-error must be in [0, 1), got {c.stop_train_error}",
    )
    require(
        math.isfinite(c.t0_floor) and c.t0_floor > 0,
        f"--t0-floor must be a finite number > 0 (multiples of 1/(n ln 2) bits), got {c.t0_floor}",
    )
    require(
        c.permutations >= 1,
        f"--permutations must be >= 1 (shuffles of the permutation test), got {c.permutations}",
    )
    require(
        math.isfinite(c.alpha) and 0 < c.alpha < 1,
        f"--alpha {c.alpha} is not a significance level: pass a number in (0, 1), e.g. 0.05",
    )
    require(c.n_test_ball >= 0, f"--n-test-ball must be >= 0 (0: n_test), got {c.n_test_ball}")
    if any(t in FILE_TASKS for t in c.tasks):
        resolve_data_dir(c.data_dir or None)  # one line if no data directory is given
        for t in c.tasks:
            if t in FILE_TASKS:
                load_task(c, t)  # one-line DataError for a missing or corrupt file (cached)
