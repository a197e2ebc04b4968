"""The γ–η study: optimal learning rate across feature-learning strength (PAPERS.md §1).

A γ × η × seed sweep of a centred μP MLP trained by online SGD on a synthetic teacher task,
with the learning rate `η0·N` (the swept η is η0). Every run is one slice of a vmapped program.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jax
import numpy as np
import xarray as xr

from lazyrich.data import make_task
from lazyrich.errors import require
from lazyrich.models import MLP, scaled
from lazyrich.results import StudyDir, write_dataset
from lazyrich.train import Grid, OnlineSetup, log_steps, run_sweep

from . import _plots

NAME = "gamma-eta"
TITLE = "Feature-learning strength γ and the optimal learning rate"
DESCRIPTION = (
    "Centred μP MLPs f = (f_θ − f_θ0)/γ trained by one-pass SGD with learning rate η0·N on a "
    "synthetic teacher task, over a grid of γ and η0 and several seeds. Small γ is the lazy "
    "(kernel) regime, large γ the rich one. η* is the η0 with the lowest final loss (mean over "
    "seeds of the test loss over the last 10% of steps); a diverged run marks every larger η0 "
    "at the same γ and seed diverged (the paper's rule). Theory: η* ∝ γ² for γ ≪ 1 and "
    "η* ∝ γ^(2/L) for γ ≫ 1."
)


@dataclass(frozen=True)
class Config:
    """Options of the γ–η sweep."""

    task: Literal["teacher", "single-index", "staircase"] = "teacher"
    """Synthetic online task (Gaussian inputs)."""
    dim: int = 32
    """Input dimension D."""
    width: int = 64
    """Hidden width N."""
    depth: int = 3
    """Number of hidden layers L."""
    activation: Literal["relu", "tanh", "erf", "linear"] = "relu"
    """Hidden activation."""
    batch: int = 32
    """Batch size (a fresh batch every step)."""
    steps: int = 500
    """SGD steps per run."""
    gamma_min: float = 1e-3
    """Smallest γ."""
    gamma_max: float = 1e3
    """Largest γ."""
    gamma_per_decade: float = 1.0
    """γ grid points per decade."""
    eta_min: float = 1e-7
    """Smallest η0 (the learning rate is η0·N)."""
    eta_max: float = 1e2
    """Largest η0."""
    eta_per_decade: float = 1.0
    """η0 grid points per decade."""
    seeds: int = 2
    """Number of seeds (initialisation and data stream)."""
    records: int = 25
    """Number of log-spaced recording steps."""
    n_test: int = 512
    """Held-out examples for the test loss."""
    chunk_size: int = 64
    """Runs per compiled program (memory bound; results do not depend on it)."""
    float64: Literal["auto", "always", "never"] = "auto"
    """float64 for chunks containing γ < 1e-2 (auto, as in the paper), always, or never."""
    threshold: float = 1e6
    """A batch loss above this (or non-finite) marks the run diverged."""


PRESETS = {
    "quick": Config(),
    "paper": Config(
        dim=784,
        width=1000,
        depth=3,
        batch=64,
        steps=10_000,
        gamma_min=1e-5,
        gamma_max=1e5,
        gamma_per_decade=2.0,
        eta_min=1e-12,
        eta_max=1e2,
        eta_per_decade=2.0,
        seeds=3,
        records=60,
        n_test=4096,
        chunk_size=1024,
    ),
}


def _logspace(lo: float, hi: float, per_decade: float, what: str) -> np.ndarray:
    for name, v in ((f"{what}_min", lo), (f"{what}_max", hi)):
        require(
            np.isfinite(v) and v > 0,
            f"--{name.replace('_', '-')} must be a finite number > 0, got {v}",
        )
    require(hi >= lo, f"--{what}-max ({hi}) must be >= --{what}-min ({lo})")
    require(
        np.isfinite(per_decade) and per_decade > 0,
        f"--{what}-per-decade must be > 0, got {per_decade}",
    )
    n = int(round(np.log10(hi / lo) * per_decade)) + 1
    return np.logspace(np.log10(lo), np.log10(hi), n)


def validate(c: Config) -> tuple[np.ndarray, np.ndarray]:
    """Check every option; return the γ and η grids."""
    for name in (
        "dim",
        "width",
        "depth",
        "batch",
        "steps",
        "seeds",
        "records",
        "n_test",
        "chunk_size",
    ):
        v = getattr(c, name)
        require(v >= 1, f"--{name.replace('_', '-')} must be >= 1, got {v}")
    require(
        np.isfinite(c.threshold) and c.threshold > 0, f"--threshold must be > 0, got {c.threshold}"
    )
    return _logspace(c.gamma_min, c.gamma_max, c.gamma_per_decade, "gamma"), _logspace(
        c.eta_min, c.eta_max, c.eta_per_decade, "eta"
    )


def final_loss(test_loss: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Mean test loss over the recordings in the last 10% of steps: (..., step) → (...)."""
    tail = steps >= 0.9 * steps[-1]
    return test_loss[..., tail].mean(-1)


def divergence_rule(diverged: np.ndarray) -> np.ndarray:
    """The paper's rule on (γ, η, seed): a diverged run marks every larger η diverged."""
    return np.logical_or.accumulate(diverged, axis=1)


def eta_star(
    loss: np.ndarray, marked: np.ndarray, etas: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per γ: η with the lowest seed-mean final loss among η stable for every seed, and η_max
    (the largest such η). NaN where no η is stable."""
    stable = ~marked.any(-1)  # (γ, η)
    mean = np.where(stable, loss.mean(-1), np.inf)
    best = np.where(stable.any(1), etas[np.argmin(mean, axis=1)], np.nan)
    largest = np.array([etas[s][-1] if s.any() else np.nan for s in stable])
    return best, largest


def _slope(x: np.ndarray, y: np.ndarray) -> float | None:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2:
        return None
    return float(np.polyfit(np.log10(x[ok]), np.log10(y[ok]), 1)[0])


def run(c: Config, store: StudyDir, *, progress: bool = True) -> dict:
    """Run the sweep, write results.nc and figures into `store`, return the summary."""
    gammas, etas = validate(c)
    task = make_task(c.task, c.dim, key=jax.random.key(12345))
    test_x, test_y = task.sample(jax.random.key(54321), c.n_test)
    net = lambda k: MLP(c.dim, c.width, c.depth, task.out_dim, activation=c.activation, key=k)
    setup = OnlineSetup(
        make_model=lambda k, g: scaled(net(k), gamma=g, centre=True),
        sample=task.sample,
        test_x=test_x,
        test_y=test_y,
        batch=c.batch,
        loss="mse",
        lr_multiplier=float(c.width),
        threshold=c.threshold,
    )
    grid = Grid.of(gammas, etas, np.arange(c.seeds))
    x64 = {"auto": lambda g: bool(g.min() < 1e-2), "always": True, "never": False}[c.float64]
    steps = log_steps(c.steps, c.records)
    res = run_sweep(
        setup,
        grid,
        steps,
        chunk_size=c.chunk_size,
        x64=x64,
        store=store,
        progress=progress,
        description=NAME,
    )
    marked = divergence_rule(res["diverged"])
    loss = final_loss(res["test_loss"], steps)
    best, largest = eta_star(np.where(marked, np.inf, loss), marked, etas)

    dims4, dims3 = ("gamma", "eta", "seed", "step"), ("gamma", "eta", "seed")
    ds = xr.Dataset(
        {
            "train_loss": (dims4, res["train_loss"]),
            "test_loss": (dims4, res["test_loss"]),
            "test_accuracy": (dims4, res["test_accuracy"]),
            "diverged": (dims3, res["diverged"]),
            "diverged_step": (dims3, res["diverged_step"]),
            "diverged_marked": (dims3, marked),
            "final_loss": (dims3, loss),
            "eta_star": (("gamma",), best),
            "eta_max": (("gamma",), largest),
        },
        coords={"gamma": gammas, "eta": etas, "seed": np.arange(c.seeds), "step": steps},
        attrs={
            "study": NAME,
            "eta_star_rule": "lowest seed-mean test loss over final 10% of steps",
        },
    )
    write_dataset(store.results_path, ds)
    _figures(ds, store, c)

    small, large = gammas < 1, gammas > 1
    best_loss = np.where(marked.any(-1), np.inf, loss.mean(-1)).min(axis=1)  # per γ
    best_idx = int(np.argmin(best_loss))
    return {
        "eta_star": {
            f"{g:.3g}": (None if not np.isfinite(e) else float(e))
            for g, e in zip(gammas, best, strict=True)
        },
        "eta_max": {
            f"{g:.3g}": (None if not np.isfinite(e) else float(e))
            for g, e in zip(gammas, largest, strict=True)
        },
        "eta_star_slope_small_gamma": _slope(gammas[small], best[small]),
        "eta_star_slope_large_gamma": _slope(gammas[large], best[large]),
        "theory_slopes": {"small_gamma": 2.0, "large_gamma": 2.0 / c.depth},
        "best_gamma": float(gammas[best_idx]) if np.isfinite(best_loss[best_idx]) else None,
        "best_loss": float(best_loss[best_idx]) if np.isfinite(best_loss[best_idx]) else None,
        "diverged_fraction": float(marked.mean()),
        "runs": int(grid.num_runs),
        "run_steps": int(grid.num_runs * c.steps),
    }


def _figures(ds: xr.Dataset, store: StudyDir, c: Config) -> None:
    gammas, etas = ds.gamma.values, ds.eta.values
    fig, ax = _plots.figure()
    marked = ds.diverged_marked.values.any(-1)
    _plots.log_heatmap(
        ax, gammas, etas, ds.final_loss.values.mean(-1), mask=marked, label="final test loss"
    )
    ok = np.isfinite(ds.eta_star.values)
    ax.plot(np.log10(gammas[ok]), np.log10(ds.eta_star.values[ok]), "w-o", ms=4, label="η*")
    ax.plot(np.log10(gammas[ok]), np.log10(ds.eta_max.values[ok]), "r--", lw=1, label="η_max")
    ax.set(xlabel="log10 γ", ylabel="log10 η0", title=f"final loss, μP MLP N={c.width} L={c.depth}")
    ax.legend(loc="lower right", fontsize=8)
    _plots.save(fig, store.figure("loss_heatmap"))

    fig, ax = _plots.figure()
    steps = ds.step.values
    picks = np.unique(np.linspace(0, len(gammas) - 1, 5).round().astype(int))
    cmap = _plots.plt.get_cmap("plasma")
    for n, i in enumerate(picks):
        if not ok[i]:
            continue
        j = int(np.argmin(np.abs(etas - ds.eta_star.values[i])))
        curve = ds.test_loss.values[i, j].mean(0)
        ax.loglog(
            steps,
            curve,
            color=cmap(n / max(len(picks) - 1, 1)),
            label=f"γ={gammas[i]:.2g}, η*={etas[j]:.1g}",
        )
    ax.set(xlabel="step", ylabel="test loss", title="loss curves at η*(γ)")
    ax.legend(fontsize=8)
    _plots.save(fig, store.figure("loss_curves"))
