"""Options of the γ–η study: Config, presets, validation, cases."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from lazyrich.errors import require

from . import protocol as proto
from .setup import CLASSIFICATION, CNN_DEPTH, IMAGE

NAME = "gamma-eta"
TITLE = "Feature-learning strength γ and the optimal learning rate"
DESCRIPTION = (
    "Centred μP MLPs (and, with --arch cnn, CNNs) f = (f_θ − f_θ0)/γ trained by one-pass "
    "SGD with learning rate η0·N, over a γ grid, per task and depth L. η protocol (the "
    "paper's): a short probe over the whole η0 range, from large to small on a lattice, "
    "finds per γ the first stable η0 (a diverged run marks every larger η0 diverged); the "
    "main sweep then runs a window of "
    "window_decades below it, in float64 where γ < 1e-2. η*(γ) is the η0 with the lowest "
    "final loss (seed-mean test loss over the last 10% of steps) among η0 stable for every "
    "seed; η_max(γ) the largest such η0. Smoothly broken power laws (numpyro NUTS in the "
    "paper preset, a least-squares twin in the quick one; mean and 90% interval) are fitted "
    "to η*(γ), η_max(γ) and the sharpness at the end of training "
    "(top Hessian eigenvalue by Lanczos at η*; NUTS in the evidence preset too). A γ whose "
    "loss at η* never falls below 0.9× its initial value is flagged (still on its plateau: its "
    "η* is the fastest plateau escape, not an optimum) and left out of the η* and sharpness "
    "fits. The claims are measured per seed (each seed's η*, η_max, its sharpness at its own "
    "η*, and a least-squares broken power law fitted per seed), with an interval over seeds. "
    "Theory: slope 2 for γ ≪ 1 and 2/L for γ ≫ 1 (−2 and −2/L for the sharpness); "
    "rich-regime loss curves collapse in τ = η0 γ^(−2/L) t: runs at the rich γ with "
    "η0 ∝ γ^(2/L), ∝ γ and constant, each aligned at the step where its loss reaches 0.9× the "
    "initial loss, are compared (largest gap in decades of loss). "
    "L (--depth) is the number of WEIGHT layers, as in the authors' code: an MLP of depth L "
    "has an input layer, L − 2 hidden-to-hidden layers and a readout (L − 1 hidden layers; "
    "lazyrich.models.MLP(depth=L − 1)); one hidden layer is L = 2 (rich slope 1). Biases as "
    "the authors': zero-initialised, inside each layer's scaling, trained (--no-bias drops "
    "them). With --arch cnn the paper's centred μP CNN (conv(N) → avgpool → conv(2N) → "
    "avgpool → fc(8N) → readout; conv layers scaled by 1/sqrt(C_in), fc by 1/sqrt(fan_in), "
    "readout by 1/(8N); η = η0·N) runs on mnist1d, its 40-long signals taken as one-channel "
    "1-D images, at L = 4 (conv, conv, fc, readout; the pools add no weights), as the authors "
    "run it; 2/L is the MLP law applied by counting weight layers, a prediction to test for "
    "convolutions, not a derivation. Staircases: per seed, the curve at its own η* at the "
    "largest rich γ, its drops counted (drops closer than a doubling of time merged). With "
    "--budget-factor F the γ > 1 rows run again at F × --steps: the per-seed change of the rich "
    "η* slope is the step-budget control, a claim row beside the slope it controls."
)

Task = Literal["teacher", "single-index", "staircase", "mnist1d"]
Arch = Literal["mlp", "cnn"]


@dataclass(frozen=True)
class Config:
    """Options of the γ–η sweep."""

    task: tuple[Task, ...] = ("teacher",)
    """Online tasks (synthetic Gaussian-input streams, or mnist1d resampled from a pool)."""
    loss: tuple[Literal["mse", "ce", "xent"], ...] = ("mse",)
    """Losses (lazyrich names): mse, or ce (softmax cross-entropy; xent is accepted as an alias),
    run for classification tasks (mnist1d) only."""
    dim: int = 16
    """Input dimension D of the synthetic tasks (mnist1d has 40)."""
    width: int = 32
    """Hidden width N (the learning rate is η0·N)."""
    depth: tuple[int, ...] = (2, 3)
    """Depths L of the MLP: numbers of WEIGHT layers (the paper's and the toy theory's L; L − 1
    hidden layers, so L = 2 is one hidden layer), one case each."""
    other_task_depth: tuple[int, ...] = ()
    """Depths run for every task after the first (empty: all of --depth)."""
    bias: bool = True
    """Biases as the authors' code (zero-initialised, trained); --no-bias drops them."""
    arch: tuple[Arch, ...] = ("mlp",)
    """Architectures: mlp (every task, one case per --depth) and cnn (the paper's CNN, fixed
    depth L = 4 weight layers, on image-shaped tasks only: mnist1d)."""
    cnn_width: int = 0
    """Channels N of the CNN's first convolution (then 2N and an fc of 8N); 0 = --width."""
    activation: Literal["relu", "tanh", "erf", "linear"] = "relu"
    """Hidden activation."""
    batch: int = 32
    """Batch size (a fresh batch every step)."""
    steps: int = 300
    """SGD steps per run of the main sweep."""
    gamma_min: float = 1e-3
    """Smallest γ."""
    gamma_max: float = 1e3
    """Largest γ."""
    gamma_per_decade: float = 1.0
    """γ grid points per decade."""
    eta_min: float = 1e-7
    """Smallest η0 the probe searches (windows may extend below it)."""
    eta_max: float = 1e4
    """Largest η0 the probe searches (top of the η lattice); above η_max(γ) at the largest γ,
    else that γ's boundary is censored and left out of the η_max fit."""
    eta_per_decade: float = 2.0
    """η lattice points per decade (the paper: 2)."""
    window_decades: float = 3.0
    """Decades of η0 the main sweep runs below each γ's first stable η0 (the paper: about 3)."""
    probe_steps: int = 40
    """Steps of the probe runs that locate the divergence boundary."""
    probe_seeds: int = 1
    """Seeds of the probe."""
    seeds: int = 2
    """Number of seeds of the main sweep (initialisation and data stream)."""
    records: int = 24
    """Number of log-spaced recording steps."""
    n_test: int = 512
    """Held-out examples for the test loss."""
    chunk_size: int = 0
    """Runs per compiled program; 0 = automatic (whole γ rows, no padding)."""
    float64: Literal["auto", "always", "never"] = "auto"
    """float64 for γ < 1e-2 (auto, as in the paper), always, or never."""
    threshold: float = 1e6
    """A batch loss above this (or non-finite) marks the run diverged."""
    rich_gammas: tuple[float, ...] = (10.0, 100.0, 1000.0)
    """γ ≫ 1 whose loss curves are compared (the nearest grid γ > 1 within half a grid step)."""
    collapse: bool = True
    """Run the time-collapse runs (rich γ at η0 ∝ γ^(2/L), ∝ γ and constant)."""
    budget_factor: float = 0.0
    """Step-budget control (0: off): each case's γ > 1 rows are run again at this many times
    --steps, same η windows and seeds; the per-seed change of the rich η* slope is a claim row
    next to the slope it controls."""
    sharpness_batch: int = 256
    """Size of the fixed batch whose training-loss Hessian is measured."""
    sharpness_iters: int = 20
    """Lanczos steps per sharpness measurement."""
    sharpness_points: int = 3
    """Sharpness checkpoints after initialisation (log-spaced, the last at the end)."""
    fit_method: Literal["nuts", "least-squares"] = "least-squares"
    """Broken-power-law fits: Bayesian NUTS (lazyrich.fit) or the cheap least-squares twin."""
    fit_samples: int = 500
    """NUTS warm-up and posterior samples per fit."""
    mnist1d_pool: int = 20_000
    """mnist1d examples generated for the online stream to resample from."""


# quick: one task, L = 2 and 3, small width, 7 γ over 6 decades, float32 throughout (at
# γ >= 1e-3 the centred output's float32 cancellation error is ~1e-4 relative; the paper's
# float64 rule matters for its γ down to 1e-5 and stays on in the paper preset). The η lattice
# tops at 1e4 (1e6 for the paper's γ up to 1e5): with 1e2, η_max(γ = 1000) of the L = 2 and
# L = 3 MLPs (316 and 100) was censored and dropped from the fit, for ~3 s more probe time.
# The CNN (--arch cnn) is not in the quick preset: at N = 32 it costs minutes on 2 cores.
# evidence (issue 25; the arithmetic is in `sizing.sizing`'s notes): teacher at L = 2, 3, 4 and
# mnist1d at L = 3, width 64, γ over 6 decades at 2 per decade, η at 4 per decade over the
# paper's 3-decade window, NUTS fits for the seed-mean read-out. Against the unregistered
# November run (docs/evidence/before-plans/gamma-eta): 6 seeds instead of 3 (the claims' unit),
# 3000 steps instead of 1500 (its own step-budget control at 4500 moved L = 2's rich η* slope
# from 1.12 to 1.02), and that control inside the run: every case's γ > 1 rows again at 1.5 ×
# 3000 = 4500 steps, a claim row next to claim 2.
EVIDENCE = Config(
    task=("teacher", "mnist1d"),
    depth=(2, 3, 4),
    other_task_depth=(3,),
    width=64,
    batch=32,
    steps=3000,
    budget_factor=1.5,
    gamma_per_decade=2.0,
    eta_min=1e-6,
    eta_max=1e5,
    eta_per_decade=4.0,
    window_decades=3.0,
    probe_steps=100,
    seeds=6,
    records=40,
    n_test=512,
    sharpness_points=2,
    fit_method="nuts",
    fit_samples=300,
    mnist1d_pool=4000,
)

# evidence-ce-cnn (issue 25, a second plan; `evidence` stays as the first plan ran it): only
# the two cases the first plan left out for budget, mnist1d with softmax cross-entropy for the
# MLP at L = 3 (the first plan's mnist1d mse L = 3 with the loss changed) and for the paper's CNN
# (L = 4 weight layers). The CNN costs ~20x the width-64 MLP per run-step on 2 CPU cores even at
# N = 8 channels (conv(8) → conv(16) → fc(64) → readout), so to fit ~25 min: γ at 1 per decade
# (7 γ, 3 on each side of 1, as the fits need), 2000 steps, 5 seeds, no step-budget control,
# and float32 at every γ (the CNN in float64 costs several times its float32 rate; at γ >= 1e-3
# the centred output's float32 cancellation error is ~1e-4 relative, the gradient has none, and
# the lazy regime's relative parameter change ~γ = 1e-3 is far above float32's 1e-7: the
# paper's float64 rule matters for its γ down to 1e-5).
# The arithmetic, the measured rates and what each row can decide are in `sizing.sizing`'s notes.
EVIDENCE_CE_CNN = Config(
    task=("mnist1d",),
    loss=("ce",),
    arch=("mlp", "cnn"),
    depth=(3,),
    width=64,
    cnn_width=8,
    batch=32,
    steps=2000,
    budget_factor=0.0,
    gamma_per_decade=1.0,
    eta_min=1e-6,
    eta_max=1e5,
    eta_per_decade=4.0,
    window_decades=3.0,
    probe_steps=100,
    seeds=5,
    records=40,
    n_test=512,
    sharpness_points=2,
    fit_method="nuts",
    fit_samples=300,
    mnist1d_pool=4000,
    float64="never",
)

PRESETS = {
    "quick": Config(float64="never"),
    "evidence": EVIDENCE,
    "evidence-ce-cnn": EVIDENCE_CE_CNN,
    "paper": Config(
        task=("single-index", "staircase", "teacher", "mnist1d"),
        loss=("mse", "xent"),
        dim=784,
        width=1000,
        depth=(3, 4, 5),
        arch=("mlp", "cnn"),
        cnn_width=128,
        batch=64,
        steps=10_000,
        gamma_min=1e-5,
        gamma_max=1e5,
        gamma_per_decade=2.0,
        eta_min=1e-12,
        eta_max=1e6,
        eta_per_decade=2.0,
        window_decades=3.0,
        probe_steps=500,
        probe_seeds=1,
        seeds=3,
        records=60,
        n_test=4096,
        sharpness_batch=1024,
        sharpness_iters=30,
        sharpness_points=5,
        fit_method="nuts",
        fit_samples=1000,
        mnist1d_pool=50_000,
    ),
}


def _logspace(lo: float, hi: float, per_decade: float, what: str) -> np.ndarray:
    for name, v in ((f"{what}_min", lo), (f"{what}_max", hi)):
        require(
            np.isfinite(v) and v > 0,
            f"--{name.replace('_', '-')} must be a finite number > 0, got {v}",
        )
    require(
        hi >= lo,
        f"the {what} grid is empty: --{what}-max ({hi}) is below --{what}-min ({lo}); "
        f"pass --{what}-max >= --{what}-min",
    )
    require(
        np.isfinite(per_decade) and per_decade > 0,
        f"--{what}-per-decade must be > 0, got {per_decade}",
    )
    n = int(round(np.log10(hi / lo) * per_decade)) + 1
    return np.logspace(np.log10(lo), np.log10(hi), n)


def validate(c: Config) -> tuple[np.ndarray, np.ndarray]:
    """Check every option; return the γ grid and the probe's η lattice offsets."""
    for name in ("dim", "width", "batch", "steps", "seeds", "records", "n_test", "probe_steps"):
        v = getattr(c, name)
        require(v >= 1, f"--{name.replace('_', '-')} must be >= 1, got {v}")
    for name in ("probe_seeds", "sharpness_batch", "sharpness_iters", "sharpness_points"):
        v = getattr(c, name)
        require(v >= 1, f"--{name.replace('_', '-')} must be >= 1, got {v}")
    require(c.cnn_width >= 0, f"--cnn-width must be >= 0 (0 = --width), got {c.cnn_width}")
    require(c.chunk_size >= 0, f"--chunk-size must be >= 0 (0 = automatic), got {c.chunk_size}")
    require(c.fit_samples >= 10, f"--fit-samples must be >= 10, got {c.fit_samples}")
    require(c.mnist1d_pool >= 10, f"--mnist1d-pool must be >= 10, got {c.mnist1d_pool}")
    require(len(c.task) >= 1, "no task given: pass --task teacher (or several)")
    require(len(c.loss) >= 1, "no loss given: pass --loss mse (or mse xent)")
    require(len(c.depth) >= 1, "no depth given: pass --depth 2 3")
    require(len(c.arch) >= 1, "no architecture given: pass --arch mlp (or mlp cnn)")
    if "cnn" in c.arch:
        require(
            any(t in IMAGE for t in c.task),
            f"--arch cnn needs an image-shaped task, and {', '.join(c.task)} "
            f"{'has' if len(c.task) == 1 else 'have'} flat vector inputs: "
            f"add --task {' '.join(IMAGE)} or use --arch mlp",
        )
    for t in c.task:
        require(
            "mlp" in c.arch or t in IMAGE,
            f"--task {t} has no case: --arch cnn runs on image-shaped tasks "
            f"({', '.join(IMAGE)}) only; add --arch mlp or drop --task {t}",
        )
    for d in (*c.depth, *c.other_task_depth):
        require(d >= 1, f"--depth must be >= 1, got {d}")
        require(
            d >= 2,
            f"--depth {d}: L counts weight layers, and a single weight layer has no rich "
            "regime (no plateau, no slope 2/L); pass --depth 2 (one hidden layer) or more",
        )
    if {"ce", "xent"} & set(c.loss):
        require(
            any(t in CLASSIFICATION for t in c.task),
            "--loss ce needs a classification task: add --task mnist1d or use --loss mse",
        )
    require(
        np.isfinite(c.threshold) and c.threshold > 0, f"--threshold must be > 0, got {c.threshold}"
    )
    require(
        c.budget_factor == 0 or (np.isfinite(c.budget_factor) and c.budget_factor > 1),
        f"--budget-factor must be 0 (no budget control) or > 1 (times --steps), got "
        f"{c.budget_factor}",
    )
    require(
        np.isfinite(c.window_decades) and c.window_decades >= 0,
        f"--window-decades must be >= 0, got {c.window_decades}",
    )
    for g in c.rich_gammas:
        require(np.isfinite(g) and g > 1, f"--rich-gammas must be finite and > 1, got {g}")
    gammas = _logspace(c.gamma_min, c.gamma_max, c.gamma_per_decade, "gamma")
    if c.fit_method == "nuts":  # the evidence and paper presets: slopes on both sides of γ = 1
        for side, ok, fix in (
            ("below", gammas < 1, "--gamma-min 1e-3 or lower"),
            ("above", gammas > 1, "--gamma-max 1e3 or higher"),
        ):
            require(
                int(ok.sum()) >= 3,
                f"the γ grid has {int(ok.sum())} point(s) {side} γ = 1, and the evidence needs "
                f"3 on each side to fit both slopes: pass {fix}",
            )
    _logspace(c.eta_min, c.eta_max, c.eta_per_decade, "eta")
    return gammas, proto.probe_offsets(c.eta_min, c.eta_max, c.eta_per_decade)


def auto_chunk(c: Config, gammas: np.ndarray, per_gamma: int, x64) -> int:
    """Explicit --chunk-size, or whole γ rows sized so neither precision needs padding."""
    if c.chunk_size:
        return c.chunk_size
    n64 = sum(bool(x64({"gamma": g})) if callable(x64) else bool(x64) for g in gammas)
    return per_gamma * math.gcd(n64, gammas.size - n64)


def losses_of(c: Config) -> tuple[str, ...]:
    """The losses in lazyrich's names (`xent` → `ce`), without repeats."""
    return tuple(dict.fromkeys("ce" if x == "xent" else x for x in c.loss))


def cases_of(c: Config) -> list[tuple[str, str, str, int]]:
    """(task, loss, arch, depth L) of every case; cross-entropy only for classification tasks,
    the CNN only for image-shaped tasks and at its own depth (CNN_DEPTH), once; tasks after
    the first at `other_task_depth` when given."""
    depths = lambda i: c.other_task_depth if (i > 0 and c.other_task_depth) else c.depth
    return [
        (t, loss, a, d)
        for i, t in enumerate(c.task)
        for loss in losses_of(c)
        if loss == "mse" or t in CLASSIFICATION
        for a in c.arch
        if a == "mlp" or t in IMAGE
        for d in (depths(i) if a == "mlp" else (CNN_DEPTH,))
    ]


def case_label(task: str, loss: str, arch: str, depth: int) -> str:
    """`teacher mse L=2` for the MLP (the key in summary["cases"]), `mnist1d mse CNN L=3`."""
    return f"{task} {loss} {'CNN ' if arch == 'cnn' else ''}L={depth}"
