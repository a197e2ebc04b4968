"""The lazy-limit study's entry point: run every dataset, write results.nc, figures and the
summary (theory gaps, kernel distances, which expectations the run shows)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import xarray as xr

from lazyrich.results import StudyDir, write_dataset

from .case import run_case
from .claims import judge_all
from .config import NAME, Config, gamma_grid, kernel_steps, record_steps, validate
from .figures import figures, max_gap


def _nested(c: Config, gammas, values: dict[str, np.ndarray]) -> dict:
    """`{dataset: {width: {gamma: value}}}` from `(width, gamma)` arrays per dataset."""
    return {
        d: {
            str(w): {f"{g:.3g}": _num(v[wi, gi]) for gi, g in enumerate(gammas)}
            for wi, w in enumerate(c.widths)
        }
        for d, v in values.items()
    }


def _num(v) -> float | None:
    return float(v) if np.isfinite(v) else None


def expectations(c: Config, gammas, res: dict[str, dict]) -> dict[str, bool | None]:
    """Which of the theory's expectations the measured numbers show."""
    gap = {d: max_gap(r["gap"]) for d, r in res.items()}
    gap_inf = {d: max_gap(r["gap_infinite"]) for d, r in res.items()}
    kd = {d: r["kernel_distance"][..., -1] for d, r in res.items()}
    small = gammas <= 1e-2 * (1 + 1e-9)
    order = np.argsort(c.widths)

    def rising(v):  # per width: the largest non-diverged γ above the smallest
        ok = [row[np.isfinite(row)] for row in v]
        return all(r.size >= 2 and r[-1] > r[0] for r in ok)

    return {
        "empirical_gap_below_5pct_at_gamma_le_1e-2": (
            bool(all(np.all(g[:, small] < 0.05) for g in gap.values())) if small.any() else None
        ),
        "empirical_gap_larger_at_largest_gamma": (
            all(rising(g) for g in gap.values()) if gammas.size > 1 else None
        ),
        "infinite_gap_shrinks_with_width_at_smallest_gamma": (
            bool(all(np.all(np.diff(g[order, 0]) < 0) for g in gap_inf.values()))
            if len(c.widths) > 1
            else None
        ),
        "kernel_distance_larger_at_largest_gamma": (
            all(rising(v) for v in kd.values()) if gammas.size > 1 else None
        ),
    }


def run(c: Config, store: StudyDir, *, progress: bool = True, devices: int | None = None) -> dict:
    """Train, predict, compare; write results.nc and figures; return the summary.

    `devices` is accepted like every study's, and unused: `lazyrich.theory.lazy_vs_network`
    trains each width in one process on the default device."""
    del devices
    validate(c)
    gammas = gamma_grid(c)
    steps = record_steps(c)
    ksteps = kernel_steps(c, steps)
    res = {d: run_case(c, d, gammas, steps, ksteps, progress) for d in c.datasets}
    per_seed = [res] + [
        {d: run_case(replace(c, seed=c.seed + k), d, gammas, steps, ksteps, progress)
         for d in c.datasets}
        for k in range(1, c.seeds)
    ]  # fmt: skip
    seeds = [c.seed + k for k in range(c.seeds)]
    write_dataset(store.results_path, _dataset(c, gammas, steps, ksteps, res, per_seed, seeds))
    order = np.argsort(c.widths)
    figures(c, gammas, steps, ksteps, res, store, order)
    return {
        "datasets": list(c.datasets),
        "widths": list(c.widths),
        "gammas": [float(g) for g in gammas],
        "theory_gap": _nested(c, gammas, {d: max_gap(r["gap"]) for d, r in res.items()}),
        "theory_gap_infinite": _nested(
            c, gammas, {d: max_gap(r["gap_infinite"]) for d, r in res.items()}
        ),
        "kernel_distance_final": _nested(
            c, gammas, {d: r["kernel_distance"][..., -1] for d, r in res.items()}
        ),
        "init_ntk_distance_to_infinite": {
            d: {str(w): float(r["init_to_inf"][i]) for i, w in enumerate(c.widths)}
            for d, r in res.items()
        },
        "diverged_runs": int(sum(r["diverged"].sum() for r in res.values())),
        "expectations": expectations(c, gammas, res),
        "seeds": seeds,
        "shown_seed": c.seed,
        "per_seed": {
            str(s): _seed_summary(c, gammas, r) for s, r in zip(seeds, per_seed, strict=True)
        },
        "claims": judge_all(c, gammas, per_seed),
    }


def _seed_summary(c: Config, gammas, r: dict[str, dict]) -> dict:
    """One seed's largest gaps and init-kernel distances (what the claims are fitted on)."""
    return {
        "theory_gap": _nested(c, gammas, {d: max_gap(v["gap"]) for d, v in r.items()}),
        "theory_gap_infinite": _nested(
            c, gammas, {d: max_gap(v["gap_infinite"]) for d, v in r.items()}
        ),
        "init_ntk_distance_to_infinite": {
            d: {str(w): float(v["init_to_inf"][i]) for i, w in enumerate(c.widths)}
            for d, v in r.items()
        },
    }


def _dataset(c: Config, gammas, steps, ksteps, res, per_seed, seeds) -> xr.Dataset:
    st = lambda k: np.stack([res[d][k] for d in c.datasets])
    by_seed = lambda f: np.stack([np.stack([f(r[d]) for d in c.datasets]) for r in per_seed])
    full = ("dataset", "width", "gamma", "step")
    return xr.Dataset(
        {
            "train_loss": (full, st("train_loss")),
            "test_loss": (full, st("test_loss")),
            "pred_train_loss": (full, st("emp_train")),
            "pred_test_loss": (full, st("emp_test")),
            "inf_train_loss": (("dataset", "gamma", "step"), st("inf_train")),
            "inf_test_loss": (("dataset", "gamma", "step"), st("inf_test")),
            "gap": (full, st("gap")),
            "gap_infinite": (full, st("gap_infinite")),
            "kernel_distance": (
                ("dataset", "width", "gamma", "kernel_step"),
                st("kernel_distance"),
            ),
            "init_ntk_distance_to_infinite": (("dataset", "width"), st("init_to_inf")),
            "theory_gap_by_seed": (
                ("seed", "dataset", "width", "gamma"),
                by_seed(lambda v: max_gap(v["gap"])),
            ),
            "theory_gap_infinite_by_seed": (
                ("seed", "dataset", "width", "gamma"),
                by_seed(lambda v: max_gap(v["gap_infinite"])),
            ),
            "init_ntk_distance_to_infinite_by_seed": (
                ("seed", "dataset", "width"),
                by_seed(lambda v: np.asarray(v["init_to_inf"])),
            ),
            "diverged": (("dataset", "width", "gamma"), st("diverged")),
            "eta0": (("dataset", "gamma"), st("eta0")),
            "float64": (("dataset", "gamma"), st("float64")),
        },
        coords={
            "dataset": list(c.datasets),
            "width": list(c.widths),
            "gamma": gammas,
            "step": steps,
            "kernel_step": ksteps,
            "seed": seeds,
        },
        attrs={
            "study": NAME,
            "loss": "1/(2P) sum (f - y)^2, one output",
            "gap": "|measured - predicted| / predicted, max(train, test) per step",
            "shown_seed": "the per-step arrays are the first seed's; *_by_seed hold every seed",
            "learning_rate": "eta0 * width (muP)",
            "eta0": "lr * P / lambda_max(N Theta_inf) * s(gamma)",
            "s_gamma": "gamma^2 for gamma <= 1, gamma^(2/L) above, L = depth weight layers",
        },
    )
