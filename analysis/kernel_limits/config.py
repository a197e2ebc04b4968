"""The kernel-limits study's options, presets, validation, data and learning rates."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lazyrich.data import load_dataset
from lazyrich.errors import require
from lazyrich.train import log_steps

NAME = "kernel-limits"
TITLE = "Both kernel limits: finite networks beside the DMFT (feature learning) and the NTK"
DESCRIPTION = (
    "Centred μP MLPs f = (net − net₀)/γ (no biases, one output, L = --depth weight layers) at "
    "several widths N are trained by full-batch gradient descent on L = 1/(2P) Σ (f − y)² "
    "with the μP learning rate η0·N, at every γ of --gammas, and set beside the two "
    "infinite-width theories at the same (γ, η0, step): the DMFT of kernel dynamics "
    "(lazyrich.theory.dmft, N → ∞ at fixed γ: features move; exact for a linear activation, "
    "else sampled with S sites × B batches and its Monte-Carlo error recorded) and the lazy "
    "closed form with the infinite-width "
    "NTK (rate η0/γ², the γ → 0 limit). η0 = lr·P/λ_max(K)·γ² for γ ≤ 1 and ·γ^(2/L) above "
    "(K the O(1) infinite-width NTK on the training points), so for γ ≤ 1 the NTK theory is the "
    "same curve at every γ. Each seed draws its own data (a random teacher on Gaussian inputs, "
    "or an mnist1d subset with the target +1 for class > 4, else −1) and its own "
    "initialisations: the seed is the unit of replication of every claim. Measured per seed: "
    "the distance D(N) = mean over the recorded steps of (|ΔL_train| + |ΔL_test|)/2 between "
    "the network and the DMFT at --gamma-width; the same distance between the DMFT and the "
    "NTK; the smallest γ where the DMFT's and the NTK's test losses part by more than 5% of the "
    "initial loss; and the kernel-target alignment ⟨K, yyᵀ⟩/(‖K‖‖yyᵀ‖) of the widest network's "
    "final empirical NTK on the training points."
)

DATASETS = ("teacher", "mnist1d")
ACTIVATIONS = ("tanh", "relu", "erf", "linear")
THRESHOLD = 1e6  # a train loss above this (or non-finite) freezes the run as diverged


@dataclass(frozen=True)
class Config:
    """Options of the kernel-limits study."""

    datasets: tuple[str, ...] = ("teacher", "mnist1d")
    """Datasets: teacher (synthetic regression) and/or mnist1d (class > 4 as ±1)."""
    widths: tuple[int, ...] = (64, 256)
    """Hidden widths N of the networks (at least two: the width exponent)."""
    depth: int = 2
    """Depth L: the number of weight layers (the DMFT's sampling solver takes L = 2 or 3)."""
    activation: str = "linear"
    """Activation: linear (the DMFT solved exactly) or tanh, relu, erf (the DMFT by sampling,
    with a Monte-Carlo error: --samples, --batches)."""
    gammas: tuple[float, ...] = (0.01, 0.1, 1.0, 3.0)
    """γ values (the figure shows one panel per γ)."""
    gamma_width: float = 1.0
    """The γ (one of --gammas) of the width-convergence and not-the-NTK claims."""
    n_train: int = 16
    """Training points P (full batch)."""
    n_test: int = 16
    """Test points Q."""
    teacher_dim: int = 40
    """Input dimension of the teacher task (40, mnist1d's: both datasets then share the
    engine's and the DMFT's compiled programs)."""
    steps: int = 30
    """Gradient-descent steps."""
    records: int = 8
    """Log-spaced steps at which losses are recorded (plus step 0)."""
    lr: float = 0.5
    """Learning rate in units of the lazy stability scale: for γ ≤ 1 the NTK theory's fastest
    mode contracts by 1 − lr per step (stable below 2)."""
    samples: int = 512
    """DMFT sites S per batch (sampling solver: nonlinear activations)."""
    batches: int = 2
    """DMFT independent batches B (sampling solver; their spread is the Monte-Carlo error)."""
    seed: int = 0
    """The first seed (data and initialisation)."""
    seeds: int = 2
    """Seeds: seed, …, seed + seeds − 1, each its own data draw and initialisations."""


PRESETS = {
    # smoke: seconds, not sized to decide
    "quick": Config(),
    # evidence: linear (the DMFT exact: no Monte-Carlo floor under the N = 2048 networks'
    # O(1/√N) distance), widths 128 → 2048 by factors of 2, γ on a half-decade grid from 0.01
    # to 3 (the parting γ), 20 seeds; see sizing() for the arithmetic
    "evidence": Config(
        widths=(128, 256, 512, 1024, 2048),
        gammas=(0.01, 0.03, 0.1, 0.3, 1.0, 3.0),
        n_train=32,
        n_test=32,
        steps=100,
        records=12,
        seeds=20,
    ),
    # paper (an accelerator): tanh, the DMFT by sampling with S·B = 2^19 sites, so that its
    # Monte-Carlo error lies well under the N = 2048 networks' distance
    "paper": Config(
        activation="tanh",
        widths=(128, 256, 512, 1024, 2048),
        gammas=(0.01, 0.03, 0.1, 0.3, 1.0, 3.0),
        n_train=32,
        n_test=32,
        steps=100,
        records=12,
        samples=65536,
        batches=8,
        seeds=20,
    ),
}


def validate(c: Config) -> None:
    """Check every option before anything is written; one-line ConfigError otherwise."""
    require(len(c.datasets) >= 1, "no dataset given: pass --datasets teacher mnist1d")
    for d in c.datasets:
        require(d in DATASETS, f"unknown dataset {d!r}: choose from {', '.join(DATASETS)}")
    require(len(set(c.datasets)) == len(c.datasets), f"--datasets repeats one: {c.datasets}")
    require(
        len(c.widths) >= 2 and len(set(c.widths)) == len(c.widths),
        f"--widths needs at least two different widths (the width exponent), got {c.widths}",
    )
    for w in c.widths:
        require(w >= 1, f"--widths must all be >= 1, got {w}")
    require(
        c.activation in ACTIVATIONS,
        f"unknown activation {c.activation!r}: choose from {', '.join(ACTIVATIONS)}",
    )
    require(
        c.depth in (2, 3) or (c.activation == "linear" and c.depth >= 2),
        f"--depth {c.depth}: the DMFT takes L = 2 or 3 weight layers for {c.activation} "
        "(any L >= 2 for linear); pass --depth 2 or 3",
    )
    require(len(c.gammas) >= 2, f"--gammas needs at least two values, got {c.gammas}")
    for g in c.gammas:
        require(math.isfinite(g) and g > 0, f"--gammas must be finite and > 0, got {g}")
    require(
        list(c.gammas) == sorted(set(c.gammas)),
        f"--gammas must be increasing without repeats, got {c.gammas}",
    )
    require(
        any(math.isclose(c.gamma_width, g) for g in c.gammas),
        f"--gamma-width {c.gamma_width} is not one of --gammas {c.gammas}: pick one of them",
    )
    for name in ("n_train", "n_test", "teacher_dim", "steps", "records", "seeds"):
        v = getattr(c, name)
        require(v >= 1, f"--{name.replace('_', '-')} must be >= 1, got {v}")
    require(
        c.samples >= 2 and c.batches >= 2,
        f"--samples and --batches must be >= 2, got {c.samples}, {c.batches}",
    )
    require(
        math.isfinite(c.lr) and 0 < c.lr < 2,
        f"--lr must be in (0, 2) (the lazy stability limit), got {c.lr}",
    )
    require(c.seed >= 0, f"--seed must be >= 0, got {c.seed}")


def seeds(c: Config) -> list[int]:
    """The seeds of the run: `seed, …, seed + seeds − 1`."""
    return [c.seed + k for k in range(c.seeds)]


def gamma_index(c: Config) -> int:
    """The index of `gamma_width` in `gammas`."""
    return int(np.argmin(np.abs(np.log(np.asarray(c.gammas)) - math.log(c.gamma_width))))


def record_steps(c: Config) -> np.ndarray:
    """Step 0 and `records` log-spaced steps up to `steps`."""
    return np.concatenate([[0], log_steps(c.steps, c.records)]).astype(np.int64)


def load_data(name: str, c: Config, seed: int):
    """`(x_train, y_train, x_test, y_test)` of one seed in float64, targets of shape `(n,)`."""
    if name == "teacher":
        data = load_dataset(
            "teacher", n_train=c.n_train, n_test=c.n_test, seed=seed, dim=c.teacher_dim
        )
        ys = data.y_train, data.y_test
    else:
        data = load_dataset("mnist1d", n_train=c.n_train, n_test=c.n_test, seed=seed)
        ys = tuple(np.where(np.asarray(y) > 4, 1.0, -1.0) for y in (data.y_train, data.y_test))
    x = lambda a: np.asarray(a, np.float64).reshape(a.shape[0], -1)
    y = lambda a: np.asarray(a, np.float64).reshape(-1)
    return x(data.x_train), y(ys[0]), x(data.x_test), y(ys[1])


def eta0s(c: Config, k_train: np.ndarray) -> np.ndarray:
    """η0 per γ: `lr · P / λ_max(K) · s(γ)`, `s = γ²` for γ ≤ 1 and `γ^(2/L)` above (the lazy
    and ultra-rich learning-rate scalings), K the O(1) infinite-width NTK on the train points."""
    g = np.asarray(c.gammas, np.float64)
    lam = float(np.linalg.eigvalsh(k_train)[-1])
    return c.lr * c.n_train / lam * np.where(g <= 1.0, g**2, g ** (2.0 / c.depth))
