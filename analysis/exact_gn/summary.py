"""Summary of the exact Gauss-Newton study (`analysis/exact_gn`): headline numbers, the tuned
learning rates, the matched-train-loss comparison, the rank effect, and the claims.

Every verdict rule below is fixed in code before any run; intervals over seeds are Student-t
90% intervals (n − 1 degrees of freedom), undecided with a single seed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr
from scipy import stats

if TYPE_CHECKING:
    from .config import Config

PAPER = "Buffelli et al. 2024 (exact GN in reversible nets), PAPERS.md §2"
BASELINES = ("adam", "sgd")


def epochs_to_level(train_loss: np.ndarray, level: float) -> int | None:
    """First epoch whose train loss is <= `level`, or None if none is."""
    hit = np.nonzero(train_loss <= level)[0]
    return int(hit[0]) if hit.size else None


def _f(v) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


def t_interval(values, level: float = 0.9) -> tuple[float, float, float]:
    """Mean and Student-t `level` interval over seeds; (mean, nan, nan) for fewer than 2."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size < 2:
        m = float(v.mean()) if v.size else float("nan")
        return m, float("nan"), float("nan")
    m, se = float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size))
    q = float(stats.t.ppf(0.5 + level / 2, v.size - 1))
    return m, m - q * se, m + q * se


def _sign_verdict(lo: float, hi: float, positive: bool = True) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "undecided"
    if (lo > 0) if positive else (hi < 0):
        return "agrees"
    if (hi < 0) if positive else (lo > 0):
        return "disagrees"
    return "undecided"


SIGN_RULE = (
    "agrees if the 90% Student-t interval over seeds ({n} seeds, {n1} dof) of {what} excludes 0 "
    "on the claimed side ({side}); disagrees if it excludes 0 on the other side; undecided "
    "otherwise (or with one seed)"
)


def _curve(ds: xr.Dataset, s: str, o: str, var: str = "train_loss") -> np.ndarray:
    return ds[var].sel(setting=s, optimizer=o).values  # (seed, epoch)


def summarize(ds: xr.Dataset, c: Config) -> dict:
    """The headline numbers of `ds` (see the module DESCRIPTION) and the claims."""
    out: dict = {
        "loss": c.loss,
        "normalize": c.normalize,
        "seeds": [int(s) for s in ds.seed.values],
        "data": f"{c.dataset}: the first {c.n_train} training and {c.n_test} test examples "
        f"of the files (full batch: the first {c.full_batch}; rank: the first {c.rank_batch})",
        "target_fraction": c.target_fraction,
        "train_loss_level": {},
    }
    for s in map(str, ds.setting.values):
        e_s = int(ds.epochs.sel(setting=s))
        init = np.nanmean(ds.train_loss.sel(setting=s).values[:, :, 0], 0)  # per seed
        out["train_loss_level"][s] = c.target_fraction * float(np.nanmean(init))
        out[s] = {}
        spe = int(ds.steps_per_epoch.sel(setting=s))
        for o in map(str, ds.optimizer.values):
            tl = _curve(ds, s, o)
            if not np.isfinite(tl[:, 0]).any():
                continue
            ch = ds.batch_loss_change.sel(setting=s, optimizer=o).values[:, : e_s * spe]
            last = lambda v, e=e_s: _f(np.nanmean(v[:, e]))  # noqa: E731
            out[s][o] = {
                "lr": _f(ds.lr.sel(setting=s, optimizer=o)),
                "final_train_loss": last(tl),
                "final_test_loss": last(_curve(ds, s, o, "test_loss")),
                "final_train_accuracy": last(_curve(ds, s, o, "train_accuracy")),
                "final_test_accuracy": last(_curve(ds, s, o, "test_accuracy")),
                "epochs_to_train_loss": [
                    epochs_to_level(tl[k, : e_s + 1], c.target_fraction * tl[k, 0])
                    for k in range(tl.shape[0])
                ],
                "mean_batch_loss_drop": _f(-np.nanmean(ch)),
                "last_epoch_batch_loss_drop": _f(-np.nanmean(ch[:, -spe:])),
                "gn_fit_at_init": _f(np.nanmean(ds.gn_fit.sel(setting=s, optimizer=o).values))
                if np.isfinite(ds.gn_fit.sel(setting=s, optimizer=o).values).any()
                else None,
                "ntk_similarity_final": _f(np.nanmean(_last_measured(ds, s, o, "ntk_similarity"))),
                "kernel_distance_final": _f(
                    np.nanmean(_last_measured(ds, s, o, "kernel_distance"))
                ),
            }
    out["tuning"] = {
        str(o): {
            "lrs": [_f(v) for v in ds.tune_lr.sel(tune_optimizer=o).values],
            "final_train_loss_seed_mean": [
                _f(np.mean(v)) for v in ds.tune_final_train_loss.sel(tune_optimizer=o).values
            ],
            "tuned_lr": _f(ds.lr.sel(setting="full", optimizer=o)),
            "rule": "the lowest seed-mean final full-batch train loss (paper's rate included)",
        }
        for o in ds.tune_optimizer.values
        if str(o) != "none" and "full" in ds.setting.values
    }
    out["matched_train_loss"] = matched_train_loss(ds, c)
    out["claims"] = claims(ds, out, c)
    return out


def _last_measured(ds: xr.Dataset, s: str, o: str, var: str) -> np.ndarray:
    e = int(ds.epochs.sel(setting=s))
    return ds[var].sel(setting=s, optimizer=o, measure_epoch=e).values


MATCH_RULE = (
    "per setting and seed, each optimizer's test loss, NTK similarity, kernel distance and CKA "
    "at its first measured epoch >= 1 whose train loss is <= level; level = {level}"
)


def matched_train_loss(ds: xr.Dataset, c: Config, opts=("gn", "adam", "sgd")) -> dict:
    """Per setting and seed: the laziness measures and the test loss of each optimizer in `opts`
    at a train loss all of them reach (see Config's `match_fraction`), or a sentence saying
    that it never reaches the level."""
    common = c.match_fraction == 0
    out: dict = {
        "rule": MATCH_RULE.format(
            level="the highest of the optimizers' lowest train losses over those epochs "
            "(every optimizer with a finite loss reaches it)"
            if common
            else f"{c.match_fraction} × the initial train loss"
        )
    }
    me = ds.measure_epoch.values
    later = me >= 1
    names = [o for o in opts if o in ds.optimizer.values]
    for s in map(str, ds.setting.values):
        if s == "rank":
            continue
        per_seed = []
        for k in range(ds.sizes["seed"]):
            rs = ds.sel(setting=s).isel(seed=k)
            initial = float(rs.train_loss.sel(optimizer=names[0]).values[0])
            losses = {o: rs.train_loss.sel(optimizer=o, epoch=me).values for o in names}
            lowest = {
                o: float(np.min(v[later & np.isfinite(v)]))
                for o, v in losses.items()
                if np.isfinite(v[later]).any()
            }
            level = (
                (max(lowest.values()) if lowest else np.nan)
                if common
                else (c.match_fraction * initial)
            )
            res: dict = {"seed": int(ds.seed.values[k]), "level": _f(level)}
            res["initial_train_loss"] = initial
            for o, v in losses.items():
                hit = np.nonzero(later & (v <= level))[0]
                if not hit.size:
                    res[o] = f"never reaches the level {level:.4g}" + (
                        f": its lowest train loss at a measured epoch is {lowest[o]:.4g}"
                        if o in lowest
                        else ""
                    )
                    continue
                r = rs.sel(optimizer=o).isel(measure_epoch=int(hit[0]))
                res[o] = {
                    "epoch": int(me[hit[0]]),
                    "train_loss": float(v[hit[0]]),
                    "test_loss": _f(rs.test_loss.sel(optimizer=o, epoch=me[hit[0]]).item()),
                    "ntk_similarity": _f(r.ntk_similarity.item()),
                    "kernel_distance": _f(r.kernel_distance.item()),
                    "cka": [_f(x) for x in r.cka.values],
                }
            per_seed.append(res)
        out[s] = per_seed
    return out


def _claim(cid, claim, theory, m, verdict, rule, figure, note=None) -> dict:
    out = {
        "id": cid,
        "paper": PAPER,
        "claim": claim,
        "theory": theory,
        "measured": {"value": _f(m[0]), "lo": _f(m[1]), "hi": _f(m[2])},
        "verdict": verdict if all(np.isfinite(m)) else "undecided",
        "rule": rule,
        "figure": figure,
    }
    if note:
        out["note"] = note
    return out


def claims(ds: xr.Dataset, summary: dict, c: Config) -> list[dict]:
    """The four claims of PAPERS.md §2 (only those whose runs are present)."""
    settings = {str(s) for s in ds.setting.values}
    opts = {str(o) for o in ds.optimizer.values}
    n = ds.sizes["seed"]
    sign_rule = lambda what, side: SIGN_RULE.format(n=n, n1=max(n - 1, 0), what=what, side=side)  # noqa: E731
    base = [o for o in BASELINES if o in opts]
    out: list[dict] = []
    if "full" in settings and "gn" in opts and base:
        e = int(ds.epochs.sel(setting="full"))
        ep = {
            o: [v if v is not None else e + 1 for v in summary["full"][o]["epochs_to_train_loss"]]
            for o in ["gn", *base]
        }
        diff = np.min([ep[o] for o in base], 0) - np.asarray(ep["gn"])
        lrs = ", ".join(f"{o} {summary['full'][o]['lr']:g}" for o in base)
        out.append(
            _claim(
                "full_batch_gn_fewer_epochs",
                "Full-batch exact GN reaches a given train loss in fewer epochs than Adam and SGD.",
                "epochs(best of Adam, SGD) − epochs(GN) > 0",
                t_interval(diff),
                _sign_verdict(*t_interval(diff)[1:]),
                sign_rule(
                    f"epochs(faster of tuned Adam/SGD) − epochs(GN) to {c.target_fraction} × "
                    f"the initial train loss (never reached within {e} epochs counts as {e + 1})",
                    "> 0",
                ),
                "figures/curves.png",
                f"tuned rates: {lrs}; per seed: GN {ep['gn']}, "
                + ", ".join(f"{o} {ep[o]}" for o in base),
            )
        )
    matched = summary["matched_train_loss"].get("full")
    if matched and "gn" in opts and base:

        def at(key, o, k, agg=lambda v: v):  # noqa: E306
            m = matched[k][o]
            return agg(m[key]) if isinstance(m, dict) else np.nan

        gen = [
            at("test_loss", "gn", k) - np.nanmin([at("test_loss", o, k) for o in base])
            for k in range(n)
        ]
        where = "; ".join(
            f"seed {m['seed']}: level {m['level']:.3g}, epochs "
            + ", ".join(
                f"{o} {m[o]['epoch']}" if isinstance(m[o], dict) else f"{o} —"
                for o in ["gn", *base]
            )
            for m in matched
        )
        out.append(
            _claim(
                "gn_generalises_worse_at_matched_loss",
                "At a matched train loss, full-batch exact GN has a higher test loss than "
                "Adam and SGD.",
                "test(GN) − test(better of Adam, SGD) > 0",
                t_interval(gen),
                _sign_verdict(*t_interval(gen)[1:]),
                sign_rule(
                    "test loss of GN − the lower of tuned Adam's and SGD's, each at its first "
                    "measured epoch >= 1 at or below the matched train loss (matched_train_loss)",
                    "> 0",
                ),
                "figures/curves.png",
                where,
            )
        )
        for cid, key, agg, name in (
            ("gn_lazier_ntk_at_matched_loss", "ntk_similarity", lambda v: v, "NTK similarity"),
            ("gn_lazier_cka_at_matched_loss", "cka", np.mean, "block-mean CKA to init"),
        ):
            if "adam" not in opts:
                continue
            d = [at(key, "gn", k, agg) - at(key, "adam", k, agg) for k in range(n)]
            values = "; ".join(
                f"{o} " + ", ".join(f"{at(key, o, k, agg):.4g}" for k in range(n))
                for o in ("gn", "adam", "sgd")
                if o in opts
            )
            out.append(
                _claim(
                    cid,
                    f"Exact GN training stays lazy: at a matched train loss its {name} is "
                    "higher than Adam's.",
                    f"{name}(GN) − {name}(Adam) > 0",
                    t_interval(d),
                    _sign_verdict(*t_interval(d)[1:]),
                    sign_rule(
                        f"{name} of GN − tuned Adam's, full batch, at the matched train loss",
                        "> 0",
                    ),
                    "figures/ntk_cka_vs_loss.png",
                    f"{where}; {name} at the match per seed: {values}",
                )
            )
    if "mini" in settings and "gn" in opts:
        ratio = saturation_ratio(ds)
        drop = batch_drop_second_half(ds)
        out.append(
            _claim(
                "mini_batch_gn_saturates",
                "With mini-batches exact GN's progress on the training loss saturates: each "
                "step still fits its batch while the full train loss stops improving.",
                f"R < {c.plateau_tol}",
                t_interval(ratio),
                _ratio_verdict(t_interval(ratio), c.plateau_tol),
                f"R = (per-step relative fall of the full train loss over the second half of "
                f"the mini-batch epochs) / (mean per-batch relative loss drop over the same "
                f"steps); agrees if the 90% Student-t interval over seeds ({n} seeds) lies "
                f"below {c.plateau_tol}, disagrees if it lies above, undecided otherwise",
                "figures/batch_loss_drop.png",
                f"per seed R = {[round(float(r), 4) for r in ratio]}; a GN step at lr "
                f"{c.gn_lr_mini} removes on average {float(np.mean(drop)):.3g} of its own batch's "
                "loss over those steps (1 would be a step that fits its batch)",
            )
        )
    return out


def _ratio_verdict(m: tuple[float, float, float], tol: float) -> str:
    if not (np.isfinite(m[1]) and np.isfinite(m[2])):
        return "undecided"
    return "agrees" if m[2] < tol else "disagrees" if m[1] > tol else "undecided"


def batch_drop_second_half(ds: xr.Dataset) -> np.ndarray:
    """Per seed, mini-batch GN: the mean relative drop of each step's own batch loss over the
    second half of the epochs (the denominator of `saturation_ratio`)."""
    e = int(ds.epochs.sel(setting="mini"))
    spe = int(ds.steps_per_epoch.sel(setting="mini"))
    ch = ds.batch_loss_change.sel(setting="mini", optimizer="gn").values
    return -np.nanmean(ch[:, (e // 2) * spe : e * spe], 1)


def saturation_ratio(ds: xr.Dataset) -> np.ndarray:
    """Per seed, mini-batch GN: the per-step relative fall of the full train loss over the
    second half of the epochs, divided by the mean per-batch relative drop over those steps."""
    e = int(ds.epochs.sel(setting="mini"))
    spe = int(ds.steps_per_epoch.sel(setting="mini"))
    half = e // 2
    tl = _curve(ds, "mini", "gn")
    steps = (e - half) * spe
    full = 1.0 - (tl[:, e] / tl[:, half]) ** (1.0 / steps)
    return full / batch_drop_second_half(ds)
