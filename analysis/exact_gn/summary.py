"""Summary of the exact Gauss-Newton study (`analysis/exact_gn`): headline numbers, the
matched-train-loss comparison of the laziness measures, and the paper's claims."""

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
    return float(v) if np.isfinite(v) else None


def summarize(ds: xr.Dataset, c: Config) -> dict:
    """The headline numbers of `ds` (see the module DESCRIPTION)."""
    out: dict = {"loss": c.loss, "target_fraction": c.target_fraction, "train_loss_level": {}}
    for s in ds.setting.values:
        s = str(s)
        level = c.target_fraction * float(ds.train_loss.sel(setting=s).values[0, 0])
        out["train_loss_level"][s] = level
        out[s] = {}
        for o in ds.optimizer.values:
            o = str(o)
            r = ds.sel(setting=s, optimizer=o)
            ch = r.batch_loss_change.values
            ch = ch[np.isfinite(ch)]
            spe = int(ds.steps_per_epoch.sel(setting=s))
            out[s][o] = {
                "final_train_loss": _f(r.train_loss.values[-1]),
                "final_test_loss": _f(r.test_loss.values[-1]),
                "final_train_accuracy": _f(r.train_accuracy.values[-1]),
                "final_test_accuracy": _f(r.test_accuracy.values[-1]),
                "epochs_to_train_loss": epochs_to_level(r.train_loss.values, level),
                "mean_batch_loss_drop": _f(-ch.mean()),
                "last_epoch_batch_loss_drop": _f(-ch[-spe:].mean()),
                "ntk_similarity_final": _f(r.ntk_similarity.values[-1]),
                "kernel_distance_final": _f(r.kernel_distance.values[-1]),
                "cka_final": [_f(v) for v in r.cka.values[-1]],
            }
    out["matched_train_loss"] = matched_train_loss(ds, c)
    out["paper_claims"] = paper_claims(ds, out, c)
    return out


MATCH_RULE = (
    "per setting, each optimizer's NTK similarity, kernel distance and CKA at its first measured "
    "epoch >= 1 whose train loss is <= level; level = {level}"
)


def matched_train_loss(ds: xr.Dataset, c: Config) -> dict:
    """The laziness measures of each optimizer at a train loss all of them reach (see Config's
    `match_fraction`), or a sentence saying that it never reaches the level."""
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
    for s in ds.setting.values:
        s = str(s)
        rs = ds.sel(setting=s)
        initial = float(rs.train_loss.values[0, 0])
        losses = {
            str(o): rs.train_loss.sel(optimizer=o, epoch=me).values for o in ds.optimizer.values
        }
        lowest = {
            o: float(np.min(v[later & np.isfinite(v)]))
            for o, v in losses.items()
            if np.isfinite(v[later]).any()
        }
        if common:
            level = max(lowest.values()) if lowest else float("nan")
        else:
            level = c.match_fraction * initial
        res: dict = {
            "level": _f(level),
            "initial_train_loss": initial,
            "level_over_initial": _f(level / initial),
        }
        for o, v in losses.items():
            hit = np.nonzero(later & (v <= level))[0]
            if not hit.size:
                res[o] = (
                    f"never reaches the level {level:.4g}: its train loss is not finite at any "
                    "measured epoch"
                    if o not in lowest
                    else f"never reaches the level {level:.4g}: its lowest train loss at a "
                    f"measured epoch is {lowest[o]:.4g} (initial {initial:.4g})"
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
        out[s] = res
    return out


def paper_claims(ds: xr.Dataset, summary: dict, c: Config) -> dict:
    """Which of the paper's three expectations hold here (None where a run is missing)."""
    opts = {str(o) for o in ds.optimizer.values}
    claims: dict = {}
    if "full" in summary and "gn" in opts and len(opts) > 1:
        e = lambda o: summary["full"][o]["epochs_to_train_loss"]
        gn = e("gn")
        others = [e(o) for o in opts - {"gn"}]
        claims["full_batch_gn_fewer_epochs"] = gn is not None and all(
            v is None or v >= 2 * max(gn, 1) for v in others
        )
        claims["full_batch_gn_fewer_epochs_rule"] = (
            "GN reaches the level and Adam/SGD need >= 2x its epochs or never reach it"
        )
    else:
        claims["full_batch_gn_fewer_epochs"] = None
    if "mini" in summary and "gn" in opts:
        r = ds.sel(setting="mini", optimizer="gn")
        half = c.epochs // 2
        imp = lambda v: float((v[half] - v[-1]) / v[half])
        tr, te = imp(r.train_loss.values), imp(r.test_loss.values)
        claims["mini_gn_second_half_train_improvement"] = tr
        claims["mini_gn_second_half_test_improvement"] = te
        claims["mini_batch_gn_saturates"] = tr < c.plateau_tol and te < c.plateau_tol
        claims["mini_batch_gn_saturates_rule"] = (
            f"train and test loss fall by < {c.plateau_tol} (relative) over the second half"
        )
    else:
        claims["mini_batch_gn_saturates"] = None
    closer = {}
    if {"gn", "adam"} <= opts:
        for s in summary["train_loss_level"]:
            g, a = summary[s]["gn"], summary[s]["adam"]
            closer[s] = bool(
                g["ntk_similarity_final"] > a["ntk_similarity_final"]
                and np.mean(g["cka_final"]) > np.mean(a["cka_final"])
            )
    claims["gn_closer_to_init_than_adam"] = closer or None
    claims["gn_closer_to_init_than_adam_rule"] = (
        "at the last epoch: higher NTK similarity and higher block-mean CKA than Adam"
    )
    matched = summary["matched_train_loss"]
    at_loss: dict = {}
    if {"gn", "adam"} <= opts:
        for s in summary["train_loss_level"]:
            g, a = matched[s]["gn"], matched[s]["adam"]
            at_loss[s] = (
                bool(
                    g["ntk_similarity"] > a["ntk_similarity"]
                    and np.mean(g["cka"]) > np.mean(a["cka"])
                )
                if isinstance(g, dict) and isinstance(a, dict)
                else None
            )
    claims["gn_closer_to_init_than_adam_at_matched_loss"] = at_loss or None
    claims["gn_closer_to_init_than_adam_at_matched_loss_rule"] = (
        "at the matched train loss (matched_train_loss): higher NTK similarity and higher "
        "block-mean CKA than Adam; null where one of them never reaches the level"
    )
    return claims
