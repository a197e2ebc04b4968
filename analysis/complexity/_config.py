"""Options, presets, validation, tasks and networks of the complexity study."""

from __future__ import annotations

import functools
import math
import os
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
    "I(L;Y|F_t) (≈ 0 when L is retained), in bits. T0 is the first recorded step where "
    "μ < 0.9·I(F_t;Y), counting only steps where I(F_t;Y) ≥ t0_min_info·I(L;Y) (at chance level "
    "the ratio is noise); null when that never happens. retention = μ_final / I(L;Y). The paper "
    "predicts μ ≈ I(F_t;Y) until F_t's accuracy passes L's and retention close to 1 after."
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
    """Test examples per task (the information measures are estimated on these)."""
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
    records: int = 20
    """Log-spaced recording steps (besides one at the end of every epoch)."""
    stop_train_error: float = 0.0
    """Stop at the first record whose training error is <= this (0: zero training error)."""
    t0_min_info: float = 0.5
    """T0 counts only steps with I(F_t;Y) >= t0_min_info·I(L;Y)."""
    linear_steps: int = 1000
    """Maximum L-BFGS iterations of the linear classifier L."""
    seed: int = 0
    """Seed of the data, the initialisation and the batch order."""


PRESETS = {
    "quick": Config(),
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


def _data_env() -> str:
    return os.environ.get("LAZYRICH_DATA", "")


@functools.lru_cache(maxsize=4)
def _load(task: str, n_train: int, n_test: int, noise: float, seed: int, env: str) -> Dataset:
    """The binary dataset of `task` (cached, so validate() and run() load files once)."""
    del env  # part of the cache key only: a different data directory reloads
    if task == "mnist1d":
        return mnist1d(n_train, n_test, seed=seed).binary(4)
    if task == "ball":
        return ball_dataset(n_train, n_test, noise=noise, key=jax.random.key(seed))
    full = load_mnist() if task == "mnist" else load_cifar10()
    return full.subset(min(n_train, full.n_train), min(n_test, full.n_test)).binary(4)


def load_task(c: Config, task: str) -> Dataset:
    """The binary train/test split of `task` under config `c`."""
    return _load(task, c.n_train, c.n_test, c.ball_noise, c.seed, _data_env())


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
                 "batch", "records", "linear_steps"):  # fmt: skip
        v = getattr(c, name)
        require(v >= 1, f"--{name.replace('_', '-')} must be >= 1, got {v}")
    require(len(c.tasks) >= 1, f"--tasks needs at least one of: {', '.join(TASKS)}")
    for t in c.tasks:
        require(t in TASKS, f"unknown task {t!r}: choose --tasks from {', '.join(TASKS)}")
    require(len(set(c.tasks)) == len(c.tasks), f"--tasks lists a task twice: {' '.join(c.tasks)}")
    require(len(c.networks) >= 1, f"--networks needs at least one of: {', '.join(NETWORKS)}")
    for n in c.networks:
        require(n in NETWORKS, f"unknown network {n!r}: choose --networks from mlp, cnn")
    require(
        len(set(c.networks)) == len(c.networks),
        f"--networks lists a network twice: {' '.join(c.networks)}",
    )
    require(c.batch <= c.n_train, f"--batch {c.batch} exceeds --n-train {c.n_train}")
    require(math.isfinite(c.lr) and c.lr > 0, f"--lr must be a finite number > 0, got {c.lr}")
    require(0.0 <= c.ball_noise < 0.5, f"--ball-noise must be in [0, 0.5), got {c.ball_noise}")
    require(
        0.0 <= c.stop_train_error < 1.0,
        f"--stop-train-error must be in [0, 1), got {c.stop_train_error}",
    )
    require(0.0 <= c.t0_min_info <= 1.0, f"--t0-min-info must be in [0, 1], got {c.t0_min_info}")
    if any(t in FILE_TASKS for t in c.tasks):
        resolve_data_dir()  # one line if no data directory is given
        for t in c.tasks:
            if t in FILE_TASKS:
                load_task(c, t)  # one-line DataError for a missing or corrupt file (cached)
