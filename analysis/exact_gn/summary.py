"""Summary of the exact Gauss-Newton study (`analysis/exact_gn`): headline numbers, the tuned
learning rates, the matched-train-loss comparison and the per-seed saturation ratio (the claims
are in `claims`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

if TYPE_CHECKING:
    from .config import Config


def epochs_to_level(train_loss: np.ndarray, level: float) -> int | None:
    """First epoch whose train loss is <= `level`, or None if none is."""
    hit = np.nonzero(train_loss <= level)[0]
    return int(hit[0]) if hit.size else None


def _f(v) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


def _curve(ds: xr.Dataset, s: str, o: str, var: str = "train_loss") -> np.ndarray:
    return ds[var].sel(setting=s, optimizer=o).values  # (seed, epoch)


def summarize(ds: xr.Dataset, c: Config) -> dict:
    """The headline numbers of `ds` (see the module DESCRIPTION); `claims.judge_claims` judges
    the claims on them."""
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
    return out


def _last_measured(ds: xr.Dataset, s: str, o: str, var: str) -> np.ndarray:
    e = int(ds.epochs.sel(setting=s))
    return ds[var].sel(setting=s, optimizer=o, measure_epoch=e).values


MATCH_TOLERANCE = 0.02
MATCH_RULE = (
    "per setting and seed, each optimizer's test loss and accuracy, train accuracy, NTK "
    "similarity, kernel distance and CKA at its measured epoch >= 1 whose train loss is closest "
    "to the level, if within {tol:.0%} of it (else no match for that optimizer and seed); "
    "level = {level}"
)
COMMON_LEVEL = (
    "per seed, the lowest train loss at which every optimizer has a measured epoch >= 1 within "
    "{tol:.0%} of it (searched on a log grid over their losses' range); where there is none, "
    "the level whose worst optimizer comes closest (and that optimizer has no match)"
)
LEVEL_GRID = 4096  # log-spaced candidate levels: spacing well below the 2% tolerance


def mismatch(losses: dict[str, np.ndarray], level: float) -> dict[str, float]:
    """Per optimizer, the relative distance `|loss/level − 1|` of its closest finite loss.

    **Arguments:**

    - `losses`: per optimizer, its train losses at the measured epochs that may match.
    - `level`: the train-loss level (> 0).

    **Returns:** `{optimizer: distance}` (`inf` for an optimizer without a finite loss).
    """
    out = {}
    for o, v in losses.items():
        v = v[np.isfinite(v)]
        out[o] = float(np.min(np.abs(v / level - 1.0))) if v.size else np.inf
    return out


def common_level(losses: dict[str, np.ndarray], tol: float = MATCH_TOLERANCE) -> float:
    """The lowest level at which every optimizer has a loss within `tol` (relative) of it;
    if no level has, the level that minimises the worst optimizer's distance.

    **Arguments:**

    - `losses`: per optimizer, its train losses at the measured epochs that may match.
    - `tol`: the relative tolerance.

    **Returns:** the level (NaN when some optimizer has no finite positive loss).
    """
    finite = [v[np.isfinite(v) & (v > 0)] for v in losses.values()]
    if not finite or any(v.size == 0 for v in finite):
        return np.nan
    lo = min(float(v.min()) for v in finite) / (1 + tol)  # every level within tol of a loss
    hi = max(float(v.max()) for v in finite) / (1 - tol)
    grid = np.geomspace(lo, hi, LEVEL_GRID)
    worst = np.max(
        [np.min(np.abs(v[None, :] / grid[:, None] - 1.0), axis=1) for v in finite], axis=0
    )
    ok = np.nonzero(worst <= tol)[0]
    return float(grid[ok[0]] if ok.size else grid[int(np.argmin(worst))])


INTERPOLATE_RULE = (
    "per setting and seed, each optimizer's test loss and accuracies, train accuracy, NTK "
    "similarity, kernel distance and CKA interpolated to the level between the two consecutive "
    "measured epochs whose train losses bracket it (its first crossing: loss[j − 1] > level >= "
    "loss[j]), linearly in log train loss (so the train loss itself matches exactly); level = "
    "{level}"
)
CROSSING_LEVEL = (
    "per seed, the lowest train loss every optimizer reaches: the largest over the optimizers of "
    "their lowest train loss at a measured epoch >= 1"
)


def crossing_level(losses: dict[str, np.ndarray]) -> float:
    """The lowest train loss every optimizer reaches: the largest of their lowest losses.

    **Arguments:**

    - `losses`: per optimizer, its train losses at the measured epochs >= 1.

    **Returns:** the level (NaN when some optimizer has no finite positive loss).
    """
    finite = [v[np.isfinite(v) & (v > 0)] for v in losses.values()]
    if not finite or any(v.size == 0 for v in finite):
        return np.nan
    return float(max(v.min() for v in finite))


def bracket(loss: np.ndarray, level: float) -> tuple[int, float] | str:
    """Where a train-loss curve first crosses `level`, and the interpolation weight there.

    **Arguments:**

    - `loss`: train losses at consecutive measured epochs (index 0: initialisation).
    - `level`: the level (> 0).

    **Returns:** `(j, w)` with `loss[j − 1] > level >= loss[j]` (the first such `j >= 1`) and
    `w = (log loss[j − 1] − log level) / (log loss[j − 1] − log loss[j])` in (0, 1], so that
    `(1 − w)·m[j − 1] + w·m[j]` is a measure `m` interpolated to the level linearly in log
    loss; or a sentence saying why there is no crossing.
    """
    if not (np.isfinite(level) and level > 0):
        return f"no level to match (level {level:.4g})"
    for j in range(1, loss.size):
        a, b = loss[j - 1], loss[j]
        if not (np.isfinite(a) and np.isfinite(b)):
            return f"its train loss is not finite at a measured epoch before reaching {level:.4g}"
        if b <= level < a:
            return j, float((np.log(a) - np.log(level)) / (np.log(a) - np.log(b)))
    return f"never reaches the level {level:.4g} at a measured epoch after initialisation"


def matched_train_loss(ds: xr.Dataset, c: Config, opts=("gn", "adam", "sgd")) -> dict:
    """Per setting and seed: the laziness measures, test loss and accuracies of each optimizer
    in `opts` at a train loss all of them reach (see Config's `match` and `match_fraction`).
    With `match = "interpolate"` each is interpolated to the level between the measured epochs
    that bracket it (`bracket`); with `"nearest"`, taken at the measured epoch >= 1 whose train
    loss is closest to the level, if within `MATCH_TOLERANCE` of it (relative). Where an
    optimizer has no match, a sentence saying why."""
    if c.match == "interpolate":
        return _matched_interpolated(ds, c, opts)
    common = c.match_fraction == 0
    out: dict = {
        "rule": MATCH_RULE.format(
            tol=MATCH_TOLERANCE,
            level=COMMON_LEVEL.format(tol=MATCH_TOLERANCE)
            if common
            else f"{c.match_fraction} × the initial train loss",
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
            present = {o: v[later] for o, v in losses.items() if np.isfinite(v[later]).any()}
            level = common_level(present) if common else c.match_fraction * initial
            res: dict = {"seed": int(ds.seed.values[k]), "level": _f(level)}
            res["initial_train_loss"] = initial
            dist = mismatch(present, level) if np.isfinite(level) and level > 0 else {}
            res["worst_mismatch"] = _f(max(dist.values())) if dist else None
            for o, v in losses.items():
                res[o] = _match(rs.sel(optimizer=o), v, me, later, level)
            per_seed.append(res)
        out[s] = per_seed
    return out


def _match(r: xr.Dataset, loss: np.ndarray, me: np.ndarray, later: np.ndarray, level: float):
    """One optimizer's record at the measured epoch closest to `level`, or why there is none."""
    ok = later & np.isfinite(loss)
    if not ok.any() or not (np.isfinite(level) and level > 0):
        return f"never reaches the level {level:.4g}: no finite train loss at a measured epoch"
    dist = np.where(ok, np.abs(loss / level - 1.0), np.inf)
    j = int(np.argmin(dist))  # ties: the earliest
    if dist[j] > MATCH_TOLERANCE:
        return (
            f"never within {MATCH_TOLERANCE:.0%} of the level {level:.4g}: its closest measured "
            f"train loss is {loss[j]:.4g} (epoch {int(me[j])})"
        )
    e = int(me[j])
    m = r.isel(measure_epoch=j)
    return {
        "epoch": e,
        "train_loss": float(loss[j]),
        "test_loss": _f(r.test_loss.sel(epoch=e).item()),
        "train_accuracy": _f(r.train_accuracy.sel(epoch=e).item()),
        "test_accuracy": _f(r.test_accuracy.sel(epoch=e).item()),
        "ntk_similarity": _f(m.ntk_similarity.item()),
        "kernel_distance": _f(m.kernel_distance.item()),
        "cka": [_f(x) for x in m.cka.values],
    }


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


def _consecutive(me: np.ndarray) -> bool:
    return bool(np.all(np.diff(me) == 1) and me[0] == 0)


def _matched_interpolated(ds: xr.Dataset, c: Config, opts) -> dict:
    common = c.match_fraction == 0
    level_text = CROSSING_LEVEL if common else f"{c.match_fraction} × the initial train loss"
    out: dict = {"rule": INTERPOLATE_RULE.format(level=level_text)}
    me = ds.measure_epoch.values
    names = [o for o in opts if o in ds.optimizer.values]
    for s in map(str, ds.setting.values):
        if s == "rank":
            continue
        e_s = int(ds.epochs.sel(setting=s))
        m_s = me[me <= e_s]
        per_seed = []
        for k in range(ds.sizes["seed"]):
            rs = ds.sel(setting=s).isel(seed=k)
            initial = float(rs.train_loss.sel(optimizer=names[0]).values[0])
            losses = {o: rs.train_loss.sel(optimizer=o, epoch=m_s).values for o in names}
            present = {o: v[1:] for o, v in losses.items() if np.isfinite(v[1:]).any()}
            if len(present) < len(names) or not _consecutive(m_s):
                level = np.nan
            else:
                level = crossing_level(present) if common else c.match_fraction * initial
            res: dict = {"seed": int(ds.seed.values[k]), "level": _f(level)}
            res["initial_train_loss"] = initial
            for o, v in losses.items():
                if not _consecutive(m_s):
                    res[o] = (
                        "interpolation needs a measurement at every epoch: pass --measure-every 1"
                    )
                    continue
                where = bracket(v, level)
                r = rs.sel(optimizer=o)
                if isinstance(where, str):
                    res[o] = where
                elif not np.isfinite(r.ntk_similarity.sel(measure_epoch=[*_pair(where)])).all():
                    res[o] = (
                        f"no NTK / CKA measurement at epochs {where[0] - 1} and {where[0]}: "
                        "pass --measure-every 1"
                    )
                else:
                    res[o] = _interp(r, *where)
            per_seed.append(res)
        out[s] = per_seed
    return out


def _pair(where: tuple[int, float]) -> tuple[int, int]:
    return where[0] - 1, where[0]


def _interp(r: xr.Dataset, j: int, w: float) -> dict:
    """One optimizer's record interpolated between measured epochs `j − 1` and `j` (weight `w`
    on `j`), with each measure's change across the bracket (`span`)."""
    a, b = r.sel(epoch=j - 1), r.sel(epoch=j)
    ma, mb = r.sel(measure_epoch=j - 1), r.sel(measure_epoch=j)
    mix = lambda x, y: _f((1 - w) * float(x) + w * float(y))  # noqa: E731
    cka = [mix(x, y) for x, y in zip(ma.cka.values, mb.cka.values, strict=True)]
    return {
        "epoch": j - 1 + w,
        "bracket": [j - 1, j],
        "train_loss": float(np.exp((1 - w) * np.log(a.train_loss) + w * np.log(b.train_loss))),
        "test_loss": mix(a.test_loss, b.test_loss),
        "train_accuracy": mix(a.train_accuracy, b.train_accuracy),
        "test_accuracy": mix(a.test_accuracy, b.test_accuracy),
        "ntk_similarity": mix(ma.ntk_similarity, mb.ntk_similarity),
        "kernel_distance": mix(ma.kernel_distance, mb.kernel_distance),
        "cka": cka,
        "span": {
            "ntk_similarity": _f(abs(float(mb.ntk_similarity) - float(ma.ntk_similarity))),
            "cka": _f(abs(float(np.mean(mb.cka.values)) - float(np.mean(ma.cka.values)))),
            "gap": _f(
                abs(
                    float(b.train_accuracy - b.test_accuracy)
                    - float(a.train_accuracy - a.test_accuracy)
                )
            ),
        },
    }
