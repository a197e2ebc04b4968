"""Read-out of one γ–η case: η*, η_max, fits, sharpness, ultra-rich curves, summary."""

from __future__ import annotations

from typing import Any

import numpy as np

from lazyrich.fit import FitResult
from lazyrich.train import log_steps

from . import dynamics as dyn
from . import protocol as proto
from .fits import broken_fit
from .per_seed import (
    best_gamma_per_seed,
    budget_change,
    eta_star_per_seed,
    plateau_per_seed,
    slopes_per_seed,
)
from .setup import OnlineSetup
from .sharpness import sharpness_along


def _slopes(prefix: str, fit: FitResult | None, reason: dict) -> dict[str, Any]:
    if fit is None:
        return {
            f"{prefix}_slope_small_gamma": reason["not_measured"],
            f"{prefix}_slope_large_gamma": reason["not_measured"],
        }
    return {
        f"{prefix}_slope_small_gamma": fit["b1"].to_dict(),
        f"{prefix}_slope_large_gamma": fit["b2"].to_dict(),
    }


def _crossover(fit: FitResult | None, reason: dict) -> Any:
    if fit is None:
        return reason["not_measured"]
    xc = fit["log10_xc"]
    return {"mean": 10**xc.mean, "lo": 10**xc.lo, "hi": 10**xc.hi}


def _ls_slope(x: np.ndarray, y: np.ndarray) -> float | str:
    ok = np.isfinite(y) & (y > 0)
    if ok.sum() < 2:
        return "too few points to fit a slope (least squares needs 2)"
    return float(np.polyfit(np.log10(x[ok]), np.log10(y[ok]), 1)[0])


def _per_gamma(gammas, values) -> dict[str, float | None]:
    return {
        f"{g:.3g}": (float(v) if np.isfinite(v) else None)
        for g, v in zip(gammas, values, strict=True)
    }


def _per_gamma_seed(gammas, values) -> dict[str, list[float | None]]:
    return {
        f"{g:.3g}": [float(v) if np.isfinite(v) else None for v in row]
        for g, row in zip(gammas, values, strict=True)
    }


def rich_indices(gammas: np.ndarray, wanted, per_decade: float) -> list[int]:
    """Grid indices of γ > 1 nearest to each wanted γ (within half a grid step), unique."""
    out = []
    for w in wanted:
        i = int(np.argmin(np.abs(np.log10(gammas) - np.log10(w))))
        close = abs(np.log10(gammas[i]) - np.log10(w)) <= 0.5 / per_decade + 1e-9
        if close and gammas[i] > 1 and i not in out:
            out.append(i)
    return sorted(out)


def rich_curves(c, gammas, steps, depth, k_win, etas, stable, test_loss, eta_star, loss0):
    """Loss curves at the rich γ: at the largest η0 stable at all of them, else at η*."""
    idx = rich_indices(gammas, c.rich_gammas, c.gamma_per_decade)
    common = None
    if idx:
        sets = [set(k_win[i][stable[i]].tolist()) for i in idx]
        shared = set.intersection(*sets)
        common = min(shared) if shared else None
    curves, taus, drops, plateaus = [], [], [], []
    for i in idx:
        if common is not None:
            j = int(np.nonzero(k_win[i] == common)[0][0])
        elif np.isfinite(eta_star[i]):
            j = int(np.argmin(np.abs(etas[i] - eta_star[i])))
        else:
            continue
        curve = test_loss[i, j].mean(0)
        curves.append((float(gammas[i]), float(etas[i, j]), curve))
        taus.append(dyn.rescale(steps, etas[i, j], gammas[i], depth))
        drops.append(dyn.detect_drops(steps, curve, loss0))
        plateaus.append(dyn.plateau_length(steps, curve, loss0))
    score, _ = dyn.collapse_score(taus, [cv[2] for cv in curves])
    raw, _ = dyn.collapse_score([steps] * len(curves), [cv[2] for cv in curves])
    why = "needs two rich γ (see --rich-gammas) with a stable run and overlapping times"
    return {
        "curves": curves,
        "tau": taus,
        "drops": drops,
        "score": why if score is None else round(score, 4),
        "score_raw": why if raw is None else round(raw, 4),
        "eta_rule": "common eta0" if common is not None else "eta_star per gamma",
        "summary": [
            {
                "gamma": g,
                "eta": e,
                "plateau_end_step": p,
                "drops": d,
                "staircase_steps": len(d),
            }
            for (g, e, _), p, d in zip(curves, plateaus, drops, strict=True)
        ],
    }


def analyse_case(
    c, setup: OnlineSetup, *, label, arch="mlp", width=None, depth, gammas, steps, probe_k,
    probe, censored, k_win, etas, main, fixed, loss0, budget=None,
) -> dict[str, Any]:  # fmt: skip
    """Everything the study reports about one case; arrays for results.nc and figures."""
    marked = proto.divergence_rule(main["diverged"])
    final = proto.final_loss(main["test_loss"], steps)
    best, largest, best_loss = proto.eta_star(final, marked, etas)
    stable = np.asarray(~marked.any(-1))
    # η_max is only a lower bound where the probe saw no divergence and the window top is stable
    censored = np.asarray(censored, bool)
    eta_max_fit = np.where(censored & stable[:, -1], np.nan, largest)

    # a γ still on its plateau at η* (seed-mean loss never below 0.9·loss0) is flagged: its η*
    # is the fastest plateau escape within the budget, not an optimum, and is left out of fits
    j_star = np.array([
        int(np.argmin(np.abs(etas[i] - best[i]))) if np.isfinite(best[i]) else 0
        for i in range(gammas.size)
    ])  # fmt: skip
    curve_at_star = main["test_loss"][np.arange(gammas.size), j_star].mean(1)
    curve_at_star[~np.isfinite(best)] = np.nan
    plateau = np.isfinite(best) & ~np.any(curve_at_star <= dyn.PLATEAU_FRACTION * loss0, axis=1)
    best_fit = np.where(plateau, np.nan, best)

    # per seed (the claims' unit): η*, η_max, plateau flags; censored η_max left out
    star_s, max_s, idx_s = eta_star_per_seed(final, marked, etas)
    plateau_s = plateau_per_seed(main["test_loss"], idx_s, star_s, loss0)
    star_s_fit = np.where(plateau_s, np.nan, star_s)
    max_s_fit = np.where(censored[:, None] & ~marked[:, -1, :], np.nan, max_s)

    # sharpness along training at each seed's η*(γ), that seed's init and stream replayed
    checkpoints = np.concatenate([[0], log_steps(c.steps, c.sharpness_points)])
    checkpoints = np.unique(checkpoints)
    n_seed = final.shape[-1]
    sharp_s = np.full((gammas.size, n_seed, c.sharpness_points + 1), np.nan)
    # every seed, every γ (NaN η* masked): equal shapes, so all seeds share one compiled program;
    # the sweep's precision rule, so the replay is the sweep's trajectory
    x64 = {"auto": lambda hp: hp["gamma"] < 1e-2, "always": True, "never": False}[c.float64]
    for s in range(n_seed):
        if np.isfinite(star_s[:, s]).any():
            lam, _ = sharpness_along(
                setup,
                gammas,
                star_s[:, s],
                checkpoints,
                fixed_x=fixed[0],
                fixed_y=fixed[1],
                seed=s,
                num_iters=c.sharpness_iters,
                x64=x64,
            )
            sharp_s[:, s, : lam.shape[1]] = lam
    count = np.isfinite(sharp_s).sum(1)  # the seed mean over the seeds measured
    sharp = np.where(count > 0, np.nansum(sharp_s, 1) / np.maximum(count, 1), np.nan)
    ok = np.nonzero(count[:, 0] > 0)[0]
    final_sharp = sharp[:, checkpoints.size - 1]
    sharp_s_fit = np.where(plateau_s, np.nan, sharp_s[:, :, checkpoints.size - 1])
    slopes_s = {
        "eta_star": slopes_per_seed(gammas, star_s_fit),
        "eta_max": slopes_per_seed(gammas, max_s_fit),
        "sharpness": slopes_per_seed(gammas, sharp_s_fit),
    }

    # staircases: per seed, the curve at its own η* at the largest rich γ, its drops counted
    # (drops closer than a doubling of time merged: a plateau between steps must be a plateau)
    ri = rich_indices(gammas, c.rich_gammas, c.gamma_per_decade)
    staircase = None
    if ri:
        top = ri[-1]
        counts = [
            float(dyn.staircase_steps(steps, main["test_loss"][top, idx_s[top, s], s], loss0))
            if np.isfinite(star_s[top, s])
            else float("nan")
            for s in range(n_seed)
        ]
        staircase = {
            "gamma": float(gammas[top]),
            "eta_per_seed": [float(v) for v in star_s[top]],
            "steps_per_seed": counts,
        }

    # the step-budget control (run.py): the same γ ≥ 1 rows at budget_factor × steps
    control: dict[str, Any] | None = None
    if budget is not None:
        rows = budget["rows"]
        control = budget_change(
            gammas[rows], etas[rows], star_s_fit[rows], budget["sweep"], budget["steps"], loss0
        )
        control["steps"] = int(budget["steps"][-1])

    fits, fit_dicts = {}, {}
    sharp_fit = np.where(plateau, np.nan, final_sharp)
    for key, values in (
        ("eta_star", best_fit),
        ("eta_max", eta_max_fit),
        ("sharpness", sharp_fit),
    ):
        fit_dicts[key], fits[key] = broken_fit(
            gammas, values, method=c.fit_method, samples=c.fit_samples
        )

    rich = rich_curves(c, gammas, steps, depth, k_win, etas, stable, main["test_loss"], best, loss0)

    has = np.isfinite(best_loss)
    best_i = int(np.argmin(np.where(has, best_loss, np.inf)))
    small, large = gammas < 1, gammas > 1
    summary: dict[str, Any] = {
        "arch": arch,
        "depth": depth,
        "width": c.width if width is None else width,
        "eta_star": _per_gamma(gammas, best),
        "eta_max": _per_gamma(gammas, largest),
        "eta_max_censored_gammas": [float(g) for g in gammas[censored & stable[:, -1]]],
        "plateau_flagged_gammas": [float(g) for g in gammas[plateau]],
        "plateau_flagged_left_out_of_fits": int(plateau.sum()),
        **_slopes("eta_star", fits["eta_star"], fit_dicts["eta_star"]),
        **_slopes("eta_max", fits["eta_max"], fit_dicts["eta_max"]),
        "gamma_crossover": _crossover(fits["eta_star"], fit_dicts["eta_star"]),
        "eta_max_gamma_crossover": _crossover(fits["eta_max"], fit_dicts["eta_max"]),
        **_slopes("sharpness", fits["sharpness"], fit_dicts["sharpness"]),
        "sharpness_init_slope_small_gamma_least_squares": _ls_slope(gammas[small], sharp[small, 0]),
        "sharpness_init_slope_large_gamma_least_squares": _ls_slope(gammas[large], sharp[large, 0]),
        "theory": {
            "eta_slope_small_gamma": 2.0,
            "eta_slope_large_gamma": 2.0 / depth,
            "sharpness_slope_small_gamma": -2.0,
            "sharpness_slope_large_gamma": -2.0 / depth,
            "depth_convention": f"L = {depth} weight layers",
            **(
                {
                    "cnn_note": "L = 4 weight layers (conv, conv, fc, readout); 2/L is the MLP "
                    "law applied by counting weight layers, not derived for convolutions"
                }
                if arch == "cnn"
                else {}
            ),
        },
        "fits": fit_dicts,
        "best_gamma": float(gammas[best_i]) if has.any() else None,
        "best_loss": float(best_loss[best_i]) if has.any() else None,
        "best_gamma_per_seed": best_gamma_per_seed(gammas, final, marked),
        "initial_loss": loss0,
        "collapse_score": rich["score"],
        "collapse_score_unrescaled": rich["score_raw"],
        "ultra_rich": {"eta_rule": rich["eta_rule"], "runs": rich["summary"]},
        "sharpness": {
            f"{g:.3g}": [float(v) for v in row]
            for g, row in zip(gammas[ok], sharp[ok], strict=True)
        },
        "diverged_fraction": float(marked.mean()),
        "budget_control": control,
        "staircase": staircase,
        "per_seed": {
            "eta_star": _per_gamma_seed(gammas, star_s),
            "eta_max": _per_gamma_seed(gammas, max_s),
            "plateau_flagged_gammas": [
                [float(g) for g in gammas[plateau_s[:, s]]] for s in range(n_seed)
            ],
            "sharpness_final": _per_gamma_seed(gammas, sharp_s[:, :, checkpoints.size - 1]),
            "slopes": slopes_s,
            "rule": "per seed: η* is the η of that seed's lowest final loss among the η it "
            "survived, η_max the largest; a broken power law (least squares) fitted per seed",
        },
    }
    # the lattice spans the probe's and every window's offsets (a window may end above the
    # probe's smallest η: a short --window-decades)
    lattice_k = np.arange(0, max(int(k_win.max()), int(probe_k.max())) + 1)
    lat_loss = np.full((gammas.size, lattice_k.size), np.nan)
    lat_div = np.zeros((gammas.size, lattice_k.size), bool)
    probe_marked = proto.divergence_rule(probe["diverged"][:, ::-1].any(-1, keepdims=True))[
        :, ::-1, 0
    ]
    lat_div[:, probe_k] = probe_marked
    mean_final = np.where(marked, np.nan, final).mean(-1)
    for i in range(gammas.size):
        lat_loss[i, k_win[i]] = mean_final[i]
        lat_div[i, k_win[i]] = marked[i].any(-1)
    order = np.argsort(-lattice_k)  # ascending η for the heat map
    arrays = {
        "eta": etas,
        **{k: main[k] for k in ("train_loss", "test_loss", "test_accuracy", "diverged")},
        "diverged_step": main["diverged_step"],
        "diverged_marked": marked,
        "final_loss": final,
        "eta_star": best,
        "eta_max": largest,
        "censored": censored,
        "probe_diverged": probe["diverged"],
        "sharpness": sharp,
        "eta_star_per_seed": star_s,
        "eta_max_per_seed": max_s,
        "sharpness_per_seed": sharp_s,
        "sharpness_step": np.pad(
            checkpoints, (0, c.sharpness_points + 1 - checkpoints.size), constant_values=-1
        ),
    }
    return {
        "label": label,
        "depth": depth,
        "gammas": gammas,
        "steps": steps,
        "eta_star": best,
        "eta_star_fit": best_fit,
        "plateau": plateau,
        "eta_max": largest,
        "lattice": proto.lattice(c.eta_max, c.eta_per_decade, lattice_k[order]),
        "lattice_loss": lat_loss[:, order],
        "lattice_diverged": lat_div[:, order],
        "curve_at_star": curve_at_star,
        "fits": fits,
        "sharp_gammas": gammas[ok],
        "sharpness": sharp[ok][:, : checkpoints.size],
        "rich": rich,
        "summary": summary,
        "arrays": arrays,
    }
